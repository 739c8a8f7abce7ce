//! Credentials: argon2id password hashes, HS256 JWTs, stream keys and names.

use crate::error::{AppError, AppResult};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id, as a string (RFC 7519 4.1.2: `sub` is a string).
    pub sub: String,
    pub username: String,
    pub iat: i64,
    pub exp: i64,
    /// Token id, the handle for revocation.
    pub jti: String,
}

#[derive(Clone)]
pub struct JwtKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    pub expire_secs: i64,
}

impl Claims {
    /// The user id in `sub` (0 when it is not a number, which matches no user).
    pub fn user_id(&self) -> i64 {
        self.sub.parse().unwrap_or(0)
    }
}

impl JwtKeys {
    pub fn new(secret: &str, expire_hours: u64) -> Self {
        Self {
            enc: EncodingKey::from_secret(secret.as_bytes()),
            dec: DecodingKey::from_secret(secret.as_bytes()),
            expire_secs: (expire_hours as i64) * 3600,
        }
    }

    /// Issues a token for a user; returns (token, claims).
    pub fn issue(&self, user_id: i64, username: &str) -> AppResult<(String, Claims)> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            username: username.to_owned(),
            iat: now,
            exp: now + self.expire_secs,
            jti: random_token(16),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc).map_err(AppError::internal)?;
        Ok((token, claims))
    }

    /// Verifies signature (HS256 only: `none` and every other algorithm are refused) and expiry.
    pub fn verify(&self, token: &str) -> AppResult<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.algorithms = vec![Algorithm::HS256];
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.dec, &v).map(|d| d.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            AppError::unauthorized(match e.kind() {
                K::ExpiredSignature => "token expired",
                K::InvalidAlgorithm => "token algorithm not accepted (HS256 only)",
                _ => "invalid token",
            })
        })
    }
}

/// Hashes a password with argon2id (random salt, PHC string). CPU-heavy: call from a
/// blocking task.
pub fn hash_password(password: &str) -> AppResult<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(AppError::internal)
}

/// Verifies a password against a PHC hash (constant time inside argon2).
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// `n` random bytes, URL-safe base64 without padding.
pub fn random_token(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A new secret stream key: 192 random bits, URL-safe, prefixed for recognisability.
pub fn new_stream_key() -> String {
    format!("sk_{}", random_token(24))
}

/// A new public stream name: 64 random bits as lowercase base32-ish alphanumerics.
pub fn new_stream_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut b = [0u8; 13];
    rand::rng().fill_bytes(&mut b);
    let s: String = b.iter().map(|x| ALPHABET[(*x as usize) % ALPHABET.len()] as char).collect();
    format!("live_{s}")
}

/// Hex SHA-256 of a stream key: the database lookup index.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Constant-time comparison of two secrets.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_round_trip_and_rejections() {
        let k = JwtKeys::new("a-secret-that-is-long-enough-for-tests!!", 1);
        let (t, c) = k.issue(7, "alice").unwrap();
        let back = k.verify(&t).unwrap();
        assert_eq!((back.user_id(), back.username.as_str(), back.jti.as_str()), (7, "alice", c.jti.as_str()));

        // Another secret.
        let other = JwtKeys::new("another-secret-that-is-long-enough!!!!!", 1);
        assert!(other.verify(&t).is_err());

        // alg=none: header {"alg":"none","typ":"JWT"}, same claims, empty signature.
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let payload = t.split('.').nth(1).unwrap();
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), payload);
        assert!(k.verify(&none).is_err());

        // HS512 with the right secret is still refused.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &c,
            &EncodingKey::from_secret(b"a-secret-that-is-long-enough-for-tests!!"),
        )
        .unwrap();
        assert!(k.verify(&hs512).is_err());

        // Expired.
        let mut old = c.clone();
        old.exp = chrono::Utc::now().timestamp() - 10;
        let t_old = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &k.enc).unwrap();
        assert_eq!(k.verify(&t_old).unwrap_err().message, "token expired");
    }

    #[test]
    fn passwords() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn keys_and_names() {
        let k = new_stream_key();
        assert!(k.len() >= 3 + 32 && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        assert_ne!(k, new_stream_key());
        let n = new_stream_name();
        assert!(n.starts_with("live_") && n.len() == 18);
        assert_eq!(key_hash("abc").len(), 64);
        assert!(secrets_equal("abc", "abc") && !secrets_equal("abc", "abd") && !secrets_equal("abc", "ab"));
    }
}
