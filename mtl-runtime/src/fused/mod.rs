//! The fused CPU engine: a training step built for the shapes `mtl_model!` declares, on every
//! core.
//!
//! The dfdx network a model generates is the reference: it defines the parameters (names,
//! shapes, initialisation), runs on any device and is what checkpoints, `evaluate` and user
//! code read. On the CPU, training instead runs this engine over the same parameters:
//!
//! 1. The batch is cut into chunks of at most [`CHUNK_ROWS`] rows. Each core takes chunks and,
//!    for each, reads the rows straight from the dataset's columns ([`BatchView`], no batch
//!    copy), runs the forward pass, the losses and the backward pass (`plan::Plan`, executed by
//!    `exec`) with single-threaded matrix products: a core never waits for another inside a
//!    step phase.
//! 2. The chunks' parameter gradients are summed in chunk order, every gradient is checked to be
//!    finite, and the embedding gradients are summed per distinct id, split over the cores by
//!    id. The cut into chunks depends on the batch size alone, so a run is reproducible bit for
//!    bit from its seed whatever the number of threads (a batch of `B` rows keeps at most
//!    `max(4, B / 1024)` threads busy).
//! 3. Only then Adam updates the dense parameters (each core a range) and the row optimizer the
//!    touched rows (each core its ids). A non-finite loss or gradient stops the step before any
//!    weight moves.
//!
//! Compared with the generic path (dfdx's tape: one allocation and one pass per operation, a
//! thread hand-off inside every matrix product), layers that read the same input are one
//! matrix product (a level's experts and every gate's first layer), bias, activation and
//! dropout are one pass, buffers live as long as the engine, and the step uses all cores.
//! Models with batch normalisation, a custom body or an AITM transfer train on the generic path.

mod adam;
mod exec;
mod gemm;
mod input;
mod kernels;
mod params;
pub(crate) mod plan;
mod sparse;

use std::collections::HashMap;

use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

pub(crate) use adam::AdamStep;
pub(crate) use params::trainable_tensors;

use self::exec::Workspace;
use self::input::ChunkRows;
use self::plan::Plan;
use self::sparse::{ChunkGrads, Owner, TableRows};
use crate::data::BatchView;
use crate::embedding::{Embeddings, InputBinding, RowOptimizer};
use crate::error::{Error, Result};
use crate::loss::{row_loss_and_grad, TaskBinding};
use crate::spec::ModelSpec;

/// The most rows one chunk holds. Larger chunks mean fewer, larger matrix products and fewer
/// gradients to sum; measured on the reference models (512, 1024, 2048 rows), 1024 was fastest.
pub const CHUNK_ROWS: usize = 1024;

/// The fewest rows a chunk of a small batch is cut to.
pub const MIN_CHUNK_ROWS: usize = 256;

/// Why `spec` trains on the generic path instead of this engine, if it does.
pub(crate) fn unsupported(spec: &ModelSpec) -> Option<String> {
    plan::unsupported(spec)
}

/// Every owner's ids and row sums of table `t`, ids ascending (what a [`StepSync`] exchanges).
fn merged_table(owners: &[Owner], t: usize, dim: usize) -> (Vec<u32>, Vec<f32>) {
    let mut rows: Vec<(u32, &[f32])> = owners
        .iter()
        .flat_map(|o| {
            let (ids, sums) = o.table(t);
            ids.iter().copied().zip(sums.chunks(dim.max(1)))
        })
        .collect();
    rows.sort_unstable_by_key(|&(id, _)| id);
    let ids = rows.iter().map(|&(id, _)| id).collect();
    let sums = rows.iter().flat_map(|&(_, s)| s.iter().copied()).collect();
    (ids, sums)
}

/// Gives each owner its ids (`id mod owners`) of table `t` back from a combined list.
fn spread_table(owners: &mut [Owner], t: usize, dim: usize, ids: Vec<u32>, sums: Vec<f32>) {
    let n = owners.len();
    let mut parts: Vec<(Vec<u32>, Vec<f32>)> = vec![(Vec::new(), Vec::new()); n];
    for (id, s) in ids.into_iter().zip(sums.chunks(dim.max(1))) {
        let part = &mut parts[id as usize % n];
        part.0.push(id);
        part.1.extend_from_slice(s);
    }
    for (o, (ids, sums)) in owners.iter_mut().zip(parts) {
        o.set_table(t, ids, sums);
    }
}

