use super::*;

#[test]
fn parses_and_bounds_heads() {
    let raw: &[u8] =
        b"GET /flv/abc.flv?x=1&y=a%20b HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nrest";
    let (r, n) = parse_head(raw).unwrap().unwrap();
    assert_eq!((r.method.as_str(), r.path.as_str(), r.query.as_str()), ("GET", "/flv/abc.flv", "x=1&y=a%20b"));
    assert_eq!(n, raw.len() - 4, "the head ends before the pipelined bytes");
    assert!(r.is_websocket() && r.keep_alive && !r.has_body);
    assert_eq!(r.query_param("y").as_deref(), Some("a b"));
    assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost:").unwrap().map(|x| x.1), None);
    assert!(matches!(parse_head(b"\x00\x01garbage\r\n\r\n"), Err(HeadError::Malformed(_))));
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
    assert_eq!(parse_head(big.as_bytes()).err(), Some(HeadError::TooLarge));
    let many: String = (0..100).map(|i| format!("H{i}: v\r\n")).collect();
    assert_eq!(parse_head(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).err(), Some(HeadError::TooLarge));
    let (r, _) = parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(!r.keep_alive);
    let (r, _) = parse_head(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n").unwrap().unwrap();
    assert!(r.has_body);
}

fn name(s: &str) -> StreamName {
    StreamName::parse(s).unwrap()
}

#[test]
fn routes() {
    assert_eq!(route("/flv/live_abc.flv"), Route::Flv(name("live_abc")));
    assert_eq!(route("/live/x-1.flv"), Route::Flv(name("x-1")));
    assert_eq!(route("/flv/../etc.flv"), Route::NotFound);
    assert_eq!(route("/flv/a%2Fb.flv"), Route::NotFound);
    assert_eq!(route("/hls/s1.m3u8"), Route::HlsPlaylist(name("s1")));
    assert_eq!(route("/hls/s1/42.ts"), Route::HlsSegment(name("s1"), 42));
    assert_eq!(route("/hls/s1/x.ts"), Route::NotFound);
    assert_eq!(route("/stat"), Route::Stat);
    assert_eq!(route("/control/drop/publisher"), Route::ControlDrop("publisher".into()));
    assert_eq!(route("/"), Route::NotFound);
}

#[test]
fn chunked_bodies_decode_across_any_split() {
    let wire = b"4\r\nWiki\r\n6;x=y\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n\r\n";
    for split in 1..wire.len() {
        let mut d = ChunkedDecoder::default();
        let mut out = vec![];
        for part in wire.chunks(split) {
            d.decode(part, &mut out).unwrap();
        }
        assert_eq!(out, b"Wikipedia in \r\n\r\nchunks.", "split {split}");
        assert!(d.is_done());
    }
    assert_eq!(ChunkedDecoder::default().decode(b"zz\r\n", &mut vec![]), Err(ChunkError));
    assert_eq!(ChunkedDecoder::default().decode(&[b'1'; 300], &mut vec![]), Err(ChunkError));
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nrest";
    assert_eq!(parse_response_head(head), Ok(Some((200, true, head.len() - 4))));
    assert_eq!(parse_response_head(b"HTTP/1.1 404 Not"), Ok(None));
}

#[test]
fn stream_names_are_checked_once() {
    assert_eq!(StreamName::parse("live_abc-1").map(|n| n.to_string()).as_deref(), Some("live_abc-1"));
    for bad in ["", "a/b", "a b", "..", &"x".repeat(129)] {
        assert_eq!(StreamName::parse(bad), None, "{bad:?}");
    }
    let mut names = std::collections::HashMap::new();
    names.insert(name("s1"), 1);
    assert_eq!(names.get("s1"), Some(&1), "looked up by its text");
    assert_eq!(format!("{:?}", name("s1")), "\"s1\"");
}
