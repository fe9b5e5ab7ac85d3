//! Synthetic datasets, as Merlin's `generate_data`, plus a seed and a learnable ground truth.
//!
//! ```
//! use mtl_runtime::data::synthetic::generate_data;
//! let splits = generate_data("tenrec-video", 10_000, &[0.8, 0.2], 42).unwrap();
//! assert_eq!((splits[0].num_rows(), splits[1].num_rows()), (8_000, 2_000));
//! ```
//!
//! Splits are contiguous slices of `int(rows * fraction)` rows, in order, as in Merlin. The same
//! seed gives the same data on every run and platform: randomness comes from ChaCha8 streams
//! (one per column) and transcendental functions from the pure-Rust `libm`.
//!
//! Two target modes ([`TargetMode`]):
//! - [`TargetMode::Merlin`] reproduces Merlin's generator: targets are noise independent of the
//!   features, so no model can beat AUC 0.5. Use it for parity with Merlin's numbers.
//! - [`TargetMode::Signal`] (the default) keeps Merlin's features but draws targets from a
//!   documented ground truth (see [`tenrec`]), so models have something to learn and tests know
//!   the best achievable AUC from the optional true-probability columns.
//!
//! [`TaskCorrelation`] generates the MMoE paper's two-regression-task data with a tunable task
//! correlation (see [`task_correlation`]).

pub mod task_correlation;
pub mod tenrec;

pub use task_correlation::TaskCorrelation;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::schema::Schema;

/// Names accepted by [`generate_data`].
pub const KNOWN_DATASETS: [&str; 1] = ["tenrec-video"];

/// How targets are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TargetMode {
    /// Merlin's generator exactly: Bernoulli(0.5) binary targets, uniform regression target.
    Merlin,
    /// Targets from latent user/item factors with real task structure (the default).
    #[default]
    Signal,
}

impl std::str::FromStr for TargetMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "merlin" => Ok(TargetMode::Merlin),
            "signal" => Ok(TargetMode::Signal),
            other => Err(Error::invalid(format!(
                "unknown target mode `{other}`: expected `signal` or `merlin`"
            ))),
        }
    }
}

/// Options of [`generate_data_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyntheticOptions {
    pub mode: TargetMode,
    /// Add a `<target>_true_prob` float column per binary target holding the probability the
    /// target was drawn with (signal mode: the ground truth; merlin mode: 0.5). The columns
    /// carry no tags, so models never take them as inputs.
    pub true_probabilities: bool,
    /// tenrec-video: add `recent_categories`, a list feature (the categories of the user's last
    /// 0–10 videos, ids 1–50) with planted signal: 10 of the 50 categories are engaging, and
    /// the share of engaging categories in the list moves the click logit by −0.8 to +3.2 (signal
    /// mode; see the generator's docs). Off by default, so existing data stays the same.
    pub recent_categories: bool,
}

/// Generates `rows` rows of a known dataset and splits them (`&[1.0]` for one dataset), with
/// the default options (signal targets, no true-probability columns).
pub fn generate_data(
    name: &str,
    rows: usize,
    set_sizes: &[f64],
    seed: u64,
) -> Result<Vec<Dataset>> {
    generate_data_with(name, rows, set_sizes, seed, &SyntheticOptions::default())
}

/// [`generate_data`] with explicit options.
pub fn generate_data_with(
    name: &str,
    rows: usize,
    set_sizes: &[f64],
    seed: u64,
    options: &SyntheticOptions,
) -> Result<Vec<Dataset>> {
    let full = match name {
        "tenrec-video" => tenrec::generate(rows, seed, options)?,
        other => {
            let closest = KNOWN_DATASETS
                .iter()
                .min_by_key(|k| crate::error::edit_distance(k, other))
                .copied()
                .unwrap_or("tenrec-video");
            return Err(Error::invalid(format!(
                "unknown synthetic dataset `{other}`; did you mean `{closest}`? (known: {})",
                KNOWN_DATASETS.join(", ")
            )));
        }
    };
    full.split(set_sizes)
}

/// The schema a known dataset is generated with.
pub fn dataset_schema(name: &str) -> Result<Schema> {
    match name {
        "tenrec-video" => tenrec::schema(),
        other => Err(Error::invalid(format!(
            "unknown synthetic dataset `{other}`"
        ))),
    }
}

/// One ChaCha8 stream per purpose, so columns do not depend on each other's draws.
pub(crate) fn stream(seed: u64, id: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(id);
    rng
}

pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}
