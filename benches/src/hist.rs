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
}
