//! Columnar storage shared by datasets, batches and the streaming shuffle buffer.
//!
//! One `Vec<u32>` per id column and one `Vec<f32>` per float column, indexed by the slots of a
//! [`super::Layout`]. Rows are never materialised as structs: copying a row is one
//! indexed load/store per column, and buffers keep their capacity when cleared, so batch
//! assembly allocates nothing after the first batch.

use std::ops::Range;

use super::layout::{ColumnKind, Layout};

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ColumnBuffers {
    pub ids: Vec<Vec<u32>>,
    pub floats: Vec<Vec<f32>>,
}

impl ColumnBuffers {
    pub fn new(n_ids: usize, n_floats: usize) -> Self {
        ColumnBuffers {
            ids: vec![Vec::new(); n_ids],
            floats: vec![Vec::new(); n_floats],
        }
    }

    pub fn with_capacity(n_ids: usize, n_floats: usize, rows: usize) -> Self {
        ColumnBuffers {
            ids: (0..n_ids).map(|_| Vec::with_capacity(rows)).collect(),
            floats: (0..n_floats).map(|_| Vec::with_capacity(rows)).collect(),
        }
    }

    /// The ids of `column` if `layout` decodes it as ids.
    pub fn ids_named(&self, layout: &Layout, column: &str) -> Option<&[u32]> {
        let c = layout.get(column)?;
        (c.kind == ColumnKind::Ids).then(|| self.ids[c.slot].as_slice())
    }

    /// The values of `column` if `layout` decodes it as floats.
    pub fn floats_named(&self, layout: &Layout, column: &str) -> Option<&[f32]> {
        let c = layout.get(column)?;
        (c.kind == ColumnKind::Floats).then(|| self.floats[c.slot].as_slice())
    }

    /// Number of rows (all columns have the same length; a layout without columns has none).
    pub fn len(&self) -> usize {
        self.ids
            .first()
            .map(Vec::len)
            .or_else(|| self.floats.first().map(Vec::len))
            .unwrap_or(0)
    }

    pub fn clear(&mut self) {
        self.ids.iter_mut().for_each(Vec::clear);
        self.floats.iter_mut().for_each(Vec::clear);
    }

    /// Appends `rows` of `src`, in the order given.
    pub fn push_rows(&mut self, src: &ColumnBuffers, rows: &[u32]) {
        for (dst, src) in self.ids.iter_mut().zip(&src.ids) {
            dst.extend(rows.iter().map(|&r| src[r as usize]));
        }
        for (dst, src) in self.floats.iter_mut().zip(&src.floats) {
            dst.extend(rows.iter().map(|&r| src[r as usize]));
        }
    }

    /// Appends a contiguous range of `src`.
    pub fn extend_range(&mut self, src: &ColumnBuffers, range: Range<usize>) {
        for (dst, src) in self.ids.iter_mut().zip(&src.ids) {
            dst.extend_from_slice(&src[range.clone()]);
        }
        for (dst, src) in self.floats.iter_mut().zip(&src.floats) {
            dst.extend_from_slice(&src[range.clone()]);
        }
    }

    /// Moves row `row` to `dst` and fills its place with the last row (O(columns)).
    pub fn swap_remove_into(&mut self, row: usize, dst: &mut ColumnBuffers) {
        for (d, s) in dst.ids.iter_mut().zip(&mut self.ids) {
            d.push(s.swap_remove(row));
        }
        for (d, s) in dst.floats.iter_mut().zip(&mut self.floats) {
            d.push(s.swap_remove(row));
        }
    }

    /// Keeps only the rows from `start` on for which `keep` is true (used to drop rows with
    /// nulls from the chunk that was just appended).
    pub fn retain_from(&mut self, start: usize, keep: &[bool]) {
        fn retain<T: Copy>(v: &mut Vec<T>, start: usize, keep: &[bool]) {
            let mut w = start;
            for (i, k) in keep.iter().enumerate() {
                if *k {
                    v[w] = v[start + i];
                    w += 1;
                }
            }
            v.truncate(w);
        }
        self.ids.iter_mut().for_each(|v| retain(v, start, keep));
        self.floats.iter_mut().for_each(|v| retain(v, start, keep));
    }
}
