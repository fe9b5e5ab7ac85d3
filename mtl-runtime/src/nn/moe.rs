//! Mixture-of-experts pieces: the softmax [`Gate`] and [`concat_columns`].
//!
//! The K experts of a level run as ONE batched layer: their first (and only) dense layers are the
//! column blocks of a single `Dense<I, K·H>`, so the experts cost one `[B, I] × [I, K·H]` matrix
//! product instead of K small ones. Each expert still has its own weights (its block); the
//! batched layer is initialised glorot-uniform over `(I, K·H)` where K separate layers would use
//! `(I, H)` (a slightly smaller initial scale).
//!
//! A gate computes `g = softmax(W·gate_block(x) / τ)` with `W` a bias-free `[K, G]` projection
//! (glorot-uniform) and τ the temperature, given in per-mille as the const generic `TEMP`.
//! The mixing `Σ_k g_k·E_k` of all the gates of a level is [`super::mix_gates`].
//! From the second PLE level on, expert groups read different inputs; [`concat_columns`] joins
//! their outputs into the same `[B, K·H]` layout as a first level.

use std::marker::PhantomData;

use dfdx::prelude::*;
use rand_distr::Uniform;

use super::dense::Float;

/// `[B, W]` with a batch dimension known at run time.
type Batch<const W: usize, E, D, T> = Tensor<(usize, Const<W>), E, D, T>;

/// `softmax(W·P(x) / τ)`: `P` is the gate block (`[B, I]` → `[B, G]`, an MLP or the identity),
/// `W` the bias-free projection to the `K` experts.
#[derive(Debug, Clone)]
pub struct Gate<const G: usize, const K: usize, const TEMP: u16, P, E: Dtype, D: Storage<E>> {
    pub hidden: P,
    pub weight: Tensor<Rank2<K, G>, E, D>,
    marker: PhantomData<fn() -> (E, D)>,
}

impl<const G: usize, const K: usize, const TEMP: u16, P, E, D> TensorCollection<E, D>
    for Gate<G, K, TEMP, P, E, D>
where
    P: TensorCollection<E, D>,
    E: Float,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Gate<G, K, TEMP, P::To<E2, D2>, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("hidden", |s| &s.hidden, |s| &mut s.hidden),
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(|t| {
                        let limit = E::from_f64((6.0 / (G + K) as f64).sqrt()).unwrap_or(E::ONE);
                        t.try_fill_with_distr(Uniform::new(-limit, limit))
                    }),
                ),
            ),
            |(hidden, weight)| Gate {
                hidden,
                weight,
                marker: PhantomData,
            },
        )
    }
}

impl<const G: usize, const K: usize, const TEMP: u16, P, E: Float, D: Device<E>>
    Gate<G, K, TEMP, P, E, D>
{
    /// The temperature τ.
    pub const TEMPERATURE: f64 = TEMP as f64 / 1000.0;

    fn weights<T: Tape<E, D>>(
        &self,
        h: Tensor<(usize, Const<G>), E, D, T>,
    ) -> Result<Batch<K, E, D, T>, D::Err> {
        let z = h.try_matmul(self.weight.retaped::<T>().try_permute()?)?;
        let inv = E::from_f64(1.0 / Self::TEMPERATURE).unwrap_or(E::ONE);
        z.try_mul(inv)?.try_softmax::<Axis<1>>()
    }

    /// Inference: the `[B, K]` expert weights of `x`.
    pub fn try_weights<const I: usize>(
        &self,
        x: Tensor<(usize, Const<I>), E, D, NoneTape>,
    ) -> Result<Batch<K, E, D, NoneTape>, D::Err>
    where
        P: Module<
            Tensor<(usize, Const<I>), E, D, NoneTape>,
            Output = Tensor<(usize, Const<G>), E, D, NoneTape>,
            Error = D::Err,
        >,
    {
        self.weights(self.hidden.try_forward(x)?)
    }

    /// Training: the `[B, K]` expert weights of `x`, recorded on its tape.
    pub fn try_weights_mut<const I: usize>(
        &mut self,
        x: Tensor<(usize, Const<I>), E, D, OwnedTape<E, D>>,
    ) -> Result<Batch<K, E, D, OwnedTape<E, D>>, D::Err>
    where
        P: ModuleMut<
            Tensor<(usize, Const<I>), E, D, OwnedTape<E, D>>,
            Output = Tensor<(usize, Const<G>), E, D, OwnedTape<E, D>>,
            Error = D::Err,
        >,
    {
        let h = self.hidden.try_forward_mut(x)?;
        self.weights(h)
    }
}

/// Joins `[B, W_i]` parts side by side into `[B, W]` (`W = Σ W_i`, guaranteed by the macro): the
/// expert groups of a PLE level ≥ 2 into the layout of a first level.
pub fn concat_columns<const W: usize, E: Float, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    parts: Vec<Tensor<(usize, usize), E, D, T>>,
) -> Result<Batch<W, E, D, T>, D::Err> {
    let mut parts = parts.into_iter();
    let first = parts.next().expect("at least one expert group");
    let mut joined = first;
    for part in parts {
        joined = (joined, part).try_concat_along(Axis::<1>)?;
    }
    Ok(joined
        .try_realize::<(usize, Const<W>)>()
        .unwrap_or_else(|_| unreachable!("the parts add up to W columns")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_columns_joins_parts_in_order() {
        let dev = Cpu::default();
        let a: Tensor<(usize, usize), f32, _> =
            dev.tensor_from_vec(vec![1.0, 2.0, 3.0, 4.0], (2, 2));
        let b: Tensor<(usize, usize), f32, _> = dev.tensor_from_vec(vec![5.0, 6.0], (2, 1));
        let j = concat_columns::<3, f32, _, NoneTape>(vec![a, b]).unwrap();
        assert_eq!(j.as_vec(), vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    }
}
