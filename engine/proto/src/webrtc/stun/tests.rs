use super::*;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// RFC 5769 §2.1 "Sample Request".
const REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf";
/// RFC 5769 §2.2 "Sample IPv4 Response".
const RESPONSE_V4: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96";
/// RFC 5769 §2.3 "Sample IPv6 Response".
const RESPONSE_V6: &str = "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c";
/// RFC 5769 §2.4 "Sample Request with Long-Term Authentication".
const REQUEST_LONG_TERM: &str = "000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae38383e382afe382b900000015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b6578616d706c652e6f72670000080014f67024656dd64a3e02b8e0712e85c9a28ca89666";
const PWD: &str = "VOkJxbRl1RmTxUk/WvJxBt";
const TID: [u8; 12] = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

fn server() -> IceCredentials {
    IceCredentials { ufrag: "evtj".into(), pwd: PWD.into() }
}

#[test]
fn rfc5769_sample_request_is_accepted() {
    let from: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    let out = handle_binding(&hex(REQUEST), from, &server());
    let StunOutcome::Binding { request, response } = out else {
        panic!("not accepted: {out:?}");
    };
    assert_eq!(request.transaction_id, TID);
    assert_eq!(request.remote_ufrag, "h6vY");
    assert_eq!(request.priority, Some(0x6e0001ff));
    assert_eq!(request.ice_controlled, Some(0x932ff9b151263b36));
    assert_eq!(request.ice_controlling, None);
    assert!(!request.use_candidate);
    // Our response verifies with the same password and maps the source.
    let (tid, mapped) = parse_success_response(&response, PWD).unwrap();
    assert_eq!(tid, TID);
    assert_eq!(mapped, from);
    // Its XOR-MAPPED-ADDRESS attribute is byte-identical to the RFC's.
    let v4 = hex(RESPONSE_V4);
    let attr = &v4[36..48];
    assert!(response.windows(attr.len()).any(|w| w == attr));
    assert_eq!(peek_username(&hex(REQUEST)), Some("evtj:h6vY"));
}

#[test]
fn rfc5769_responses_verify() {
    let (tid, a) = parse_success_response(&hex(RESPONSE_V4), PWD).unwrap();
    assert_eq!(tid, TID);
    assert_eq!(a, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 32853));
    let (_, a) = parse_success_response(&hex(RESPONSE_V6), PWD).unwrap();
    let ip: Ipv6Addr = "2001:db8:1234:5678:11:2233:4455:6677".parse().unwrap();
    assert_eq!(a, SocketAddr::new(IpAddr::V6(ip), 32853));
    // A wrong password fails.
    assert!(parse_success_response(&hex(RESPONSE_V4), "wrong").is_err());
}

#[test]
fn rfc5769_long_term_vector_checks_with_md5_key() {
    let provider = crypto_provider().unwrap();
    let mut m = Message::new();
    m.unmarshal_binary(&hex(REQUEST_LONG_TERM)).unwrap();
    // Username "マトリックス", realm "example.org", password "TheMatrIX"
    // (after SASLprep, RFC 5769 §2.4).
    let key = MessageIntegrity::long_term_integrity_key(
        "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}".into(),
        "example.org".into(),
        "TheMatrIX".into(),
        provider.crypto(),
    )
    .unwrap();
    MessageIntegrity::check(&mut m, &key, provider.crypto()).unwrap();
    // It carries no FINGERPRINT, so ICE-lite drops it as malformed.
    let out = handle_binding(&hex(REQUEST_LONG_TERM), "127.0.0.1:1".parse().unwrap(), &server());
    assert!(matches!(out, StunOutcome::Rejected { reason: StunReject::Malformed, response: None }));
}

#[test]
fn bad_integrity_gets_401() {
    let mut creds = server();
    creds.pwd = "another-password-of-22ch".into();
    let out = handle_binding(&hex(REQUEST), "127.0.0.1:9".parse().unwrap(), &creds);
    let StunOutcome::Rejected { reason: StunReject::BadIntegrity, response: Some(resp) } = out else {
        panic!("{out:?}")
    };
    let mut m = Message::new();
    m.unmarshal_binary(&resp).unwrap();
    assert_eq!(m.typ, BINDING_ERROR);
    let mut ec = ErrorCodeAttribute::default();
    use rtc_stun::message::Getter;
    ec.get_from(&m).unwrap();
    assert_eq!(ec.code.0, 401);
    assert!(FINGERPRINT.check(&m).is_ok());
}

#[test]
fn wrong_ufrag_gets_401_and_tampering_is_malformed() {
    let mut creds = server();
    creds.ufrag = "zzzz".into();
    let out = handle_binding(&hex(REQUEST), "127.0.0.1:9".parse().unwrap(), &creds);
    assert!(matches!(out, StunOutcome::Rejected { reason: StunReject::UnknownUser, .. }));
    let mut bytes = hex(REQUEST);
    bytes[30] ^= 1; // inside SOFTWARE: FINGERPRINT no longer matches
    let out = handle_binding(&bytes, "127.0.0.1:9".parse().unwrap(), &server());
    assert!(matches!(out, StunOutcome::Rejected { reason: StunReject::Malformed, .. }));
}

#[test]
fn client_request_round_trip_with_use_candidate() {
    let server = IceCredentials { ufrag: "srvU".into(), pwd: "0123456789012345678901".into() };
    let req = binding_request([7; 12], &server, "cliU", true, 42).unwrap();
    assert_eq!(peek_username(&req), Some("srvU:cliU"));
    let from: SocketAddr = "[::1]:5004".parse().unwrap();
    let StunOutcome::Binding { request, response } = handle_binding(&req, from, &server) else { panic!() };
    assert!(request.use_candidate);
    assert_eq!(request.ice_controlling, Some(42));
    assert_eq!(request.remote_ufrag, "cliU");
    assert_eq!(parse_success_response(&response, &server.pwd).unwrap(), ([7; 12], from));
}

#[test]
fn missing_integrity_gets_400_and_responses_are_ignored() {
    let mut m = Message::new();
    m.typ = BINDING_REQUEST;
    m.transaction_id = TransactionId([1; 12]);
    m.write_header();
    m.add(ATTR_USERNAME, b"evtj:h6vY");
    FINGERPRINT.add_to(&mut m).unwrap();
    let out = handle_binding(&m.raw, "127.0.0.1:9".parse().unwrap(), &server());
    assert!(matches!(out, StunOutcome::Rejected { reason: StunReject::MissingCredentials, response: Some(_) }));
    let out = handle_binding(&hex(RESPONSE_V4), "127.0.0.1:9".parse().unwrap(), &server());
    assert_eq!(out, StunOutcome::Ignored);
    // Junk never panics.
    for n in 0..64 {
        let junk: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
        let _ = handle_binding(&junk, "127.0.0.1:9".parse().unwrap(), &server());
        let _ = peek_username(&junk);
    }
}

#[test]
fn random_credentials_follow_rfc8839() {
    let mut rng = rand::rng();
    let c = IceCredentials::random(&mut rng);
    assert_eq!(c.ufrag.len(), 8);
    assert_eq!(c.pwd.len(), 24);
    assert!(c.pwd.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '+' || ch == '/'));
}
