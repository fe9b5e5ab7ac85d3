//! Streaming datasets: row groups read on demand through a bounded shuffle buffer.
//!
//! For data larger than memory. Each epoch visits the chunks (Parquet row groups / IPC record
//! batches) in an order shuffled from `(seed, epoch)`, decodes one slice of at most
//! [`READ_SLICE_ROWS`] rows of a chunk at a time, and moves its rows into a shuffle buffer of
//! `shuffle_buffer_rows` rows; a batch takes rows at random positions of that buffer. Rows
//! resident at any time are therefore at most `shuffle_buffer_rows` + one slice, whatever the
//! dataset or row-group size ([`StreamingBatches::peak_resident_rows`] reports it). Without
//! shuffling, chunks are read in file order and rows come out in dataset order through the same
//! one-slice window.
//!
//! The shuffle is as good as the buffer is large relative to a row group: rows of one row group
//! are mixed with those of the row groups buffered with it, not with the whole dataset.

use std::path::Path;
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use arrow_array::RecordBatch;

use super::batch::{Batch, BatchOptions, BatchSource};
use super::buffers::ColumnBuffers;
use super::dataset::resolve;
use super::decode::{Decoder, RowOrigin};
use super::files::Source;
use super::layout::Layout;
use super::policy::{LoadOptions, LoadReport};
use crate::error::{Error, Result};
use crate::schema::Schema;

/// Default shuffle-buffer size: 2^18 rows (about 10 MiB for the tenrec-video columns).
pub const DEFAULT_SHUFFLE_BUFFER_ROWS: usize = 1 << 18;

/// A dataset on disk, validated and ready to stream.
#[derive(Debug, Clone)]
pub struct StreamingDataset {
    source: Source,
    schema: Schema,
    layout: Arc<Layout>,
    options: LoadOptions,
    shuffle_buffer_rows: usize,
}

impl StreamingDataset {
    /// Opens and validates (schema, column types) without decoding any rows.
    pub fn open(path: impl AsRef<Path>) -> Result<StreamingDataset> {
        StreamingDataset::open_with(path, &LoadOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<StreamingDataset> {
        if options.part_share.is_some() {
            return Err(Error::invalid(
                "a part share (LoadOptions::with_part_share) is read with Dataset::open_with; \
                 streaming reads every part",
            ));
        }
        let (source, schema, layout) = resolve(path.as_ref(), options)?;
        Ok(StreamingDataset {
            source,
            schema,
            layout: Arc::new(layout),
            options: options.clone(),
            shuffle_buffer_rows: DEFAULT_SHUFFLE_BUFFER_ROWS,
        })
    }

    /// Sets the shuffle-buffer size in rows (it must hold at least one batch).
    pub fn with_shuffle_buffer_rows(mut self, rows: usize) -> Self {
        self.shuffle_buffer_rows = rows;
        self
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The data files it reads.
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        self.source.parts.iter().map(|p| p.path.clone()).collect()
    }

    /// Rows in the dataset, when the file metadata says (Parquet).
    pub fn num_rows(&self) -> Option<u64> {
        self.source.num_rows()
    }

    /// The largest chunk (row group) in rows, when known.
    pub fn max_chunk_rows(&self) -> Option<usize> {
        self.source.chunks.iter().map(|c| c.rows).max().flatten()
    }

    /// One epoch of batches.
    pub fn batches(&self, options: BatchOptions, epoch: u64) -> Result<StreamingBatches<'_>> {
        options.validate()?;
        if options.shuffle && self.shuffle_buffer_rows < options.batch_size {
            return Err(Error::invalid(format!(
                "the shuffle buffer ({} rows) must hold at least one batch ({} rows)",
                self.shuffle_buffer_rows, options.batch_size
            )));
        }
        let mut rng = options.epoch_rng(epoch);
        let mut order: Vec<usize> = (0..self.source.chunks.len()).collect();
        if options.shuffle {
            order.shuffle(&mut rng);
        }
        let (n_ids, n_floats) = (
            self.layout.num_id_columns(),
            self.layout.num_float_columns(),
        );
        Ok(StreamingBatches {
            dataset: self,
            options,
            rng,
            order,
            next_chunk: 0,
            reading: None,
            pending: ColumnBuffers::new(n_ids, n_floats),
            pending_pos: 0,
            buffer: ColumnBuffers::with_capacity(
                n_ids,
                n_floats,
                if options.shuffle {
                    self.shuffle_buffer_rows
                } else {
                    0
                },
            ),
            batch: Batch::new(Arc::clone(&self.layout), options.batch_size),
            report: LoadReport::default(),
            peak_resident_rows: 0,
        })
    }
}

/// The remaining record batches of a chunk being read.
type Slices = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// Rows decoded at a time from a streamed row group.
pub const READ_SLICE_ROWS: usize = 65_536;

/// One epoch of batches streamed from disk.
pub struct StreamingBatches<'a> {
    dataset: &'a StreamingDataset,
    options: BatchOptions,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    next_chunk: usize,
    /// The chunk being read (its index and the rows decoded so far) and its remaining slices.
    reading: Option<(usize, usize, Slices)>,
    /// The decoded slice being consumed.
    pending: ColumnBuffers,
    pending_pos: usize,
    /// The shuffle buffer (unused without shuffling).
    buffer: ColumnBuffers,
    batch: Batch,
    report: LoadReport,
    peak_resident_rows: usize,
}

