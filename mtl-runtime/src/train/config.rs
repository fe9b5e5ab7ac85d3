//! How to train: [`TrainConfig`] (optimizers, batches, overrides, threads) and
//! [`EarlyStopping`].

use crate::embedding::RowOptimizerConfig;

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
    /// Worker threads of the fused CPU engine (default 0: one per core). Results do not depend
    /// on it: the engine cuts batches into chunks by batch size alone and sums in chunk order.
    pub threads: usize,
    /// Train with the fused CPU engine when the device is the CPU (default `true`; see
    /// `mtl_runtime::fused`). `false` uses the device-generic dfdx path, as on CUDA. Models with
    /// batch normalisation or a custom body always use the generic path.
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
            loss_weights: Vec::new(),
            metrics: Vec::new(),
            weighted_metrics: Vec::new(),
            early_stopping: None,
            progress: false,
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
