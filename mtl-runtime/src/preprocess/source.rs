//! Raw input tables: where rows come from ([`Input`]: a CSV file, optionally gzipped, or
//! Parquet), and opening the reader each kind needs (see `rows` for what readers hand out).

use std::path::{Path, PathBuf};

use super::csv_reader::{CsvOptions, CsvRows};
use super::parquet_reader::ParquetRows;
use super::rows::RowReader;
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

    /// The column names and the first `limit` rows as text (`None`: null), exactly as
    /// preprocessing reads them (CSV options applied, Parquet values rendered): the shape
    /// `Predictor::score_rows` takes, e.g. to build scoring requests from a raw file.
    #[allow(clippy::type_complexity)]
    pub fn head(&self, limit: usize) -> Result<(Vec<String>, Vec<Vec<Option<String>>>)> {
        let mut reader = self.open()?;
        let columns = reader.columns().to_vec();
        let mut rows = Vec::new();
        let mut row = super::rows::Row::default();
        while rows.len() < limit && reader.next_row(&mut row)? {
            rows.push(
                (0..columns.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            );
        }
        Ok((columns, rows))
    }

    /// Opens a fresh reader positioned at the first data row.
    pub(crate) fn open(&self) -> Result<Box<dyn RowReader>> {
        Ok(match self {
            Input::Csv { path, options } => Box::new(CsvRows::open(path, options)?),
            Input::Parquet { path } => Box::new(ParquetRows::open(path)?),
        })
    }
}
