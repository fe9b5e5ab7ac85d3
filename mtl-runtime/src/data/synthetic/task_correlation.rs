//! The MMoE paper's controlled experiment (Ma et al., KDD 2018, §4): two regression tasks whose
//! correlation is a knob.
//!
//! Exactly the paper's recipe:
//! 1. two orthogonal unit vectors u1 ⊥ u2 in ℝ^d (Gram–Schmidt on two Gaussian draws);
//! 2. w1 = c·u1 and w2 = c·(p·u1 + √(1−p²)·u2) for the correlation score p ∈ [−1, 1];
//! 3. x ~ N(0, I_d);
//! 4. y_i = w_iᵀx + Σ_{j=1..m} sin(α_j·w_iᵀx + β_j) + ε_i, with α_j, β_j ~ N(0, 1) shared by both
//!    tasks and ε_i ~ N(0, noise_std²).
//!
//! Defaults follow the paper where it states them: d = 100, c = 1, m = 10, noise variance 0.01
//! (noise_std 0.1). The Pearson correlation of the two labels falls with p (but is not p, because
//! of the sine terms) — the paper's point. Nothing here is tuned to favour any model.
//!
//! Columns: `x_000 .. x_{d-1}` continuous float32 and the regression targets `y1`, `y2`. The
//! schema for `d = 100` is embedded (`datasets/task_correlation/schema.json`) so DSL models can
//! be written against it.

use rand_chacha::ChaCha8Rng;

use super::{normal, stream};
use crate::data::{ColumnValues, Dataset};
use crate::error::{Error, Result};
use crate::schema::{ColumnSchema, DType, Schema};

/// The schema of the default (d = 100) dataset, as written by [`schema`].
pub const SCHEMA_JSON: &str = include_str!("../../../datasets/task_correlation/schema.json");

/// Parameters of the generator; `Default` is the paper's setting with p = 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskCorrelation {
    /// Correlation score p ∈ [−1, 1] between the two tasks' weight vectors.
    pub correlation: f64,
    /// Input dimension d.
    pub dim: usize,
    /// Scale c of the weight vectors.
    pub scale: f64,
    /// Number m of sine terms.
    pub sin_terms: usize,
    /// Standard deviation of the label noise.
    pub noise_std: f64,
}

impl Default for TaskCorrelation {
    fn default() -> Self {
        TaskCorrelation {
            correlation: 1.0,
            dim: 100,
            scale: 1.0,
            sin_terms: 10,
            noise_std: 0.1,
        }
    }
}

impl TaskCorrelation {
    pub fn with_correlation(mut self, p: f64) -> Self {
        self.correlation = p;
        self
    }

    /// `rows` rows drawn with `seed`, split like `generate_data` (contiguous `int(rows·f)`
    /// slices). The task structure (u1, u2, α, β) comes from the seed too, so seeds give
    /// independent repetitions of the experiment.
    pub fn generate(&self, rows: usize, set_sizes: &[f64], seed: u64) -> Result<Vec<Dataset>> {
        if !(-1.0..=1.0).contains(&self.correlation) {
            return Err(Error::invalid(format!(
                "task correlation p = {} is outside [-1, 1]",
                self.correlation
            )));
        }
        if self.dim < 2 {
            return Err(Error::invalid(format!(
                "task-correlation data needs dim >= 2 for two orthogonal directions, got {}",
                self.dim
            )));
        }
        if !(self.noise_std >= 0.0 && self.noise_std.is_finite() && self.scale.is_finite()) {
            return Err(Error::invalid(
                "noise_std must be a finite number >= 0 and scale finite",
            ));
        }
        let d = self.dim;
        let mut structure = stream(seed, 0);
        let (u1, u2) = orthonormal_pair(&mut structure, d);
        let p = self.correlation;
        let q = (1.0 - p * p).max(0.0).sqrt();
        let w1: Vec<f64> = u1.iter().map(|v| self.scale * v).collect();
        let w2: Vec<f64> = u1
            .iter()
            .zip(&u2)
            .map(|(a, b)| self.scale * (p * a + q * b))
            .collect();
        let alpha: Vec<f64> = (0..self.sin_terms)
            .map(|_| normal(&mut structure))
            .collect();
        let beta: Vec<f64> = (0..self.sin_terms)
            .map(|_| normal(&mut structure))
            .collect();
        let label = |w: &[f64], x: &[f64], noise: f64| -> f32 {
            let z: f64 = w.iter().zip(x).map(|(a, b)| a * b).sum();
            let waves: f64 = alpha
                .iter()
                .zip(&beta)
                .map(|(a, b)| libm::sin(a * z + b))
                .sum();
            (z + waves + noise) as f32
        };

        let mut features = stream(seed, 1);
        let mut noise = stream(seed, 2);
        let mut columns: Vec<Vec<f32>> = vec![Vec::with_capacity(rows); d];
        let (mut y1, mut y2) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        let mut x = vec![0.0f64; d];
        for _ in 0..rows {
            for (j, v) in x.iter_mut().enumerate() {
                *v = normal(&mut features);
                columns[j].push(*v as f32);
            }
            y1.push(label(&w1, &x, self.noise_std * normal(&mut noise)));
            y2.push(label(&w2, &x, self.noise_std * normal(&mut noise)));
        }
        let mut values: Vec<(String, ColumnValues)> = columns
            .into_iter()
            .enumerate()
            .map(|(j, c)| (feature_name(j), ColumnValues::Floats(c)))
            .collect();
        values.push(("y1".into(), ColumnValues::Floats(y1)));
        values.push(("y2".into(), ColumnValues::Floats(y2)));
        Dataset::from_columns(schema(d)?, values)?.split(set_sizes)
    }
}

