//! How to train: [`TrainConfig`] (optimizers, schedules, regularization, batches, overrides,
//! threads, output) and [`EarlyStopping`].

use crate::embedding::RowOptimizerConfig;

pub use super::schedule::{LrSchedule, ReduceOnPlateau};

/// A validation value to watch and which way is better.
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    /// A name of the validation report, e.g. `loss` or `click/binary_output/auc`.
    pub name: String,
    /// `true`: higher is better (AUC, accuracy); `false`: lower is better (losses, errors).
    pub maximize: bool,
    /// The least change that counts as an improvement (Keras' `min_delta`), ≥ 0.
    pub min_delta: f64,
}

impl Monitor {
    /// Watches `name`, minimised when it is a loss or an error and maximised otherwise: its
    /// last `/` part contains `loss` or `error`, or is `mse`, `mae` or `rmse` (`loss`,
    /// `loss_batch`, `click/binary_output_loss`, `…/root_mean_squared_error`, `…/logloss` are
    /// minimised; `…/auc`, `…/precision`, `…/binary_accuracy` maximised).
    pub fn on(name: &str) -> Self {
        let last = name.rsplit('/').next().unwrap_or(name);
        let minimize = last.contains("loss")
            || last.contains("error")
            || matches!(last, "mse" | "mae" | "rmse");
        Monitor {
            name: name.to_string(),
            maximize: !minimize,
            min_delta: 0.0,
        }
    }

    /// Whether `value` improves on `best` by more than `min_delta`. An undefined value (NaN)
    /// never does.
    pub fn improves(&self, value: f64, best: f64) -> bool {
        if self.maximize {
            value > best + self.min_delta
        } else {
            value < best - self.min_delta
        }
    }
}

/// Stop training when a validation value stops improving, and keep the best epoch's weights.
///
/// After every epoch the monitored value of the validation report is compared with the best so
/// far; `patience` epochs in a row without an improvement (more than `min_delta`) stop
/// training. The weights of the best epoch (network and embeddings) are then restored — also
/// when the last epoch ends without stopping — so the trainer always holds the best epoch's
/// model, and `History::best_epoch` says which it was. An undefined value (an AUC over a split
/// with one class: NaN) never counts as an improvement nor sets the best; each such epoch is
/// noted in `History::notes` (and shown when `progress` is on). Early stopping needs
/// validation data: `fit` without it is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    pub monitor: Monitor,
    /// Epochs without improvement before stopping (at least 1).
    pub patience: usize,
}

impl EarlyStopping {
    /// Monitors `name`, minimised or maximised as [`Monitor::on`] decides from the name.
    pub fn on(name: &str, patience: usize) -> Self {
        EarlyStopping {
            monitor: Monitor::on(name),
            patience,
        }
    }
    /// Monitors `name`, lower is better.
    pub fn minimize(name: &str, patience: usize) -> Self {
        let mut e = Self::on(name, patience);
        e.monitor.maximize = false;
        e
    }
    /// Monitors `name`, higher is better.
    pub fn maximize(name: &str, patience: usize) -> Self {
        let mut e = Self::on(name, patience);
        e.monitor.maximize = true;
        e
    }
    /// The least change that counts as an improvement (default 0).
    pub fn with_min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta;
        self
    }
}

