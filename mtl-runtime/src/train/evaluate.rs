//! Evaluation and prediction: every row in order, no shuffling, metrics named as Merlin names
//! them.

use dfdx::prelude::*;

use super::report::Report;
use super::{Scratch, Trainer};
use crate::data::{Batch, BatchView, Rows};
use crate::embedding::InputBinding;
use crate::error::Result;
use crate::loss::host_task_loss;
use crate::metrics::stream::MetricState;
use crate::model::{MtlModel, TaskNetwork};
use crate::nn::host_values;
use crate::spec::TaskKind;

impl<M, D> Trainer<M, D>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    /// The `[B, INPUT_WIDTH]` network input of one batch.
    pub(super) fn input(
        &self,
        batch: &Batch,
        input: &InputBinding,
        scratch: &mut Scratch,
    ) -> Result<crate::model::DynBatch<f32, D>> {
        self.embeddings.gather(batch, input, &mut scratch.input)?;
        self.device
            // The buffer moves into the tensor (no copy); gather refills a fresh one next time.
            .try_tensor_from_vec(
                std::mem::take(&mut scratch.input),
                (batch.len(), M::SPEC.input_width),
            )
            .map_err(Self::device_err)
    }

    /// Raw outputs (`[B, W]` per task, row-major) of an input, inference mode.
    fn outputs(&self, x: crate::model::DynBatch<f32, D>) -> Result<Vec<Vec<f32>>> {
        let outputs = self.network.try_forward_eval(x).map_err(Self::device_err)?;
        Ok(outputs.iter().map(host_values).collect())
    }

    /// Adds each gate's per-expert weight sums over the input `x` to `sums`.
    fn accumulate_gates(
        &self,
        x: crate::model::DynBatch<f32, D>,
        sums: &mut Vec<(&'static str, Vec<f64>)>,
    ) -> Result<()> {
        for (i, (name, g)) in self
            .network
            .try_gate_weights(x)
            .map_err(Self::device_err)?
            .into_iter()
            .enumerate()
        {
            let k = g.shape().1;
            if sums.len() <= i {
                sums.push((name, vec![0.0; k]));
            }
            for row in g.as_vec().chunks(k) {
                for (s, w) in sums[i].1.iter_mut().zip(row) {
                    *s += f64::from(*w);
                }
            }
        }
        Ok(())
    }

    /// Loss and metrics over all of `data` (in order, no shuffling), named as Merlin names them.
    /// `data` is a [`Dataset`](crate::data::Dataset) or a
    /// [`StreamingDataset`](crate::data::StreamingDataset) (read batch by batch: data larger
    /// than memory).
    ///
    /// `loss` includes the regularization (the dense L2 penalty and, per batch, the embedding
    /// penalty), as Merlin's does; `regularization_loss` is the last batch's.
    pub fn evaluate(&self, data: &(impl Rows + ?Sized)) -> Result<Report> {
        let spec = M::SPEC;
        let bound = self.bind(data.layout())?;
        let dense_regularization = self.dense_regularization()?;
        let embeddings_l2 = self.config.embeddings_l2 as f32;
        let mut scratch = Scratch::default();
        let mut plain: Vec<MetricState> = self
            .metrics
            .iter()
            .map(|(m, _)| MetricState::new(m))
            .collect();
        let mut weighted: Vec<MetricState> = self
            .metrics
            .iter()
            .map(|(_, w)| MetricState::new(w))
            .collect();
        // Chained tasks (ESMM) also report their joint output's metrics, on every row.
        let mut joint: Vec<Option<MetricState>> = spec
            .tasks
            .iter()
            .zip(&self.metrics)
            .map(|(t, (m, _))| t.given.map(|_| MetricState::new(m)))
            .collect();
        let mut task_loss_sums = vec![0.0f64; spec.tasks.len()];
        let (mut rows, mut loss_sum, mut last_batch_loss) = (0usize, 0.0f64, 0.0f64);
        let mut gate_sums: Vec<(&'static str, Vec<f64>)> = Vec::new();
        let mut last_regularization = 0.0f64;
        let mut batches = data.in_order(self.config.batch_size)?;
        while let Some(batch) = batches.next_batch()? {
            // One gather per batch serves both the outputs and the gate metrics.
            let x = self.input(batch, &bound.input, &mut scratch)?;
            let regularization = if embeddings_l2 > 0.0 {
                let values = host_values(&x);
                let mut unused = vec![0.0; values.len()];
                crate::embedding::embedding_l2(
                    &bound.input,
                    &values,
                    &mut unused,
                    batch.len(),
                    embeddings_l2,
                )
            } else {
                0.0
            } + dense_regularization;
            if self.config.gate_metrics {
                self.accumulate_gates(x.clone(), &mut gate_sums)?;
            }
            let outputs = self.outputs(x)?;
            let n = batch.len();
            let mut batch_total = 0.0f64;
            let view = BatchView::of_batch(batch);
            let mut all_targets = Vec::with_capacity(bound.tasks.len());
            for task in &bound.tasks {
                let mut y = Vec::new();
                task.targets(&view, &mut y);
                task.check_targets(&view, &y)?;
                all_targets.push(y);
            }
            for (i, (task, out)) in bound.tasks.iter().zip(&outputs).enumerate() {
                let targets = &all_targets[i];
                task.weights(&view, targets, &mut scratch.weights);
                if task.spec.given.is_some() {
                    let chain = &self.chains[i];
                    let weights = &scratch.weights;
                    let sum = crate::loss::chain_batch_loss(
                        chain,
                        n,
                        |m, r| outputs[m][r],
                        |m, r| all_targets[m][r],
                        |r| weights[r],
                        |_, _, _| {},
                    );
                    let (mut joint_logits, mut joint_y) =
                        (Vec::with_capacity(n), Vec::with_capacity(n));
                    // The conditional head is judged where every parent is positive.
                    let (mut cond_out, mut cond_y, mut cond_w) =
                        (Vec::new(), Vec::new(), Vec::new());
                    let mut z = vec![0.0f32; chain.len()];
                    for r in 0..n {
                        for (k, &m) in chain.iter().enumerate() {
                            z[k] = outputs[m][r];
                        }
                        joint_logits.push(crate::loss::chain_logit(&z));
                        joint_y.push(chain.iter().map(|&m| all_targets[m][r]).product());
                        if chain[1..].iter().all(|&m| all_targets[m][r] == 1.0) {
                            cond_out.push(out[r]);
                            cond_y.push(targets[r]);
                            cond_w.push(weights[r]);
                        }
                    }
                    let l = sum / n.max(1) as f64;
                    task_loss_sums[i] += l * n as f64;
                    batch_total += f64::from(self.loss_weights[i]) * l;
                    plain[i].update(task.spec.kind, &cond_out, &cond_y, None);
                    if !self.metrics[i].1.is_empty() {
                        weighted[i].update(task.spec.kind, &cond_out, &cond_y, Some(&cond_w));
                    }
                    if let Some(j) = joint[i].as_mut() {
                        j.update(task.spec.kind, &joint_logits, &joint_y, None);
                    }
                    continue;
                }
                let l = host_task_loss(task.spec.kind, out, targets, &scratch.weights);
                task_loss_sums[i] += l * n as f64;
                batch_total += f64::from(self.loss_weights[i]) * l;
                plain[i].update(task.spec.kind, out, targets, None);
                if !self.metrics[i].1.is_empty() {
                    weighted[i].update(task.spec.kind, out, targets, Some(&scratch.weights));
                }
            }
            batch_total += regularization + self.balance.as_ref().map_or(0.0, |b| b.regularizer());
            rows += n;
            loss_sum += batch_total * n as f64;
            last_batch_loss = batch_total;
            last_regularization = regularization;
        }
        if rows == 0 {
            return Err(crate::error::Error::invalid(
                "the data to evaluate has no rows: there is nothing to compute metrics on \
                 (check the file, or the split that produced it)",
            ));
        }
        let denom = rows as f64;
        let mut report = Report::default();
        report.push("loss", loss_sum / denom);
        if self.balance.is_some() {
            // `loss` moves with the learnt weights; their plain sum is what to compare across
            // epochs (early stopping, plateaus).
            report.push("task_loss_sum", task_loss_sums.iter().sum::<f64>() / denom);
        }
        let multi = spec.tasks.len() > 1;
        if multi {
            for (t, s) in spec.tasks.iter().zip(&task_loss_sums) {
                report.push(format!("{}_loss", t.output_name), s / denom);
            }
        }
        for (i, t) in spec.tasks.iter().enumerate() {
            let prefix = if multi {
                format!("{}/", t.output_name)
            } else {
                String::new()
            };
            for m in &self.metrics[i].0 {
                report.push(format!("{prefix}{m}"), plain[i].value(m));
            }
            for m in &self.metrics[i].1 {
                report.push(format!("{prefix}weighted_{m}"), weighted[i].value(m));
            }
            if let Some(j) = &joint[i] {
                for m in &self.metrics[i].0 {
                    report.push(format!("{}/{m}", joint_output_name(t.name)), j.value(m));
                }
            }
        }
        for (gate, sums) in &gate_sums {
            for (k, s) in sums.iter().enumerate() {
                report.push(format!("{gate}_weight_{k}"), s / denom);
            }
        }
        report.push("regularization_loss", last_regularization);
        report.push("loss_batch", last_batch_loss);
        Ok(report)
    }

    /// Per-task predictions over `data` (a `Dataset` or a `StreamingDataset`), in order:
    /// probabilities for binary tasks, values for regression, class probabilities
    /// (`[N, classes]` row-major) for multiclass.
    ///
    /// A model with chained tasks (`given`, ESMM) returns, after the tasks, one more entry per
    /// chained task (in task order): its joint probability P(task and its parents), the
    /// `<task>/joint_output` column.
    pub fn predict(&self, data: &(impl Rows + ?Sized)) -> Result<Vec<Vec<f32>>> {
        let spec = M::SPEC;
        let mut out: Vec<Vec<f32>> =
            vec![Vec::new(); spec.tasks.len() + spec.chained_tasks().len()];
        self.for_each_prediction(data, |_, predictions| {
            for (dst, p) in out.iter_mut().zip(predictions) {
                dst.extend(p);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f(batch, predictions)` for every batch of `data` in order, the predictions as
    /// [`Trainer::predict`] gives them.
    pub(super) fn for_each_prediction(
        &self,
        data: &(impl Rows + ?Sized),
        mut f: impl FnMut(&Batch, Vec<Vec<f32>>) -> Result<()>,
    ) -> Result<()> {
        let spec = M::SPEC;
        // Only the inputs: scoring needs no target or weight column.
        let input = self.embeddings.bind(spec, data.layout())?;
        let mut scratch = Scratch::default();
        let mut batches = data.in_order(self.config.batch_size)?;
        while let Some(batch) = batches.next_batch()? {
            let outputs = self.outputs(self.input(batch, &input, &mut scratch)?)?;
            let joint: Vec<Vec<f32>> = spec
                .chained_tasks()
                .into_iter()
                .map(|t| {
                    let chain = &self.chains[t];
                    (0..batch.len())
                        .map(|r| {
                            let z: Vec<f32> = chain.iter().map(|&m| outputs[m][r]).collect();
                            crate::loss::chain_probability(&z)
                        })
                        .collect()
                })
                .collect();
            let mut predictions: Vec<Vec<f32>> = outputs
                .into_iter()
                .zip(spec.tasks)
                .map(|(o, t)| match t.kind {
                    TaskKind::Binary => o.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
                    TaskKind::Regression => o,
                    TaskKind::Multiclass { classes } => {
                        let mut p = Vec::with_capacity(o.len());
                        for row in o.chunks(classes) {
                            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                            let z: f32 = row.iter().map(|&v| (v - m).exp()).sum();
                            p.extend(row.iter().map(|&v| (v - m).exp() / z));
                        }
                        p
                    }
                })
                .collect();
            predictions.extend(joint);
            f(batch, predictions)?;
        }
        Ok(())
    }

    /// The dense L2 penalty `λ·Σ_kernels w²` at the current weights (0 without `dense_l2`).
    fn dense_regularization(&self) -> Result<f64> {
        let l2 = self.config.dense_l2;
        if l2 == 0.0 {
            return Ok(0.0);
        }
        let mut no_grads = self.network.alloc_grads();
        let (_, kernel_sq) = self
            .dense_optimizer
            .norms(&self.network, &mut no_grads)
            .map_err(Self::device_err)?;
        Ok(l2 * kernel_sq)
    }
}

/// The output of a chained task's joint probability P(task and its parents), ESMM's pCTCVR:
/// `<task>/joint_output`.
pub fn joint_output_name(task: &str) -> String {
    format!("{task}/joint_output")
}