/// `x_000`, `x_001`, ...
pub fn feature_name(j: usize) -> String {
    format!("x_{j:03}")
}

/// `dim` continuous features and the regression targets `y1`, `y2`.
pub fn schema(dim: usize) -> Result<Schema> {
    let mut columns: Vec<ColumnSchema> = (0..dim)
        .map(|j| {
            ColumnSchema::new(feature_name(j))
                .with_tags(["continuous"])
                .map(|c| c.with_dtype(DType::Float32))
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::invalid(e.to_string()))?;
    for y in ["y1", "y2"] {
        columns.push(
            ColumnSchema::new(y)
                .with_tags(["target", "regression"])
                .map_err(|e| Error::invalid(e.to_string()))?
                .with_dtype(DType::Float32),
        );
    }
    Schema::new(columns)
}

/// Two orthonormal vectors from Gaussian draws (Gram–Schmidt).
fn orthonormal_pair(rng: &mut ChaCha8Rng, d: usize) -> (Vec<f64>, Vec<f64>) {
    let unit = |v: Vec<f64>| {
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.into_iter().map(|a| a / n).collect::<Vec<f64>>()
    };
    let u1 = unit((0..d).map(|_| normal(rng)).collect());
    let v: Vec<f64> = (0..d).map(|_| normal(rng)).collect();
    let along: f64 = v.iter().zip(&u1).map(|(a, b)| a * b).sum();
    let u2 = unit(v.iter().zip(&u1).map(|(a, b)| a - along * b).collect());
    (u1, u2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pearson(a: &[f32], b: &[f32]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (
            a.iter().map(|v| *v as f64).sum::<f64>() / n,
            b.iter().map(|v| *v as f64).sum::<f64>() / n,
        );
        let cov: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - ma) * (*y as f64 - mb))
            .sum();
        let va: f64 = a.iter().map(|x| (*x as f64 - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (*y as f64 - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    }

    #[test]
    fn label_correlation_falls_with_the_correlation_score() {
        let mut last = f64::INFINITY;
        for p in [1.0, 0.9, 0.5, 0.0] {
            let data = TaskCorrelation::default()
                .with_correlation(p)
                .generate(20_000, &[1.0], 5)
                .unwrap();
            let r = pearson(data[0].floats("y1").unwrap(), data[0].floats("y2").unwrap());
            assert!(
                r < last,
                "p = {p}: label correlation {r} should fall below {last}"
            );
            if p == 1.0 {
                // Same weights: labels differ by the noise only, r = var_s / (var_s + σ²) with
                // σ² = 0.01 and a signal variance var_s of about 0.7 here (measured r 0.986).
                assert!(r > 0.95, "{r}");
            }
            if p == 0.0 {
                assert!(r.abs() < 0.1, "{r}");
            }
            last = r;
        }
    }

    #[test]
    fn directions_are_orthonormal_and_seeded() {
        let mut rng = stream(3, 0);
        let (u1, u2) = orthonormal_pair(&mut rng, 100);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        assert!((dot(&u1, &u1) - 1.0).abs() < 1e-12 && (dot(&u2, &u2) - 1.0).abs() < 1e-12);
        assert!(dot(&u1, &u2).abs() < 1e-12);
        let g = || TaskCorrelation::default().generate(50, &[1.0], 9).unwrap();
        assert_eq!(g()[0].floats("y2"), g()[0].floats("y2"));
        assert!(TaskCorrelation::default()
            .with_correlation(1.5)
            .generate(10, &[1.0], 1)
            .is_err());
    }

    #[test]
    fn the_embedded_schema_is_what_the_generator_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schema.json");
        schema(100).unwrap().write_json(&path).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        if std::env::var_os("MTL_REGENERATE").is_some() {
            let target = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/datasets/task_correlation/schema.json"
            );
            std::fs::write(target, &written).unwrap();
            return;
        }
        assert_eq!(
            written.trim(),
            SCHEMA_JSON.trim(),
            "regenerate with MTL_REGENERATE=1 cargo test -p mtl-runtime task_correlation"
        );
    }
}
