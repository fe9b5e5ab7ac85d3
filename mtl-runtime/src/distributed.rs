//! Synchronous data-parallel training over MPI (the `mpi` feature): the same binary, launched
//! as N processes by `mpirun -np N`, trains one model as if on one process with the N shares'
//! rows in each batch.
//!
//! - [`Cluster::init`] starts MPI; [`Cluster::open_share`] reads only this rank's Parquet parts
//!   of a dataset written in several (part `p` to rank `p mod N`), and [`Cluster::shard`] cuts a
//!   loaded dataset into each process's (rank's) share: blocks of `B / N` rows dealt round-robin, so that global batch k is the
//!   ranks' local batches k side by side (with `shuffle` off this is exactly one process's batch
//!   k of size B; with `shuffle` on, each rank shuffles its own share, as PyTorch's
//!   `DistributedSampler` does).
//! - [`crate::train::Trainer::distribute`] makes every step combine gradients across processes
//!   before anything moves: the flat dense gradient in one all-reduce, and the embedding rows
//!   as `(row id, gradient)` pairs, all-gathered and summed per row, so every process applies
//!   identical lazy-Adam (or Adagrad) row updates. Each process's gradient is that of its mean
//!   loss over its `b_r` rows; the combined one is `Σ_r b_r·g_r / Σ_r b_r`, the gradient of
//!   the mean over the whole global batch. The learning rate is that of the global batch
//!   `B = Σ b_r` (no scaling rule is applied).
//! - Every process takes the same number of steps per epoch, the fewest any has; extra local
//!   batches are skipped (shard evenly and this never happens).
//! - Exact metrics: [`Cluster::gather`] gives every rank all ranks' rows of a validation share,
//!   so AUC is computed over every row (not averaged over ranks) and early stopping decides
//!   alike everywhere.
//! - Checkpoints hold no trace of the world size: rank 0 writes them ([`Cluster::is_root`]),
//!   any number of processes loads them.
//! - An error on one process (a bad id, a non-finite loss) prints it and aborts the whole job:
//!   the others would otherwise wait forever in the next collective.
//!
//! Exchange per step, `P` dense parameters and `U` distinct embedding rows of dim `D` touched
//! per rank: the all-reduce moves about `2·4P` bytes per rank (ring algorithm), the all-gather
//! about `N·U·(4 + 4D)` bytes to every rank; see the README for the cost model.

use std::sync::Arc;

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use mpi::Count;

use crate::data::{ColumnValues, Dataset};
use crate::error::{Error, Result};
use crate::fused::StepSync;

/// The MPI world this process is part of.
pub struct Cluster {
    world: SimpleCommunicator,
    /// Keeps MPI initialised; dropping it finalises MPI.
    _universe: Universe,
}

// SAFETY: MPI is initialised with `Threading::Funneled`, and the trainer calls the cluster only
// from the thread that drives training (the fused engine's workers never touch it).
unsafe impl Send for Cluster {}
unsafe impl Sync for Cluster {}

impl Cluster {
    /// Initialises MPI (once per process). Outside `mpirun` this is a world of one process.
    pub fn init() -> Result<Arc<Cluster>> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| Error::invalid("MPI is already initialised in this process"))?;
        let world = universe.world();
        Ok(Arc::new(Cluster {
            world,
            _universe: universe,
        }))
    }

    /// This process's rank, `0..size`.
    pub fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    /// The number of processes.
    pub fn size(&self) -> usize {
        self.world.size() as usize
    }

    /// Whether this is rank 0, the one that writes checkpoints and prints reports.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// This rank's share of `data`: blocks of `block_rows` rows (the per-rank batch size)
    /// dealt round-robin, block k to rank `k mod N`.
    pub fn shard(&self, data: &Dataset, block_rows: usize) -> Result<Dataset> {
        if block_rows == 0 {
            return Err(Error::invalid("shard blocks must hold at least one row"));
        }
        let (rank, size) = (self.rank(), self.size());
        let rows: Vec<u32> = (0..data.num_rows())
            .filter(|&r| (r / block_rows) % size == rank)
            .map(|r| r as u32)
            .collect();
        data.take(&rows)
    }

    /// This rank's share of the dataset at `path` written in several Parquet parts (a directory
    /// of at least N parts): parts `p` with `p mod N == rank`, read by this rank only, as
    /// Merlin's multi-GPU recipe gives each worker its own files. Shares may differ in rows;
    /// every rank then takes as many steps per epoch as the smallest share allows.
    pub fn open_share(
        &self,
        path: impl AsRef<std::path::Path>,
        options: &crate::data::LoadOptions,
    ) -> Result<Dataset> {
        let options = options.clone().with_part_share(self.rank(), self.size());
        Dataset::open_with(path, &options)
    }

    /// Every rank's rows of `share` (a dataset of the same schema on every rank), in rank
    /// order, on every rank: what exact metrics over the whole validation data need.
    pub fn gather(&self, share: &Dataset) -> Result<Dataset> {
        let layout = share.layout();
        let mut columns = Vec::new();
        for c in layout.columns() {
            let name = c.schema.name.clone();
            let values = match c.kind {
                crate::data::ColumnKind::Ids => {
                    ColumnValues::Ids(self.gather_vec(share.ids(&name).unwrap_or(&[]))?)
                }
                crate::data::ColumnKind::Floats => {
                    ColumnValues::Floats(self.gather_vec(share.floats(&name).unwrap_or(&[]))?)
                }
                crate::data::ColumnKind::IdLists => {
                    // Lengths, then the ids back to back.
                    let lists: Vec<Vec<u32>> = (0..share.num_rows())
                        .map(|r| share.id_list(&name, r).unwrap_or_default())
                        .collect();
                    let lengths: Vec<u32> = lists.iter().map(|l| l.len() as u32).collect();
                    let flat: Vec<u32> = lists.into_iter().flatten().collect();
                    let lengths = self.gather_vec(&lengths)?;
                    let flat = self.gather_vec(&flat)?;
                    let mut at = 0;
                    let lists = lengths
                        .iter()
                        .map(|&n| {
                            let list = flat[at..at + n as usize].to_vec();
                            at += n as usize;
                            list
                        })
                        .collect();
                    ColumnValues::IdLists(lists)
                }
            };
            columns.push((name, values));
        }
        Dataset::from_columns(share.schema().clone(), columns)
    }

    /// `local` from every rank, concatenated in rank order.
    fn gather_vec<T: Equivalence + Copy + Default>(&self, local: &[T]) -> Result<Vec<T>> {
        let n = Count::try_from(local.len()).map_err(|_| {
            Error::invalid("one rank's share is too large for one MPI message (2^31 values)")
        })?;
        let mut counts: Vec<Count> = vec![0; self.size()];
        self.world.all_gather_into(&n, &mut counts[..]);
        let displs: Vec<Count> = counts
            .iter()
            .scan(0, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let mut out = vec![T::default(); total];
        {
            let mut partition = PartitionMut::new(&mut out[..], &counts[..], &displs[..]);
            self.world.all_gather_varcount_into(local, &mut partition);
        }
        Ok(out)
    }

    /// The sum of `local` over every rank, on every rank.
    fn sum_f64(&self, local: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; local.len()];
        self.world
            .all_reduce_into(local, &mut out[..], SystemOperation::sum());
        out
    }
}

