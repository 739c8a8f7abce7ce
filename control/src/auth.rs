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
    /// The deployment that issued the token (`jwt.issuer`). `default` only so that a
    /// token without it reaches the validation, which refuses it naming the claim.
    #[serde(default)]
    pub iss: String,
    /// Who the token is for: always [`JWT_AUDIENCE`] (`default`: as for `iss`).
    #[serde(default)]
    pub aud: String,
    pub username: String,
    pub iat: i64,
    pub exp: i64,
    /// Token id, the handle for revocation.
    pub jti: String,
}

/// The `aud` claim of every token: this server's control API.
pub const JWT_AUDIENCE: &str = "microvibe-api";

#[derive(Clone)]
pub struct JwtKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    issuer: String,
    pub expire_secs: i64,
}

impl Claims {
    /// The user id in `sub` (0 when it is not a number, which matches no user).
    pub fn user_id(&self) -> i64 {
        self.sub.parse().unwrap_or(0)
    }
}

/// Whether `secret` is publicly known: empty, or the development secret shipped in
/// `configs/microvibe.toml`. Such a secret never signs or verifies a token.
pub fn is_public_secret(secret: &str) -> bool {
    secret.is_empty() || secret == crate::config::DEFAULT_JWT_SECRET
}

impl JwtKeys {
    /// Keys for HS256 tokens issued by `issuer`. A publicly known secret (see
    /// [`is_public_secret`]) is replaced by a random one that lives as long as these
    /// keys: `microvibe serve` never gets here with one (it uses the secret kept in the
    /// data directory), but no other caller can end up accepting forged tokens either.
    pub fn new(secret: &str, issuer: &str, expire_hours: u64) -> Self {
        let ephemeral;
        let secret = if is_public_secret(secret) {
            ephemeral = random_token(32);
            ephemeral.as_str()
        } else {
            secret
        };
        Self {
            enc: EncodingKey::from_secret(secret.as_bytes()),
            dec: DecodingKey::from_secret(secret.as_bytes()),
            issuer: issuer.to_owned(),
            expire_secs: (expire_hours as i64) * 3600,
        }
    }

