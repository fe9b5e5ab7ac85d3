//! [`Dense`] layers, [`NoNorm`] and [`Identity`].

use std::marker::PhantomData;

use dfdx::prelude::*;
use rand_distr::uniform::SampleUniform;
use rand_distr::Uniform;

use super::activation::Activation;

/// `[B, W]` with a batch dimension known at run time.
type Batch<const W: usize, E, D, T> = Tensor<(usize, Const<W>), E, D, T>;

/// Shorthand for the numeric bounds every block needs.
pub trait Float: Dtype + num_traits::Float + SampleUniform {}
impl<E: Dtype + num_traits::Float + SampleUniform> Float for E {}

/// One MLP layer: `y = norm(dropout(A(x·Wᵀ + b)))`, mapping `[B, I]` to `[B, O]`.
///
/// `DROP` is the dropout rate in per-mille (100 = 0.1), applied only in training. `N` is
/// [`NoNorm`] or dfdx's `BatchNorm1D<O, E, D>`. Parameters: `weight` `[O, I]`, `bias` `[O]`
/// (and `batch_norm.*`), initialised like Keras' Dense: glorot-uniform weight, zero bias.
#[derive(Debug, Clone)]
pub struct Dense<const I: usize, const O: usize, A, const DROP: u16, N, E: Dtype, D: Storage<E>> {
    pub weight: Tensor<Rank2<O, I>, E, D>,
    pub bias: Tensor<Rank1<O>, E, D>,
    pub batch_norm: N,
    activation: PhantomData<A>,
}

impl<const I: usize, const O: usize, A, const DROP: u16, N, E: Dtype, D: Storage<E>>
    Dense<I, O, A, DROP, N, E, D>
{
    /// The dropout rate applied in training.
    pub const DROPOUT: f64 = DROP as f64 / 1000.0;
}

impl<const I: usize, const O: usize, A, const DROP: u16, N, E, D> TensorCollection<E, D>
    for Dense<I, O, A, DROP, N, E, D>
where
    A: Activation,
    N: TensorCollection<E, D>,
    E: Float,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Dense<I, O, A, DROP, N::To<E2, D2>, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(|t| {
                        // glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).
                        let limit = E::from_f64((6.0 / (I + O) as f64).sqrt()).unwrap_or(E::ONE);
                        t.try_fill_with_distr(Uniform::new(-limit, limit))
                    }),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_to_zeros(),
                ),
                Self::module("batch_norm", |s| &s.batch_norm, |s| &mut s.batch_norm),
            ),
            |(weight, bias, batch_norm)| Dense {
                weight,
                bias,
                batch_norm,
                activation: PhantomData,
            },
        )
    }
}

impl<const I: usize, const O: usize, A, const DROP: u16, N, E, D> Dense<I, O, A, DROP, N, E, D>
where
    A: Activation,
    E: Float,
    D: Device<E>,
{
    /// `A(x·Wᵀ + b)` with the parameters recorded on `x`'s tape.
    fn affine<T: Tape<E, D>>(
        &self,
        x: Tensor<(usize, Const<I>), E, D, T>,
    ) -> Result<Batch<O, E, D, T>, D::Err> {
        let batch = x.shape().0;
        let y = x.try_matmul(self.weight.retaped::<T>().try_permute()?)?;
        let y = y.try_add(
            self.bias
                .retaped::<T>()
                .try_broadcast_like(&(batch, Const::<O>))?,
        )?;
        A::apply(y)
    }
}

impl<const I: usize, const O: usize, A, const DROP: u16, N, E, D>
    Module<Tensor<(usize, Const<I>), E, D, NoneTape>> for Dense<I, O, A, DROP, N, E, D>
where
    A: Activation,
    E: Float,
    D: Device<E>,
    N: Module<
        Tensor<(usize, Const<O>), E, D, NoneTape>,
        Output = Tensor<(usize, Const<O>), E, D, NoneTape>,
        Error = D::Err,
    >,
{
    type Output = Tensor<(usize, Const<O>), E, D, NoneTape>;
    type Error = D::Err;

    fn try_forward(
        &self,
        x: Tensor<(usize, Const<I>), E, D, NoneTape>,
    ) -> Result<Self::Output, D::Err> {
        self.batch_norm.try_forward(self.affine(x)?)
    }
}

impl<const I: usize, const O: usize, A, const DROP: u16, N, E, D>
    ModuleMut<Tensor<(usize, Const<I>), E, D, OwnedTape<E, D>>> for Dense<I, O, A, DROP, N, E, D>
where
    A: Activation,
    E: Float,
    D: Device<E>,
    N: ModuleMut<
        Tensor<(usize, Const<O>), E, D, OwnedTape<E, D>>,
        Output = Tensor<(usize, Const<O>), E, D, OwnedTape<E, D>>,
        Error = D::Err,
    >,
{
    type Output = Tensor<(usize, Const<O>), E, D, OwnedTape<E, D>>;
    type Error = D::Err;

    fn try_forward_mut(
        &mut self,
        x: Tensor<(usize, Const<I>), E, D, OwnedTape<E, D>>,
    ) -> Result<Self::Output, D::Err> {
        let mut y = self.affine(x)?;
        if DROP > 0 {
            y = y.try_dropout(Self::DROPOUT)?;
        }
        self.batch_norm.try_forward_mut(y)
    }
}

/// "No normalisation" for [`Dense`]: no parameters, passes its input through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NoNorm;

/// The identity block (`body: identity`): `[B, I]` → `[B, I]`, no parameters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Identity;

macro_rules! passthrough {
    ($ty:ident) => {
        impl<E: Dtype, D: Device<E>> TensorCollection<E, D> for $ty {
            type To<E2: Dtype, D2: Device<E2>> = $ty;
            fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
                visitor: &mut V,
            ) -> Result<Option<$ty>, V::Err> {
                visitor.visit_fields((), |()| $ty)
            }
        }

        impl<X: HasErr> Module<X> for $ty {
            type Output = X;
            type Error = X::Err;
            fn try_forward(&self, x: X) -> Result<X, X::Err> {
                Ok(x)
            }
        }

        impl<X: HasErr> ModuleMut<X> for $ty {
            type Output = X;
            type Error = X::Err;
            fn try_forward_mut(&mut self, x: X) -> Result<X, X::Err> {
                Ok(x)
            }
        }
    };
}

passthrough!(NoNorm);
passthrough!(Identity);
