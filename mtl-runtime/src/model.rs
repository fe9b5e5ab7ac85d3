//! The trait every `mtl_model!` type implements: the bridge from generated code to the runtime.

use crate::spec::ModelSpec;

/// A model declared with `mtl_model!`. Implemented by the zero-sized builder type.
pub trait MtlModel {
    /// The static description: features, input width, tasks, schema.
    const SPEC: &'static ModelSpec;
    /// Width of the `[B, INPUT_WIDTH]` network input.
    const INPUT_WIDTH: usize;
}
