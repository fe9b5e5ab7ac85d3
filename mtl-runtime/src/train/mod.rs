//! The trainer: `fit`, `evaluate`, `predict` for any `mtl_model!` model.
//!
//! One step: gather the batch's embedding rows and continuous values into the
//! `[B, INPUT_WIDTH]` input, run the network's training pass, compute each task's weighted loss
//! (see [`crate::loss`]), sum `Σ λ_t L_t`, one backward, dfdx Adam on the dense parameters, and
//! the input's gradient scattered into the touched embedding rows (see [`crate::embedding`]).
//! A non-finite task loss stops training with an error naming the task and the step.
//!
//! Training reports the loss per epoch (and per task); the full metrics come from `evaluate`
//! (on the validation data after every epoch when it is given).

mod checkpoint;
mod dense_adam;
mod predict;
mod report;

use std::time::Instant;

use dfdx::prelude::*;

pub use report::{EpochRecord, GateWeights, History, Report};

use self::dense_adam::DenseAdam;
use crate::data::{Batch, BatchOptions, BatchSource, Dataset, Layout, StreamingDataset};
use crate::embedding::{Embeddings, InputBinding, RowOptimizer, RowOptimizerConfig};
use crate::error::{Error, Result};
use crate::loss::{task_loss, TaskBinding};
use crate::metrics::stream::{bce_with_logit, MetricState};
use crate::model::{MtlModel, TaskNetwork};
use crate::nn::host_values;
use crate::spec::{ModelSpec, TaskKind};

/// Stop when a monitored value stops improving.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    /// A name of the validation report, e.g. `loss` or `click/binary_output/auc`.
    pub monitor: String,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// `true`: higher is better (AUC, accuracy); `false`: lower is better (losses, errors).
    pub maximize: bool,
}

impl EarlyStopping {
    /// Monitors `name`; losses and errors are minimised, everything else maximised.
    pub fn on(name: &str, patience: usize) -> Self {
        let minimize = name.ends_with("loss") || name.contains("error");
        EarlyStopping {
            monitor: name.to_string(),
            patience,
            maximize: !minimize,
        }
    }
}

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub shuffle: bool,
    pub seed: u64,
    /// Dense-parameter Adam: learning rate, betas, epsilon (Keras defaults: 1e-3, 0.9/0.999, 1e-7).
    pub dense_lr: f64,
    pub dense_betas: [f64; 2],
    pub dense_eps: f64,
    /// Decoupled weight decay of the dense parameters (0: none).
    pub dense_weight_decay: f64,
    /// The embedding tables' row-wise optimizer.
    pub embeddings: RowOptimizerConfig,
    /// Loss-weight overrides keyed by task name (`click`) or output name
    /// (`click/binary_output`), like Keras' `compile(loss_weights=...)`.
    pub loss_weights: Vec<(String, f32)>,
    /// Metric overrides keyed by task or output name (replacing the DSL's `metrics`).
    pub metrics: Vec<(String, Vec<String>)>,
    /// Weighted-metric overrides keyed by task or output name (replacing `weighted_metrics`).
    pub weighted_metrics: Vec<(String, Vec<String>)>,
    pub early_stopping: Option<EarlyStopping>,
    /// Show a progress bar with the running loss and rows/s.
    pub progress: bool,
    /// Report each mixture-of-experts gate's mean expert weights in `evaluate`
    /// (`gate_click/binary_output_weight_0`, ...; `shared_gate_weight_k` for a shared gate).
    pub gate_metrics: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 1,
            batch_size: 4096,
            shuffle: true,
            seed: 0,
            dense_lr: 1e-3,
            dense_betas: [0.9, 0.999],
            dense_eps: 1e-7,
            dense_weight_decay: 0.0,
            embeddings: RowOptimizerConfig::default(),
            loss_weights: Vec::new(),
            metrics: Vec::new(),
            weighted_metrics: Vec::new(),
            early_stopping: None,
            progress: false,
            gate_metrics: false,
        }
    }
}

