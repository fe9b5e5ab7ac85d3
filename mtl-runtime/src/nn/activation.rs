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
    /// The exact (erf) GELU, Keras' default: `x·Φ(x)`.
    ///
    /// dfdx 0.13's `accurate_gelu` computes the right values but a wrong derivative: its
    /// `x·φ(x)` term is √2 too large. The derivative is corrected here by adding a term whose
    /// value is exactly 0 and whose derivative is `−(√2 − 1)·x·φ(x)`:
    /// `(√2 − 1)/√(2π) · (e^{−x²/2} − stop_gradient(e^{−x²/2}))`.
    Gelu, "gelu", |x| {
        let k = (std::f64::consts::SQRT_2 - 1.0) / (2.0 * std::f64::consts::PI).sqrt();
        let (x, tape) = x.split_tape();
        let gelu = x.clone().put_tape(tape).try_accurate_gelu()?;
        let (gelu, tape) = gelu.split_tape();
        let half = E::from_f64(-0.5).unwrap_or(E::ONE);
        let bump = x.clone().put_tape(tape).try_square()?.try_mul(half)?.try_exp()?;
        let constant = x.try_square()?.try_mul(half)?.try_exp()?;
        let zero = bump.try_sub(constant)?.try_mul(E::from_f64(k).unwrap_or(E::ONE))?;
        zero.try_add(gelu)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each activation's gradient on the generic path against central differences.
    fn check<A: Activation>() {
        let dev = Cpu::default();
        let xs = [-2.0f32, -0.7, -0.1, 0.3, 1.1, 2.4];
        let x: Tensor<Rank1<6>, f32, _> = dev.tensor(xs);
        let y = A::apply(x.leaky_trace()).unwrap();
        let values = y.retaped::<NoneTape>().array();
        let grads = y.sum().backward();
        let g = grads.get(&x).array();
        for (i, &x0) in xs.iter().enumerate() {
            let f = |v: f32| A::apply(dev.tensor([v])).unwrap().array()[0];
            let numeric = (f(x0 + 1e-3) - f(x0 - 1e-3)) / 2e-3;
            assert!(
                (numeric - g[i]).abs() < 2e-3,
                "{} at {x0}: {numeric} vs {}",
                A::NAME,
                g[i]
            );
            assert!((values[i] - f(x0)).abs() < 1e-6);
        }
    }

    #[test]
    fn every_activation_has_the_right_derivative() {
        check::<Relu>();
        check::<Gelu>();
        check::<Tanh>();
        check::<Sigmoid>();
        check::<Selu>();
        check::<Linear>();
    }
}
