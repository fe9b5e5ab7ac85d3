//! Normalize: continuous columns standardised with the training rows' mean and standard
//! deviation, optionally after `log1p`, nulls filled.
//!
//! `x' = (f(x) - mean) / std` with `f = log1p` or the identity, mean and std over the non-null
//! training values of `f(x)` (std with the n - 1 denominator, as pandas and NVTabular's
//! `Normalize` compute it; a constant column gets std 1 so it maps to 0 instead of NaN).
//! Nulls become the training mean, i.e. 0 after normalisation (the neutral value of a
//! standardised feature), unless a raw fill value is given.

use serde::{Deserialize, Serialize};

/// Running mean and variance (Welford), so one pass over the rows suffices.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatsCounter {
    n: u64,
    mean: f64,
    m2: f64,
    nulls: u64,
}

impl StatsCounter {
    pub fn add(&mut self, value: Option<f64>) {
        let Some(x) = value else {
            self.nulls += 1;
            return;
        };
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Whether the statistics are finite (values near the limits of a double overflow the
    /// running variance).
    pub fn is_finite(&self) -> bool {
        self.mean.is_finite() && self.m2.is_finite()
    }

    pub fn finish(&self, log1p: bool, fill: Option<f64>) -> Normalizer {
        let var = if self.n > 1 {
            self.m2 / (self.n - 1) as f64
        } else {
            0.0
        };
        let std = var.sqrt();
        Normalizer {
            mean: self.mean,
            std: if std > 0.0 && std.is_finite() {
                std
            } else {
                1.0
            },
            log1p,
            fill,
            count: self.n,
            nulls: self.nulls,
        }
    }
}

/// The fitted transform of one continuous column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Mean of the (log1p-transformed) training values.
    pub mean: f64,
    /// Their standard deviation (n - 1 denominator; 1 for a constant column).
    pub std: f64,
    pub log1p: bool,
    /// Raw value nulls are replaced with; `None`: the training mean (0 after normalisation).
    pub fill: Option<f64>,
    /// Non-null and null training values the statistics came from.
    pub count: u64,
    pub nulls: u64,
}

impl Normalizer {
    /// The raw value as the statistics see it (`log1p` applied); `None` if `log1p` cannot take
    /// it (values at or below -1).
    pub fn pre(log1p: bool, x: f64) -> Option<f64> {
        if !log1p {
            Some(x)
        } else if x > -1.0 {
            Some(x.ln_1p())
        } else {
            None
        }
    }

    /// The normalised value of a raw value (`None`: null). `None` back if `log1p` cannot take
    /// the value.
    pub fn apply(&self, value: Option<f64>) -> Option<f32> {
        let x = match value.or(self.fill) {
            Some(raw) => Normalizer::pre(self.log1p, raw)?,
            None => self.mean,
        };
        Some(((x - self.mean) / self.std) as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_with_sample_denominator_and_null_fill() {
        let mut s = StatsCounter::default();
        for v in [Some(1.0), Some(2.0), None, Some(3.0), Some(6.0)] {
            s.add(v);
        }
        let n = s.finish(false, None);
        assert_eq!(n.mean, 3.0);
        // Σ(x - 3)² = 4 + 1 + 0 + 9 = 14 over n - 1 = 3.
        assert!((n.std - (14.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!((n.count, n.nulls), (4, 1));
        assert_eq!(n.apply(None), Some(0.0), "null → the mean → 0");
        assert!((n.apply(Some(6.0)).unwrap() as f64 - 3.0 / n.std).abs() < 1e-6);
        let filled = s.finish(false, Some(1.0));
        assert_eq!(filled.apply(None), filled.apply(Some(1.0)));
    }

    #[test]
    fn log1p_and_constant_columns() {
        let mut s = StatsCounter::default();
        for v in [0.0, 0.0] {
            s.add(Normalizer::pre(true, v));
        }
        let n = s.finish(true, None);
        assert_eq!((n.mean, n.std), (0.0, 1.0), "constant: std 1, no NaN");
        assert_eq!(n.apply(Some(std::f64::consts::E - 1.0)), Some(1.0));
        assert_eq!(n.apply(Some(-1.0)), None, "log1p(-1) is not finite");
    }
}
