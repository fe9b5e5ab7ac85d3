//! Datasets: Parquet / Arrow IPC files validated against a schema, and batches over them.
//!
//! - [`Dataset`]: decode everything once into columnar memory (`u32` ids, `f32` values), then
//!   batch it any number of times: [`Dataset::batches`].
//! - [`StreamingDataset`]: read row groups on demand through a bounded shuffle buffer, for data
//!   larger than memory: [`StreamingDataset::batches`].
//! - [`synthetic`]: generators (`tenrec-video`, as Merlin's `generate_data`).
//!
//! Both dataset kinds accept a single Parquet file, a directory of Parquet parts (the layout
//! Merlin, NVTabular, Spark, Dask and DataFusion write), or an Arrow IPC file. The schema comes
//! from `schema.json` / `schema.pbtxt` / `.merlin/schema.json` next to the data, or is given in
//! [`LoadOptions`]. Before any row is decoded, every schema column must exist in every file with
//! a compatible type; while decoding, invalid values are errors (or repairs, if asked for; see
//! [`IdPolicy`] and [`NullPolicy`]).
//!
//! ```no_run
//! use mtl_runtime::data::{BatchOptions, BatchSource, Dataset};
//! let train = Dataset::open("data/train")?;
//! let mut batches = train.batches(BatchOptions::new(4096).with_seed(7), 0)?;
//! while let Some(batch) = batches.next_batch()? {
//!     let users: &[u32] = batch.ids("user_id").unwrap();     // [B]
//!     let clicks: &[f32] = batch.floats("click").unwrap();   // [B]
//!     assert_eq!(users.len(), clicks.len());
//! }
//! # Ok::<(), mtl_runtime::Error>(())
//! ```

mod batch;
mod buffers;
mod dataset;
mod decode;
mod files;
mod layout;
mod policy;
mod rows;
mod stream;
pub mod synthetic;
mod view;
mod write;

pub use batch::{Batch, BatchOptions, BatchSource, Batches};
pub use dataset::{ColumnValues, Dataset, Head};
pub(crate) use files::parquet_parts;
pub use layout::{ColumnKind, ColumnSlot, Layout, MAX_LIST_WIDTH, NO_ID};
pub use policy::{ColumnRepairs, IdPolicy, LoadOptions, LoadReport, NullPolicy};
pub use rows::Rows;
pub use stream::{
    StreamingBatches, StreamingDataset, DEFAULT_SHUFFLE_BUFFER_ROWS, READ_SLICE_ROWS,
};
pub use view::BatchView;
pub use write::WriteOptions;
