use super::*;

fn forward(key: &str) -> Forward {
    Forward {
        target: ForwardTarget {
            id: 1,
            tls: false,
            addr: "127.0.0.1:1935".parse().unwrap(),
            host: "127.0.0.1".into(),
            app: "live".into(),
            tc_url: "rtmp://127.0.0.1/live".into(),
            key: key.into(),
        },
        room_id: RoomId(1),
        stop: Cell::new(false),
        fd: Cell::new(-1),
        player: RefCell::new(None),
        bytes: Cell::new(0),
    }
}

#[test]
fn errors_never_carry_the_key_and_stay_short() {
    let f = forward("sekrit-key-123");
    let e = f.clean("refused: NetStream.Publish.BadName (sekrit-key-123 is already publishing)");
    assert_eq!(e, "refused: NetStream.Publish.BadName (<key> is already publishing)");
    let long = format!("{}é", "x".repeat(MAX_ERROR - 1));
    let e = f.clean(&long);
    assert!(e.len() <= MAX_ERROR && long.starts_with(&e), "{e}");
    // The key's Debug form is hidden too.
    assert!(!format!("{:?}", f.target).contains("sekrit"));
}

#[test]
fn a_bad_ca_file_is_a_clear_error() {
    let e = build_tls_config("/nonexistent/ca.pem").unwrap_err();
    assert!(e.contains("forward.ca_file") && e.contains("/nonexistent/ca.pem"), "{e}");
    let dir = std::env::temp_dir().join(format!("mv-fwd-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = build_tls_config(empty.to_str().unwrap()).unwrap_err();
    assert!(e.contains("no certificate"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plain_connections_pass_bytes_through() {
    let tls: Tls = Rc::new(RefCell::new(None));
    let out = seal(&tls, vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")]).unwrap();
    assert_eq!(out.concat(), b"abcde");
    let mut plain = Vec::new();
    open(&tls, b"xyz", &mut plain).unwrap();
    assert_eq!(plain, b"xyz");
}
