//! Per-task losses with Merlin's weighting: the one place their math lives.
//!
//! Three consumers share it: the device-generic training step ([`task_loss`], dfdx operations),
//! the fused CPU engine (per-row value and gradient: [`row_loss_and_grad`]) and evaluation
//! ([`host_task_loss`]).
//!
//! For task `t` with per-row loss `ℓᵢ` and sample weight `wᵢ` (1 when none is set):
//! `L_t = Σᵢ wᵢ·ℓᵢ / B` — the denominator is the batch size, not `Σ wᵢ`, so restricting a task
//! to a sample space (weights 0/1) shrinks its loss proportionally, exactly as in Merlin/Keras.
//! The total is `Σ_t λ_t·L_t` (+ regularisation, 0 here).
//!
//! Losses: binary cross-entropy computed from logits (`max(x, 0) − x·y + ln(1 + e^−|x|)`, stable
//! for any logit), mean squared error, categorical cross-entropy from logits.
//!
//! Sample weights multiply, in this order: class weights `(neg, pos)` on the task's own target
//! (`pos` where the target is exactly 1, Merlin's rule), then each `sample_weight` column's value.

use dfdx::prelude::*;

use crate::data::{BatchView, ColumnKind, Layout};
use crate::error::{Error, Result};
use crate::model::DynBatch;
use crate::spec::{TaskKind, TaskSpec};

/// A column a weight or target is read from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Floats(usize),
    Ids(usize),
}

impl Source {
    #[inline(always)]
    fn read(self, batch: &BatchView, row: usize) -> f32 {
        match self {
            Source::Floats(s) => batch.float(s, row),
            Source::Ids(s) => batch.id(s, row) as f32,
        }
    }
}

fn source(layout: &Layout, column: &str, task: &str, role: &str) -> Result<Source> {
    let c = layout.get(column).ok_or_else(|| {
        Error::invalid(format!(
            "task `{task}`: {role} column `{column}` is not in the dataset"
        ))
    })?;
    Ok(match c.kind {
        ColumnKind::Floats => Source::Floats(c.slot),
        ColumnKind::Ids => Source::Ids(c.slot),
        ColumnKind::IdLists => {
            return Err(Error::invalid(format!(
                "task `{task}`: {role} column `{column}` is a list column; a {role} holds one \
                 value per row"
            )))
        }
    })
}

/// One task's columns resolved against a dataset layout.
#[derive(Debug, Clone)]
pub struct TaskBinding {
    pub spec: TaskSpec,
    target: Source,
    weights: Vec<Source>,
}

impl TaskBinding {
    pub fn bind(spec: &TaskSpec, layout: &Layout) -> Result<TaskBinding> {
        let target = source(layout, spec.target, spec.name, "target")?;
        let weights = spec
            .sample_weights
            .iter()
            .map(|c| source(layout, c, spec.name, "sample-weight"))
            .collect::<Result<_>>()?;
        Ok(TaskBinding {
            spec: *spec,
            target,
            weights,
        })
    }

    /// The targets of `batch`, `[B]`.
    pub fn targets(&self, batch: &BatchView, out: &mut Vec<f32>) {
        out.clear();
        out.extend((0..batch.len()).map(|r| self.target.read(batch, r)));
    }

    /// The target of batch row `r`.
    #[inline(always)]
    pub fn target(&self, batch: &BatchView, r: usize) -> f32 {
        self.target.read(batch, r)
    }

    /// The sample weight of batch row `r` whose target is `y`: class weight × weight columns.
    #[inline(always)]
    pub fn weight(&self, batch: &BatchView, r: usize, y: f32) -> f32 {
        let mut w = match self.spec.class_weights {
            Some((neg, pos)) => {
                if y == 1.0 {
                    pos
                } else {
                    neg
                }
            }
            None => 1.0,
        };
        for s in &self.weights {
            w *= s.read(batch, r);
        }
        w
    }

    /// The per-row sample weights of `batch`, `[B]` (all 1 without class or column weights).
    pub fn weights(&self, batch: &BatchView, targets: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(
            targets
                .iter()
                .enumerate()
                .map(|(r, &y)| self.weight(batch, r, y)),
        );
    }

    /// Checks that every target of a multiclass task is a class index (an integer in
    /// `[0, classes)`); other kinds always pass (binary ranges are checked when data loads).
    pub fn check_targets(&self, batch: &BatchView, targets: &[f32]) -> Result<()> {
        for (r, &y) in targets.iter().enumerate() {
            self.check_target(batch, r, y)?;
        }
        Ok(())
    }

