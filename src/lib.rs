//! # mtl
//!
//! Multi-task ranking models for Rust. See the README for the tour; this crate re-exports the
//! runtime ([`schema`], [`data`]).

pub use mtl_runtime::{
    data, error, metrics, schema, ColumnSchema, DType, Error, Result, Schema, Tag, TagSet,
};