impl StreamingBatches<'_> {
    /// Repairs made so far this epoch.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// The most decoded rows held at once (shuffle buffer + current chunk) so far.
    pub fn peak_resident_rows(&self) -> usize {
        self.peak_resident_rows
    }

    /// Makes `pending` hold unread rows; `false` when every chunk has been read. Row groups
    /// are read [`READ_SLICE_ROWS`] rows at a time, so memory stays bounded by the shuffle
    /// buffer plus one slice however large a row group is.
    fn ensure_pending(&mut self) -> Result<bool> {
        while self.pending_pos >= self.pending.len() {
            let source: &Source = &self.dataset.source;
            if self.reading.is_none() {
                let Some(&chunk_idx) = self.order.get(self.next_chunk) else {
                    return Ok(false);
                };
                self.next_chunk += 1;
                let chunk = source.chunks[chunk_idx];
                let slices =
                    source.chunk_slices(&chunk, &self.dataset.layout.names(), READ_SLICE_ROWS)?;
                self.reading = Some((chunk_idx, 0, slices));
            }
            let Some((chunk_idx, offset, slices)) = self.reading.as_mut() else {
                continue;
            };
            let Some(batch) = slices.next() else {
                self.reading = None;
                continue;
            };
            let batch = batch?;
            let chunk = source.chunks[*chunk_idx];
            let decoder = Decoder {
                layout: &self.dataset.layout,
                ids: self.dataset.options.ids,
                nulls: self.dataset.options.nulls,
                file: &source.parts[chunk.part].path,
            };
            self.pending.clear();
            self.pending_pos = 0;
            let origin = RowOrigin {
                first_row: chunk.first_row,
                chunk: chunk.index,
                offset_in_chunk: *offset,
            };
            decoder.append(&batch, origin, &mut self.pending, &mut self.report)?;
            *offset += batch.num_rows();
            self.peak_resident_rows = self
                .peak_resident_rows
                .max(self.buffer.len() + self.pending.len());
        }
        Ok(true)
    }

    /// Moves up to `want` rows of `pending` to the end of `dst`.
    fn take_pending(&mut self, want: usize, to_batch: bool) -> usize {
        let n = want.min(self.pending.len() - self.pending_pos);
        let range = self.pending_pos..self.pending_pos + n;
        let dst = if to_batch {
            &mut self.batch.data
        } else {
            &mut self.buffer
        };
        dst.extend_range(&self.pending, range);
        self.pending_pos += n;
        n
    }

    fn next_sequential(&mut self) -> Result<()> {
        let b = self.options.batch_size;
        while self.batch.len() < b && self.ensure_pending()? {
            let want = b - self.batch.len();
            self.take_pending(want, true);
        }
        Ok(())
    }

    fn next_shuffled(&mut self) -> Result<()> {
        let cap = self.dataset.shuffle_buffer_rows;
        while self.buffer.len() < cap && self.ensure_pending()? {
            let want = cap - self.buffer.len();
            self.take_pending(want, false);
        }
        let n = self.options.batch_size.min(self.buffer.len());
        for _ in 0..n {
            let i = self.rng.gen_range(0..self.buffer.len());
            self.buffer.swap_remove_into(i, &mut self.batch.data);
        }
        Ok(())
    }
}

impl BatchSource for StreamingBatches<'_> {
    fn next_batch(&mut self) -> Result<Option<&Batch>> {
        self.batch.data.clear();
        if self.options.shuffle {
            self.next_shuffled()?;
        } else {
            self.next_sequential()?;
        }
        let len = self.batch.len();
        if len == 0 || (self.options.drop_last && len < self.options.batch_size) {
            return Ok(None);
        }
        Ok(Some(&self.batch))
    }
}