/// One chunk's results, read by the phases after the chunks' passes; reused from step to step.
/// (The chunk's activation buffers belong to the worker thread that ran it: a thread reuses one
/// workspace for all its chunks, so its buffers stay warm in cache whatever the batch size.)
#[derive(Default)]
struct Chunk {
    rows: usize,
    /// The input's gradient, `[C, INPUT_WIDTH]` (swapped in and out of the workspace).
    input_grad: Vec<f32>,
    /// This chunk's parameter gradients (the engine's flat layout).
    param_grad: Vec<f32>,
    /// Its ids, targets and weights.
    read: ChunkRows,
    /// `Σ wᵢ·ℓᵢ` per task over its rows.
    losses: Vec<f64>,
    /// The embedding L2 penalty over its rows.
    regularization: f64,
    error: Option<Error>,
}

/// Combines one step's gradients across processes before any weight moves: data-parallel
/// training (`distributed`, the `mpi` feature). Every process calls it once per step, with its own part
/// of the global batch.
pub trait StepSync: Send + Sync {
    /// `rows`: this process's batch rows; `dense`: the flat gradient of its mean loss;
    /// `sparse`: per table `(ids, sums)`, its summed row gradients (`dims[t]` values per id, ids
    /// ascending); `losses`: its mean task losses. On return each holds the global value (the
    /// gradient and losses of the mean loss over every process's rows), identical on every
    /// process, ids ascending.
    fn combine(
        &self,
        rows: usize,
        dense: &mut [f32],
        sparse: &mut [(Vec<u32>, Vec<f32>)],
        dims: &[usize],
        losses: &mut [f32],
    ) -> Result<()>;

    /// This process's index among the processes (each draws its own dropout masks).
    fn rank(&self) -> usize;

    /// Whether every process passed the same `value` (the same answer on every process).
    fn agree(&self, value: f64) -> Result<bool>;

    /// The number of steps every process takes this epoch, from this process's `local` batch
    /// count (the fewest of all: synchronous steps need a partner on every process).
    fn agree_steps(&self, local: usize) -> Result<usize>;

    /// Called instead of [`StepSync::combine`] when this process cannot take part in the step
    /// (its error is `error`): the other processes would wait forever, so the job must end.
    /// Used for every error a process can meet alone inside a step.
    fn fail(&self, error: &Error) -> Error;
}

/// Each task's loss, every parameter's gradient by name, the input's gradient.
pub(crate) type ProbedGradients = (Vec<f32>, Vec<(String, Vec<f32>)>, Vec<f32>);

/// What one training step reads.
pub(crate) struct StepInput<'a> {
    pub view: BatchView<'a>,
    pub binding: &'a InputBinding,
    pub tasks: &'a [TaskBinding],
    pub loss_weights: &'a [f32],
    /// Per task, the task and its `given` parents (`ModelSpec::chain`).
    pub chains: &'a [Vec<usize>],
    /// The step's index (for error messages and the dropout stream).
    pub step: u64,
    pub seed: u64,
    /// Merlin's `l2_batch_regularization_factor` on the looked-up vectors.
    pub embeddings_l2: f32,
}

/// The engine of one model: its plan, the flat parameters and Adam moments, the thread pool
/// and every buffer a step needs.
pub(crate) struct Engine {
    plan: Plan,
    params: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    grad: Vec<f32>,
    /// Every trainable tensor of the network: name → offset; and `(name, offset, len)` in
    /// flat order.
    index: HashMap<String, usize>,
    entries: Vec<(String, usize, usize)>,
    pool: rayon::ThreadPool,
    threads: usize,
    /// One workspace per worker thread (indexed by the pool's thread index).
    workspaces: Vec<std::sync::Mutex<Workspace>>,
    chunks: Vec<Chunk>,
    owners: Vec<Owner>,
    /// Data-parallel training: how gradients are combined across processes.
    sync: Option<std::sync::Arc<dyn StepSync>>,
}

