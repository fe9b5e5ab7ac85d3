//! # mtl
//!
//! Multi-task ranking models for Rust. See the README for the tour and [`dsl`] for the
//! `mtl_model!` reference.

extern crate self as mtl;

pub mod dsl;

pub use mtl_macros::mtl_model;
#[cfg(feature = "mpi")]
pub use mtl_runtime::distributed;
pub use mtl_runtime::model::{MtlModel, TaskNetwork};
pub use mtl_runtime::{
    data, device, dfdx, embedding, error, export, inference, loss, metrics, nn, preprocess, schema,
    spec, train, ColumnSchema, DType, Error, Result, Schema, Tag, TagSet,
};

/// Everything a model file needs: the macro, the model trait, and dfdx's prelude (devices,
/// tensors, `Module`, optimizers), so user code needs no direct dfdx dependency.
pub mod prelude {
    pub use crate::{mtl_model, MtlModel, TaskNetwork};
    pub use mtl_runtime::dfdx::prelude::*;
    pub use mtl_runtime::inference::Predictor;
    pub use mtl_runtime::train::{
        EarlyStopping, GateWeights, History, LrSchedule, ReduceOnPlateau, Report, RunReport,
        TrainConfig, Trainer,
    };
}

/// What generated code uses. Not a public API: names here may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use mtl_runtime::dfdx;
    pub use mtl_runtime::model::{
        named_parameters, DynBatch, MtlModel, NamedGates, NamedParameters, TapedOutputs,
        TaskNetwork,
    };
    pub use mtl_runtime::{nn, spec, summary};
}
