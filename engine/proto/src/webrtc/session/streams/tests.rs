use super::*;

#[test]
fn send_stream_keeps_continuity_across_source_changes() {
    let t0 = Instant::now();
    let mut s = SendStream::new(1, 96, 90_000, None, 1000, 5000);
    assert_eq!(s.map(t0, 77, 10, 100), (1000, 5000));
    assert_eq!(s.map(t0, 77, 11, 3100), (1001, 8000));
    // Publisher restarts with a new SSRC and unrelated numbering 1 s later.
    let t1 = t0 + Duration::from_secs(1);
    let (seq, ts) = s.map(t1, 88, 40000, 123456);
    assert_eq!(seq, 1002);
    assert_eq!(ts, 8000 + 90_000);
    assert_eq!(s.map(t1, 88, 40001, 126456), (1003, 8000 + 93_000));
    // Gaps pass through.
    assert_eq!(s.map(t1, 88, 40005, 126456).0, 1007);
}

#[test]
fn recv_stream_reports_loss_and_nacks() {
    let t0 = Instant::now();
    let mut r = RecvStream::new(9, 90_000);
    for seq in [100u16, 101, 104, 105] {
        r.on_packet(t0, Duration::ZERO, seq, 0, true);
    }
    assert!(r.due_nacks(t0).is_empty()); // reordering delay
    let t = t0 + Duration::from_millis(20);
    assert_eq!(r.due_nacks(t), vec![102, 103]);
    assert!(r.due_nacks(t).is_empty());
    r.on_repaired(102);
    let t = t + Duration::from_millis(150);
    assert_eq!(r.due_nacks(t), vec![103]);
    let rb = r.report(t).unwrap();
    assert_eq!(rb.total_lost, 1);
    assert_eq!(rb.extended_highest_seq & 0xffff, 105);
    assert!(rb.fraction_lost > 0);
    // Gives up after three tries.
    let t = t + Duration::from_millis(150);
    assert_eq!(r.due_nacks(t), vec![103]);
    let t = t + Duration::from_millis(150);
    assert!(r.due_nacks(t).is_empty());
    assert!(r.next_nack().is_none());
}
