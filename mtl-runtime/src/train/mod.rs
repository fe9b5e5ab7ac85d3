//! The trainer: `fit`, `evaluate`, `predict` for any `mtl_model!` model.
//!
//! One step: gather the batch's embedding rows and continuous values into the
//! `[B, INPUT_WIDTH]` input, run the network's training pass, compute each task's weighted loss
//! (see [`crate::loss`]), sum `Σ λ_t L_t`, one backward, Adam on the dense parameters, and
//! the input's gradient scattered into the touched embedding rows (see [`crate::embedding`]).
//! On the CPU the step runs on the fused engine ([`crate::fused`], every core); on other devices
//! (or with `TrainConfig::with_fused_cpu(false)`) on the generic dfdx path. A non-finite loss or
//! gradient stops training with an error naming the task or parameter and the step, before that
//! step changes any weight.
//!
//! Training reports the loss per epoch (and per task); the full metrics come from `evaluate`
//! (on the validation data after every epoch when it is given).
//!
//! Files: `config` (settings), `fit` (the epoch loop), `step` (one step, both paths),
//! `evaluate` (metrics and predictions), `checkpoint`, `dense_adam` (the generic path's dense
//! optimizer), `predict` (predictions to Parquet), `report` (reports and history).

mod balance;
mod checkpoint;
mod config;
mod curves;
mod dense_adam;
mod evaluate;
mod fit;
mod html;
mod predict;
mod progress;
mod report;
mod schedule;
mod step;

use dfdx::prelude::*;

pub use crate::fused::StepSync;
pub use config::{EarlyStopping, LrSchedule, Monitor, ReduceOnPlateau, TrainConfig};
pub use html::RunReport;
pub use report::{EpochRecord, GateWeights, History, Report};

pub(crate) use self::checkpoint::temporary_path;
pub(crate) use self::dense_adam::is_kernel;
use self::dense_adam::DenseAdam;
pub use self::evaluate::joint_output_name;
pub(crate) use self::predict::{with_predictions, ParquetSink};
use self::schedule::Scheduler;
use crate::data::Layout;
use crate::embedding::{Embeddings, InputBinding, RowOptimizer};
use crate::error::{Error, Result};
use crate::fused::Engine;
use crate::loss::TaskBinding;
use crate::model::{MtlModel, TaskNetwork};
use crate::spec::ModelSpec;

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
    dense_optimizer: DenseAdam<D>,
    pub config: TrainConfig,
    loss_weights: Vec<f32>,
    /// Per task: (metrics, weighted metrics), DSL values with config overrides applied.
    metrics: Vec<(Vec<&'static str>, Vec<&'static str>)>,
    /// Per task: class weights, DSL values with config overrides applied.
    class_weights: Vec<Option<(f32, f32)>>,
    /// Optimizer steps taken, over every `fit`.
    step: u64,
    /// Epochs trained, over every `fit` (epoch-based schedules continue from it).
    epochs_done: usize,
    scheduler: Scheduler,
    /// The fused CPU engine, once [`Trainer::prepare`] has built it.
    engine: Option<Engine>,
    /// Learnt loss weights, under `loss_balancing: uncertainty`.
    balance: Option<balance::Balance>,
    /// Per task, the task and its `given` parents (ESMM chains).
    chains: Vec<Vec<usize>>,
    /// Data-parallel training: how each step's gradients are combined across processes.
    sync: Option<std::sync::Arc<dyn crate::fused::StepSync>>,
}