impl Engine {
    /// Combines every step's gradients through `sync` (data-parallel training).
    pub fn set_sync(&mut self, sync: Option<std::sync::Arc<dyn StepSync>>) {
        self.sync = sync;
    }

    /// The engine of `spec` for `network` (whose parameters it copies by name), on `threads`
    /// worker threads (0: one per core).
    pub fn new<M: TensorCollection<f32, D>, D: Device<f32>>(
        spec: &ModelSpec,
        network: &M,
        threads: usize,
    ) -> Result<Engine> {
        let plan = plan::build(spec).map_err(|why| {
            Error::invalid(format!("the fused CPU engine cannot run this model: {why}"))
        })?;
        let tensors = params::trainable_tensors(network)
            .map_err(|e| Error::invalid(format!("device error: {e:?}")))?;
        let dims: HashMap<&str, &Vec<usize>> =
            tensors.iter().map(|(n, d)| (n.as_str(), d)).collect();
        let mut index = HashMap::new();
        let mut entries = Vec::new();
        for p in &plan.params {
            let shape_ok = match dims.get(p.name.as_str()) {
                Some(d) if d.len() == 2 => d[0] == p.rows && d[1] == p.cols,
                Some(d) if d.len() == 1 => d[0] == p.rows && p.cols == 1,
                _ => false,
            };
            if !shape_ok {
                return Err(Error::invalid(format!(
                    "internal error: the fused engine's parameter `{}` ({} x {}) does not match \
                     the network ({:?}); train with `TrainConfig::with_fused_cpu(false)` and \
                     report this",
                    p.name,
                    p.rows,
                    p.cols,
                    dims.get(p.name.as_str())
                )));
            }
            index.insert(p.name.clone(), p.offset);
            entries.push((p.name.clone(), p.offset, p.len()));
        }
        // Tensors the forward pass does not use (a metrics-only gate) still get Adam's update
        // with a zero gradient, as on the generic path.
        let mut total = plan.num_params;
        for (name, d) in &tensors {
            if !index.contains_key(name) {
                let len = d.iter().product();
                index.insert(name.clone(), total);
                entries.push((name.clone(), total, len));
                total += len;
            }
        }
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("mtl-worker-{i}"))
            .build()
            .map_err(|e| Error::invalid(format!("cannot start {threads} worker threads: {e}")))?;
        let mut engine = Engine {
            sync: None,
            plan,
            params: vec![0.0; total],
            m: vec![0.0; total],
            v: vec![0.0; total],
            grad: vec![0.0; total],
            index,
            entries,
            pool,
            threads,
            workspaces: (0..threads).map(|_| Default::default()).collect(),
            chunks: Vec::new(),
            owners: (0..threads).map(|_| Owner::default()).collect(),
        };
        engine.load_params(network)?;
        Ok(engine)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Copies the network's parameters in.
    pub fn load_params<M: TensorCollection<f32, D>, D: Device<f32>>(
        &mut self,
        network: &M,
    ) -> Result<()> {
        params::read_params(network, &self.index, &mut self.params)
            .map_err(|e| Error::invalid(format!("device error: {e:?}")))
    }

    /// Copies the parameters back into the network.
    pub fn store_params<M: TensorCollection<f32, D>, D: Device<f32>>(
        &self,
        network: &mut M,
    ) -> Result<()> {
        params::write_params(network, &self.index, &self.params)
            .map_err(|e| Error::invalid(format!("device error: {e:?}")))
    }

