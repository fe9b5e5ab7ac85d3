//! Streaming metric accumulation for one task.
//!
//! Counts and sums are accumulated batch by batch (memory independent of the number of
//! batches); only AUC keeps every score, since the exact rank statistic needs them. A task keeps
//! one accumulator for its plain metrics (every row weighs 1) and, if it has weighted metrics,
//! one fed with its sample weights (a 0 weight removes a row).
//!
//! Thresholds follow Keras: a binary prediction is positive when its probability is > 0.5; a
//! label is positive when it is ≥ 0.5 (so 0/1 labels behave as expected).

use super::auc;
use crate::spec::TaskKind;

/// Accumulated statistics of one task (plain or weighted).
#[derive(Debug, Clone, Default)]
pub struct MetricState {
    n: f64,
    tp: f64,
    fp: f64,
    fn_: f64,
    correct: f64,
    logloss: f64,
    sq: f64,
    abs: f64,
    top_k: f64,
    keep_scores: bool,
    scores: Vec<f32>,
    labels: Vec<f32>,
    weights: Vec<f32>,
}

/// `k` of the multiclass `top_k_accuracy` metric.
pub const TOP_K: usize = 5;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Stable binary cross-entropy of a logit against a label.
pub fn bce_with_logit(x: f64, y: f64) -> f64 {
    x.max(0.0) - x * y + (-x.abs()).exp().ln_1p()
}

impl MetricState {
    /// A state that keeps scores when `metrics` needs AUC.
    pub fn new(metrics: &[&str]) -> Self {
        MetricState {
            keep_scores: metrics.contains(&"auc"),
            ..Default::default()
        }
    }

    /// Adds a batch: `outputs` `[B, W]` row-major (logits, or values for regression),
    /// `targets` `[B]`, `weights` `[B]` (`None`: all 1).
    pub fn update(
        &mut self,
        kind: TaskKind,
        outputs: &[f32],
        targets: &[f32],
        weights: Option<&[f32]>,
    ) {
        let w_of = |r: usize| weights.map_or(1.0, |w| w[r]);
        match kind {
            TaskKind::Binary => {
                for (r, (&x, &y)) in outputs.iter().zip(targets).enumerate() {
                    let w = f64::from(w_of(r));
                    let p = sigmoid(x);
                    let (pred, actual) = (p > 0.5, y >= 0.5);
                    self.n += w;
                    match (pred, actual) {
                        (true, true) => self.tp += w,
                        (true, false) => self.fp += w,
                        (false, true) => self.fn_ += w,
                        (false, false) => {}
                    }
                    if pred == actual {
                        self.correct += w;
                    }
                    self.logloss += w * bce_with_logit(f64::from(x), f64::from(y));
                    if self.keep_scores {
                        self.scores.push(p);
                        self.labels.push(y);
                        if weights.is_some() {
                            self.weights.push(w as f32);
                        }
                    }
                }
            }
            TaskKind::Regression => {
                for (r, (&x, &y)) in outputs.iter().zip(targets).enumerate() {
                    let w = f64::from(w_of(r));
                    let e = f64::from(x) - f64::from(y);
                    self.n += w;
                    self.sq += w * e * e;
                    self.abs += w * e.abs();
                }
            }
            TaskKind::Multiclass { classes } => {
                for (r, &y) in targets.iter().enumerate() {
                    let w = f64::from(w_of(r));
                    let row = &outputs[r * classes..(r + 1) * classes];
                    let label = y as usize;
                    let score = row.get(label).copied().unwrap_or(f32::NEG_INFINITY);
                    let better = row.iter().filter(|&&s| s > score).count();
                    self.n += w;
                    if better == 0 {
                        self.correct += w;
                    }
                    if better < TOP_K {
                        self.top_k += w;
                    }
                }
            }
        }
    }

    /// The value of a canonical metric (0 where Keras reports 0: no positives, empty data).
    pub fn value(&self, metric: &str) -> f64 {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        match metric {
            "precision" => ratio(self.tp, self.tp + self.fp),
            "recall" => ratio(self.tp, self.tp + self.fn_),
            "binary_accuracy" | "categorical_accuracy" => ratio(self.correct, self.n),
            "top_k_accuracy" => ratio(self.top_k, self.n),
            "logloss" => ratio(self.logloss, self.n),
            "mean_squared_error" => ratio(self.sq, self.n),
            "root_mean_squared_error" => ratio(self.sq, self.n).sqrt(),
            "mean_absolute_error" => ratio(self.abs, self.n),
            "auc" => {
                let w = (!self.weights.is_empty()).then_some(self.weights.as_slice());
                // Undefined (one class only, or a NaN score) is reported as NaN, never as a number.
                auc(&self.scores, &self.labels, w).unwrap_or(f64::NAN)
            }
            _ => f64::NAN,
        }
    }
}
