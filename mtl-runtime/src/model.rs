//! The traits every `mtl_model!` type implements: the bridge from generated code to the runtime.

use crate::spec::ModelSpec;

/// A model declared with `mtl_model!`. Implemented by the zero-sized builder type.
pub trait MtlModel {
    /// The static description: features, input width, tasks, schema.
    const SPEC: &'static ModelSpec;
    /// Width of the `[B, INPUT_WIDTH]` network input.
    const INPUT_WIDTH: usize;
}

#[cfg(feature = "engine")]
pub use network::{DynBatch, NamedGates, TapedOutputs, TaskNetwork};

#[cfg(feature = "engine")]
mod network {
    use dfdx::prelude::*;

    /// A `[B, W]` tensor whose widths are known at run time only.
    pub type DynBatch<E, D, T = NoneTape> = Tensor<(usize, usize), E, D, T>;

    /// Named `[B, K]` gate weights of a mixture-of-experts body.
    pub type NamedGates<E, D> = Vec<(&'static str, DynBatch<E, D>)>;

    /// The per-task outputs of a training pass, each carrying part of the gradient tape.
    pub type TapedOutputs<E, D> = Vec<DynBatch<E, D, OwnedTape<E, D>>>;

    /// The network of an `mtl_model!` type, seen with run-time widths so that the trainer can be
    /// written once for every model. Outputs come in task order (`ModelSpec::tasks`), each
    /// `[B, W_t]`.
    pub trait TaskNetwork<E: Dtype, D: Device<E>>: TensorCollection<E, D> {
        /// Training forward pass (dropout on, batch statistics) of a `[B, INPUT_WIDTH]` input.
        fn try_forward_train(
            &mut self,
            x: DynBatch<E, D, OwnedTape<E, D>>,
        ) -> Result<TapedOutputs<E, D>, D::Err>;

        /// Inference forward pass.
        fn try_forward_eval(&self, x: DynBatch<E, D>) -> Result<Vec<DynBatch<E, D>>, D::Err>;

        /// The gates of a mixture-of-experts body and their `[B, K]` weights for `x`, named like
        /// Merlin's gates (`gate_<output>` per task, `shared_gate`). Empty for other bodies.
        fn try_gate_weights(&self, x: DynBatch<E, D>) -> Result<NamedGates<E, D>, D::Err> {
            let _ = x;
            Ok(Vec::new())
        }
    }
}
