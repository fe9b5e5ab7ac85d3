//! The epoch loop: `fit` on in-memory data, `fit_streaming` on data streamed from disk, the
//! learning-rate schedule, early stopping and the progress output.

use std::time::Instant;

use dfdx::prelude::*;

use super::balance::Balance;
use super::config::LrSchedule;
use super::dense_adam::Moments;
use super::progress::Progress;
use super::report::{EpochRecord, History, Report};
use super::{Scratch, Trainer};
use crate::data::{BatchOptions, BatchSource, Dataset, Layout, StreamingDataset};
use crate::embedding::Embeddings;
use crate::error::{Error, Result};
use crate::model::{MtlModel, TaskNetwork};

impl<M, D> Trainer<M, D>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    /// Trains for `config.epochs` epochs on an in-memory dataset; evaluates on `valid` after
    /// each (if given).
    pub fn fit(&mut self, train: &Dataset, valid: Option<&Dataset>) -> Result<History> {
        let sample = (self.config.train_metrics_rows > 0)
            .then(|| train.slice(0..self.config.train_metrics_rows.min(train.num_rows())));
        self.fit_source(
            train.layout(),
            |options, epoch| {
                let batches = train.batches(options, epoch)?;
                let n = batches.num_batches();
                Ok((Box::new(batches) as Box<dyn BatchSource>, Some(n)))
            },
            valid,
            sample.as_ref(),
        )
    }

    /// Trains on a dataset streamed from disk (row groups through a bounded shuffle buffer), for
    /// data larger than memory; otherwise like [`Trainer::fit`] (without training metrics:
    /// `train_metrics_rows` needs in-memory data).
    pub fn fit_streaming(
        &mut self,
        train: &StreamingDataset,
        valid: Option<&Dataset>,
    ) -> Result<History> {
        if self.sync.is_some() {
            // A stream's row count is only known from metadata (and not at all for Arrow IPC),
            // so processes could not agree on the steps of an epoch.
            return Err(Error::invalid(
                "data-parallel training reads in-memory datasets: load each process's share \
                 with Cluster::open_share (or Cluster::shard) and call fit",
            ));
        }
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
            None,
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
        train_sample: Option<&Dataset>,
    ) -> Result<History> {
        if let (Some(sync), Some(v)) = (&self.sync, valid) {
            // Early stopping and plateaus decide on the validation report: every process must
            // see the same one, or they would part ways and wait for each other forever.
            if !sync.agree(fingerprint(v))? {
                return Err(Error::invalid(
                    "the processes were given different validation data; give every process \
                     all of it (Cluster::gather of the shares), so that metrics are exact and \
                     early stopping decides alike",
                ));
            }
        }
        if valid.is_none() {
            let watched = [
                self.config
                    .early_stopping
                    .as_ref()
                    .map(|e| ("early stopping", &e.monitor.name)),
                self.config
                    .reduce_on_plateau
                    .as_ref()
                    .map(|p| ("reduce on plateau", &p.monitor.name)),
            ];
            if let Some((what, name)) = watched.into_iter().flatten().next() {
                return Err(Error::invalid(format!(
                    "{what} watches the validation value `{name}`, but `fit` was given no \
                     validation data: pass it (`fit(&train, Some(&valid))`), or remove {what} \
                     from the config"
                )));
            }
        }
        self.start()?;
        if let Some(engine) = &mut self.engine {
            // The network is the parameters' home between calls: start from it.
            engine.load_params(&self.network)?;
            let moments = self.dense_optimizer.host_moments();
            engine.load_moments(|name| moments.get(name).map(|m| (&m.m[..], &m.v[..])));
        }
        let result = self.fit_epochs(layout, &mut epoch_batches, valid, train_sample);
        // Whatever happened, the network holds the last good weights (a failed step changes
        // none).
        self.sync_from_engine()?;
        result
    }

    /// Copies the fused engine's parameters and Adam moments back to the network and the dense
    /// optimizer (nothing to do on the generic path).
    fn sync_from_engine(&mut self) -> Result<()> {
        if let Some(engine) = &self.engine {
            engine.store_params(&mut self.network)?;
            let moments = engine.moments().map(|(name, m, v)| {
                let moments = Moments {
                    m: m.to_vec(),
                    v: v.to_vec(),
                };
                (name.to_string(), moments)
            });
            self.dense_optimizer
                .set_moments(&self.device, moments)
                .map_err(Self::device_err)?;
        }
        Ok(())
    }

    /// Puts the network and tables of `snapshot` back (on the engine too).
    fn restore(&mut self, snapshot: (M::Built, Embeddings)) -> Result<()> {
        self.network = snapshot.0;
        self.embeddings = snapshot.1;
        if let Some(engine) = &mut self.engine {
            engine.load_params(&self.network)?;
        }
        Ok(())
    }

    fn fit_epochs<'d>(
        &mut self,
        layout: &Layout,
        epoch_batches: &mut impl FnMut(
            BatchOptions,
            u64,
        ) -> Result<(Box<dyn BatchSource + 'd>, Option<usize>)>,
        valid: Option<&Dataset>,
        train_sample: Option<&Dataset>,
    ) -> Result<History> {
        let spec = M::SPEC;
        let bound = self.bind(layout)?;
        let fused = self.engine.is_some();
        let mut history = History::default();
        let mut scratch = Scratch::default();
        let mut progress = Progress::new(self.config.progress, self.config.epochs);
        let scheduled = self.config.schedule != LrSchedule::Constant
            || self.config.warmup_steps > 0
            || self.config.reduce_on_plateau.is_some();
        let early = self.config.early_stopping.clone();
        // The best epoch so far: (value, epoch, its weights).
        let mut best: Option<(f64, usize, (M::Built, Embeddings))> = None;
        let mut since_best = 0usize;
        let mut stopped = false;
        for epoch in 0..self.config.epochs {
            let global_epoch = self.epochs_done;
            let options = BatchOptions {
                batch_size: self.config.batch_size,
                shuffle: self.config.shuffle,
                seed: self.config.seed,
                drop_last: false,
            };
            let (mut batches, num_batches) = epoch_batches(options, global_epoch as u64)?;
            // Data-parallel: every process takes the same number of steps.
            let steps = match &self.sync {
                Some(sync) => Some(sync.agree_steps(num_batches.unwrap_or(0))?),
                None => None,
            };
            let mut taken = 0usize;
            progress.start_epoch(epoch, num_batches);
            let start = Instant::now();
            let (mut rows, mut loss_sum) = (0usize, 0.0f64);
            let (mut last_regularization, mut last_total) = (0.0f64, 0.0f64);
            let mut task_sums = vec![0.0f64; spec.tasks.len()];
            let mut learning_rate = self.config.dense_lr;
            loop {
                if steps.is_some_and(|n| taken == n) {
                    break;
                }
                taken += 1;
                let gradnorm = matches!(self.balance, Some(Balance::GradNorm(_)));
                let (losses, total, regularization, n, norms) = if fused {
                    let Some(view) = batches.next_view()? else {
                        break;
                    };
                    learning_rate = self.apply_schedule(global_epoch);
                    let norms = gradnorm
                        .then(|| self.fused_task_norms(&view, &bound))
                        .transpose()?;
                    let (losses, total, reg) = self.fused_step(&view, &bound)?;
                    (losses, total, reg, view.len(), norms)
                } else {
                    let Some(batch) = batches.next_batch()? else {
                        break;
                    };
                    learning_rate = self.apply_schedule(global_epoch);
                    let norms = gradnorm
                        .then(|| self.generic_task_norms(batch, &bound, &mut scratch))
                        .transpose()?;
                    let (losses, total, reg) = self.train_step(batch, &bound, &mut scratch)?;
                    (losses, total, reg, batch.len(), norms)
                };
                // Learnt loss weights move with this step's task losses, and their `Σ s_t/2`
                // term belongs to the loss.
                let total = match &mut self.balance {
                    Some(b) => {
                        let with_prior = f64::from(total) + b.regularizer();
                        match b {
                            Balance::Uncertainty(u) => u.update(&losses, learning_rate),
                            Balance::GradNorm(g) => {
                                g.update(norms.as_deref().unwrap_or(&[]), &losses, learning_rate);
                            }
                        }
                        self.loss_weights = b.weights();
                        with_prior as f32
                    }
                    None => total,
                };
                rows += n;
                loss_sum += f64::from(total) * n as f64;
                (last_regularization, last_total) = (f64::from(regularization), f64::from(total));
                for (s, l) in task_sums.iter_mut().zip(&losses) {
                    *s += f64::from(*l) * n as f64;
                }
                progress.batch(
                    loss_sum / rows as f64,
                    rows as f64 / start.elapsed().as_secs_f64(),
                );
            }
            if rows == 0 {
                return Err(Error::invalid(
                    "the training data has no rows: nothing to train on (check the file and any \
                     row filter or split that produced it)",
                ));
            }
            let seconds = start.elapsed().as_secs_f64();
            self.epochs_done += 1;
            // Evaluation (and an early-stopping snapshot) reads the network.
            self.sync_from_engine()?;
            let mut train_report = self.train_report(
                loss_sum / rows as f64,
                &task_sums,
                rows,
                last_regularization,
                last_total,
                train_sample,
            )?;
            if self.balance.is_some() {
                // The learnt weights at the end of the epoch, in the history and its curves.
                for (t, w) in spec.tasks.iter().zip(&self.loss_weights) {
                    train_report.push(format!("{}/loss_weight", t.output_name), f64::from(*w));
                }
            }
            let validation = valid.map(|v| self.evaluate(v)).transpose()?;
            let record = EpochRecord {
                epoch,
                train: train_report,
                validation,
                seconds,
                rows_per_second: rows as f64 / seconds.max(1e-9),
                learning_rate,
            };
            progress.end_epoch(&record, scheduled.then_some(learning_rate));
            let report = record.validation.clone();
            history.epochs.push(record);

            let mut notes = Vec::new();
            if let Some(monitor) = self.scheduler.monitor() {
                let value = monitored(report.as_ref(), monitor, "reduce on plateau")?;
                notes.extend(self.scheduler.end_epoch(value));
            }
            if let (Some(early), Some(report)) = (&early, &report) {
                let name = &early.monitor.name;
                let value = monitored(Some(report), name, "early stopping")?.unwrap_or(f64::NAN);
                if value.is_nan() {
                    since_best += 1;
                    notes.push(format!(
                        "early stopping: `{name}` is undefined at epoch {} (e.g. an AUC over a \
                         split with one class); it counts as no improvement",
                        epoch + 1
                    ));
                } else if best
                    .as_ref()
                    .is_none_or(|(b, _, _)| early.monitor.improves(value, *b))
                {
                    best = Some((
                        value,
                        epoch,
                        (self.network.clone(), self.embeddings.clone()),
                    ));
                    since_best = 0;
                } else {
                    since_best += 1;
                }
                if let (Some((v, e, _)), true) = (&best, since_best >= early.patience) {
                    notes.push(format!(
                        "early stopping: no improvement of `{name}` for {since_best} epochs; \
                         stopping and restoring epoch {} ({name} {})",
                        e + 1,
                        super::report::format_value(*v)
                    ));
                    stopped = true;
                }
            }
            for n in &notes {
                progress.note(n);
            }
            history.notes.extend(notes);
            if stopped {
                break;
            }
        }
        if early.is_some() {
            match best {
                Some((value, epoch, snapshot)) => {
                    history.best_epoch = Some(epoch);
                    if stopped {
                        history.stopped_early_at_best = Some(epoch);
                    }
                    if epoch + 1 != history.epochs.len() {
                        self.restore(snapshot)?;
                        if !stopped {
                            let note = format!(
                                "early stopping: restored the best epoch, {} (`{}` {})",
                                epoch + 1,
                                early.as_ref().map_or("", |e| e.monitor.name.as_str()),
                                super::report::format_value(value)
                            );
                            progress.note(&note);
                            history.notes.push(note);
                        }
                    }
                }
                None if valid.is_some() => {
                    let note = "early stopping: the monitored value was undefined in every \
                                epoch, so the last epoch's weights are kept"
                        .to_string();
                    progress.note(&note);
                    history.notes.push(note);
                }
                None => {}
            }
        }
        Ok(history)
    }

    /// The epoch's training report: the running mean loss (with regularization), each task's
    /// unweighted loss, the last batch's `regularization_loss` and `loss_batch`, and, with
    /// `train_metrics_rows`, the metrics of the first training rows.
    fn train_report(
        &self,
        loss: f64,
        task_sums: &[f64],
        rows: usize,
        regularization: f64,
        last_total: f64,
        sample: Option<&Dataset>,
    ) -> Result<Report> {
        let spec = M::SPEC;
        let mut report = Report::default();
        report.push("loss", loss);
        if spec.tasks.len() > 1 {
            for (t, s) in spec.tasks.iter().zip(task_sums) {
                report.push(format!("{}_loss", t.output_name), s / rows as f64);
            }
        }
        if let Some(sample) = sample.filter(|s| s.num_rows() > 0) {
            let metrics = self.evaluate(sample)?;
            for (name, value) in metrics.iter() {
                let is_loss = name == "loss"
                    || name.ends_with("_loss")
                    || name == "loss_batch"
                    || name.contains("_weight_");
                if !is_loss {
                    report.push(name, value);
                }
            }
        }
        report.push("regularization_loss", regularization);
        report.push("loss_batch", last_total);
        Ok(report)
    }
}

/// The value `name` of the validation `report`, for `what`; an error naming the values there
/// are when it has none.
fn monitored(report: Option<&Report>, name: &str, what: &str) -> Result<Option<f64>> {
    let Some(report) = report else {
        return Ok(None);
    };
    report.get(name).map(Some).ok_or_else(|| {
        Error::invalid(format!(
            "{what} watches `{name}`, which the validation report does not have (it has: {})",
            report.names().collect::<Vec<_>>().join(", ")
        ))
    })
}

/// A cheap digest of a dataset's contents (rows and the sum of every value), to check that
/// data-parallel processes were given the same validation data.
fn fingerprint(data: &Dataset) -> f64 {
    let mut sum = data.num_rows() as f64;
    for c in data.layout().columns() {
        let name = &c.schema.name;
        if let Some(v) = data.ids(name) {
            sum += v.iter().map(|&x| f64::from(x)).sum::<f64>();
        } else if let Some(v) = data.floats(name) {
            sum += v.iter().map(|&x| f64::from(x)).sum::<f64>();
        } else {
            for r in 0..data.num_rows() {
                let list = data.id_list(name, r).unwrap_or_default();
                sum += list.iter().map(|&x| f64::from(x)).sum::<f64>();
            }
        }
    }
    sum
}
