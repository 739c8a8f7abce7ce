use super::*;

#[test]
fn jwt_round_trip_and_rejections() {
    let k = JwtKeys::new("a-secret-that-is-long-enough-for-tests!!", "test-deployment", 1);
    let (t, c) = k.issue(7, "alice").unwrap();
    let back = k.verify(&t).unwrap();
    assert_eq!((back.user_id(), back.username.as_str(), back.jti.as_str()), (7, "alice", c.jti.as_str()));

    // Another secret.
    let other = JwtKeys::new("another-secret-that-is-long-enough!!!!!", "test-deployment", 1);
    assert!(other.verify(&t).is_err());
    assert_eq!((c.iss.as_str(), c.aud.as_str()), ("test-deployment", JWT_AUDIENCE));

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

/// Same secret, another deployment (issuer) or another audience: refused.
#[test]
fn jwt_bound_to_issuer_and_audience() {
    let secret = "a-secret-shared-by-two-deployments-0123456789";
    let here = JwtKeys::new(secret, "deployment-a", 1);
    let there = JwtKeys::new(secret, "deployment-b", 1);
    let (t, c) = there.issue(7, "alice").unwrap();
    assert!(there.verify(&t).is_ok());
    let e = here.verify(&t).unwrap_err();
    assert!(e.message.contains("iss"), "{}", e.message);

    let sign = |claims: &serde_json::Value| {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
            .unwrap()
    };
    let mut v = serde_json::to_value(&c).unwrap();
    v["iss"] = "deployment-a".into();
    assert!(here.verify(&sign(&v)).is_ok(), "the right iss and aud pass");
    v["aud"] = "some-other-service".into();
    let e = here.verify(&sign(&v)).unwrap_err();
    assert!(e.message.contains("aud"), "{}", e.message);
    // Without the claims (tokens of older versions): refused, saying why.
    for claim in ["iss", "aud"] {
        let mut v = serde_json::to_value(&c).unwrap();
        v["iss"] = "deployment-a".into();
        v.as_object_mut().unwrap().remove(claim);
        let e = here.verify(&sign(&v)).unwrap_err();
        assert!(e.message.contains("log in again"), "{claim}: {}", e.message);
    }
}

/// Keys built from a publicly known secret neither accept tokens signed with it
/// nor sign tokens that verify under it.
#[test]
fn public_secrets_are_never_used() {
    for public in [crate::config::DEFAULT_JWT_SECRET, ""] {
        assert!(is_public_secret(public));
        let k = JwtKeys::new(public, "microvibe", 1);
        let (t, c) = k.issue(1, "alice").unwrap();
        assert!(k.verify(&t).is_ok(), "the keys work with their own random secret");
        let forged =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &c, &EncodingKey::from_secret(public.as_bytes()))
                .unwrap();
        assert!(k.verify(&forged).is_err(), "a token signed with {public:?} is refused");
    }
    assert!(!is_public_secret("a-secret-of-this-deployment-only-0123456"));
}

#[test]
fn passwords() {
    let h = hash_password("correct horse").unwrap();
    assert!(h.starts_with("$argon2id$"));
    assert!(verify_password("correct horse", &h));
    assert!(!verify_password("wrong", &h));
    assert!(!verify_password("x", "not a hash"));
    // The pooled variants agree with the plain ones both ways.
    let mut buf = Vec::new();
    let h2 = hash_password_with("correct horse", &mut buf).unwrap();
    assert!(h2.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h2}");
    assert!(verify_password("correct horse", &h2));
    assert!(verify_password_with("correct horse", &h, &mut buf));
    assert!(!verify_password_with("wrong", &h, &mut buf));
    assert!(!verify_password_with("x", "not a hash", &mut buf));
    assert!(!verify_password_with("x", DUMMY_HASH, &mut buf));
}

/// Beyond its slots, the pool makes callers wait, then answers 503 + Retry-After.
#[tokio::test]
async fn pool_bounds_concurrency() {
    let pool = std::sync::Arc::new(PasswordPool::new(1, std::time::Duration::from_millis(1)));
    assert_eq!(pool.size(), 1);
    let held = pool.slots.clone().acquire_owned().await.unwrap();
    let e = pool.hash("password123".into()).await.unwrap_err();
    assert_eq!((e.kind, e.retry_after), (crate::error::ErrorKind::Unavailable, Some(1)));
    drop(held);
    let h = pool.hash("password123".into()).await.unwrap();
    assert!(pool.verify("password123".into(), Some(h)).await.unwrap());
    assert!(!pool.verify("password123".into(), None).await.unwrap());
    assert_eq!(pool.buffers.lock().unwrap().len(), 1, "one buffer, reused");
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
