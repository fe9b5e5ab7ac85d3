//! Batches: fixed-size slices of rows in columnar form, reused from one step to the next.
//!
//! Every batch source ([`Batches`] over an in-memory [`Dataset`], [`StreamingBatches`] over
//! files) hands out `&Batch` from [`BatchSource::next_batch`]; the buffers behind it are
//! overwritten by the next call, so iterating allocates nothing after the first batch.
//!
//! [`Dataset`]: super::Dataset
//! [`StreamingBatches`]: super::StreamingBatches

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::buffers::ColumnBuffers;
use super::layout::Layout;
use super::view::BatchView;
use super::Dataset;
use crate::error::{Error, Result};

/// How batches are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Rows per batch (the last one may be smaller unless `drop_last`).
    pub batch_size: usize,
    /// Shuffle rows every epoch (Keras `fit` does; `evaluate`/`predict` do not).
    pub shuffle: bool,
    /// Seed of the shuffle; epoch `e` uses a permutation derived from `(seed, e)`.
    pub seed: u64,
    /// Drop a final batch smaller than `batch_size`.
    pub drop_last: bool,
}

impl BatchOptions {
    /// Shuffled batches of `batch_size` rows, seed 0, keeping the last partial batch.
    pub fn new(batch_size: usize) -> Self {
        BatchOptions {
            batch_size,
            shuffle: true,
            seed: 0,
            drop_last: false,
        }
    }

    /// Batches in dataset order (for evaluation and prediction).
    pub fn sequential(batch_size: usize) -> Self {
        BatchOptions {
            shuffle: false,
            ..BatchOptions::new(batch_size)
        }
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::invalid("batch_size must be at least 1"));
        }
        Ok(())
    }

    /// The RNG of one epoch: independent streams per epoch from one seed.
    pub(crate) fn epoch_rng(&self, epoch: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(epoch);
        rng
    }
}

/// One batch of rows: an id slice per categorical column and a float slice per other column.
#[derive(Debug, Clone)]
pub struct Batch {
    layout: Arc<Layout>,
    pub(crate) data: ColumnBuffers,
}

impl Batch {
    pub(crate) fn new(layout: Arc<Layout>, capacity: usize) -> Batch {
        let data = ColumnBuffers::with_capacity(
            layout.num_id_columns(),
            layout.num_float_columns(),
            capacity,
        );
        Batch { layout, data }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The ids of a categorical column, `[B]`.
    pub fn ids(&self, column: &str) -> Option<&[u32]> {
        self.data.ids_named(&self.layout, column)
    }

    /// The values of a non-categorical column, `[B]`.
    pub fn floats(&self, column: &str) -> Option<&[f32]> {
        self.data.floats_named(&self.layout, column)
    }

    /// Id column by layout slot (no name lookup; see [`Layout::get`]).
    pub fn ids_at(&self, slot: usize) -> &[u32] {
        &self.data.ids[slot]
    }

    /// Float column by layout slot.
    pub fn floats_at(&self, slot: usize) -> &[f32] {
        &self.data.floats[slot]
    }
}

/// Anything that yields batches: in-memory or streamed.
pub trait BatchSource {
    /// The next batch, or `None` at the end of the epoch.
    fn next_batch(&mut self) -> Result<Option<&Batch>>;

    /// The next batch as a [`BatchView`]: the same rows as [`BatchSource::next_batch`], but a
    /// source that holds its rows in memory can hand them out without copying them into a batch
    /// first. Use one of the two methods per epoch, not both.
    fn next_view(&mut self) -> Result<Option<BatchView<'_>>> {
        Ok(self.next_batch()?.map(BatchView::of_batch))
    }
}

/// Batches of one epoch over an in-memory [`Dataset`].
pub struct Batches<'a> {
    dataset: &'a Dataset,
    options: BatchOptions,
    order: Option<Vec<u32>>,
    pos: usize,
    batch: Batch,
}

impl<'a> Batches<'a> {
    pub(crate) fn new(dataset: &'a Dataset, options: BatchOptions, epoch: u64) -> Result<Self> {
        options.validate()?;
        let rows = dataset.num_rows();
        if u32::try_from(rows).is_err() {
            return Err(Error::invalid(format!(
                "an in-memory dataset holds at most {} rows ({rows} given); stream it instead",
                u32::MAX
            )));
        }
        let order = options.shuffle.then(|| {
            let mut order: Vec<u32> = (0..rows as u32).collect();
            order.shuffle(&mut options.epoch_rng(epoch));
            order
        });
        Ok(Batches {
            dataset,
            options,
            order,
            pos: 0,
            batch: Batch::new(dataset.layout_arc(), options.batch_size),
        })
    }

    /// Batches this epoch yields in total.
    pub fn num_batches(&self) -> usize {
        let rows = self.dataset.num_rows();
        let b = self.options.batch_size;
        if self.options.drop_last {
            rows / b
        } else {
            rows.div_ceil(b)
        }
    }

    /// The next batch, or `None` at the end of the epoch.
    #[allow(clippy::should_implement_trait)] // lends a reused buffer, so not an Iterator
    pub fn next(&mut self) -> Option<&Batch> {
        let rows = self.dataset.num_rows();
        let end = (self.pos + self.options.batch_size).min(rows);
        if self.pos >= rows || (self.options.drop_last && end - self.pos < self.options.batch_size)
        {
            return None;
        }
        self.batch.data.clear();
        match &self.order {
            Some(order) => self
                .batch
                .data
                .push_rows(self.dataset.buffers(), &order[self.pos..end]),
            None => self
                .batch
                .data
                .extend_range(self.dataset.buffers(), self.pos..end),
        }
        self.pos = end;
        Some(&self.batch)
    }
}

impl BatchSource for Batches<'_> {
    fn next_batch(&mut self) -> Result<Option<&Batch>> {
        Ok(self.next())
    }

    /// A view of the dataset's own rows in this batch's order: nothing is copied.
    fn next_view(&mut self) -> Result<Option<BatchView<'_>>> {
        let rows = self.dataset.num_rows();
        let end = (self.pos + self.options.batch_size).min(rows);
        if self.pos >= rows || (self.options.drop_last && end - self.pos < self.options.batch_size)
        {
            return Ok(None);
        }
        let start = std::mem::replace(&mut self.pos, end);
        let (data, layout) = (self.dataset.buffers(), self.dataset.layout());
        Ok(Some(match &self.order {
            Some(order) => BatchView::indices(data, layout, &order[start..end]),
            None => BatchView::range(data, layout, start, end - start),
        }))
    }
}
