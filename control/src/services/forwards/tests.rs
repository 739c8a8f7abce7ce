use super::*;

#[test]
fn urls_of_the_big_platforms_parse() {
    let d = parse_url("rtmp://a.rtmp.youtube.com/live2").unwrap();
    assert_eq!((d.tls, d.host.as_str(), d.port, d.app.as_str()), (false, "a.rtmp.youtube.com", 1935, "live2"));
    assert_eq!(d.tc_url, "rtmp://a.rtmp.youtube.com/live2");
    let d = parse_url("rtmps://live-api-s.facebook.com:443/rtmp/").unwrap();
    assert_eq!((d.tls, d.host.as_str(), d.port, d.app.as_str()), (true, "live-api-s.facebook.com", 443, "rtmp"));
    assert_eq!(d.tc_url, "rtmps://live-api-s.facebook.com:443/rtmp");
    let d = parse_url("RTMPS://Ingest.Example.com/app/sub").unwrap();
    assert_eq!((d.tls, d.host.as_str(), d.port, d.app.as_str()), (true, "ingest.example.com", 443, "app/sub"));
    let d = parse_url("rtmp://[2001:db8::1]:1936/live").unwrap();
    assert_eq!((d.host.as_str(), d.port), ("2001:db8::1", 1936));
    let d = parse_url("rtmp://127.0.0.1:19350/live").unwrap();
    assert_eq!((d.host.as_str(), d.port, d.tc_url.as_str()), ("127.0.0.1", 19350, "rtmp://127.0.0.1:19350/live"));
}

#[test]
fn bad_urls_are_refused_with_a_reason() {
    for (url, why) in [
        ("", "empty"),
        ("http://example.com/live", "scheme"),
        ("srt://example.com/live", "scheme"),
        ("example.com/live", "scheme"),
        ("rtmp://example.com", "application path"),
        ("rtmp://example.com/", "application path"),
        ("rtmp://user:pw@example.com/live", "user name"),
        ("rtmp://example.com/live?x=1", "query"),
        ("rtmp://example.com/live#f", "query"),
        ("rtmp://example.com:0/live", "port"),
        ("rtmp://example.com:99999/live", "port"),
        ("rtmp://example.com:abc/live", "port"),
        ("rtmp:///live", "host"),
        ("rtmp://exa_mple.com/live", "host"),
        ("rtmp://example.com/li ve", "spaces"),
        ("rtmp://example.com/live\n", "control"),
        ("rtmp://[::1/live", "IPv6"),
    ] {
        let e = parse_url(url).expect_err(url);
        assert!(e.contains(why), "{url:?}: {e:?} should mention {why:?}");
    }
    assert!(parse_url(&format!("rtmp://example.com/{}", "a".repeat(600))).unwrap_err().contains("at most"));
}

#[test]
fn keys_are_checked_and_masked() {
    assert!(check_key("live_123456_abcdef").is_ok());
    assert!(check_key("abc?bandwidthtest=true").is_ok());
    assert!(check_key("").unwrap_err().contains("empty"));
    assert!(check_key("a b").unwrap_err().contains("spaces"));
    assert!(check_key("a\u{7}b").unwrap_err().contains("control"));
    assert!(check_key(&"k".repeat(513)).unwrap_err().contains("at most"));
    assert_eq!(mask_key("xxxx-yyyy-zzzz-wxyz"), "****wxyz");
    // A short key shows less of itself (never all of it).
    assert_eq!(mask_key("abcdefgh"), "****gh");
    assert_eq!(mask_key("abc"), "****");
    assert_eq!(mask_key("k"), "****");
}

#[test]
fn only_public_addresses_are_public() {
    for ip in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "2002:a00:1::1",
        "2001:db8::1",
        "ff02::1",
    ] {
        assert!(!is_public(ip.parse().unwrap()), "{ip} must not count as public");
    }
    for ip in ["8.8.8.8", "142.250.0.1", "2a00:1450:4001::1", "::ffff:8.8.8.8"] {
        assert!(is_public(ip.parse().unwrap()), "{ip} is public");
    }
}

#[tokio::test]
async fn private_destinations_are_refused_unless_allowed() {
    let d = parse_url("rtmp://127.0.0.1:1935/live").unwrap();
    let e = resolve(&d, false).await.unwrap_err();
    assert!(e.contains("not allowed") && e.contains("127.0.0.1"), "{e}");
    assert_eq!(resolve(&d, true).await.unwrap(), "127.0.0.1:1935".parse::<SocketAddr>().unwrap());
    // A name resolving to loopback too.
    let d = parse_url("rtmp://localhost:1935/live").unwrap();
    assert!(resolve(&d, false).await.unwrap_err().contains("not allowed"));
}
