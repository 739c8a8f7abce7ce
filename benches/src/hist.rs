//! A fixed-bucket millisecond histogram (1 ms buckets over a bounded range, values
//! outside clamp to the end buckets; the exact min and max are kept).

#[derive(Debug, Clone)]
pub struct Hist {
    lo: i64,
    buckets: Vec<u64>,
    count: u64,
    min: i64,
    max: i64,
}

impl Hist {
    /// Buckets for `lo..=hi` (ms).
    pub fn new(lo: i64, hi: i64) -> Hist {
        Hist { lo, buckets: vec![0; (hi - lo + 1).max(1) as usize], count: 0, min: i64::MAX, max: i64::MIN }
    }

    #[inline]
    pub fn add(&mut self, v: i64) {
        let i = (v - self.lo).clamp(0, self.buckets.len() as i64 - 1) as usize;
        self.buckets[i] += 1;
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max)
    }

    pub fn min(&self) -> Option<i64> {
        (self.count > 0).then_some(self.min)
    }

    /// The value at quantile `q` (0..=1), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                if i == self.buckets.len() - 1 {
                    return Some(self.max);
                }
                if i == 0 {
                    return Some(self.min);
                }
                let v = self.lo + i as i64;
                return Some(v.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    pub fn clear(&mut self) {
        if self.count > 0 {
            self.buckets.iter_mut().for_each(|b| *b = 0);
        }
        self.count = 0;
        self.min = i64::MAX;
        self.max = i64::MIN;
    }

    pub fn merge(&mut self, o: &Hist) {
        debug_assert_eq!((self.lo, self.buckets.len()), (o.lo, o.buckets.len()));
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// Quantile of a list of values (sorted in place).
pub fn quantile_of(v: &mut [u64], q: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// A log-linear histogram of non-negative integers (e.g. µs): exact below 256, then
/// 128 buckets per power of two (under 0.8 % error), up to 2^40. Small (a few
/// thousand buckets) whatever the range; the exact min and max are kept.
#[derive(Debug, Clone)]
pub struct LogHist {
    buckets: Vec<u64>,
    count: u64,
    min: u64,
    max: u64,
}

const LOG_SUB_BITS: u32 = 7;
const LOG_EXACT: u64 = 1 << (LOG_SUB_BITS + 1);
const LOG_MAX_BITS: u32 = 40;

impl Default for LogHist {
    fn default() -> Self {
        Self::new()
    }
}

impl LogHist {
    pub fn new() -> LogHist {
        let n = ((LOG_MAX_BITS - LOG_SUB_BITS + 2) as usize) << LOG_SUB_BITS;
        LogHist { buckets: vec![0; n], count: 0, min: u64::MAX, max: 0 }
    }

    fn index(v: u64) -> usize {
        let v = v.min((1u64 << LOG_MAX_BITS) - 1);
        if v < LOG_EXACT {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let shift = e - LOG_SUB_BITS;
        ((shift as usize) << LOG_SUB_BITS) + (v >> shift) as usize
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> u64 {
        if (i as u64) < LOG_EXACT {
            return i as u64;
        }
        let shift = (i >> LOG_SUB_BITS) as u32 - 1;
        let m = (i as u64 & ((1 << LOG_SUB_BITS) - 1)) + (1 << LOG_SUB_BITS);
        (m << shift) + ((1u64 << shift) - 1) / 2
    }

    #[inline]
    pub fn add(&mut self, v: u64) {
        self.buckets[Self::index(v)] += 1;
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// The value at quantile `q` (0..=1), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Self::value(i).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    pub fn clear(&mut self) {
        if self.count > 0 {
            self.buckets.iter_mut().for_each(|b| *b = 0);
        }
        self.count = 0;
        self.min = u64::MAX;
        self.max = 0;
    }

    pub fn merge(&mut self, o: &LogHist) {
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut h = Hist::new(0, 100);
        for v in 1..=100 {
            h.add(v);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.max(), Some(100));
        h.add(5000);
        assert_eq!(h.max(), Some(5000));
        assert_eq!(h.quantile(1.0), Some(5000));
        let mut v = vec![5, 1, 3];
        assert_eq!(quantile_of(&mut v, 0.5), Some(3));
    }

    #[test]
    fn log_quantiles() {
        let mut h = LogHist::new();
        for v in 1..=100_000u64 {
            h.add(v);
        }
        for (q, want) in [(0.5, 50_000f64), (0.99, 99_000.0), (0.001, 100.0)] {
            let got = h.quantile(q).unwrap() as f64;
            assert!((got - want).abs() / want < 0.01, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max(), Some(100_000));
        assert_eq!(h.min(), Some(1));
        for v in [0u64, 1, 255, 256, 257, 1000, 123_456_789, u64::MAX] {
            let i = LogHist::index(v);
            assert!(i < h.buckets.len());
            let back = LogHist::value(i) as f64;
            let v = v.min((1 << 40) - 1) as f64;
            assert!((back - v).abs() <= v * 0.008 + 0.5, "{v} -> {i} -> {back}");
        }
        let mut o = LogHist::new();
        o.add(7);
        h.merge(&o);
        assert_eq!(h.min(), Some(1));
        assert_eq!(h.count(), 100_001);
        h.clear();
        assert_eq!(h.quantile(0.5), None);
    }
}
