//! Seeded train/validation/test split of a single raw table.
//!
//! Each row draws its split independently from a ChaCha8 stream seeded by `seed` (one draw per
//! row, in file order), so the split is reproducible on every platform, needs no row count in
//! advance and works while streaming. Split sizes are therefore close to, not exactly, the
//! fractions (the counts are reported). The first split is the one vocabularies and
//! statistics are fitted on.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// Named fractions of the rows, e.g. train 0.7 / valid 0.15 / test 0.15.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub parts: Vec<(String, f64)>,
    pub seed: u64,
}

impl Split {
    /// `train`/`valid`/`test` with these fractions (they must sum to 1).
    pub fn train_valid_test(train: f64, valid: f64, test: f64, seed: u64) -> Split {
        Split {
            parts: vec![
                ("train".into(), train),
                ("valid".into(), valid),
                ("test".into(), test),
            ],
            seed,
        }
    }

    /// Every row in `train`.
    pub fn train_only() -> Split {
        Split {
            parts: vec![("train".into(), 1.0)],
            seed: 0,
        }
    }

    pub fn names(&self) -> Vec<&str> {
        self.parts.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub(crate) fn check(&self) -> Result<()> {
        let sum: f64 = self.parts.iter().map(|p| p.1).sum();
        let bad = self.parts.is_empty()
            || self.parts.iter().any(|(_, f)| !(*f > 0.0 && *f <= 1.0))
            || (sum - 1.0).abs() > 1e-9;
        if bad {
            return Err(Error::invalid(format!(
                "split fractions must be positive and sum to 1, got {:?}",
                self.parts
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some((dup, _)) = self.parts.iter().find(|(n, _)| !seen.insert(n)) {
            return Err(Error::invalid(format!("split `{dup}` is named twice")));
        }
        Ok(())
    }

    pub(crate) fn assigner(&self) -> Assigner {
        let mut cumulative = Vec::with_capacity(self.parts.len());
        let mut acc = 0.0;
        for (_, f) in &self.parts {
            acc += f;
            cumulative.push(acc);
        }
        Assigner {
            rng: ChaCha8Rng::seed_from_u64(self.seed),
            cumulative,
        }
    }
}

/// Draws the split of each row in turn.
pub(crate) struct Assigner {
    rng: ChaCha8Rng,
    cumulative: Vec<f64>,
}

impl Assigner {
    pub fn next_split(&mut self) -> usize {
        let u: f64 = self.rng.gen();
        let last = self.cumulative.len() - 1;
        self.cumulative.iter().position(|&c| u < c).unwrap_or(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_close_to_the_fractions() {
        let split = Split::train_valid_test(0.7, 0.15, 0.15, 7);
        split.check().unwrap();
        let draw = |s: &Split| {
            let mut a = s.assigner();
            (0..20_000).map(|_| a.next_split()).collect::<Vec<_>>()
        };
        let rows = draw(&split);
        assert_eq!(rows, draw(&split), "same seed, same split");
        assert_ne!(
            rows,
            draw(&Split {
                seed: 8,
                ..split.clone()
            })
        );
        let share = |k| rows.iter().filter(|&&s| s == k).count() as f64 / 20_000.0;
        assert!((share(0) - 0.7).abs() < 0.02 && (share(2) - 0.15).abs() < 0.02);
        assert!(Split::train_valid_test(0.7, 0.2, 0.2, 0).check().is_err());
    }
}