/// How to train. Every field has a default (below, and in [`TrainConfig::default`]); the
/// `with_*` methods set them.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training data. Default 1.
    pub epochs: usize,
    /// Rows per optimizer step. Default 4096.
    pub batch_size: usize,
    /// Shuffle the rows every epoch (seeded by `seed` and the epoch). Default true.
    pub shuffle: bool,
    /// Fixes the whole run: the dense initialisation, the embedding tables, the shuffle and the
    /// fused engine's dropout masks. Default 0. (The generic path's dropout draws from the
    /// device's RNG: seed the device too, `Cpu::seed_from_u64`, for a reproducible run there.)
    pub seed: u64,
    /// Dense-parameter Adam: learning rate, betas, epsilon (Keras defaults: 1e-3, 0.9/0.999,
    /// 1e-7). [`TrainConfig::with_learning_rate`] sets this rate and the embeddings' together.
    pub dense_lr: f64,
    pub dense_betas: [f64; 2],
    pub dense_eps: f64,
    /// Decoupled weight decay of the dense parameters (AdamW). Default 0.
    pub dense_weight_decay: f64,
    /// The embedding tables' row-wise optimizer, with its own learning rate. Default: lazy
    /// Adam with Keras' Adam defaults (lr 1e-3).
    pub embeddings: RowOptimizerConfig,
    /// How the learning rates (dense and embeddings alike) change over the run. Default
    /// constant.
    pub schedule: LrSchedule,
    /// Steps of linear warm-up before the schedule (0: none). Default 0.
    pub warmup_steps: u64,
    /// Reduce the learning rates when a validation value stops improving. Default none.
    pub reduce_on_plateau: Option<ReduceOnPlateau>,
    /// L2 penalty `λ·Σw²` on every dense kernel (weight matrix; not biases, batch-norm
    /// parameters or embeddings), Keras' `kernel_regularizer=l2(λ)`. Default 0.
    pub dense_l2: f64,
    /// L2 penalty `λ·Σv²` over the embedding vectors a batch looks up (each lookup counted),
    /// Merlin's `l2_batch_regularization_factor`: it reaches only the rows a batch touches.
    /// Default 0.
    pub embeddings_l2: f64,
    /// Rescale each step's gradient (dense and embedding rows together) so that its global L2
    /// norm is at most this (`tf.clip_by_global_norm`, PyTorch's `clip_grad_norm_`). Default
    /// none.
    pub clip_global_norm: Option<f64>,
    /// Loss-weight overrides keyed by task name (`click`) or output name
    /// (`click/binary_output`), like Keras' `compile(loss_weights=...)`.
    pub loss_weights: Vec<(String, f32)>,
    /// Class-weight overrides `(negative, positive)` of binary tasks, keyed like loss weights
    /// (replacing the DSL's `class_weights`).
    pub class_weights: Vec<(String, (f32, f32))>,
    /// Metric overrides keyed by task or output name (replacing the DSL's `metrics`).
    pub metrics: Vec<(String, Vec<String>)>,
    /// Weighted-metric overrides keyed by task or output name (replacing `weighted_metrics`).
    pub weighted_metrics: Vec<(String, Vec<String>)>,
    /// Default none.
    pub early_stopping: Option<EarlyStopping>,
    /// Report progress on standard error. On a terminal: a progress bar per epoch, then the
    /// epoch's line; otherwise (a log file) one line per epoch, like Keras' `verbose=2`:
    /// `epoch 2/5 - 3.1s - 98000 rows/s - loss 0.3921 - val_loss 0.4012 - val_…auc 0.7231`,
    /// plus the early-stopping and schedule decisions. Default false.
    pub progress: bool,
    /// Also report training metrics each epoch, computed at the epoch's end on up to this many
    /// training rows (the first rows, inference mode) so that curves compare train and
    /// validation (0: training loss only). In-memory training data only. Default 0.
    pub train_metrics_rows: usize,
    /// Report each mixture-of-experts gate's mean expert weights in `evaluate`
    /// (`gate_click/binary_output_weight_0`, ...; `shared_gate_weight_k` for a shared gate).
    /// Default false.
    pub gate_metrics: bool,
    /// Worker threads of the fused CPU engine (default 0: one per core). Results do not depend
    /// on it: the engine cuts batches into chunks by batch size alone and sums in chunk order.
    pub threads: usize,
    /// Train with the fused CPU engine when the device is the CPU (default `true`; see
    /// `mtl_runtime::fused`). `false` uses the device-generic dfdx path, as on CUDA. Models with
    /// batch normalisation, a custom body or an AITM transfer always use the generic path.
    pub fused_cpu: bool,
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
            schedule: LrSchedule::Constant,
            warmup_steps: 0,
            reduce_on_plateau: None,
            dense_l2: 0.0,
            embeddings_l2: 0.0,
            clip_global_norm: None,
            loss_weights: Vec::new(),
            class_weights: Vec::new(),
            metrics: Vec::new(),
            weighted_metrics: Vec::new(),
            early_stopping: None,
            progress: false,
            train_metrics_rows: 0,
            gate_metrics: false,
            threads: 0,
            fused_cpu: true,
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
    /// One learning rate for the dense parameters and the embeddings (override either after
    /// with [`TrainConfig::with_dense_learning_rate`] /
    /// [`TrainConfig::with_embedding_learning_rate`]).
    pub fn with_learning_rate(self, lr: f64) -> Self {
        self.with_dense_learning_rate(lr)
            .with_embedding_learning_rate(lr)
    }
    pub fn with_dense_learning_rate(mut self, lr: f64) -> Self {
        self.dense_lr = lr;
        self
    }
    pub fn with_embedding_learning_rate(mut self, lr: f64) -> Self {
        self.embeddings = self.embeddings.with_lr(lr as f32);
        self
    }
    pub fn with_schedule(mut self, schedule: LrSchedule) -> Self {
        self.schedule = schedule;
        self
    }
    pub fn with_warmup_steps(mut self, steps: u64) -> Self {
        self.warmup_steps = steps;
        self
    }
    pub fn with_reduce_on_plateau(mut self, plateau: ReduceOnPlateau) -> Self {
        self.reduce_on_plateau = Some(plateau);
        self
    }
    pub fn with_dense_l2(mut self, l2: f64) -> Self {
        self.dense_l2 = l2;
        self
    }
    pub fn with_embeddings_l2(mut self, l2: f64) -> Self {
        self.embeddings_l2 = l2;
        self
    }
    pub fn with_clip_global_norm(mut self, max_norm: f64) -> Self {
        self.clip_global_norm = Some(max_norm);
        self
    }
    pub fn with_loss_weight(mut self, task: &str, weight: f32) -> Self {
        self.loss_weights.push((task.to_string(), weight));
        self
    }
    /// Replaces the class weights `(negative, positive)` of binary task `task`.
    pub fn with_class_weights(mut self, task: &str, weights: (f32, f32)) -> Self {
        self.class_weights.push((task.to_string(), weights));
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
    pub fn with_train_metrics_rows(mut self, rows: usize) -> Self {
        self.train_metrics_rows = rows;
        self
    }
    pub fn with_gate_metrics(mut self, on: bool) -> Self {
        self.gate_metrics = on;
        self
    }
    /// Worker threads of the fused CPU engine (0: one per core).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
    /// Whether CPU training uses the fused engine (default) or the generic dfdx path.
    pub fn with_fused_cpu(mut self, on: bool) -> Self {
        self.fused_cpu = on;
        self
    }
    pub fn with_early_stopping(mut self, early: EarlyStopping) -> Self {
        self.early_stopping = Some(early);
        self
    }
}

