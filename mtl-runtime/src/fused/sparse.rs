//! The sparse row updates of a fused step, spread over the cores.
//!
//! Each chunk recorded the ids it gathered (`[C, F_cat]`, see `input`), so the update does not
//! read the batch again. The update is split by id: owner `p` of `P` handles the ids with `id % P == p` of every
//! table, sums each distinct id's gradient rows (chunks, then features, then rows in batch
//! order: the same sum whatever `P` is) through a small open-addressing map instead of a sort,
//! and updates each distinct row once. Owners touch disjoint rows, so they never contend.

use super::input::{id_positions, prefetch, PREFETCH_AHEAD};
use crate::data::NO_ID;
use crate::embedding::{update_row, EmbeddingTable, FeatureSlot, RowOptimizer, RowOptimizerConfig};
use crate::error::Result;

/// Distinct ids → accumulator slots, by linear probing; cleared by forgetting its keys.
#[derive(Debug, Default)]
struct IdMap {
    /// `id + 1`, 0 for an empty cell.
    keys: Vec<u32>,
    slots: Vec<u32>,
}

impl IdMap {
    /// Room for `n` distinct ids at a load factor of at most one half.
    fn reserve(&mut self, n: usize) {
        let cap = (2 * n).next_power_of_two().max(16);
        if self.keys.len() < cap {
            self.keys = vec![0; cap];
            self.slots = vec![0; cap];
        }
    }

