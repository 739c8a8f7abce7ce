use super::*;
use std::time::Duration;

#[test]
fn timer_deadlines_round_up_to_one_grid_step() {
    let t = Instant::now();
    let mut ds: Vec<Instant> = (0..1000u64).map(|i| t + Duration::from_micros(i * 997)).collect();
    ds.push(t + Duration::from_secs(20));
    let on: Vec<Instant> = ds.iter().map(|&d| on_timer_grid(d)).collect();
    for (d, g) in ds.iter().zip(&on) {
        assert!(*g >= *d, "never early");
        assert!(*g - *d < TIMER_GRID, "late by less than a step");
    }
    // A second of deadlines lands on a handful of instants (one wake-up each).
    let mut distinct = on[..1000].to_vec();
    distinct.dedup();
    assert!(distinct.len() <= 5, "{} distinct instants", distinct.len());
    assert_eq!(on_timer_grid(on[3]), on[3], "a grid instant stays");
}
