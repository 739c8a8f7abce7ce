use super::*;

const NOW: u64 = 1_800_000_000;

fn key() -> PlayKey {
    PlayKey::derive("a shared secret of thirty-two bytes!")
}

fn claims() -> Claims {
    Claims { room_id: 42, epoch: 3, expires: NOW + 60 }
}

#[test]
fn a_minted_token_verifies_for_its_room() {
    let t = mint(&key(), "room42", claims());
    assert!(t.len() < 80, "{t}");
    assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "URL-safe: {t}");
    assert_eq!(verify(&key(), Some(&t), "room42", 42, 3, NOW), Ok(claims()));
}

#[test]
fn the_token_carries_neither_stream_nor_secret() {
    let t = mint(&key(), "secretstream", claims());
    assert!(!t.contains("secretstream"));
    assert!(!t.contains("shared"));
}

#[test]
fn refusals() {
    let t = mint(&key(), "room42", claims());
    assert_eq!(verify(&key(), None, "room42", 42, 3, NOW), Err(TokenError::Missing));
    assert_eq!(verify(&key(), Some(""), "room42", 42, 3, NOW), Err(TokenError::Missing));
    // Expired: at the expiry second and after.
    assert_eq!(verify(&key(), Some(&t), "room42", 42, 3, NOW + 60), Err(TokenError::Expired));
    // Revoked: the room's epoch moved on.
    assert_eq!(verify(&key(), Some(&t), "room42", 42, 4, NOW), Err(TokenError::Revoked));
    // Another room's stream: the signature covers the stream name.
    assert_eq!(verify(&key(), Some(&t), "room43", 43, 3, NOW), Err(TokenError::BadSignature));
    // Same stream name, other room id (a room re-created with the name).
    assert_eq!(verify(&key(), Some(&t), "room42", 7, 3, NOW), Err(TokenError::OtherRoom));
    // Another server's key.
    assert_eq!(verify(&PlayKey::derive("other"), Some(&t), "room42", 42, 3, NOW), Err(TokenError::BadSignature));
}

#[test]
fn tampering_is_refused() {
    let t = mint(&key(), "room42", claims());
    let parts: Vec<&str> = t.split('.').collect();
    // A later expiry with the old signature.
    let longer = format!("{}.{}.{}.{}", parts[0], parts[1], NOW + 999_999, parts[3]);
    assert_eq!(verify(&key(), Some(&longer), "room42", 42, 3, NOW), Err(TokenError::BadSignature));
    // Every single changed character of the signature.
    let sig_start = t.rfind('.').unwrap() + 1;
    for i in sig_start..t.len() {
        let mut b = t.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(b).unwrap();
        assert!(verify(&key(), Some(&bad), "room42", 42, 3, NOW).is_err(), "{bad}");
    }
    for bad in ["", ".", "1.2.3", "1.2.3.4.5", "a.b.c.d", "-1.0.5.AAAA", "1.0.99999999999999999999999.AAAA", "1.0.5.!!"]
    {
        assert!(verify(&key(), Some(bad), "room42", 42, 3, NOW).is_err(), "{bad}");
    }
    let long = "1".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(verify(&key(), Some(&long), "room42", 42, 3, NOW), Err(TokenError::Malformed));
}

#[test]
fn keys_are_distinct_per_label_and_secret() {
    assert_ne!(PlayKey::derive("a"), PlayKey::derive("b"));
    assert_eq!(format!("{:?}", key()), "PlayKey(..)");
}

#[test]
fn token_from_a_query() {
    assert_eq!(from_query("a=1&token=x.y"), Some("x.y".into()));
    assert_eq!(from_query("token=a%2Eb"), Some("a.b".into()));
    assert_eq!(from_query("tokens=1"), None);
    assert_eq!(from_query(""), None);
}

#[test]
fn playlist_uris_carry_the_token() {
    let p = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.000,\ncam/0.ts\n\n#EXTINF:4.000,\ncam/1.ts?x=1\r\n#EXT-X-ENDLIST\n";
    let out = String::from_utf8(playlist_with_token(p, "T.1")).unwrap();
    assert_eq!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MAP:URI=\"init.mp4?token=T.1\"\n#EXTINF:4.000,\ncam/0.ts?token=T.1\n\n#EXTINF:4.000,\ncam/1.ts?x=1&token=T.1\r\n#EXT-X-ENDLIST\n"
    );
}
