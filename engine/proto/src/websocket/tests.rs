#[test]
fn handshake_checks_version_and_key() {
    let key = Some("dGhlIHNhbXBsZSBub25jZQ=="); // RFC 6455's example: 16 bytes
    assert_eq!(super::check_handshake(Some("13"), key), Ok(()));
    assert_eq!(super::check_handshake(Some("99"), key), Err(super::HandshakeError::UnsupportedVersion));
    assert_eq!(super::check_handshake(None, key), Err(super::HandshakeError::UnsupportedVersion));
    assert_eq!(super::check_handshake(Some("13"), None), Err(super::HandshakeError::MissingKey));
    assert_eq!(super::check_handshake(Some("13"), Some("not base64!")), Err(super::HandshakeError::BadKey));
    assert_eq!(super::check_handshake(Some("13"), Some("c2hvcnQ=")), Err(super::HandshakeError::BadKey));
    assert_eq!(super::HandshakeError::UnsupportedVersion.http_status(), 426);
    assert_eq!(super::HandshakeError::BadKey.http_status(), 400);
}

use super::*;

#[test]
fn rfc6455_accept_example() {
    // §1.3: "dGhlIHNhbXBsZSBub25jZQ==" → "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
    assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn header_lengths() {
    for (len, hl) in [(0usize, 2usize), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
        let mut v = vec![];
        frame_header(OP_BINARY, len, &mut v);
        assert_eq!(v.len(), hl, "{len}");
        assert_eq!(v[0], 0x82);
    }
}

#[test]
fn parses_masked_frames_incrementally() {
    // §5.7: a masked "Hello".
    let f = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    for cut in 0..f.len() {
        assert_eq!(parse_client_frame(&f[..cut], 1024), Ok(None));
    }
    let (fr, used) = parse_client_frame(&f, 1024).unwrap().unwrap();
    assert_eq!((fr.opcode, fr.payload.as_slice(), used), (OP_TEXT, &b"Hello"[..], 11));
    assert_eq!(parse_client_frame(&[0x81, 0x05, 1, 2, 3, 4, 5], 1024), Err(WsError::Unmasked));
    assert_eq!(parse_client_frame(&[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0], 1024), Err(WsError::TooLarge(65536)));
}