/// Whether `network` has a trainable dense parameter the spec counts as shared by every task.
fn network_shares_parameters<M, D>(network: &M::Built, spec: &ModelSpec) -> Result<bool>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D>,
    D: Device<f32>,
{
    let names = crate::fused::trainable_tensors(network)
        .map_err(|e| Error::invalid(format!("device error: {e:?}")))?;
    Ok(names.iter().any(|(n, dims)| {
        let len = dims.iter().product();
        spec.shared_part(n, len).is_some_and(|r| !r.is_empty())
    }))
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

fn resolve_class_weights(
    spec: &ModelSpec,
    overrides: &[(String, (f32, f32))],
) -> Result<Vec<Option<(f32, f32)>>> {
    let mut weights: Vec<Option<(f32, f32)>> = spec.tasks.iter().map(|t| t.class_weights).collect();
    for (key, w) in overrides {
        let i = task_index(spec, key, "class weights")?;
        if spec.tasks[i].kind != crate::spec::TaskKind::Binary {
            return Err(Error::invalid(format!(
                "class weights for `{key}`, which is not a binary task: class weights weigh the \
                 0 and 1 labels of a binary task"
            )));
        }
        weights[i] = Some(*w);
    }
    Ok(weights)
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
    /// Builds the network and the tables, both initialised from `config.seed` (the dense
    /// initialisation does not depend on the device or its RNG).
    pub fn new(device: D, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        crate::embedding::check_memory(M::SPEC, &config.embeddings)?;
        let embeddings = Embeddings::new(M::SPEC, config.seed)?;
        Self::build_with(device, config, embeddings)
    }

    /// A trainer that only scores (`Predictor`): no memory check (it counts optimizer state
    /// and gradients scoring never allocates), and tables that hold no weights until a model
    /// file's or another trainer's are put in.
    pub(crate) fn build_unfilled(device: D, config: TrainConfig) -> Result<Self> {
        let embeddings = Embeddings::unfilled(M::SPEC)?;
        Self::build_with(device, config, embeddings)
    }

    fn build_with(device: D, config: TrainConfig, embeddings: Embeddings) -> Result<Self> {
        let spec = M::SPEC;
        let mut network = M::try_build_on_device(&device)
            .map_err(|e| Error::invalid(format!("cannot build the network: {e:?}")))?;
        // One seed fixes the dense initialisation too, on every device (not the device's RNG).
        if let Some(values) = <M::Built as TaskNetwork<f32, D>>::seeded_parameters(config.seed) {
            let values = values
                .map_err(|e| Error::invalid(format!("cannot initialise the network: {e}")))?;
            let missing = crate::model::load_named_parameters(&mut network, &values)
                .map_err(Self::device_err)?;
            if !missing.is_empty() {
                return Err(Error::invalid(format!(
                    "the seeded initialisation lacks parameters {}",
                    missing.join(", ")
                )));
            }
        }
        let dense_optimizer = DenseAdam::new(
            config.dense_lr as f32,
            [config.dense_betas[0] as f32, config.dense_betas[1] as f32],
            config.dense_eps as f32,
            config.dense_weight_decay as f32,
        );
        let mut loss_weights = resolve_loss_weights(spec, &config.loss_weights)?;
        let balance = match spec.loss_balancing {
            crate::spec::LossBalancing::Fixed => None,
            learnt => {
                if let Some((task, _)) = config.loss_weights.first() {
                    return Err(Error::invalid(format!(
                        "a loss weight for `{task}`, but model `{}` learns its loss weights \
                         (`loss_balancing: {}`); remove `with_loss_weight`",
                        spec.name,
                        if learnt == crate::spec::LossBalancing::Uncertainty {
                            "uncertainty"
                        } else {
                            "gradnorm"
                        }
                    )));
                }
                let monitors = config
                    .early_stopping
                    .iter()
                    .map(|e| &e.monitor)
                    .chain(config.reduce_on_plateau.iter().map(|p| &p.monitor));
                for m in monitors {
                    if m.name == "loss" || m.name == "loss_batch" {
                        return Err(Error::invalid(format!(
                            "`{}` is monitored, but model `{}` learns its loss weights, so the \
                             loss is not comparable from epoch to epoch; monitor \
                             `task_loss_sum` (the plain sum of the task losses) or a metric",
                            m.name, spec.name
                        )));
                    }
                }
                let b = match learnt {
                    crate::spec::LossBalancing::GradNorm { alpha_milli } => {
                        if !network_shares_parameters::<M, D>(&network, spec)? {
                            return Err(Error::invalid(format!(
                                "model `{}` uses `loss_balancing: gradnorm`, which balances the \
                                 tasks' gradient norms on the shared dense parameters, but its \
                                 body ({}) shares none; use an MLP or mixture-of-experts body",
                                spec.name, spec.body
                            )));
                        }
                        balance::Balance::GradNorm(balance::GradNorm::new(
                            spec.tasks.len(),
                            f64::from(alpha_milli) / 1000.0,
                            config.dense_betas,
                            config.dense_eps,
                        ))
                    }
                    _ => balance::Balance::Uncertainty(balance::Uncertainty::new(
                        spec,
                        config.dense_betas,
                        config.dense_eps,
                    )),
                };
                loss_weights = b.weights();
                Some(b)
            }
        };
        let metrics = resolve_metrics(spec, &config)?;
        let class_weights = resolve_class_weights(spec, &config.class_weights)?;
        let scheduler = Scheduler::new(
            config.schedule.clone(),
            config.warmup_steps,
            config.reduce_on_plateau.clone(),
            config.dense_lr,
        );
        Ok(Trainer {
            device,
            network,
            embeddings,
            row_optimizer: RowOptimizer::new(config.embeddings),
            dense_optimizer,
            config,
            loss_weights,
            metrics,
            class_weights,
            step: 0,
            epochs_done: 0,
            scheduler,
            engine: None,
            balance,
            chains: (0..spec.tasks.len()).map(|t| spec.chain(t)).collect(),
            sync: None,
        })
    }

    /// Trains data-parallel: every step's gradients and losses are combined through `sync`
    /// (e.g. the MPI `Cluster` of `mtl::distributed`, under `mpirun`), so that every
    /// process applies the same update, that of the mean loss over all processes' rows. Each
    /// process runs the same program on its own share of the training rows with batch size
    /// `B / processes` (see `mtl::distributed`, the `mpi` feature). Runs on the fused CPU engine; GradNorm (whose
    /// per-task norms would differ between processes) is refused.
    pub fn distribute(&mut self, sync: std::sync::Arc<dyn crate::fused::StepSync>) -> Result<()> {
        if !self.uses_fused_engine() {
            return Err(Error::invalid(format!(
                "data-parallel training runs on the fused CPU engine, which this trainer does \
                 not use ({})",
                self.engine_name()
            )));
        }
        if self.config.embeddings_l2 > 0.0 {
            return Err(Error::invalid(
                "the embedding L2 penalty cannot train data-parallel yet: it is a sum over each \
                 process's batch, which the combined gradient would rescale; set \
                 embeddings_l2 to 0 (dense_l2 works)",
            ));
        }
        if matches!(self.balance, Some(balance::Balance::GradNorm(_))) {
            return Err(Error::invalid(
                "GradNorm cannot train data-parallel yet: its per-task gradient norms are not \
                 combined across processes; use `loss_balancing: fixed` or `uncertainty`",
            ));
        }
        if let Some(engine) = &mut self.engine {
            engine.set_sync(Some(sync.clone()));
        }
        self.sync = Some(sync);
        Ok(())
    }

    /// Gets training ready ahead of `fit`: allocates the optimizer state of every table row,
    /// maps all of its memory now (so the first epoch does not pay for page faults) and starts
    /// the fused CPU engine when it will be used. `fit` does the same without mapping the
    /// state up front: memory of rows never touched then costs nothing, which matters for huge,
    /// sparsely used tables. Benchmarks call `prepare` before starting the clock, as PyTorch
    /// benchmarks pre-allocate their optimizer state.
    pub fn prepare(&mut self) -> Result<()> {
        self.start()?;
        self.row_optimizer.prefault();
        Ok(())
    }

    /// Allocates the row-optimizer state (lazily mapped) and starts the fused engine if used.
    fn start(&mut self) -> Result<()> {
        self.row_optimizer.ensure_state(&self.embeddings.tables)?;
        if self.engine.is_none() && self.uses_fused_engine() {
            let mut engine = Engine::new(M::SPEC, &self.network, self.config.threads)?;
            engine.set_sync(self.sync.clone());
            self.engine = Some(engine);
        }
        Ok(())
    }

    /// Whether training runs on the fused CPU engine: the device is the CPU, the config allows
    /// it and the model has nothing the engine lacks (see [`Trainer::engine_name`]).
    fn uses_fused_engine(&self) -> bool {
        self.config.fused_cpu
            && std::any::TypeId::of::<D>() == std::any::TypeId::of::<Cpu>()
            && crate::fused::unsupported(M::SPEC).is_none()
    }

    /// Which path trains this model: `"fused-cpu"` or `"generic"` (with the reason when the
    /// fused engine was asked for but cannot run the model).
    pub fn engine_name(&self) -> String {
        if self.uses_fused_engine() {
            "fused-cpu".into()
        } else if let (true, Some(why)) =
            (self.config.fused_cpu, crate::fused::unsupported(M::SPEC))
        {
            format!("generic ({why})")
        } else {
            "generic".into()
        }
    }

    /// Worker threads a training step uses.
    pub fn threads(&self) -> usize {
        match &self.engine {
            Some(e) => e.threads(),
            None if self.uses_fused_engine() => match self.config.threads {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            },
            None => 1,
        }
    }

    /// A run report of `history` for this trainer's model and settings (add evaluations with
    /// [`RunReport::with_evaluation`], write it with [`RunReport::write`]).
    pub fn run_report(&self, title: &str, history: &History) -> RunReport
    where
        M::Built: std::fmt::Display,
    {
        RunReport::new(title, self.network.to_string(), &self.config, history)
            .with_setting("engine", self.engine_name())
            .with_setting("threads", self.threads())
    }

    /// The loss weight λ of every task, in task order (DSL values with overrides applied;
    /// under `loss_balancing: uncertainty`, the current learnt weights `c_t·exp(−s_t)`).
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
                .zip(&self.class_weights)
                .map(|(t, &class_weights)| {
                    let mut b = TaskBinding::bind(t, layout)?;
                    b.spec.class_weights = class_weights;
                    Ok(b)
                })
                .collect::<Result<_>>()?,
        })
    }

    /// Sets this step's learning rates (dense and embeddings) from the schedule; returns the
    /// dense rate.
    fn apply_schedule(&mut self, epoch: usize) -> f64 {
        let factor = self.scheduler.factor(self.step, epoch);
        let dense = self.config.dense_lr * factor;
        self.dense_optimizer.lr = dense as f32;
        let embeddings = f64::from(self.config.embeddings.lr()) * factor;
        self.row_optimizer.config = self.config.embeddings.with_lr(embeddings as f32);
        dense
    }

    fn device_err(e: impl std::fmt::Debug) -> Error {
        Error::invalid(format!("device error: {e:?}"))
    }
}

/// What [`Trainer::step_gradients`] returns.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct StepGradients {
    /// Each task's loss `Σ wᵢ·ℓᵢ / B`.
    pub losses: Vec<f32>,
    /// Every trainable dense tensor's gradient, by parameter name.
    pub dense: std::collections::BTreeMap<String, Vec<f32>>,
    /// The gradient of the `[B, INPUT_WIDTH]` input (row-major).
    pub input: Vec<f32>,
}

/// Reused buffers of a training or evaluation loop.
#[derive(Debug, Default)]
pub struct Scratch {
    input: Vec<f32>,
    targets: Vec<f32>,
    weights: Vec<f32>,
}
