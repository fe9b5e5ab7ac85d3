//! Raw input tables: where rows come from ([`Input`]: a CSV file, optionally gzipped, or
//! Parquet) and the row-at-a-time reader the pipeline streams through ([`RowReader`]).
//!
//! Every reader hands out rows as trimmed text with nulls already recognised, so the fitting
//! and encoding steps see one representation whatever the file format. Reading is streaming:
//! a reader holds one record (CSV) or one record batch (Parquet) at a time.

use std::path::{Path, PathBuf};

use super::csv_reader::{CsvOptions, CsvRows};
use super::parquet_reader::ParquetRows;
use crate::error::Result;

/// A raw table to preprocess.
#[derive(Debug, Clone)]
pub enum Input {
    /// A delimited text file; a name ending in `.gz` is decompressed while reading.
    Csv { path: PathBuf, options: CsvOptions },
    /// A Parquet file, or a directory of Parquet files read in name order.
    Parquet { path: PathBuf },
}

impl Input {
    pub fn csv(path: impl Into<PathBuf>, options: CsvOptions) -> Input {
        Input::Csv {
            path: path.into(),
            options,
        }
    }

    pub fn parquet(path: impl Into<PathBuf>) -> Input {
        Input::Parquet { path: path.into() }
    }

    /// Parquet for a directory or a name ending in `.parquet`/`.parq`/`.pq`, CSV otherwise.
    pub fn from_path(path: impl Into<PathBuf>, csv: CsvOptions) -> Input {
        let path = path.into();
        let is_parquet = path.is_dir()
            || path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["parquet", "parq", "pq"].contains(&e));
        if is_parquet {
            Input::parquet(path)
        } else {
            Input::csv(path, csv)
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Input::Csv { path, .. } | Input::Parquet { path } => path,
        }
    }

    /// Opens a fresh reader positioned at the first data row.
    pub(crate) fn open(&self) -> Result<Box<dyn RowReader>> {
        Ok(match self {
            Input::Csv { path, options } => Box::new(CsvRows::open(path, options)?),
            Input::Parquet { path } => Box::new(ParquetRows::open(path)?),
        })
    }
}

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