    /// [`TaskBinding::check_targets`] for one row.
    #[inline(always)]
    pub fn check_target(&self, batch: &BatchView, r: usize, y: f32) -> Result<()> {
        if let TaskKind::Multiclass { classes } = self.spec.kind {
            if !(y >= 0.0 && y < classes as f32 && y.fract() == 0.0) {
                return Err(Error::invalid(format!(
                    "task `{}`: the target {y} (column `{}`, {}) is not a class: a \
                     {classes}-class task needs integer targets in [0, {classes}); fix the data \
                     or the task's `classes`",
                    self.spec.name,
                    self.spec.target,
                    batch.describe_row(r)
                )));
            }
        }
        Ok(())
    }

    /// Whether the task has any sample weighting at all.
    pub fn is_weighted(&self) -> bool {
        self.spec.class_weights.is_some() || !self.weights.is_empty()
    }
}

/// A scalar loss carrying the gradient tape.
pub type TapedScalar<D> = Tensor<Rank0, f32, D, OwnedTape<f32, D>>;

/// `L_t = Σ wᵢ·ℓᵢ / B` for one task's outputs `[B, W]`.
pub fn task_loss<D: Device<f32>>(
    kind: TaskKind,
    outputs: DynBatch<f32, D, OwnedTape<f32, D>>,
    targets: &[f32],
    weights: &[f32],
) -> std::result::Result<TapedScalar<D>, D::Err> {
    let dev = outputs.device().clone();
    let (b, w) = *outputs.shape();
    let per_row = match kind {
        TaskKind::Binary => {
            let y = dev.try_tensor_from_vec(targets.to_vec(), (b, w))?;
            outputs.try_bce_with_logits(y)?
        }
        TaskKind::Regression => {
            let y = dev.try_tensor_from_vec(targets.to_vec(), (b, w))?;
            outputs.try_sub(y)?.try_square()?
        }
        TaskKind::Multiclass { classes } => {
            // −log softmax at the target class, weighted: the weights ride on the one-hot.
            let mut onehot = vec![0.0f32; b * classes];
            for (r, (&y, &wt)) in targets.iter().zip(weights).enumerate() {
                let class = class_index(y, classes);
                onehot[r * classes + class] = -wt;
            }
            let onehot = dev.try_tensor_from_vec(onehot, (b, w))?;
            let nll = outputs.try_log_softmax::<Axis<1>>()?.try_mul(onehot)?;
            return nll.try_sum()?.try_div(b as f32);
        }
    };
    let wt = dev.try_tensor_from_vec(weights.to_vec(), (b, w))?;
    per_row.try_mul(wt)?.try_sum()?.try_div(b as f32)
}

/// The class a multiclass target names (clamped into `[0, classes)`).
#[inline(always)]
pub fn class_index(y: f32, classes: usize) -> usize {
    (y.max(0.0) as usize).min(classes - 1)
}

/// One row's unweighted loss `ℓ` and its gradient `∂ℓ/∂out` (written to `grad`, one value per
/// output column) for a task of `kind` with outputs `out` and target `y`:
/// - binary: `ℓ = max(x, 0) − x·y + ln(1 + e^−|x|)`, `∂ℓ/∂x = σ(x) − y`;
/// - regression: `ℓ = (x − y)²`, `∂ℓ/∂x = 2(x − y)`;
/// - multiclass: `ℓ = logsumexp(x) − x_c`, `∂ℓ/∂x_j = softmax(x)_j − [j = c]`.
#[inline(always)]
pub fn row_loss_and_grad(kind: TaskKind, out: &[f32], y: f32, grad: &mut [f32]) -> f64 {
    match kind {
        TaskKind::Binary => {
            let x = out[0];
            grad[0] = 1.0 / (1.0 + (-x).exp()) - y;
            crate::metrics::stream::bce_with_logit(f64::from(x), f64::from(y))
        }
        TaskKind::Regression => {
            let d = out[0] - y;
            grad[0] = 2.0 * d;
            f64::from(d) * f64::from(d)
        }
        TaskKind::Multiclass { classes } => {
            let c = class_index(y, classes);
            let m = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut z = 0.0f32;
            for (g, &v) in grad.iter_mut().zip(out) {
                *g = (v - m).exp();
                z += *g;
            }
            for g in grad.iter_mut() {
                *g /= z;
            }
            grad[c] -= 1.0;
            f64::from(m) + f64::from(z).ln() - f64::from(out[c])
        }
    }
}

/// `(ln t, 1 − t)` for the joint probability `t = Π_a σ(z_a)` of a chain's logits, in logs:
/// `ln σ(x) = −softplus(−x)`, and `1 − t` without cancellation, kept above 0 (t = 1 only when
/// every logit is huge).
fn chain_log_joint(z: &[f32]) -> (f64, f64) {
    let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    let ln_t: f64 = z.iter().map(|&x| -softplus(-f64::from(x))).sum();
    (ln_t, (-ln_t.exp_m1()).max(f64::MIN_POSITIVE))
}

