use super::*;

fn name(s: &str) -> StreamName {
    StreamName::parse(s).unwrap()
}

fn client(ip: [u8; 4], ua: &str) -> HlsClient {
    HlsClient::new(IpAddr::from(ip), Some(ua))
}

#[test]
fn sessions_join_refresh_and_leave() {
    let mut v = HlsViewers::default();
    let t0 = Instant::now();
    let mut id = 0;
    let mut next = || {
        id += 1;
        id
    };
    assert!(v.touch(&name("s"), RoomId(7), &client([10, 0, 0, 1], "ffmpeg"), 100, t0, &mut next).is_some());
    assert!(
        v.touch(&name("s"), RoomId(7), &client([10, 0, 0, 1], "ffmpeg"), 100, t0, &mut next).is_none(),
        "same session"
    );
    assert!(
        v.touch(&name("s"), RoomId(7), &client([10, 0, 0, 1], "Safari"), 100, t0, &mut next).is_some(),
        "another player"
    );
    assert!(
        v.touch(&name("s"), RoomId(7), &client([10, 0, 0, 2], "ffmpeg"), 100, t0, &mut next).is_some(),
        "another address"
    );
    assert_eq!(v.total(), 3);
    // One keeps requesting, the others go quiet.
    let t1 = t0 + Duration::from_secs(5);
    v.touch(&name("s"), RoomId(7), &client([10, 0, 0, 2], "ffmpeg"), 100, t1, &mut next);
    let left = v.sweep(t1, |_| Duration::from_secs(3));
    assert_eq!(left, vec![Change { room_id: RoomId(7), stream: name("s") }; 2]);
    assert_eq!(v.total(), 1);
    assert_eq!(v.end_stream(&name("s")).len(), 1);
    assert_eq!(v.total(), 0);
    assert_eq!(v.sessions().count(), 0);
}

#[test]
fn rotating_user_agents_are_bounded() {
    let mut v = HlsViewers::default();
    let t0 = Instant::now();
    let joined = (0..1000)
        .filter(|i| v.touch(&name("s"), RoomId(1), &client([10, 0, 0, 9], &format!("ua{i}")), 1, t0, || 1).is_some())
        .count();
    assert_eq!(joined, MAX_PER_ADDR, "one address counts at most {MAX_PER_ADDR} viewers");
    let long = "x".repeat(10_000) + "é";
    assert_eq!(HlsClient::new(IpAddr::from([1, 1, 1, 1]), Some(&long)).user_agent.len(), MAX_UA);
    // Expired sessions free their address's places.
    assert_eq!(v.sweep(t0 + Duration::from_secs(10), |_| Duration::from_secs(1)).len(), MAX_PER_ADDR);
    assert!(v.touch(&name("s"), RoomId(1), &client([10, 0, 0, 9], "again"), 1, t0, || 1).is_some());
}
