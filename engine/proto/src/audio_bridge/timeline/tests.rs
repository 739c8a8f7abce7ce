use super::*;

#[test]
fn maps_and_unwraps() {
    let mut t = RtpTimeline::new(48_000);
    let start = u32::MAX - 959;
    assert_eq!(t.to_ms(start), 0);
    // Across the wrap.
    assert_eq!(t.to_ms(start.wrapping_add(960)), 20);
    assert_eq!(t.to_ms(start.wrapping_add(1920)), 40);
    // A little back in time (reordering) stays behind.
    assert_eq!(t.to_ms(start.wrapping_sub(480)), -10);
    assert_eq!(t.extend(start.wrapping_add(1920)), i64::from(u32::MAX) + 961);
    let mut v = RtpTimeline::new(90_000);
    v.anchor(1000, 5000);
    assert_eq!(v.to_ms(1000 + 90 * 33), 5033);
    assert_eq!(v.to_flv_ms(1000u32.wrapping_sub(90 * 6000)), 0);
    let mut odd = RtpTimeline::new(44_100);
    assert_eq!(odd.to_ms(7), 0);
    assert_eq!(odd.to_ms(7 + 44_100), 1000);
    assert_eq!(odd.to_ms(7 + 441), 10);
}