    /// Adam's moments by parameter name (missing names start at zero).
    pub fn load_moments<'a>(&mut self, moments: impl Fn(&str) -> Option<(&'a [f32], &'a [f32])>) {
        for (name, o, len) in &self.entries {
            let (m, v) = (&mut self.m[*o..o + len], &mut self.v[*o..o + len]);
            match moments(name) {
                Some((sm, sv)) if sm.len() == *len && sv.len() == *len => {
                    m.copy_from_slice(sm);
                    v.copy_from_slice(sv);
                }
                _ => {
                    m.fill(0.0);
                    v.fill(0.0);
                }
            }
        }
    }

    /// Adam's moments of every parameter: `(name, m, v)`.
    pub fn moments(&self) -> impl Iterator<Item = (&str, &[f32], &[f32])> {
        self.entries
            .iter()
            .map(|(n, o, len)| (n.as_str(), &self.m[*o..o + len], &self.v[*o..o + len]))
    }

    /// How many chunks a batch of `b` rows is cut into: about four (enough to keep a few cores
    /// busy) of [`MIN_CHUNK_ROWS`] to [`CHUNK_ROWS`] rows, and more of [`CHUNK_ROWS`] rows for
    /// large batches. A function of the batch size alone, so that every sum, and so the whole
    /// run, is the same whatever the number of threads.
    fn chunk_count(b: usize) -> usize {
        let rows = (b / 4).clamp(MIN_CHUNK_ROWS, CHUNK_ROWS);
        b.div_ceil(rows).max(1)
    }

    /// Phase 1: every chunk's forward and backward pass. Returns the number of chunks, each
    /// task's loss `Σ wᵢ·ℓᵢ / B` and the weighted total; a non-finite loss is an error.
    fn run_chunks(
        &mut self,
        input: &StepInput,
        embeddings: &Embeddings,
    ) -> Result<(usize, Vec<f32>, f32)> {
        let b = input.view.len();
        let n = Engine::chunk_count(b);
        if self.chunks.len() < n {
            self.chunks.resize_with(n, Chunk::default);
        }
        let total_params = self.params.len();
        let Engine {
            plan,
            params,
            pool,
            chunks,
            workspaces,
            ..
        } = self;
        let (plan, params, tables) = (&*plan, &params[..], &embeddings.tables);
        let workspaces = &workspaces[..];
        pool.install(|| {
            chunks[..n].par_iter_mut().enumerate().for_each(|(i, ch)| {
                let (r0, r1) = (i * b / n, (i + 1) * b / n);
                let view = input.view.sub(r0, r1 - r0);
                let slot = rayon::current_thread_index().unwrap_or(0) % workspaces.len();
                // Uncontended: a thread only locks its own workspace.
                let mut ws = match workspaces[slot].lock() {
                    Ok(ws) => ws,
                    Err(poisoned) => poisoned.into_inner(),
                };
                ch.error = ch
                    .run(
                        &mut ws,
                        plan,
                        params,
                        total_params,
                        &view,
                        input,
                        tables,
                        b,
                        i,
                    )
                    .err();
            })
        });
        if let Some(e) = chunks[..n].iter_mut().find_map(|c| c.error.take()) {
            return Err(e);
        }
        let mut losses = vec![0.0f32; input.tasks.len()];
        let mut total = 0.0f32;
        for (t, task) in input.tasks.iter().enumerate() {
            // Checked as the f32 value it is reported as (as the generic path computes it).
            let l = (chunks[..n].iter().map(|c| c.losses[t]).sum::<f64>() / b as f64) as f32;
            if !l.is_finite() {
                return Err(Error::invalid(format!(
                    "the loss of task `{}` is {l} at step {}; training stopped before this step \
                     changed any weight (check the data for extreme values, lower the learning \
                     rate)",
                    task.spec.name, input.step
                )));
            }
            losses[t] = l;
            total += input.loss_weights[t] * l;
        }
        Ok((n, losses, total))
    }

    /// Sums the chunks' dense gradients into `grad` (in chunk order), `range` values per task;
    /// returns whether every sum is finite.
    fn sum_dense(grad: &mut [f32], chunks: &[Chunk], range: usize) -> bool {
        grad.par_chunks_mut(range)
            .enumerate()
            .map(|(j, g)| {
                let (o, len) = (j * range, g.len());
                g.copy_from_slice(&chunks[0].param_grad[o..o + len]);
                for c in &chunks[1..] {
                    for (s, x) in g.iter_mut().zip(&c.param_grad[o..o + len]) {
                        *s += x;
                    }
                }
                g.iter().all(|x| x.is_finite())
            })
            .reduce(|| true, |a, b| a && b)
    }

    /// One training step: returns each task's loss `Σ wᵢ·ℓᵢ / B`, the total (weighted task
    /// losses plus the regularization) and the regularization. A non-finite loss or gradient is
    /// an error and leaves every weight as it was.
    pub fn step(
        &mut self,
        input: &StepInput,
        embeddings: &mut Embeddings,
        row_optimizer: &mut RowOptimizer,
        mut adam: AdamStep,
    ) -> Result<(Vec<f32>, f32, f32)> {
        // With a sync every process has rows in every step (the trainer agrees on the step
        // count), so only a lone process sees an empty view.
        if input.view.is_empty() && self.sync.is_none() {
            return Ok((vec![0.0; input.tasks.len()], 0.0, 0.0));
        }
        let (n, mut losses, mut total) = match self.run_chunks(input, embeddings) {
            Ok(r) => r,
            Err(e) => {
                return Err(match &self.sync {
                    Some(s) => s.fail(&e),
                    None => e,
                })
            }
        };
        let Engine {
            plan,
            params,
            m,
            v,
            grad,
            pool,
            chunks,
            owners,
            entries,
            sync,
            ..
        } = self;

        // Phase 2: sum the gradients (dense: in chunk order; embeddings: per distinct id) and
        // check that all are finite, before anything moves.
        let threads = owners.len();
        let range = params.len().div_ceil(threads).max(1024);
        let chunk_grads: Vec<ChunkGrads> = chunks[..n]
            .iter()
            .map(|c| ChunkGrads {
                rows: c.rows,
                ids: &c.read.ids,
                input_grad: &c.input_grad,
            })
            .collect();
        let chunks = &chunks[..n];
        let features = &input.binding.features;
        let input_width = plan.widths[0];
        let config = row_optimizer.config;
        let rows = match TableRows::new(&mut embeddings.tables, row_optimizer) {
            Ok(rows) => rows,
            Err(e) => {
                return Err(match sync {
                    Some(s) => s.fail(&e),
                    None => e,
                })
            }
        };
        let tables = &embeddings.tables;
        let (dense_ok, sparse_ok) = pool.install(|| {
            rayon::join(
                || Engine::sum_dense(grad, chunks, range),
                || {
                    owners
                        .par_iter_mut()
                        .enumerate()
                        .map(|(p, o)| {
                            o.accumulate(
                                p,
                                threads,
                                &chunk_grads,
                                features,
                                tables,
                                &rows,
                                input_width,
                            )
                        })
                        .reduce(|| true, |a, b| a && b)
                },
            )
        });
        drop(chunk_grads);
        // Data-parallel: the global gradients, identical on every process, before the checks
        // (so that every process takes the same decision).
        let (dense_ok, sparse_ok) = match sync {
            None => (dense_ok, sparse_ok),
            Some(sync) => {
                let dims: Vec<usize> = tables.iter().map(|t| t.dim).collect();
                let mut sparse: Vec<(Vec<u32>, Vec<f32>)> = (0..tables.len())
                    .map(|t| merged_table(owners, t, dims[t]))
                    .collect();
                sync.combine(input.view.len(), grad, &mut sparse, &dims, &mut losses)?;
                for (t, (ids, sums)) in sparse.into_iter().enumerate() {
                    spread_table(owners, t, dims[t], ids, sums);
                }
                total = losses
                    .iter()
                    .zip(input.loss_weights)
                    .map(|(l, w)| w * l)
                    .sum();
                let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
                let sparse_ok =
                    (0..tables.len()).all(|t| owners.iter().all(|o| finite(o.table(t).1)));
                (finite(grad), sparse_ok)
            }
        };
        if !dense_ok {
            let at = grad.iter().position(|g| !g.is_finite()).unwrap_or(0);
            let name = entries
                .iter()
                .find(|(_, o, len)| (*o..o + len).contains(&at))
                .map_or("?", |(n, _, _)| n.as_str());
            return Err(Error::invalid(format!(
                "the gradient of `{name}` is not finite at step {}; training stopped before this \
                 step changed any weight (lower the learning rate, check the data)",
                input.step
            )));
        }
        if !sparse_ok {
            return Err(Error::invalid(format!(
                "an embedding gradient is not finite at step {}; training stopped before this \
                 step changed any weight (lower the learning rate, check the data)",
                input.step
            )));
        }

        // Regularization and clipping, on the summed gradients.
        let mut regularization: f64 = chunks.iter().map(|c| c.regularization).sum();
        if adam.l2 > 0.0 {
            let l2 = adam.l2;
            let mut kernel_sq = 0.0f64;
            for (name, o, len) in entries.iter() {
                if crate::train::is_kernel(name) {
                    let (w, g) = (&params[*o..o + len], &mut grad[*o..o + len]);
                    for (g, w) in g.iter_mut().zip(w) {
                        *g += 2.0 * l2 * w;
                        kernel_sq += f64::from(*w) * f64::from(*w);
                    }
                }
            }
            regularization += f64::from(l2) * kernel_sq;
        }
        if let Some(max_norm) = adam.clip {
            let (dense_sq, rows_sq) = pool.install(|| {
                rayon::join(
                    || {
                        grad.par_iter()
                            .map(|g| f64::from(*g) * f64::from(*g))
                            .sum::<f64>()
                    },
                    || owners.par_iter().map(Owner::norm_sq).sum::<f64>(),
                )
            });
            let norm = (dense_sq + rows_sq).sqrt();
            if norm > f64::from(max_norm) {
                let scale = (f64::from(max_norm) / norm) as f32;
                adam.grad_scale = scale;
                pool.install(|| owners.par_iter_mut().for_each(|o| o.scale(scale)));
            }
        }

        // Phase 3: Adam on the dense parameters, the row optimizer on the touched rows.
        let grad = &grad[..];
        pool.install(|| {
            rayon::join(
                || {
                    params
                        .par_chunks_mut(range)
                        .zip(m.par_chunks_mut(range))
                        .zip(v.par_chunks_mut(range))
                        .zip(grad.par_chunks(range))
                        .for_each(|(((w, m), v), g)| adam.apply(w, m, v, g))
                },
                || owners.par_iter().for_each(|o| o.apply(&rows, &config)),
            )
        });
        let regularization = regularization as f32;
        Ok((losses, total + regularization, regularization))
    }

    /// The gradients a step would apply, without applying them: each task's loss, every dense
    /// parameter's gradient by name, and the input's gradient `[B, INPUT_WIDTH]`. For checking
    /// the engine against the generic path.
    pub fn gradients(
        &mut self,
        input: &StepInput,
        embeddings: &Embeddings,
    ) -> Result<ProbedGradients> {
        let (n, losses, _) = self.run_chunks(input, embeddings)?;
        let range = self.params.len().max(1);
        let (grad, chunks) = (&mut self.grad, &self.chunks[..n]);
        self.pool.install(|| Engine::sum_dense(grad, chunks, range));
        let dense = self
            .entries
            .iter()
            .map(|(name, o, len)| (name.clone(), self.grad[*o..o + len].to_vec()))
            .collect();
        let input_grad = self.chunks[..n]
            .iter()
            .flat_map(|c| c.input_grad.iter().copied())
            .collect();
        Ok((losses, dense, input_grad))
    }
}

