use super::*;

fn pkt(n: usize) -> CachedRtp {
    CachedRtp { payload_type: 96, marker: false, timestamp: n as u32, payload: Bytes::from(vec![n as u8; n]) }
}

#[test]
fn lookup_by_seq_and_wraparound() {
    let t0 = Instant::now();
    let mut c = RtxCache::new(RtxCacheLimits { packets_per_ssrc: 16, ..Default::default() });
    for i in 0..20u16 {
        let seq = 65530u16.wrapping_add(i);
        c.insert(t0, 1, seq, pkt(10 + i as usize));
    }
    // The ring keeps the last 16.
    assert!(c.get(t0, 1, 65530).is_none());
    assert!(c.get(t0, 1, 65533).is_none());
    assert_eq!(c.get(t0, 1, 65534).unwrap().timestamp, 14);
    assert_eq!(c.get(t0, 1, 13).unwrap().timestamp, 29);
    assert!(c.get(t0, 2, 13).is_none());
    assert_eq!(c.len(), 16);
}

#[test]
fn byte_budget_evicts_oldest_across_ssrcs() {
    let t0 = Instant::now();
    let mut c = RtxCache::new(RtxCacheLimits {
        packets_per_ssrc: 64,
        max_bytes: 5 * (100 + ENTRY_OVERHEAD),
        ..Default::default()
    });
    for i in 0..10u16 {
        c.insert(t0, (i % 2) as u32, i, pkt(100));
    }
    assert!(c.bytes() <= 5 * (100 + ENTRY_OVERHEAD));
    assert_eq!(c.len(), 5);
    assert!(c.get(t0, 0, 4).is_none());
    assert!(c.get(t0, 1, 5).is_some());
    assert!(c.get(t0, 1, 9).is_some());
}

#[test]
fn age_limit() {
    let t0 = Instant::now();
    let limits = RtxCacheLimits::default();
    let mut c = RtxCache::new(limits);
    c.insert(t0, 7, 1, pkt(10));
    c.insert(t0 + limits.max_age - Duration::from_millis(100), 7, 2, pkt(10));
    let t = t0 + limits.max_age + Duration::from_millis(500);
    assert!(c.get(t, 7, 1).is_none());
    assert!(c.get(t, 7, 2).is_some());
    c.evict(t);
    assert_eq!(c.len(), 1);
    c.remove_ssrc(7);
    assert!(c.is_empty());
}

#[test]
fn ssrc_limit_and_stale_order_compaction() {
    let t0 = Instant::now();
    let mut c = RtxCache::new(RtxCacheLimits { packets_per_ssrc: 4, max_ssrcs: 2, ..Default::default() });
    for ssrc in 0..5u32 {
        for seq in 0..100u16 {
            c.insert(t0, ssrc, seq, pkt(1));
        }
    }
    assert_eq!(c.len(), 8);
    assert!(c.order.len() <= 4 * 4 * 2 + 1);
    assert_eq!(c.bytes(), 8 * (1 + ENTRY_OVERHEAD));
}

#[test]
fn store_keeps_one_copy_per_source_packet() {
    let t0 = Instant::now();
    let mut st = RtxStore::new(RtxCacheLimits { packets_per_ssrc: 8, max_ssrcs: 2, ..Default::default() });
    let p = Bytes::from_static(b"abc");
    // 500 subscribers insert the same packet: stored once.
    for _ in 0..500 {
        st.insert(t0, 7, 65535, true, 90, &p);
    }
    assert_eq!(st.len(), 1);
    let got = st.get(t0, 7, 65535).unwrap();
    assert_eq!((got.marker, got.timestamp, &got.payload[..]), (true, 90, &b"abc"[..]));
    assert!(st.get(t0, 7, 65534).is_none());
    assert!(st.get(t0, 8, 65535).is_none());
    // The ring wraps: seq 7 replaces seq 65535 (both slot 7), a new payload replaces.
    st.insert(t0, 7, 7, false, 91, &Bytes::from_static(b"x"));
    assert!(st.get(t0, 7, 65535).is_none());
    assert_eq!(st.get(t0, 7, 7).unwrap().timestamp, 91);
    // Too old.
    let max_age = RtxCacheLimits::default().max_age;
    assert!(st.get(t0 + max_age, 7, 7).is_some());
    assert!(st.get(t0 + max_age + Duration::from_millis(1), 7, 7).is_none());
    // A third SSRC evicts the first.
    st.insert(t0, 8, 1, false, 1, &p);
    st.insert(t0, 9, 1, false, 1, &p);
    assert!(st.get(t0, 7, 7).is_none());
    assert!(st.get(t0, 8, 1).is_some() && st.get(t0, 9, 1).is_some());
    assert_eq!(st.len(), 2);
    assert_eq!(st.bytes(), 2 * (3 + ENTRY_OVERHEAD));
}

#[test]
fn store_keeps_to_its_byte_budget() {
    let t0 = Instant::now();
    let budget = 3 * (100 + ENTRY_OVERHEAD);
    let mut st = RtxStore::new(RtxCacheLimits { packets_per_ssrc: 8, max_bytes: budget, ..Default::default() });
    for seq in 0..5u16 {
        st.insert(t0, 1, seq, false, 0, &Bytes::from(vec![seq as u8; 100]));
        assert!(st.bytes() <= budget);
    }
    // The first three fit, the next two are not kept.
    assert!(st.get(t0, 1, 2).is_some());
    assert!(st.get(t0, 1, 3).is_none() && st.get(t0, 1, 4).is_none());
    // As the ring wraps onto the old slots, they are freed and the new ones kept.
    for seq in 8..11u16 {
        st.insert(t0, 1, seq, false, 0, &Bytes::from(vec![1; 100]));
    }
    assert!(st.get(t0, 1, 10).is_some() && st.get(t0, 1, 2).is_none());
    assert_eq!(st.bytes(), budget);
}
