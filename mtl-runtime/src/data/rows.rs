//! [`Rows`]: data that can be read once, in order, batch by batch — an in-memory [`Dataset`] or
//! a [`StreamingDataset`] (data larger than memory). Evaluation and prediction take either.

use std::path::PathBuf;

use super::batch::{BatchOptions, BatchSource};
use super::{Dataset, Layout, StreamingDataset};
use crate::error::Result;

/// Data read in order, batch by batch (no shuffling): [`Dataset`] or [`StreamingDataset`].
pub trait Rows {
    /// The decoded columns.
    fn layout(&self) -> &Layout;
    /// Every row once, in order, in batches of `batch_size` rows.
    fn in_order(&self, batch_size: usize) -> Result<Box<dyn BatchSource + '_>>;
    /// The files the rows come from (empty for data built in memory).
    fn source_files(&self) -> Vec<PathBuf>;
}

impl Rows for Dataset {
    fn layout(&self) -> &Layout {
        Dataset::layout(self)
    }
    fn in_order(&self, batch_size: usize) -> Result<Box<dyn BatchSource + '_>> {
        Ok(Box::new(
            self.batches(BatchOptions::sequential(batch_size), 0)?,
        ))
    }
    fn source_files(&self) -> Vec<PathBuf> {
        self.files().to_vec()
    }
}

impl Rows for StreamingDataset {
    fn layout(&self) -> &Layout {
        StreamingDataset::layout(self)
    }
    fn in_order(&self, batch_size: usize) -> Result<Box<dyn BatchSource + '_>> {
        Ok(Box::new(
            self.batches(BatchOptions::sequential(batch_size), 0)?,
        ))
    }
    fn source_files(&self) -> Vec<PathBuf> {
        self.files()
    }
}
