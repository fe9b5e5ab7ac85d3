//! The runtime of mtl: everything that is not code generation.
//!
//! - [`schema`]: Merlin-compatible column schemas, read from and written to `schema.json` and
//!   read from `schema.pbtxt`. Always available and dependency-light (the `mtl_model!` macro
//!   uses it at compile time).
//! - [`spec`], [`model`], [`summary`]: the static model description `mtl_model!` generates, the
//!   traits generated types implement, and the printed model summary. Dependency-light too.
//! - [`metrics`]: the exact AUC (and, with `engine`, the streaming per-task accumulators).
//!
//! With the `engine` feature (on by default):
//! - [`data`]: Parquet / Arrow IPC datasets validated against a schema, shuffled batches in
//!   memory or streamed with bounded memory, and synthetic data generators (`tenrec-video`, as
//!   Merlin's `generate_data`).
//! - [`nn`]: the dfdx blocks generated networks are made of (dense layers, gates).
//! - [`embedding`]: sparse embedding tables and their row-wise optimizers.
//! - [`fused`]: the fused CPU training engine (every core, fused layers, no per-step
//!   allocation) that CPU training runs on.
//! - [`loss`]: per-task losses with Merlin's weighting.
//! - [`preprocess`]: raw CSV / Parquet tables to encoded Parquet + `schema.json` (Categorify,
//!   Normalize, derived targets, seeded splits), as NVTabular does for Merlin.
//! - [`train`]: the trainer (fit / evaluate / predict, reports, checkpoints).
//! - [`export`]: the trained model as an ONNX file.
//! - [`inference`]: scoring with a trained model and its fitted preprocessing, no trainer.
//! - [`device`]: choosing CPU or CUDA at run time, and the CUDA data path.

pub mod error;
#[cfg(feature = "engine")]
pub mod loss;
pub mod metrics;
pub mod model;
pub mod schema;
pub mod spec;
pub mod summary;
mod table;

#[cfg(feature = "engine")]
pub mod data;
#[cfg(feature = "engine")]
pub mod device;
#[cfg(feature = "mpi")]
pub mod distributed;
#[cfg(feature = "engine")]
pub mod embedding;
#[cfg(feature = "engine")]
pub mod export;
#[cfg(feature = "engine")]
pub mod fused;
#[cfg(feature = "engine")]
pub mod inference;
#[cfg(feature = "engine")]
mod memory;
#[cfg(feature = "engine")]
pub mod nn;
#[cfg(feature = "engine")]
pub mod preprocess;
#[cfg(feature = "engine")]
mod simd;
#[cfg(feature = "engine")]
pub mod train;
#[cfg(feature = "engine")]
pub use dfdx;

pub use error::{Error, Result};
pub use schema::{ColumnSchema, DType, Schema, Tag, TagSet};