/// Chained tasks (`given`, ESMM): one row's loss of the joint probability
/// `t = Π_a σ(z_a)` over the chain's logits `z` (the task's own first, then its parents')
/// against the joint label `y` (1 when the task and all its parents are positive):
/// `ℓ = −y·ln t − (1 − y)·ln(1 − t)`, and `∂ℓ/∂z_a = (t − y)·(1 − σ(z_a)) / (1 − t)` for every
/// factor (written to `grads`). Logs are taken of the factors, never of `t` itself, so a
/// product of small probabilities stays finite.
pub fn chain_row_loss_and_grads(z: &[f32], y: f32, grads: &mut [f32]) -> f64 {
    let (ln_t, one_minus_t) = chain_log_joint(z);
    let (t, y) = (ln_t.exp(), f64::from(y));
    for (g, &x) in grads.iter_mut().zip(z) {
        // 1 − σ(x) = σ(−x).
        let one_minus_sigma = 1.0 / (1.0 + f64::from(x).exp());
        *g = ((t - y) * one_minus_sigma / one_minus_t) as f32;
    }
    -y * ln_t - (1.0 - y) * one_minus_t.ln()
}

/// A chained task's joint loss over `rows` rows: `Σ_r w_r·ℓ_r` (see
/// [`chain_row_loss_and_grads`]) for the chain `chain` (task indices, the task first),
/// `logit(m, r)` and `target(m, r)` giving task `m`'s logit and target on row `r` and
/// `weight(r)` the task's row weight (rows of weight 0 are skipped). `grad(r, w, g)` receives
/// each counted row's weight and unweighted `∂ℓ/∂z` per chain member. Shared by both training
/// paths and evaluation.
pub fn chain_batch_loss(
    chain: &[usize],
    rows: usize,
    logit: impl Fn(usize, usize) -> f32,
    target: impl Fn(usize, usize) -> f32,
    weight: impl Fn(usize) -> f32,
    mut grad: impl FnMut(usize, f32, &[f32]),
) -> f64 {
    let (mut z, mut g) = (vec![0.0f32; chain.len()], vec![0.0f32; chain.len()]);
    let mut sum = 0.0f64;
    for r in 0..rows {
        let w = weight(r);
        if w == 0.0 {
            continue;
        }
        for (k, &m) in chain.iter().enumerate() {
            z[k] = logit(m, r);
        }
        let y: f32 = chain.iter().map(|&m| target(m, r)).product();
        sum += f64::from(w) * chain_row_loss_and_grads(&z, y, &mut g);
        grad(r, w, &g);
    }
    sum
}

/// The joint probability `Π σ(z_a)` of a chain's logits.
pub fn chain_probability(z: &[f32]) -> f32 {
    z.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).product()
}

/// The logit `ln t − ln(1 − t)` of a chain's joint probability (what metrics that read logits
/// take), computed in logs.
pub fn chain_logit(z: &[f32]) -> f32 {
    let (ln_t, one_minus_t) = chain_log_joint(z);
    (ln_t - one_minus_t.ln()) as f32
}

/// AITM's behavioural-expectation calibrator on one row: `max(σ(z_c) − σ(z_p), 0)` for a
/// child's logit `z_c` and its parent's `z_p` (a conversion should not be likelier than the
/// click it needs), with its gradients `(∂/∂z_c, ∂/∂z_p) = (σ'(z_c), −σ'(z_p))` where the
/// child's probability is above and `(0, 0)` elsewhere. Returns `(value, ∂/∂z_c, ∂/∂z_p)`.
pub fn calibration_row(z_child: f32, z_parent: f32) -> (f64, f32, f32) {
    let sigmoid = |x: f32| 1.0 / (1.0 + (-f64::from(x)).exp());
    let (c, p) = (sigmoid(z_child), sigmoid(z_parent));
    if c > p {
        (c - p, (c * (1.0 - c)) as f32, (-p * (1.0 - p)) as f32)
    } else {
        (0.0, 0.0, 0.0)
    }
}

/// The task loss `Σ wᵢ·ℓᵢ / B` of outputs `out` (`[B, W]` row-major) computed on the host.
pub fn host_task_loss(kind: TaskKind, out: &[f32], targets: &[f32], weights: &[f32]) -> f64 {
    let width = kind.output_width();
    let mut grad = vec![0.0f32; width];
    let b = targets.len().max(1) as f64;
    let sum: f64 = out
        .chunks(width)
        .zip(targets)
        .zip(weights)
        .map(|((row, &y), &w)| f64::from(w) * row_loss_and_grad(kind, row, y, &mut grad))
        .sum();
    sum / b
}
