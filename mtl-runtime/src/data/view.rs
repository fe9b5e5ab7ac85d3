//! [`BatchView`]: the rows of one batch as the model reads them, without copying them first.
//!
//! A shuffled in-memory epoch does not need to copy every column of every row into a batch
//! buffer before the model reads it: the view holds the dataset's columns and the batch's row
//! indices, and the reader (the embedding gather, the targets, the sample weights) fetches each
//! value once, where it is needed. Streamed batches and sequential ranges are views too, over
//! their own buffers. This is the one contract between data and model (as TorchRec's `Batch`):
//! ids by column slot, floats by column slot, `len()` rows.

use super::batch::Batch;
use super::buffers::ColumnBuffers;
use super::layout::Layout;

/// Which rows of the columns a view covers.
#[derive(Debug, Clone, Copy)]
enum Rows<'a> {
    /// Rows `start..start + len`.
    Range { start: usize, len: usize },
    /// The listed rows, in this order.
    Indices(&'a [u32]),
}

/// `len()` rows of a set of columns: batch row `r` is column row `index(r)`.
#[derive(Debug, Clone, Copy)]
pub struct BatchView<'a> {
    data: &'a ColumnBuffers,
    layout: &'a Layout,
    rows: Rows<'a>,
    /// Whether the columns are a whole dataset's (so a row index names a dataset row).
    dataset: bool,
}

impl<'a> BatchView<'a> {
    pub(crate) fn range(
        data: &'a ColumnBuffers,
        layout: &'a Layout,
        start: usize,
        len: usize,
    ) -> Self {
        BatchView {
            data,
            layout,
            rows: Rows::Range { start, len },
            dataset: true,
        }
    }

    pub(crate) fn indices(data: &'a ColumnBuffers, layout: &'a Layout, rows: &'a [u32]) -> Self {
        BatchView {
            data,
            layout,
            rows: Rows::Indices(rows),
            dataset: true,
        }
    }

    /// All rows of a materialised batch.
    pub fn of_batch(batch: &'a Batch) -> Self {
        BatchView {
            dataset: false,
            ..BatchView::range(&batch.data, batch.layout(), 0, batch.len())
        }
    }

    /// Where batch row `r` comes from, in words: `dataset row 1234` for in-memory data, `row 17
    /// of the batch` for a streamed batch.
    pub fn describe_row(&self, r: usize) -> String {
        if self.dataset {
            format!("dataset row {}", self.row(r))
        } else {
            format!("row {} of the batch", self.row(r))
        }
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        match self.rows {
            Rows::Range { len, .. } => len,
            Rows::Indices(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn layout(&self) -> &'a Layout {
        self.layout
    }

    /// The column row of batch row `r`.
    #[inline(always)]
    fn row(&self, r: usize) -> usize {
        match self.rows {
            Rows::Range { start, .. } => start + r,
            Rows::Indices(rows) => rows[r] as usize,
        }
    }

    /// The id in id-column `slot` at batch row `r`.
    #[inline(always)]
    pub fn id(&self, slot: usize, r: usize) -> u32 {
        self.data.ids[slot][self.row(r)]
    }

    /// The value in float-column `slot` at batch row `r`.
    #[inline(always)]
    pub fn float(&self, slot: usize, r: usize) -> f32 {
        self.data.floats[slot][self.row(r)]
    }

    /// Batch rows `start..start + len` of this view.
    pub fn sub(&self, start: usize, len: usize) -> BatchView<'a> {
        assert!(start + len <= self.len(), "sub-view beyond the batch");
        let rows = match self.rows {
            Rows::Range { start: s, .. } => Rows::Range {
                start: s + start,
                len,
            },
            Rows::Indices(rows) => Rows::Indices(&rows[start..start + len]),
        };
        BatchView { rows, ..*self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_read_the_rows_they_name() {
        let schema = crate::schema::json::from_str(
            r#"{"feature": [{"name": "a", "type": "INT", "intDomain": {"max": "9", "isCategorical": true},
                "annotation": {"tag": ["categorical"]}}, {"name": "y", "type": "FLOAT"}]}"#,
            "inline",
        )
        .unwrap();
        let layout = Layout::new(&schema).unwrap();
        let data = ColumnBuffers {
            ids: vec![vec![5, 6, 7, 8]],
            floats: vec![vec![0.5, 0.6, 0.7, 0.8]],
        };
        let order = [3u32, 0, 2];
        let v = BatchView::indices(&data, &layout, &order);
        assert_eq!(v.len(), 3);
        assert_eq!((v.id(0, 0), v.float(0, 0)), (8, 0.8));
        let s = v.sub(1, 2);
        assert_eq!((s.id(0, 0), s.id(0, 1)), (5, 7));
        let r = BatchView::range(&data, &layout, 1, 2).sub(1, 1);
        assert_eq!((r.len(), r.float(0, 0)), (1, 0.7));
    }
}
