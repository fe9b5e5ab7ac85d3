//! The row-at-a-time reading the pipeline streams through: [`Row`] and [`RowReader`], which
//! the CSV and Parquet readers implement (kept apart from `source`, which opens them, so the
//! readers do not depend on it).
//!
//! Every reader hands out rows as trimmed text with nulls already recognised, so the fitting
//! and encoding steps see one representation whatever the file format. Reading is streaming:
//! a reader holds one record (CSV) or one record batch (Parquet) at a time.

use std::path::Path;

use crate::error::Result;

/// One row: `values[i]` is column `i`'s text (trimmed when the reader trims), `nulls[i]` whether
/// it is missing. Buffers are reused from row to row.
#[derive(Debug, Default, Clone)]
pub(crate) struct Row {
    pub values: Vec<String>,
    pub nulls: Vec<bool>,
}

impl Row {
    pub fn get(&self, i: usize) -> Option<&str> {
        (!self.nulls[i]).then(|| self.values[i].as_str())
    }

    pub fn resize(&mut self, n: usize) {
        self.values.resize(n, String::new());
        self.nulls.resize(n, false);
    }
}

/// A streaming reader of rows.
pub(crate) trait RowReader {
    /// Column names, in file order.
    fn columns(&self) -> &[String];
    /// Reads the next row into `row`; `false` at the end of the input.
    fn next_row(&mut self, row: &mut Row) -> Result<bool>;
    /// The file and 1-based line (CSV) or row (Parquet) of the row last read, for errors.
    fn position(&self) -> (&Path, u64);
}

/// What starts and separates the elements of a list cell read from Parquet (the ASCII unit
/// separator, which text data does not hold): such a cell is split on it, whatever separator
/// the column's CSV cells use.
pub(crate) const LIST_MARK: char = '\u{1f}';

/// The elements of list cell `cell`: a Parquet list (starting with [`LIST_MARK`]) split on the
/// mark, a text cell split on `separator`; elements are trimmed, an empty element is `None`
/// (a null), and an empty cell is an empty list.
pub(crate) fn list_elements(cell: &str, separator: char) -> Vec<Option<&str>> {
    let (body, sep) = match cell.strip_prefix(LIST_MARK) {
        Some(body) => (body, LIST_MARK),
        None => (cell, separator),
    };
    if body.trim().is_empty() {
        return Vec::new();
    }
    body.split(sep)
        .map(|e| Some(e.trim()).filter(|e| !e.is_empty()))
        .collect()
}
