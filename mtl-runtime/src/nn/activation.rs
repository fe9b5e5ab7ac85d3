//! Activations as zero-sized types, so that a layer's type says which one it applies.

use dfdx::prelude::*;

/// An element-wise activation function.
pub trait Activation: Default + Clone + Copy + std::fmt::Debug + Send + Sync + 'static {
    /// The DSL / Keras name.
    const NAME: &'static str;
    fn apply<S: Shape, E: Dtype + num_traits::Float, D: Device<E>, T: Tape<E, D>>(
        x: Tensor<S, E, D, T>,
    ) -> Result<Tensor<S, E, D, T>, D::Err>;
}

macro_rules! activation {
    ($(#[$doc:meta])* $ty:ident, $name:literal, |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct $ty;
        impl Activation for $ty {
            const NAME: &'static str = $name;
            fn apply<S: Shape, E: Dtype + num_traits::Float, D: Device<E>, T: Tape<E, D>>(
                $x: Tensor<S, E, D, T>,
            ) -> Result<Tensor<S, E, D, T>, D::Err> {
                $body
            }
        }
    };
}

activation!(
    /// max(x, 0).
    Relu, "relu", |x| x.try_relu()
);
activation!(
    /// The exact (erf) GELU, Keras' default.
    Gelu, "gelu", |x| x.try_accurate_gelu()
);
activation!(
    /// tanh(x).
    Tanh, "tanh", |x| x.try_tanh()
);
activation!(
    /// 1 / (1 + e^-x).
    Sigmoid, "sigmoid", |x| x.try_sigmoid()
);
activation!(
    /// The identity (no activation).
    Linear, "none", |x| Ok(x)
);
activation!(
    /// SELU: λ·x for x > 0, λ·α·(eˣ − 1) otherwise (λ ≈ 1.0507, α ≈ 1.6733).
    Selu, "selu", |x| {
        const ALPHA: f64 = 1.673_263_242_354_377_3;
        const LAMBDA: f64 = 1.050_700_987_355_480_5;
        let (x, tape) = x.split_tape();
        // relu(x) + α·(exp(min(x, 0)) − 1), with min(x, 0) = −relu(−x).
        let pos = x.clone().put_tape(tape).try_relu()?;
        let (pos, tape) = pos.split_tape();
        let neg = x.put_tape(tape).try_negate()?.try_relu()?.try_negate()?.try_exp()?;
        let neg = neg.try_sub(E::ONE)?.try_mul(E::from_f64(ALPHA).unwrap_or(E::ONE))?;
        neg.try_add(pos)?.try_mul(E::from_f64(LAMBDA).unwrap_or(E::ONE))
    }
);
