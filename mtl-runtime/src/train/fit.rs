//! The epoch loop: `fit` on in-memory data, `fit_streaming` on data streamed from disk, early
//! stopping and the progress bar.

use std::time::Instant;

use dfdx::prelude::*;

use super::dense_adam::Moments;
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
        self.start()?;
        if let Some(engine) = &mut self.engine {
            // The network is the parameters' home between calls: start from it.
            engine.load_params(&self.network)?;
            let moments = self.dense_optimizer.host_moments();
            engine.load_moments(|name| moments.get(name).map(|m| (&m.m[..], &m.v[..])));
        }
        let result = self.fit_epochs(layout, &mut epoch_batches, valid);
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

    fn fit_epochs<'d>(
        &mut self,
        layout: &Layout,
        epoch_batches: &mut impl FnMut(
            BatchOptions,
            u64,
        ) -> Result<(Box<dyn BatchSource + 'd>, Option<usize>)>,
        valid: Option<&Dataset>,
    ) -> Result<History> {
        let spec = M::SPEC;
        let bound = self.bind(layout)?;
        let fused = self.engine.is_some();
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
            loop {
                let (losses, total, n) = if fused {
                    let Some(view) = batches.next_view()? else {
                        break;
                    };
                    let (losses, total) = self.fused_step(&view, &bound)?;
                    (losses, total, view.len())
                } else {
                    let Some(batch) = batches.next_batch()? else {
                        break;
                    };
                    let (losses, total) = self.train_step(batch, &bound, &mut scratch)?;
                    (losses, total, batch.len())
                };
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
            if rows == 0 {
                return Err(Error::invalid(
                    "the training data has no rows: nothing to train on (check the file and any \
                     row filter or split that produced it)",
                ));
            }
            let seconds = start.elapsed().as_secs_f64();
            let mut train_report = Report::default();
            train_report.push("loss", loss_sum / rows.max(1) as f64);
            if spec.tasks.len() > 1 {
                for (t, s) in spec.tasks.iter().zip(&task_sums) {
                    train_report.push(format!("{}_loss", t.output_name), s / rows.max(1) as f64);
                }
            }
            // Evaluation (and an early-stopping snapshot) reads the network.
            self.sync_from_engine()?;
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
                                if let Some(engine) = &mut self.engine {
                                    engine.load_params(&self.network)?;
                                }
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
}