impl Chunk {
    /// Gathers, runs forward, losses and backward for the rows of `view` (rows of a batch of
    /// `batch_rows`).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        ws: &mut Workspace,
        plan: &Plan,
        params: &[f32],
        total_params: usize,
        view: &BatchView,
        input: &StepInput,
        tables: &[crate::embedding::EmbeddingTable],
        batch_rows: usize,
        index: usize,
    ) -> Result<()> {
        let rows = view.len();
        self.rows = rows;
        ws.resize(plan, rows);
        self.param_grad.resize(total_params, 0.0);
        input::read_chunk(
            view,
            &input.binding.features,
            input.tasks,
            tables,
            plan.widths[0],
            ws,
            &mut self.read,
        )?;
        // Dropout masks: one stream per (seed, step, chunk).
        let mut rng = ChaCha8Rng::seed_from_u64(input.seed ^ 0x6d74_6c5f_6472_6f70);
        rng.set_stream(input.step.wrapping_mul(1 << 16).wrapping_add(index as u64));
        ws.forward(plan, params, true, &mut rng);
        self.losses.clear();
        let mut g_row = Vec::new();
        for (t, ((task, head), &lambda)) in input
            .tasks
            .iter()
            .zip(&plan.heads)
            .zip(input.loss_weights)
            .enumerate()
        {
            let scale = lambda / batch_rows as f32;
            let width = head.width;
            g_row.resize(width, 0.0);
            let (out, grad, ld) = ws.output_and_grad(plan, *head);
            if task.spec.given.is_some() {
                // A chained task's gradient comes from its joint loss, below.
                for r in 0..rows {
                    grad[r * ld] = 0.0;
                }
                self.losses.push(0.0);
                continue;
            }
            let targets = &self.read.targets[t * rows..(t + 1) * rows];
            let weights = &self.read.weights[t * rows..(t + 1) * rows];
            let mut sum = 0.0f64;
            for r in 0..rows {
                let (y, w) = (targets[r], weights[r]);
                let d = &mut grad[r * ld..r * ld + width];
                if w == 0.0 {
                    // Outside the task's sample space: no loss, no gradient, whatever its target.
                    d.fill(0.0);
                    continue;
                }
                let o = &out[r * ld..r * ld + width];
                sum += f64::from(w) * row_loss_and_grad(task.spec.kind, o, y, &mut g_row);
                for (d, g) in d.iter_mut().zip(&g_row) {
                    *d = g * scale * w;
                }
            }
            self.losses.push(sum);
        }
        // Chained tasks (ESMM): the joint loss of each, its gradient added to every head of
        // its chain (after the heads' own gradients are in place).
        for (t, task) in input.tasks.iter().enumerate() {
            if task.spec.given.is_none() {
                continue;
            }
            let chain = &input.chains[t];
            // Per task (filled for the chain's members): its logit on every row.
            let mut logits: Vec<Vec<f32>> = vec![Vec::new(); input.tasks.len()];
            for &m in chain {
                let (out, _, ld) = ws.output_and_grad(plan, plan.heads[m]);
                logits[m] = (0..rows).map(|r| out[r * ld]).collect();
            }
            let scale = input.loss_weights[t] / batch_rows as f32;
            let mut added = vec![vec![0.0f32; rows]; chain.len()];
            let (targets, weights) = (&self.read.targets, &self.read.weights);
            let sum = crate::loss::chain_batch_loss(
                chain,
                rows,
                |m, r| logits[m][r],
                |m, r| targets[m * rows + r],
                |r| weights[t * rows + r],
                |r, w, g| {
                    for (a, gk) in added.iter_mut().zip(g) {
                        a[r] = gk * scale * w;
                    }
                },
            );
            for (&m, a) in chain.iter().zip(&added) {
                let (_, grad, ld) = ws.output_and_grad(plan, plan.heads[m]);
                for (r, v) in a.iter().enumerate() {
                    grad[r * ld] += v;
                }
            }
            self.losses[t] = sum;
        }
        // The input's gradient lands in this chunk's own buffer.
        self.input_grad.resize(rows * plan.widths[0], 0.0);
        ws.swap_input_grad(&mut self.input_grad);
        ws.backward(plan, params, &mut self.param_grad[..plan.num_params]);
        ws.swap_input_grad(&mut self.input_grad);
        self.regularization = if input.embeddings_l2 > 0.0 {
            crate::embedding::embedding_l2(
                input.binding,
                ws.input(),
                &mut self.input_grad,
                rows,
                input.embeddings_l2,
            )
        } else {
            0.0
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The finiteness checks that keep a bad step from changing any weight.
    #[test]
    fn gradient_sums_report_non_finite_values() {
        let chunk = |g: Vec<f32>| Chunk {
            param_grad: g,
            ..Chunk::default()
        };
        let chunks = [chunk(vec![1.0, 2.0, 3.0]), chunk(vec![0.5, 0.5, 0.5])];
        let mut sum = vec![0.0; 3];
        assert!(Engine::sum_dense(&mut sum, &chunks, 2));
        assert_eq!(sum, [1.5, 2.5, 3.5], "summed in chunk order");
        let chunks = [
            chunk(vec![1.0, f32::MAX, 3.0]),
            chunk(vec![0.5, f32::MAX, 0.5]),
        ];
        assert!(
            !Engine::sum_dense(&mut sum, &chunks, 2),
            "an overflowing sum"
        );
        let chunks = [chunk(vec![1.0, 2.0, f32::NAN])];
        assert!(!Engine::sum_dense(&mut sum[..3], &chunks, 1));
    }
}