    /// Issues a token for a user; returns (token, claims).
    pub fn issue(&self, user_id: i64, username: &str) -> AppResult<(String, Claims)> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            aud: JWT_AUDIENCE.to_owned(),
            username: username.to_owned(),
            iat: now,
            exp: now + self.expire_secs,
            jti: random_token(16),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc).map_err(AppError::internal)?;
        Ok((token, claims))
    }

    /// Verifies signature (HS256 only: `none` and every other algorithm are refused),
    /// expiry, issuer (this deployment's `jwt.issuer`) and audience ([`JWT_AUDIENCE`]).
    pub fn verify(&self, token: &str) -> AppResult<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.algorithms = vec![Algorithm::HS256];
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[JWT_AUDIENCE]);
        jsonwebtoken::decode::<Claims>(token, &self.dec, &v).map(|d| d.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            AppError::unauthorized(match e.kind() {
                K::ExpiredSignature => "token expired",
                K::InvalidAlgorithm => "token algorithm not accepted (HS256 only)",
                K::InvalidIssuer => "token issued by another deployment (iss)",
                K::InvalidAudience => "token not meant for this API (aud)",
                K::MissingRequiredClaim(c) if c == "iss" || c == "aud" => {
                    "token has no iss/aud claim (issued by an older version): log in again"
                }
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

/// Runs the argon2 work of registrations and logins with bounded concurrency and
/// bounded memory: at most `slots` hashes at once (each on a blocking thread, with a
/// ~19 MiB argon2 buffer reused from a pool of `slots` buffers, so the memory they
/// take never exceeds `slots` x 19 MiB whatever the load). A request that finds every
/// slot busy waits up to `wait`, then gets 503 with `Retry-After`.
pub struct PasswordPool {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    size: usize,
    wait: std::time::Duration,
    buffers: std::sync::Arc<std::sync::Mutex<Vec<Vec<argon2::Block>>>>,
}

/// The default argon2 buffer, in 1 KiB blocks (m = 19 MiB).
const DEFAULT_BLOCKS: usize = argon2::Params::DEFAULT_M_COST as usize;

impl PasswordPool {
    /// `slots` concurrent hashes (0: one per available core).
    pub fn new(slots: usize, wait: std::time::Duration) -> Self {
        let size = if slots == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { slots };
        Self {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(size)),
            size,
            wait,
            buffers: std::sync::Arc::default(),
        }
    }

    /// How many hashes may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `f` with a slot and a buffer, on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<argon2::Block>) -> T + Send + 'static,
    ) -> AppResult<T> {
        let permit = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => {
                return Err(AppError::unavailable("server busy checking passwords; retry in a moment").retry_after(1));
            }
        };
        let buffers = self.buffers.clone();
        // The permit moves into the task: a client that goes away does not free the
        // slot before the work it started is done.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut buf = buffers.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default();
            let out = f(&mut buf);
            if buf.len() > DEFAULT_BLOCKS {
                // A stored hash with a larger m: do not keep the bigger buffer.
                buf = Vec::new();
            }
            buffers.lock().unwrap_or_else(|p| p.into_inner()).push(buf);
            out
        })
        .await
        .map_err(AppError::internal)
    }

    /// [`hash_password`] within the pool's bounds.
    pub async fn hash(&self, password: String) -> AppResult<String> {
        self.run(move |buf| hash_password_with(&password, buf)).await?
    }

    /// [`verify_password`] within the pool's bounds; `None` verifies against a dummy
    /// hash (same cost) and answers false, so timing does not tell unknown users.
    pub async fn verify(&self, password: String, hash: Option<String>) -> AppResult<bool> {
        self.run(move |buf| match hash {
            Some(h) => verify_password_with(&password, &h, buf),
            None => {
                verify_password_with(&password, DUMMY_HASH, buf);
                false
            }
        })
        .await
    }
}

/// An argon2id hash of a random string, verified against for unknown usernames.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2yVgGJ0SWiQ0ZcfjMX8kGUBmqRvuCzjRmxJTQkK2Slc";

/// [`hash_password`] using `buf` as argon2's memory (resized as needed).
fn hash_password_with(password: &str, buf: &mut Vec<argon2::Block>) -> AppResult<String> {
    use argon2::password_hash::{Output, ParamsString};
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt_string = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    let params = argon2::Params::default();
    buf.resize(params.block_count(), argon2::Block::default());
    let a = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params.clone());
    let output = Output::init_with(argon2::Params::DEFAULT_OUTPUT_LEN, |out| {
        Ok(a.hash_password_into_with_memory(password.as_bytes(), &salt, out, &mut buf[..])?)
    })
    .map_err(AppError::internal)?;
    let phc = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(AppError::internal)?,
        salt: Some(salt_string.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// [`verify_password`] using `buf` as argon2's memory (resized as needed).
fn verify_password_with(password: &str, hash: &str, buf: &mut Vec<argon2::Block>) -> bool {
    use argon2::password_hash::Output;
    let mut check = || -> Option<bool> {
        let h = PasswordHash::new(hash).ok()?;
        let algorithm = argon2::Algorithm::try_from(h.algorithm).ok()?;
        let version = h.version.map(argon2::Version::try_from).transpose().ok()?.unwrap_or_default();
        let params = argon2::Params::try_from(&h).ok()?;
        let expected = h.hash?;
        let mut salt = [0u8; 64];
        let salt = h.salt?.decode_b64(&mut salt).ok()?;
        buf.resize(params.block_count(), argon2::Block::default());
        let a = Argon2::new(algorithm, version, params);
        let out = Output::init_with(expected.len(), |out| {
            Ok(a.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut buf[..])?)
        })
        .ok()?;
        // `Output` compares in constant time.
        Some(out == expected)
    };
    check().unwrap_or(false)
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
mod tests;
