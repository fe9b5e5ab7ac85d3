//! Reading a chunk's rows: one pass over the rows that fetches everything the step needs from
//! the batch (categorical ids, continuous values, each task's target and sample weight), then
//! the embedding rows copied into the `[C, INPUT_WIDTH]` input.
//!
//! In a shuffled epoch every batch row is a random row of the dataset's columns, so each value
//! is a cache miss; reading all of a row's columns together lets the CPU overlap those misses,
//! where a loop per column (or a loss loop that reads targets between `exp` calls) would wait for
//! each. The table rows are prefetched a few ids ahead for the same reason.

use super::exec::Workspace;
use crate::data::{BatchView, NO_ID};
use crate::embedding::{id_beyond_table, EmbeddingTable, FeatureSlot};
use crate::error::Result;
use crate::loss::TaskBinding;
use crate::spec::FeatureKind;

/// How many rows ahead the table loops prefetch: enough to keep a core's outstanding cache
/// misses busy (a row of a big table is a few cache lines in DRAM), few enough to stay in L1.
pub(crate) const PREFETCH_AHEAD: usize = 6;

/// Asks the CPU to start loading `len` values from `p` into the cache (a hint: no effect on
/// results, never faults).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = len * std::mem::size_of::<T>();
        let base = p as *const i8;
        let mut off = 0;
        while off < bytes {
            // SAFETY: a prefetch is a hint that never faults; `wrapping_add` keeps the address
            // computation free of undefined behaviour.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    base.wrapping_add(off),
                )
            };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// What a chunk read of its rows besides the input: ids for the sparse update, and each task's
/// targets and sample weights (`[T, C]`, task-major) for the losses.
#[derive(Debug, Default)]
pub(crate) struct ChunkRows {
    /// Categorical ids, `[C, P]`: every id position of the categorical features in binding
    /// order (one for a scalar feature, its list positions for a list feature, [`NO_ID`] where
    /// a row's list ends); see [`id_positions`].
    pub ids: Vec<u32>,
    pub targets: Vec<f32>,
    pub weights: Vec<f32>,
}

/// The id positions of the categorical `features`, in binding order: `(feature index, first
/// position, positions)` per categorical feature, and their total P.
pub(crate) fn id_positions(
    features: &[(FeatureSlot, usize)],
) -> (Vec<(usize, usize, usize)>, usize) {
    let mut at = 0;
    let mut out = Vec::new();
    for (i, (f, _)) in features.iter().enumerate() {
        if f.kind == FeatureKind::Categorical {
            out.push((i, at, f.positions));
            at += f.positions;
        }
    }
    (out, at)
}

/// Fills the chunk's input (`[C, INPUT_WIDTH]`) from `view` and `rows` with its ids, targets
/// and weights. An id beyond its table is an error naming the feature.
pub(crate) fn read_chunk(
    view: &BatchView,
    features: &[(FeatureSlot, usize)],
    tasks: &[TaskBinding],
    tables: &[EmbeddingTable],
    input_width: usize,
    ws: &mut Workspace,
    out: &mut ChunkRows,
) -> Result<()> {
    let rows = view.len();
    let (cat, n_pos) = id_positions(features);
    out.ids.clear();
    out.ids.resize(rows * n_pos, 0);
    out.targets.clear();
    out.targets.resize(rows * tasks.len(), 0.0);
    out.weights.clear();
    out.weights.resize(rows * tasks.len(), 0.0);
    let x = ws.input_mut();
    // One pass over the rows: every column a row needs, read together.
    for r in 0..rows {
        for &(fi, first, positions) in &cat {
            let slot = features[fi].1;
            let ids = &mut out.ids[r * n_pos + first..][..positions];
            // Lists are packed: past the first empty position there is nothing to read (each
            // position is another buffer, so another cache miss in a shuffled batch).
            for (k, id) in ids.iter_mut().enumerate() {
                *id = view.id(slot + k, r);
                if *id == NO_ID {
                    ids[k..].fill(NO_ID);
                    break;
                }
            }
        }
        for (f, slot) in features {
            if f.kind == FeatureKind::Continuous {
                x[r * input_width + f.offset] = view.float(*slot, r);
            }
        }
        for (t, task) in tasks.iter().enumerate() {
            let y = task.target(view, r);
            task.check_target(view, r, y)?;
            out.targets[t * rows + r] = y;
            out.weights[t * rows + r] = task.weight(view, r, y);
        }
    }
    // The embedding rows, prefetched a few ids ahead.
    for &(fi, first, positions) in &cat {
        let f = &features[fi].0;
        let table = &tables[f.table];
        let dim = f.dim;
        let id_at = |r: usize, k: usize| out.ids[r * n_pos + first + k];
        for r in 0..rows {
            for k in 0..positions {
                let id = id_at(r, k);
                // `NO_ID` ends a list; a scalar column never holds it (ids are decoded below it).
                if id == NO_ID && f.pooling.is_some() {
                    break;
                }
                if id as usize >= table.rows {
                    return Err(id_beyond_table(id, f.name, table));
                }
            }
        }
        if f.pooling.is_none() {
            for r in 0..rows {
                if r + PREFETCH_AHEAD < rows {
                    let ahead = id_at(r + PREFETCH_AHEAD, 0) as usize;
                    prefetch(table.weights.as_ptr().wrapping_add(ahead * dim), dim);
                }
                let o = r * input_width + f.offset;
                x[o..o + dim].copy_from_slice(table.row(id_at(r, 0) as usize));
            }
            continue;
        }
        // A list feature: the pooled rows of the ids present (zeros for an empty list).
        for r in 0..rows {
            let scale = f.scale(|k| id_at(r, k));
            let o = r * input_width + f.offset;
            let xr = &mut x[o..o + dim];
            xr.iter_mut().for_each(|v| *v = 0.0);
            for k in 0..positions {
                let id = id_at(r, k);
                if id == NO_ID {
                    break; // lists are packed
                }
                for (v, w) in xr.iter_mut().zip(table.row(id as usize)) {
                    *v += scale * w;
                }
            }
        }
    }
    Ok(())
}