impl TrainConfig {
    /// Rejects settings that cannot train: a batch of 0 rows, learning rates that are not
    /// finite and positive, betas outside `[0, 1)`, a non-positive epsilon, a negative or
    /// non-finite weight decay. Each error names the setting and the value.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |what: &str, v: f64, want: &str| -> crate::Result<()> {
            Err(crate::Error::invalid(format!(
                "{what} is {v}; it must be {want}"
            )))
        };
        if self.batch_size == 0 {
            return Err(crate::Error::invalid(
                "batch_size is 0; it must be at least 1",
            ));
        }
        let positive = |what: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                bad(what, v, "finite and > 0")
            }
        };
        let beta = |what: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                bad(what, v, "in [0, 1)")
            }
        };
        let decay = |what: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                bad(what, v, "finite and >= 0")
            }
        };
        positive("dense_lr (the dense learning rate)", self.dense_lr)?;
        beta("dense_betas[0]", self.dense_betas[0])?;
        beta("dense_betas[1]", self.dense_betas[1])?;
        positive("dense_eps", self.dense_eps)?;
        decay("dense_weight_decay", self.dense_weight_decay)?;
        decay("dense_l2", self.dense_l2)?;
        decay("embeddings_l2", self.embeddings_l2)?;
        if let Some(c) = self.clip_global_norm {
            positive("clip_global_norm", c)?;
        }
        if let Some(e) = &self.early_stopping {
            decay("early stopping's min_delta", e.monitor.min_delta)?;
            if e.patience == 0 {
                return Err(crate::Error::invalid(
                    "early stopping's patience is 0; it must be at least 1 (epochs without \
                     improvement before stopping)",
                ));
            }
        }
        match self.schedule {
            LrSchedule::Constant => {}
            LrSchedule::StepDecay { epochs, gamma } => {
                if epochs == 0 {
                    return Err(crate::Error::invalid(
                        "the step decay's epochs is 0; it must be at least 1",
                    ));
                }
                if !(gamma.is_finite() && gamma > 0.0 && gamma <= 1.0) {
                    bad("the step decay's gamma", gamma, "in (0, 1]")?;
                }
            }
            LrSchedule::Cosine { decay_steps, alpha } => {
                if decay_steps == 0 {
                    return Err(crate::Error::invalid(
                        "the cosine decay's decay_steps is 0; it must be at least 1",
                    ));
                }
                if !(0.0..=1.0).contains(&alpha) {
                    bad("the cosine decay's alpha", alpha, "in [0, 1]")?;
                }
            }
        }
        if let Some(p) = &self.reduce_on_plateau {
            if !(p.factor > 0.0 && p.factor < 1.0) {
                bad("reduce on plateau's factor", p.factor, "in (0, 1)")?;
            }
            decay("reduce on plateau's min_lr", p.min_lr)?;
            decay("reduce on plateau's min_delta", p.monitor.min_delta)?;
        }
        for (task, (neg, pos)) in &self.class_weights {
            for v in [neg, pos] {
                if !(v.is_finite() && *v >= 0.0) {
                    return Err(crate::Error::invalid(format!(
                        "class weights of `{task}` must be finite and >= 0, got ({neg}, {pos})"
                    )));
                }
            }
        }
        match self.embeddings {
            RowOptimizerConfig::LazyAdam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                positive("the embeddings' learning rate", f64::from(lr))?;
                beta("the embeddings' beta1", f64::from(beta1))?;
                beta("the embeddings' beta2", f64::from(beta2))?;
                positive("the embeddings' eps", f64::from(eps))?;
                decay("the embeddings' weight_decay", f64::from(weight_decay))?;
            }
            RowOptimizerConfig::Adagrad {
                lr,
                initial_accumulator,
                eps,
                weight_decay,
            } => {
                positive("the embeddings' learning rate", f64::from(lr))?;
                decay(
                    "the embeddings' initial_accumulator",
                    f64::from(initial_accumulator),
                )?;
                positive("the embeddings' eps", f64::from(eps))?;
                decay("the embeddings' weight_decay", f64::from(weight_decay))?;
            }
        }
        Ok(())
    }
}
