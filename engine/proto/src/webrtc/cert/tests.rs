use super::*;

#[test]
fn generates_p256_and_fingerprint_matches_der() {
    let c = DtlsCertificate::generate().unwrap();
    assert_eq!(c.fingerprint().len(), 32 * 3 - 1);
    assert_eq!(c.fingerprint(), sha256_fingerprint(c.der()));
    assert!(c.sdp_fingerprint().starts_with("sha-256 "));
    // id-ecPublicKey (1.2.840.10045.2.1) with prime256v1 (1.2.840.10045.3.1.7).
    let der = c.der();
    let ec_pub = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let p256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    assert!(der.windows(ec_pub.len()).any(|w| w == ec_pub));
    assert!(der.windows(p256.len()).any(|w| w == p256));
    let parsed = parse_sha256_fingerprint(c.fingerprint()).unwrap();
    assert_eq!(parsed.as_slice(), Sha256::digest(der).as_slice());
}

#[test]
fn pem_round_trip_keeps_fingerprint() {
    let c = DtlsCertificate::generate().unwrap();
    let pem = c.to_pem().unwrap();
    let back = DtlsCertificate::from_pem(&pem).unwrap();
    assert_eq!(back.fingerprint(), c.fingerprint());
}

#[test]
fn fingerprint_parser_rejects_junk() {
    assert!(parse_sha256_fingerprint("AB:CD").is_none());
    assert!(parse_sha256_fingerprint(&"zz:".repeat(31).to_string()).is_none());
}