    /// The slot of `id`, or `None` after inserting it with slot `next`.
    #[inline(always)]
    fn get_or_insert(&mut self, id: u32, next: u32) -> Option<u32> {
        let mask = self.keys.len() - 1;
        let mut i = (id.wrapping_mul(0x9E37_79B1) >> 7) as usize & mask;
        loop {
            let k = self.keys[i];
            if k == id.wrapping_add(1) {
                return Some(self.slots[i]);
            }
            if k == 0 {
                self.keys[i] = id.wrapping_add(1);
                self.slots[i] = next;
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Empties the cells of `ids` (the keys inserted since the last clear).
    fn clear(&mut self, ids: &[u32]) {
        let mask = self.keys.len() - 1;
        for &id in ids {
            let mut i = (id.wrapping_mul(0x9E37_79B1) >> 7) as usize & mask;
            while self.keys[i] != id.wrapping_add(1) {
                i = (i + 1) & mask;
            }
            self.keys[i] = 0;
        }
        // Probing chains may now have holes: rebuild nothing, since every key was removed.
    }
}

/// One table's summed gradients for the ids an owner handles.
#[derive(Debug, Default)]
struct TableSums {
    ids: Vec<u32>,
    sums: Vec<f32>,
}

/// The scratch of one owner: per-table sums of the current step and the id map.
#[derive(Debug, Default)]
pub(crate) struct Owner {
    tables: Vec<TableSums>,
    map: IdMap,
}

/// What the update of one step reads from a chunk.
pub(crate) struct ChunkGrads<'a> {
    pub rows: usize,
    pub ids: &'a [u32],
    pub input_grad: &'a [f32],
}

impl Owner {
    /// Sums the gradient rows of the ids this owner handles (`id % owners == index`) for every
    /// table; returns whether every sum is finite.
    #[allow(clippy::too_many_arguments)]
    pub fn accumulate(
        &mut self,
        index: usize,
        owners: usize,
        chunks: &[ChunkGrads],
        features: &[(FeatureSlot, usize)],
        tables: &[EmbeddingTable],
        rows: &TableRows,
        input_width: usize,
    ) -> bool {
        let (cat, n_pos) = id_positions(features);
        let total_rows: usize = chunks.iter().map(|c| c.rows).sum();
        self.tables.resize_with(tables.len(), TableSums::default);
        let mut finite = true;
        for (t, table) in tables.iter().enumerate() {
            let dim = table.dim;
            let sums = &mut self.tables[t];
            sums.ids.clear();
            sums.sums.clear();
            let users: usize = cat
                .iter()
                .filter(|&&(fi, _, _)| features[fi].0.table == t)
                .map(|&(_, _, positions)| positions)
                .sum();
            if users == 0 {
                continue;
            }
            self.map.reserve(total_rows * users);
            for c in chunks {
                for &(fi, first, positions) in &cat {
                    let f = &features[fi].0;
                    if f.table != t {
                        continue;
                    }
                    for r in 0..c.rows {
                        let ids = &c.ids[r * n_pos + first..][..positions];
                        // Each id of a list gets its share of the pooled vector's gradient.
                        let scale = f.scale(|k| ids[k]);
                        for &id in ids {
                            if id == NO_ID {
                                break; // lists are packed
                            }
                            if id as usize % owners != index {
                                continue;
                            }
                            let g = &c.input_grad[r * input_width + f.offset..][..dim];
                            match self.map.get_or_insert(id, sums.ids.len() as u32) {
                                // Scalar features (factor 1) keep the plain add and copy.
                                Some(slot) => {
                                    let s = &mut sums.sums[slot as usize * dim..][..dim];
                                    if scale == 1.0 {
                                        for (s, g) in s.iter_mut().zip(g) {
                                            *s += g;
                                        }
                                    } else {
                                        for (s, g) in s.iter_mut().zip(g) {
                                            *s += scale * g;
                                        }
                                    }
                                }
                                None => {
                                    rows.prefetch(t, id as usize);
                                    sums.ids.push(id);
                                    if scale == 1.0 {
                                        sums.sums.extend_from_slice(g);
                                    } else {
                                        sums.sums.extend(g.iter().map(|g| scale * g));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            self.map.clear(&sums.ids);
            finite &= sums.sums.iter().all(|v| v.is_finite());
        }
        finite
    }

    /// The ids and summed row gradients (`dim` each) this owner holds for table `t`.
    pub fn table(&self, t: usize) -> (&[u32], &[f32]) {
        self.tables
            .get(t)
            .map_or((&[][..], &[][..]), |s| (&s.ids[..], &s.sums[..]))
    }

    /// Replaces what this owner holds for table `t` (ids it owns, `dim` sums each).
    pub fn set_table(&mut self, t: usize, ids: Vec<u32>, sums: Vec<f32>) {
        if self.tables.len() <= t {
            self.tables.resize_with(t + 1, TableSums::default);
        }
        self.tables[t] = TableSums { ids, sums };
    }

    /// The squared L2 norm of this owner's row gradients (for gradient clipping).
    pub fn norm_sq(&self) -> f64 {
        self.tables
            .iter()
            .flat_map(|t| &t.sums)
            .map(|g| f64::from(*g) * f64::from(*g))
            .sum()
    }

    /// Multiplies this owner's row gradients by `scale` (gradient clipping).
    pub fn scale(&mut self, scale: f32) {
        for t in &mut self.tables {
            t.sums.iter_mut().for_each(|g| *g *= scale);
        }
    }

    /// Applies the sums of [`Owner::accumulate`] to the rows through `rows`.
    pub fn apply(&self, rows: &TableRows, config: &RowOptimizerConfig) {
        for (t, sums) in self.tables.iter().enumerate() {
            let dim = rows.dims[t];
            for (slot, &id) in sums.ids.iter().enumerate() {
                if let Some(&ahead) = sums.ids.get(slot + PREFETCH_AHEAD) {
                    rows.prefetch(t, ahead as usize);
                }
                // SAFETY: `rows.row` requires that no other thread touches row `id` of table `t`
                // meanwhile: owners handle disjoint ids (`id % owners`), and an owner's ids are
                // distinct (the map).
                let (step, w, m, v) = unsafe { rows.row(t, id as usize) };
                update_row(config, step, w, m, v, &sums.sums[slot * dim..][..dim]);
            }
        }
    }
}

/// Raw access to the rows of every table and their optimizer state, for owners that update
/// disjoint rows at the same time.
pub(crate) struct TableRows {
    weights: Vec<*mut f32>,
    first: Vec<*mut f32>,
    has_first: Vec<bool>,
    second: Vec<*mut f32>,
    steps: Vec<*mut u32>,
    rows: Vec<usize>,
    dims: Vec<usize>,
}

// SAFETY: the pointers are used only through `row`, whose contract makes every concurrent
// access touch a different row.
unsafe impl Send for TableRows {}
unsafe impl Sync for TableRows {}

impl TableRows {
    /// Borrows `tables` and their state for one update phase (the borrows end with `self`).
    pub fn new(tables: &mut [EmbeddingTable], optimizer: &mut RowOptimizer) -> Result<TableRows> {
        optimizer.ensure_state(tables)?;
        let mut r = TableRows {
            weights: Vec::new(),
            first: Vec::new(),
            has_first: Vec::new(),
            second: Vec::new(),
            steps: Vec::new(),
            rows: Vec::new(),
            dims: Vec::new(),
        };
        for (t, s) in tables.iter_mut().zip(optimizer.state.iter_mut()) {
            r.weights.push(t.weights.as_mut_ptr());
            r.has_first.push(!s.first.is_empty());
            r.first.push(s.first.as_mut_ptr());
            r.second.push(s.second.as_mut_ptr());
            r.steps.push(s.steps.as_mut_ptr());
            r.rows.push(t.rows);
            r.dims.push(t.dim);
        }
        Ok(r)
    }

    /// Starts loading row `id` of table `t` (weights, moments, step count) into the cache.
    #[inline(always)]
    fn prefetch(&self, t: usize, id: usize) {
        let (dim, o) = (self.dims[t], id * self.dims[t]);
        prefetch(self.weights[t].wrapping_add(o), dim);
        if self.has_first[t] {
            prefetch(self.first[t].wrapping_add(o), dim);
        }
        prefetch(self.second[t].wrapping_add(o), dim);
        prefetch(self.steps[t].wrapping_add(id), 1);
    }

    /// Row `id` of table `t`: its step count, weights and moments.
    ///
    /// # Safety
    /// No other reference to this row may exist while the returned ones live, and the tables
    /// and state given to [`TableRows::new`] must not be moved or resized meanwhile.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, t: usize, id: usize) -> (&mut u32, &mut [f32], &mut [f32], &mut [f32]) {
        assert!(id < self.rows[t], "row {id} beyond table {t}");
        let dim = self.dims[t];
        let o = id * dim;
        let first: &mut [f32] = if self.has_first[t] {
            std::slice::from_raw_parts_mut(self.first[t].add(o), dim)
        } else {
            &mut []
        };
        (
            &mut *self.steps[t].add(id),
            std::slice::from_raw_parts_mut(self.weights[t].add(o), dim),
            first,
            std::slice::from_raw_parts_mut(self.second[t].add(o), dim),
        )
    }
}