impl TrainConfig {
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn with_loss_weight(mut self, task: &str, weight: f32) -> Self {
        self.loss_weights.push((task.to_string(), weight));
        self
    }
    /// Replaces the metrics of `task` (names or aliases such as `rmse`).
    pub fn with_metrics(mut self, task: &str, metrics: &[&str]) -> Self {
        self.metrics.push((
            task.to_string(),
            metrics.iter().map(|m| m.to_string()).collect(),
        ));
        self
    }
    /// Replaces the weighted metrics of `task`.
    pub fn with_weighted_metrics(mut self, task: &str, metrics: &[&str]) -> Self {
        self.weighted_metrics.push((
            task.to_string(),
            metrics.iter().map(|m| m.to_string()).collect(),
        ));
        self
    }
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }
    pub fn with_gate_metrics(mut self, on: bool) -> Self {
        self.gate_metrics = on;
        self
    }
    pub fn with_early_stopping(mut self, early: EarlyStopping) -> Self {
        self.early_stopping = Some(early);
        self
    }
}

/// A model being trained: its dense network, embedding tables and both optimizers.
pub struct Trainer<M, D = Cpu>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    D: Device<f32>,
{
    pub device: D,
    pub network: M::Built,
    pub embeddings: Embeddings,
    pub row_optimizer: RowOptimizer,
    dense_optimizer: DenseAdam,
    pub config: TrainConfig,
    loss_weights: Vec<f32>,
    /// Per task: (metrics, weighted metrics), DSL values with config overrides applied.
    metrics: Vec<(Vec<&'static str>, Vec<&'static str>)>,
    step: u64,
}

/// Per-dataset bindings of features and tasks.
struct Bound {
    input: InputBinding,
    tasks: Vec<TaskBinding>,
}

