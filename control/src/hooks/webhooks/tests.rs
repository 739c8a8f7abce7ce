use super::*;

#[test]
fn signature_is_hmac_sha256_of_timestamp_dot_body() {
    // RFC 4231 test case 2 (key "Jefe"), with the message split as "{timestamp}.{body}".
    let sig = signature(b"Jefe", 1234, b"body");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
    mac.update(b"1234.body");
    assert_eq!(sig, format!("v1={}", hex::encode(mac.finalize().into_bytes())));
    // Known answer, as `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test` prints it.
    assert_eq!(
        signature(b"whsec_test", 1_700_000_000, br#"{"a":1}"#),
        "v1=".to_owned() + &known_answer("whsec_test", "1700000000.{\"a\":1}")
    );
    // The timestamp and the body both count.
    assert_ne!(signature(b"k", 1, b"x"), signature(b"k", 2, b"x"));
    assert_ne!(signature(b"k", 1, b"x"), signature(b"k", 1, b"y"));
    assert_ne!(signature(b"k", 1, b"x"), signature(b"k2", 1, b"x"));
}

/// HMAC-SHA256 by its definition (RFC 2104) over sha2 alone: a check independent
/// of the hmac crate.
fn known_answer(key: &str, msg: &str) -> String {
    use sha2::Digest;
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key.as_bytes());
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = sha2::Sha256::new().chain_update(&ipad).chain_update(msg.as_bytes()).finalize();
    hex::encode(sha2::Sha256::new().chain_update(&opad).chain_update(inner).finalize())
}

#[test]
fn retry_schedule_doubles_and_honours_retry_after() {
    let secs: Vec<u64> = (1..=7).map(|n| retry_delay(n, None).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60]);
    assert_eq!(retry_delay(40, None), MAX_BACKOFF);
    assert_eq!(retry_delay(1, Some(Duration::from_secs(7))), Duration::from_secs(7));
    assert_eq!(retry_delay(3, Some(Duration::from_secs(0))), Duration::ZERO);
    assert_eq!(retry_delay(1, Some(Duration::from_secs(100_000))), MAX_RETRY_AFTER);
    assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    // An endpoint that never answers in time: events pile up behind the first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let metrics = Arc::new(Metrics::new());
    let http = crate::hooks::http_client(Duration::from_secs(5)).unwrap();
    let w = Webhooks::new(
        vec![WebhookConfig { url, secret: "0123456789abcdef".into(), events: vec![] }],
        http,
        1,
        3,
        metrics.clone(),
    );
    for _ in 0..5 {
        w.emit(1, "room.live", serde_json::json!({}));
    }
    assert_eq!(w.queued(), 3);
    let text = metrics.render();
    assert!(text.contains(r#"microvibe_webhook_deliveries_total{result="dropped"} 2"#), "{text}");
    // Unknown types and filtered endpoints queue nothing.
    w.emit(1, "room.exploded", serde_json::json!({}));
    assert_eq!(w.queued(), 3);
    drop(listener);
}
