//! Per-task losses with Merlin's weighting, on the device.
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

use crate::data::{Batch, ColumnKind, Layout};
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
    fn read(self, batch: &Batch, row: usize) -> f32 {
        match self {
            Source::Floats(s) => batch.floats_at(s)[row],
            Source::Ids(s) => batch.ids_at(s)[row] as f32,
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
    pub fn targets(&self, batch: &Batch, out: &mut Vec<f32>) {
        out.clear();
        out.extend((0..batch.len()).map(|r| self.target.read(batch, r)));
    }

    /// The per-row sample weights of `batch`, `[B]` (all 1 without class or column weights).
    pub fn weights(&self, batch: &Batch, targets: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(targets.iter().enumerate().map(|(r, &y)| {
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
        }));
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
                let class = (y.max(0.0) as usize).min(classes - 1);
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