impl StepSync for Cluster {
    fn combine(
        &self,
        rows: usize,
        dense: &mut [f32],
        sparse: &mut [(Vec<u32>, Vec<f32>)],
        dims: &[usize],
        losses: &mut [f32],
    ) -> Result<()> {
        let b = rows as f32;
        // The global row count and the losses weighted by rows, in one reduction.
        let mut head: Vec<f64> = vec![rows as f64];
        head.extend(losses.iter().map(|&l| f64::from(l) * rows as f64));
        let head = self.sum_f64(&head);
        let total = head[0].max(1.0);
        for (l, s) in losses.iter_mut().zip(&head[1..]) {
            *l = (s / total) as f32;
        }
        // Dense: Σ b_r·g_r / B, one flat all-reduce.
        let send: Vec<f32> = dense.iter().map(|g| g * b).collect();
        self.world
            .all_reduce_into(&send[..], dense, SystemOperation::sum());
        let inv = (1.0 / total) as f32;
        dense.iter_mut().for_each(|g| *g *= inv);
        // Embedding rows: every rank's (id, b_r·gradient) pairs, summed per id in rank order.
        for ((ids, sums), &dim) in sparse.iter_mut().zip(dims) {
            let scaled: Vec<f32> = sums.iter().map(|g| g * b).collect();
            // A message too large on one rank only: end the job rather than hang the others.
            let all_ids = self.gather_vec(ids).map_err(|e| self.fail(&e))?;
            let all_sums = self.gather_vec(&scaled).map_err(|e| self.fail(&e))?;
            let mut merged: std::collections::BTreeMap<u32, Vec<f32>> =
                std::collections::BTreeMap::new();
            for (id, g) in all_ids.iter().zip(all_sums.chunks(dim.max(1))) {
                let row = merged.entry(*id).or_insert_with(|| vec![0.0; dim]);
                for (r, x) in row.iter_mut().zip(g) {
                    *r += x;
                }
            }
            ids.clear();
            sums.clear();
            for (id, row) in merged {
                ids.push(id);
                sums.extend(row.iter().map(|g| g * inv));
            }
        }
        Ok(())
    }

    fn rank(&self) -> usize {
        Cluster::rank(self)
    }

    fn agree(&self, value: f64) -> Result<bool> {
        let (mut low, mut high) = (0.0f64, 0.0f64);
        self.world
            .all_reduce_into(&value, &mut low, SystemOperation::min());
        self.world
            .all_reduce_into(&value, &mut high, SystemOperation::max());
        Ok(low == high || (low.is_nan() && high.is_nan()))
    }

    fn agree_steps(&self, local: usize) -> Result<usize> {
        let mut fewest = 0u64;
        self.world
            .all_reduce_into(&(local as u64), &mut fewest, SystemOperation::min());
        Ok(fewest as usize)
    }

    fn fail(&self, error: &Error) -> Error {
        eprintln!(
            "rank {} of {}: {error}; aborting the MPI job (the other processes would wait for \
             this one forever)",
            self.rank(),
            self.size()
        );
        self.world.abort(1)
    }
}
