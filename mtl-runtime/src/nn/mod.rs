//! dfdx blocks that `mtl_model!` networks are made of.
//!
//! - [`Dense`]: one MLP layer as Merlin's MLPBlock builds it — `Dense(activation)` →
//!   `Dropout` (training only) → optional `BatchNorm` — with Keras initialisation (glorot-uniform
//!   kernel, zero bias). The activation is a type ([`Relu`], [`Gelu`], ...), the dropout rate a
//!   const generic in per-mille, so a layer is fully described by its type.
//! - An MLP is a tuple of `Dense` layers (parameter names `0.weight`, `1.bias`, ...); a head is a
//!   `Dense` without activation.
//! - [`GroupedDense`]: K layers side by side (`[B, K·I] → [B, K·O]`, block k reading only its
//!   own columns): the second and later layers of multi-layer experts.
//! - [`Identity`]: the body that passes its input through.
//! - Mixture-of-experts pieces: [`Gate`], [`mix_gates`],
//!   [`concat_columns`], and [`Fanout`] for values with several consumers.
//! - [`Aitm`]: AITM's attention transfer from a parent task's tower into its child's.
//!
//! Shapes: every block maps `[B, I]` to `[B, O]`. `Module` with `NoneTape` is inference,
//! `ModuleMut` with `OwnedTape` is training (dropout active, batch-norm statistics updated), as
//! in dfdx.

mod activation;
mod aitm;
mod dense;
mod fanout;
mod grouped;
mod mix;
mod moe;

pub use activation::{Activation, Gelu, Linear, Relu, Selu, Sigmoid, Tanh};
pub use aitm::Aitm;
pub use dense::{Dense, Float, Identity, NoNorm};
pub use fanout::Fanout;
pub use grouped::GroupedDense;

use dfdx::prelude::{Device, HasShape, Shape, Tensor};

/// The values of a contiguous tensor (a layer output, a softmax, a gradient buffer) in host
/// memory, as one copy: `as_vec` walks an index iterator on the CPU, several times slower for
/// `[B, W]` tensors, and a device tensor comes back in one transfer.
pub(crate) fn host_values<S: Shape, D: Device<f32>>(t: &Tensor<S, f32, D>) -> Vec<f32> {
    let mut v = vec![0.0f32; t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}
pub use mix::mix_gates;
pub use moe::{concat_columns, Gate};
