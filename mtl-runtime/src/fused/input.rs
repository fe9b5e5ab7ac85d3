//! Reading a chunk's rows: one pass over the rows that fetches everything the step needs from
//! the batch (categorical ids, continuous values, each task's target and sample weight), then
//! the embedding rows copied into the `[C, INPUT_WIDTH]` input.
//!
//! In a shuffled epoch every batch row is a random row of the dataset's columns, so each value
//! is a cache miss; reading all of a row's columns together lets the CPU overlap those misses,
//! where a loop per column (or a loss loop that reads targets between `exp` calls) would wait for
//! each. The table rows are prefetched a few ids ahead for the same reason.

use super::exec::Workspace;
use crate::data::BatchView;
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
    /// Categorical ids, `[C, F_cat]` (features in binding order).
    pub ids: Vec<u32>,
    pub targets: Vec<f32>,
    pub weights: Vec<f32>,
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
    let cat: Vec<(&FeatureSlot, usize)> = features
        .iter()
        .filter(|(f, _)| f.kind == FeatureKind::Categorical)
        .map(|(f, s)| (f, *s))
        .collect();
    let n_cat = cat.len();
    out.ids.clear();
    out.ids.resize(rows * n_cat, 0);
    out.targets.clear();
    out.targets.resize(rows * tasks.len(), 0.0);
    out.weights.clear();
    out.weights.resize(rows * tasks.len(), 0.0);
    let x = ws.input_mut();
    // One pass over the rows: every column a row needs, read together.
    for r in 0..rows {
        for (fc, (_, slot)) in cat.iter().enumerate() {
            out.ids[r * n_cat + fc] = view.id(*slot, r);
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
    for (fc, (f, _)) in cat.iter().enumerate() {
        let table = &tables[f.table];
        let dim = f.dim;
        if let Some(r) = (0..rows).find(|&r| out.ids[r * n_cat + fc] as usize >= table.rows) {
            return Err(id_beyond_table(out.ids[r * n_cat + fc], f.name, table));
        }
        for r in 0..rows {
            if r + PREFETCH_AHEAD < rows {
                let ahead = out.ids[(r + PREFETCH_AHEAD) * n_cat + fc] as usize;
                prefetch(table.weights.as_ptr().wrapping_add(ahead * dim), dim);
            }
            let id = out.ids[r * n_cat + fc] as usize;
            let o = r * input_width + f.offset;
            x[o..o + dim].copy_from_slice(table.row(id));
        }
    }
    Ok(())
}
