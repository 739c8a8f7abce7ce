use super::*;

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + n))
}

#[test]
fn one_line_per_address_per_interval_with_the_suppressed_count() {
    let t = Instant::now();
    let mut l = LogLimiter::new(Duration::from_secs(10), 100);
    assert_eq!(l.check(ip(1), t), Some(0));
    for i in 1..=500u64 {
        assert_eq!(l.check(ip(1), t + Duration::from_millis(i)), None);
    }
    // Another address is not held back by the first.
    assert_eq!(l.check(ip(2), t), Some(0));
    assert_eq!(l.check(ip(1), t + Duration::from_secs(10)), Some(500));
    assert_eq!(l.check(ip(1), t + Duration::from_secs(11)), None);
    assert_eq!(l.check(ip(1), t + Duration::from_secs(30)), Some(1));
}

#[test]
fn the_table_stays_bounded() {
    let t = Instant::now();
    let mut l = LogLimiter::new(Duration::from_secs(10), 64);
    let mut written = 0;
    for n in 0..100_000u32 {
        if l.check(ip(n), t + Duration::from_micros(u64::from(n))).is_some() {
            written += 1;
        }
    }
    assert!(l.len() <= 65, "{} (64 and the overflow entry)", l.len());
    // 64 addresses, then the overflow entry's one line in the interval.
    assert!(written <= 65, "{written}");
    // Once their interval is over, quiet addresses make room again.
    assert_eq!(l.check(ip(1_000_000), t + Duration::from_secs(60)), Some(0));
}
