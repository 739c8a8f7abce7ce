use super::test_util::rng;
use super::*;

fn run(kind: HandshakeKind, split: usize) -> (ServerHandshake, ClientHandshake, Vec<u8>) {
    let mut r = rng(1);
    let mut c_out = Vec::new();
    let mut client = ClientHandshake::new(kind, &mut r, &mut c_out);
    let mut server = ServerHandshake::new();
    let mut s_out = Vec::new();
    for piece in c_out.chunks(split) {
        let mut input = piece;
        server.handle_input(&mut input, &mut r, &mut s_out).unwrap();
        assert!(input.is_empty());
    }
    assert!(!server.is_done());
    assert_eq!(s_out.len(), 1 + 2 * HANDSHAKE_SIZE);
    let mut c2 = Vec::new();
    for piece in s_out.chunks(split) {
        let mut input = piece;
        client.handle_input(&mut input, &mut r, &mut c2).unwrap();
    }
    assert!(client.is_done());
    assert_eq!(c2.len(), HANDSHAKE_SIZE);
    // C2 followed by chunk data: the data must be left in the input.
    c2.extend_from_slice(b"chunkdata");
    let mut input = &c2[..];
    assert!(server.handle_input(&mut input, &mut r, &mut s_out).unwrap());
    assert_eq!(input, b"chunkdata");
    (server, client, s_out)
}

#[test]
fn simple_handshake() {
    let (server, client, s_out) = run(HandshakeKind::Simple, 7);
    assert_eq!(server.kind(), Some(HandshakeKind::Simple));
    assert_eq!(client.server_digest_valid(), None);
    // S1 version is zero and S2 echoes C1 (§5.2.3).
    assert_eq!(&s_out[5..9], &[0, 0, 0, 0]);
    assert_eq!(&s_out[1 + HANDSHAKE_SIZE..], &client.c1()[..]);
}

#[test]
fn digest_handshake_both_schemes() {
    for scheme in [DigestScheme::OffsetAt8, DigestScheme::OffsetAt772] {
        let (server, client, s_out) = run(HandshakeKind::Digest(scheme), 1000);
        assert_eq!(server.kind(), Some(HandshakeKind::Digest(scheme)));
        assert_eq!(client.server_digest_valid(), Some(true));
        // Independently check the S1 digest with the 36-byte server key.
        let s1: &[u8; HANDSHAKE_SIZE] = s_out[1..1 + HANDSHAKE_SIZE].try_into().unwrap();
        let (found, _) = find_digest(s1, &FMS_KEY_TEXT[..]).unwrap();
        assert_eq!(found, scheme);
    }
}

#[test]
fn c1_with_version_but_bad_digest_falls_back_to_simple() {
    let mut r = rng(2);
    let mut c0c1 = vec![RTMP_VERSION];
    let mut c1 = [7u8; HANDSHAKE_SIZE];
    c1[4..8].copy_from_slice(&CLIENT_VERSION);
    c0c1.extend_from_slice(&c1);
    let mut server = ServerHandshake::new();
    let mut out = Vec::new();
    let mut input = &c0c1[..];
    server.handle_input(&mut input, &mut r, &mut out).unwrap();
    assert_eq!(server.kind(), Some(HandshakeKind::Simple));
    assert_eq!(&out[1 + HANDSHAKE_SIZE..], &c1[..]);
}

#[test]
fn tampered_s2_is_detected_by_digest_client() {
    let mut r = rng(3);
    let mut c_out = Vec::new();
    let kind = HandshakeKind::Digest(DigestScheme::OffsetAt8);
    let mut client = ClientHandshake::new(kind, &mut r, &mut c_out);
    let mut server = ServerHandshake::new();
    let mut s_out = Vec::new();
    server.handle_input(&mut &c_out[..], &mut r, &mut s_out).unwrap();
    let last = s_out.len() - 1;
    s_out[last] ^= 1;
    let err = client.handle_input(&mut &s_out[..], &mut r, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, RtmpError::PeerMisbehaviour(_)));
}

#[test]
fn ffmpeg_c1_digest_and_our_answer() {
    // C0+C1 as ffmpeg 5.1 sent them (testdata/rtmp/ffmpeg-publish.txt).
    let capture = include_bytes!("../../../../testdata/rtmp/ffmpeg-publish.bin");
    let c1: &[u8; HANDSHAKE_SIZE] = capture[1..1 + HANDSHAKE_SIZE].try_into().unwrap();
    let (scheme, client_digest) = find_digest(c1, &FP_KEY_TEXT[..]).unwrap();
    assert_eq!(scheme, DigestScheme::OffsetAt8);
    let mut server = ServerHandshake::new();
    let mut out = Vec::new();
    let mut input = &capture[..];
    assert!(server.handle_input(&mut input, &mut rng(5), &mut out).unwrap());
    assert_eq!(server.kind(), Some(HandshakeKind::Digest(DigestScheme::OffsetAt8)));
    // What ffmpeg checks as a player: S1 digest with the 36-byte server key,
    // S2 signed with HMAC(full server key, client digest).
    let s1: &[u8; HANDSHAKE_SIZE] = out[1..1 + HANDSHAKE_SIZE].try_into().unwrap();
    let s2: &[u8; HANDSHAKE_SIZE] = out[1 + HANDSHAKE_SIZE..].try_into().unwrap();
    assert!(find_digest(s1, &FMS_KEY_TEXT[..]).is_some());
    assert!(response_valid(s2, &full_key(FMS_KEY_TEXT), &client_digest));
    assert_eq!(input.len(), capture.len() - 1 - 2 * HANDSHAKE_SIZE);
}

#[test]
fn version_byte_checks() {
    let mut r = rng(4);
    for (v, ok) in [(3u8, true), (0, true), (6, false), (b'G', false)] {
        let mut server = ServerHandshake::new();
        let res = server.handle_input(&mut &[v][..], &mut r, &mut Vec::new());
        assert_eq!(res.is_ok(), ok, "version {v}");
    }
}