fn task_index(spec: &ModelSpec, key: &str, what: &str) -> Result<usize> {
    spec.tasks
        .iter()
        .position(|t| t.name == key || t.output_name == key)
        .ok_or_else(|| {
            Error::invalid(format!(
                "{what} for unknown task `{key}`; tasks: {}",
                spec.tasks
                    .iter()
                    .map(|t| t.output_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

fn resolve_metrics(
    spec: &ModelSpec,
    config: &TrainConfig,
) -> Result<Vec<(Vec<&'static str>, Vec<&'static str>)>> {
    let mut out: Vec<(Vec<&'static str>, Vec<&'static str>)> = spec
        .tasks
        .iter()
        .map(|t| (t.metrics.to_vec(), t.weighted_metrics.to_vec()))
        .collect();
    for (weighted, overrides) in [(false, &config.metrics), (true, &config.weighted_metrics)] {
        for (key, names) in overrides {
            let i = task_index(spec, key, "metrics")?;
            let kind = spec.tasks[i].kind;
            let mut list = Vec::new();
            for name in names {
                match crate::spec::canonical_metric(name) {
                    Some(m) if kind.accepted_metrics().contains(&m) => list.push(m),
                    _ => {
                        return Err(Error::invalid(format!(
                            "metric `{name}` does not fit task `{key}`; it accepts: {}",
                            kind.accepted_metrics().join(", ")
                        )))
                    }
                }
            }
            if weighted {
                out[i].1 = list;
            } else {
                out[i].0 = list;
            }
        }
    }
    Ok(out)
}

fn resolve_loss_weights(spec: &ModelSpec, overrides: &[(String, f32)]) -> Result<Vec<f32>> {
    let mut weights: Vec<f32> = spec.tasks.iter().map(|t| t.loss_weight).collect();
    for (key, w) in overrides {
        let Some(i) = spec
            .tasks
            .iter()
            .position(|t| t.name == key || t.output_name == key)
        else {
            return Err(Error::invalid(format!(
                "loss weight for unknown task `{key}`; tasks: {}",
                spec.tasks
                    .iter()
                    .map(|t| t.output_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if !w.is_finite() || *w < 0.0 {
            return Err(Error::invalid(format!(
                "loss weight of `{key}` must be finite and >= 0, got {w}"
            )));
        }
        weights[i] = *w;
    }
    Ok(weights)
}

impl<M, D> Trainer<M, D>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    /// Builds the network (dfdx init from the device's RNG) and the tables (seeded).
    pub fn new(device: D, config: TrainConfig) -> Result<Self> {
        let spec = M::SPEC;
        let network = M::try_build_on_device(&device)
            .map_err(|e| Error::invalid(format!("cannot build the network: {e:?}")))?;
        let embeddings = Embeddings::new(spec, config.seed)?;
        let dense_optimizer = DenseAdam {
            lr: config.dense_lr as f32,
            betas: [config.dense_betas[0] as f32, config.dense_betas[1] as f32],
            eps: config.dense_eps as f32,
            weight_decay: config.dense_weight_decay as f32,
            t: 0,
            state: Default::default(),
        };
        let loss_weights = resolve_loss_weights(spec, &config.loss_weights)?;
        let metrics = resolve_metrics(spec, &config)?;
        Ok(Trainer {
            device,
            network,
            embeddings,
            row_optimizer: RowOptimizer::new(config.embeddings),
            dense_optimizer,
            config,
            loss_weights,
            metrics,
            step: 0,
        })
    }

    /// The loss weight λ of every task, in task order (DSL values with overrides applied).
    pub fn loss_weights(&self) -> &[f32] {
        &self.loss_weights
    }

    fn bind(&self, layout: &Layout) -> Result<Bound> {
        let spec = M::SPEC;
        Ok(Bound {
            input: self.embeddings.bind(spec, layout)?,
            tasks: spec
                .tasks
                .iter()
                .map(|t| TaskBinding::bind(t, layout))
                .collect::<Result<_>>()?,
        })
    }

    fn device_err(e: impl std::fmt::Debug) -> Error {
        Error::invalid(format!("device error: {e:?}"))
    }

    /// One training step on `batch`; returns the unweighted per-task losses and the total.
    fn train_step(
        &mut self,
        batch: &Batch,
        bound: &Bound,
        scratch: &mut Scratch,
    ) -> Result<(Vec<f32>, f32)> {
        let x = self.input(batch, bound, scratch)?;
        let x_ref = x.clone();
        let outputs = self
            .network
            .try_forward_train(x.leaky_traced())
            .map_err(Self::device_err)?;
        let mut total: Option<Tensor<Rank0, f32, D, OwnedTape<f32, D>>> = None;
        let mut losses = Vec::with_capacity(outputs.len());
        for ((out, task), &lambda) in outputs
            .into_iter()
            .zip(&bound.tasks)
            .zip(&self.loss_weights)
        {
            task.targets(batch, &mut scratch.targets);
            task.weights(batch, &scratch.targets, &mut scratch.weights);
            let loss = task_loss(task.spec.kind, out, &scratch.targets, &scratch.weights)
                .map_err(Self::device_err)?;
            let value = loss.as_vec()[0];
            if !value.is_finite() {
                return Err(Error::invalid(format!(
                    "the loss of task `{}` is {value} at step {}; training stopped before the weights \
                     were corrupted (check the data and lower the learning rate)",
                    task.spec.name, self.step
                )));
            }
            losses.push(value);
            let weighted = loss.try_mul(lambda).map_err(Self::device_err)?;
            total = Some(match total {
                None => weighted,
                Some(t) => t.try_add(weighted).map_err(Self::device_err)?,
            });
        }
        let total = total.ok_or_else(|| Error::invalid("the model has no tasks"))?;
        let total_value = total.as_vec()[0];
        let grads = total.backward();
        self.dense_optimizer
            .update(&mut self.network, &grads)
            .map_err(Self::device_err)?;
        let input_grad = host_values(&grads.get(&x_ref));
        self.embeddings
            .apply_gradient(batch, &bound.input, &input_grad, &mut self.row_optimizer);
        self.step += 1;
        Ok((losses, total_value))
    }

    /// Trains for `config.epochs` epochs on an in-memory dataset; evaluates on `valid` after
    /// each (if given).
    pub fn fit(&mut self, train: &Dataset, valid: Option<&Dataset>) -> Result<History> {
        self.fit_source(
            train.layout(),
            |options, epoch| {
                let batches = train.batches(options, epoch)?;
                let n = batches.num_batches();
                Ok((Box::new(batches) as Box<dyn BatchSource>, Some(n)))
            },
            valid,
        )
    }

    /// Trains on a dataset streamed from disk (row groups through a bounded shuffle buffer), for
    /// data larger than memory; otherwise like [`Trainer::fit`].
    pub fn fit_streaming(
        &mut self,
        train: &StreamingDataset,
        valid: Option<&Dataset>,
    ) -> Result<History> {
        self.fit_source(
            train.layout(),
            |options, epoch| {
                let batches = train.batches(options, epoch)?;
                let n = train
                    .num_rows()
                    .map(|r| (r as usize).div_ceil(options.batch_size));
                Ok((Box::new(batches) as Box<dyn BatchSource>, n))
            },
            valid,
        )
    }

    /// The epoch loop over any batch source: `epoch_batches(options, epoch)` gives one epoch's
    /// batches and, when known, their number (for the progress bar).
    fn fit_source<'d>(
        &mut self,
        layout: &Layout,
        mut epoch_batches: impl FnMut(
            BatchOptions,
            u64,
        ) -> Result<(Box<dyn BatchSource + 'd>, Option<usize>)>,
        valid: Option<&Dataset>,
    ) -> Result<History> {
        let spec = M::SPEC;
        let bound = self.bind(layout)?;
        let mut history = History::default();
        let mut scratch = Scratch::default();
        let mut best: Option<(f64, usize, M::Built, Embeddings)> = None;
        for epoch in 0..self.config.epochs {
            let options = BatchOptions {
                batch_size: self.config.batch_size,
                shuffle: self.config.shuffle,
                seed: self.config.seed,
                drop_last: false,
            };
            let (mut batches, num_batches) = epoch_batches(options, epoch as u64)?;
            let progress = self.progress_bar(
                num_batches.unwrap_or(0),
                &format!("epoch {}/{}", epoch + 1, self.config.epochs),
            );
            let start = Instant::now();
            let (mut rows, mut loss_sum) = (0usize, 0.0f64);
            let mut task_sums = vec![0.0f64; spec.tasks.len()];
            while let Some(batch) = batches.next_batch()? {
                let (losses, total) = self.train_step(batch, &bound, &mut scratch)?;
                let n = batch.len();
                rows += n;
                loss_sum += f64::from(total) * n as f64;
                for (s, l) in task_sums.iter_mut().zip(&losses) {
                    *s += f64::from(*l) * n as f64;
                }
                if let Some(p) = &progress {
                    p.inc(1);
                    p.set_message(format!(
                        "loss {:.4}, {:.0} rows/s",
                        loss_sum / rows as f64,
                        rows as f64 / start.elapsed().as_secs_f64()
                    ));
                }
            }
            if let Some(p) = progress {
                p.finish_and_clear();
            }
            let seconds = start.elapsed().as_secs_f64();
            let mut train_report = Report::default();
            train_report.push("loss", loss_sum / rows.max(1) as f64);
            if spec.tasks.len() > 1 {
                for (t, s) in spec.tasks.iter().zip(&task_sums) {
                    train_report.push(format!("{}_loss", t.output_name), s / rows.max(1) as f64);
                }
            }
            let validation = valid.map(|v| self.evaluate(v)).transpose()?;
            history.epochs.push(EpochRecord {
                epoch,
                train: train_report,
                validation: validation.clone(),
                seconds,
                rows_per_second: rows as f64 / seconds.max(1e-9),
            });
            if let (Some(early), Some(report)) = (&self.config.early_stopping, &validation) {
                let value = report.get(&early.monitor).ok_or_else(|| {
                    Error::invalid(format!(
                        "early stopping monitors `{}`, which the validation report does not have (it has: {})",
                        early.monitor,
                        report.names().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                let better = |a: f64, b: f64| if early.maximize { a > b } else { a < b };
                match &best {
                    Some((v, _, _, _)) if !better(value, *v) => {
                        let best_epoch = best.as_ref().map_or(0, |b| b.1);
                        if epoch - best_epoch >= early.patience {
                            if let Some((_, e, net, emb)) = best.take() {
                                self.network = net;
                                self.embeddings = emb;
                                history.stopped_early_at_best = Some(e);
                            }
                            break;
                        }
                    }
                    _ => best = Some((value, epoch, self.network.clone(), self.embeddings.clone())),
                }
            }
        }
        Ok(history)
    }

    fn progress_bar(&self, len: usize, prefix: &str) -> Option<indicatif::ProgressBar> {
        if !self.config.progress {
            return None;
        }
        let bar = indicatif::ProgressBar::new(len as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(prefix.to_string());
        Some(bar)
    }

    /// The `[B, INPUT_WIDTH]` network input of one batch.
    fn input(
        &self,
        batch: &Batch,
        bound: &Bound,
        scratch: &mut Scratch,
    ) -> Result<crate::model::DynBatch<f32, D>> {
        self.embeddings
            .gather(batch, &bound.input, &mut scratch.input)?;
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
    pub fn evaluate(&self, data: &Dataset) -> Result<Report> {
        let spec = M::SPEC;
        let bound = self.bind(data.layout())?;
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
        let mut task_loss_sums = vec![0.0f64; spec.tasks.len()];
        let (mut rows, mut loss_sum, mut last_batch_loss) = (0usize, 0.0f64, 0.0f64);
        let mut gate_sums: Vec<(&'static str, Vec<f64>)> = Vec::new();
        let mut batches = data.batches(BatchOptions::sequential(self.config.batch_size), 0)?;
        while let Some(batch) = batches.next() {
            // One gather per batch serves both the outputs and the gate metrics.
            let x = self.input(batch, &bound, &mut scratch)?;
            if self.config.gate_metrics {
                self.accumulate_gates(x.clone(), &mut gate_sums)?;
            }
            let outputs = self.outputs(x)?;
            let n = batch.len();
            let mut batch_total = 0.0f64;
            for (i, (task, out)) in bound.tasks.iter().zip(&outputs).enumerate() {
                task.targets(batch, &mut scratch.targets);
                task.weights(batch, &scratch.targets, &mut scratch.weights);
                let l = host_loss(task.spec.kind, out, &scratch.targets, &scratch.weights);
                task_loss_sums[i] += l * n as f64;
                batch_total += f64::from(self.loss_weights[i]) * l;
                plain[i].update(task.spec.kind, out, &scratch.targets, None);
                if !self.metrics[i].1.is_empty() {
                    weighted[i].update(
                        task.spec.kind,
                        out,
                        &scratch.targets,
                        Some(&scratch.weights),
                    );
                }
            }
            rows += n;
            loss_sum += batch_total * n as f64;
            last_batch_loss = batch_total;
        }
        let denom = rows.max(1) as f64;
        let mut report = Report::default();
        report.push("loss", loss_sum / denom);
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
        }
        for (gate, sums) in &gate_sums {
            for (k, s) in sums.iter().enumerate() {
                report.push(format!("{gate}_weight_{k}"), s / denom);
            }
        }
        report.push("regularization_loss", 0.0);
        report.push("loss_batch", last_batch_loss);
        Ok(report)
    }

    /// Per-task predictions over `data`, in order: probabilities for binary tasks, values for
    /// regression, class probabilities (`[N, classes]` row-major) for multiclass.
    pub fn predict(&self, data: &Dataset) -> Result<Vec<Vec<f32>>> {
        let spec = M::SPEC;
        let bound = self.bind(data.layout())?;
        let mut scratch = Scratch::default();
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); spec.tasks.len()];
        let mut batches = data.batches(BatchOptions::sequential(self.config.batch_size), 0)?;
        while let Some(batch) = batches.next() {
            for ((dst, o), t) in out
                .iter_mut()
                .zip(self.outputs(self.input(batch, &bound, &mut scratch)?)?)
                .zip(spec.tasks)
            {
                match t.kind {
                    TaskKind::Binary => dst.extend(o.iter().map(|&x| 1.0 / (1.0 + (-x).exp()))),
                    TaskKind::Regression => dst.extend(o),
                    TaskKind::Multiclass { classes } => {
                        for row in o.chunks(classes) {
                            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                            let z: f32 = row.iter().map(|&v| (v - m).exp()).sum();
                            dst.extend(row.iter().map(|&v| (v - m).exp() / z));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Reused buffers of a training or evaluation loop.
#[derive(Debug, Default)]
pub struct Scratch {
    input: Vec<f32>,
    targets: Vec<f32>,
    weights: Vec<f32>,
}

/// The task loss `Σ wᵢ·ℓᵢ / B` computed on the host (for evaluation).
fn host_loss(kind: TaskKind, out: &[f32], targets: &[f32], weights: &[f32]) -> f64 {
    let b = targets.len().max(1) as f64;
    let sum: f64 = match kind {
        TaskKind::Binary => out
            .iter()
            .zip(targets)
            .zip(weights)
            .map(|((&x, &y), &w)| f64::from(w) * bce_with_logit(f64::from(x), f64::from(y)))
            .sum(),
        TaskKind::Regression => out
            .iter()
            .zip(targets)
            .zip(weights)
            .map(|((&x, &y), &w)| f64::from(w) * (f64::from(x) - f64::from(y)).powi(2))
            .sum(),
        TaskKind::Multiclass { classes } => out
            .chunks(classes)
            .zip(targets)
            .zip(weights)
            .map(|((row, &y), &w)| {
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let lse = m + row
                    .iter()
                    .map(|&v| (f64::from(v) - m).exp())
                    .sum::<f64>()
                    .ln();
                let c = (y.max(0.0) as usize).min(classes - 1);
                f64::from(w) * (lse - f64::from(row[c]))
            })
            .sum(),
    };
    sum / b
}
