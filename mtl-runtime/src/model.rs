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
pub(crate) use network::load_named_parameters;
#[cfg(feature = "engine")]
pub use network::{
    named_parameters, DynBatch, NamedGates, NamedParameters, TapedOutputs, TaskNetwork,
};

#[cfg(feature = "engine")]
mod network {
    use dfdx::prelude::*;

    /// A `[B, W]` tensor whose widths are known at run time only.
    pub type DynBatch<E, D, T = NoneTape> = Tensor<(usize, usize), E, D, T>;

    /// Named `[B, K]` gate weights of a mixture-of-experts body.
    pub type NamedGates<E, D> = Vec<(&'static str, DynBatch<E, D>)>;

    /// The per-task outputs of a training pass, each carrying part of the gradient tape.
    pub type TapedOutputs<E, D> = Vec<DynBatch<E, D, OwnedTape<E, D>>>;

    /// Trainable parameters as host values, by dfdx name (`body.0.weight`, ...).
    pub type NamedParameters = Vec<(String, Vec<f32>)>;

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

        /// The initial parameters for `seed`: those of the network built on a CPU seeded with
        /// `seed`, so that one seed fixes the dense initialisation on every device. `None`:
        /// the network does not say, and keeps the initialisation its device's RNG gave it.
        fn seeded_parameters(seed: u64) -> Option<Result<NamedParameters, String>>
        where
            Self: Sized,
        {
            let _ = seed;
            None
        }
    }

    /// Every trainable tensor of `network`, copied to the host, by name.
    pub fn named_parameters<M: TensorCollection<f32, Cpu>>(
        network: &M,
    ) -> Result<NamedParameters, CpuError> {
        struct Collect(NamedParameters);
        impl TensorVisitor<f32, Cpu> for Collect {
            type Viewer = (ViewTensorRef, ViewTensorName);
            type Err = CpuError;
            type E2 = f32;
            type D2 = Cpu;
            fn visit<S: Shape>(
                &mut self,
                opts: TensorOptions<S, f32, Cpu>,
                (t, name): (&Tensor<S, f32, Cpu>, String),
            ) -> Result<Option<Tensor<S, f32, Cpu>>, CpuError> {
                if opts.do_gradient_update {
                    let mut v = vec![0.0; t.shape().num_elements()];
                    t.copy_into(&mut v);
                    self.0.push((name, v));
                }
                Ok(None)
            }
        }
        let mut collect = Collect(Vec::new());
        M::iter_tensors(&mut RecursiveWalker {
            m: (network, String::new()),
            f: &mut collect,
        })?;
        Ok(collect.0)
    }

    /// Copies `values` into the trainable tensors of `network` they name. Returns the names
    /// of the trainable tensors that `values` lacks or gives the wrong number of values for
    /// (left as they were), so a caller can refuse a partial copy.
    pub fn load_named_parameters<M: TensorCollection<f32, D>, D: Device<f32>>(
        network: &mut M,
        values: &NamedParameters,
    ) -> Result<Vec<String>, D::Err> {
        struct Load<'a> {
            values: std::collections::HashMap<&'a str, &'a [f32]>,
            missing: Vec<String>,
        }
        impl<D: Device<f32>> TensorVisitor<f32, D> for Load<'_> {
            type Viewer = (ViewTensorMut, ViewTensorName);
            type Err = D::Err;
            type E2 = f32;
            type D2 = D;
            fn visit<S: Shape>(
                &mut self,
                opts: TensorOptions<S, f32, D>,
                (t, name): (&mut Tensor<S, f32, D>, String),
            ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
                if opts.do_gradient_update {
                    match self.values.get(name.as_str()) {
                        Some(v) if v.len() == t.shape().num_elements() => t.copy_from(v),
                        _ => self.missing.push(name),
                    }
                }
                Ok(None)
            }
        }
        let mut load = Load {
            values: values
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect(),
            missing: Vec::new(),
        };
        M::iter_tensors(&mut RecursiveWalker {
            m: (network, String::new()),
            f: &mut load,
        })?;
        Ok(load.missing)
    }
}
