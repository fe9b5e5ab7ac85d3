//! [`GroupedDense`]: K independent layers side by side, the second and later layers of a group
//! of experts.
//!
//! The first layer of K experts that read the same input is one [`Dense`](super::Dense) with K
//! times the width (`[B, I] → [B, K·O]`). From the second layer on, expert k reads only its own
//! columns `k·I..(k+1)·I`: that is a block-diagonal layer, computed here as one batched matrix
//! product over the K blocks rather than K separate layers, so the network keeps one field per
//! layer however many experts there are.

use std::marker::PhantomData;

use dfdx::prelude::*;
use rand_distr::Uniform;

use super::activation::Activation;
use super::dense::Float;

/// `[B, W]` with a batch dimension known at run time.
type Batch<const W: usize, E, D, T> = Tensor<(usize, Const<W>), E, D, T>;

/// K layers side by side: `[B, K·I] → [B, K·O]`, block k mapping columns `k·I..(k+1)·I` to
/// `k·O..(k+1)·O` as `norm(dropout(A(x_k·W_kᵀ + b_k)))`.
///
/// `KI` and `KO` are `K·I` and `K·O` (stable Rust cannot compute them in a type). Parameters:
/// `weight` `[K·O, I]` (rows `k·O..(k+1)·O` are block k's `[O, I]` weight), `bias` `[K·O]`, and
/// `batch_norm.*` when `N` is a `BatchNorm1D<KO>` (per column, so per expert). Each block is
/// initialised as its own Keras Dense layer: glorot-uniform over `I + O`, zero bias. `DROP` is
/// the dropout rate in per-mille, training only.
#[derive(Debug, Clone)]
pub struct GroupedDense<
    const K: usize,
    const I: usize,
    const O: usize,
    const KI: usize,
    const KO: usize,
    A,
    const DROP: u16,
    N,
    E: Dtype,
    D: Storage<E>,
> {
    pub weight: Tensor<Rank2<KO, I>, E, D>,
    pub bias: Tensor<Rank1<KO>, E, D>,
    pub batch_norm: N,
    activation: PhantomData<A>,
}

impl<
        const K: usize,
        const I: usize,
        const O: usize,
        const KI: usize,
        const KO: usize,
        A,
        const DROP: u16,
        N,
        E: Dtype,
        D: Storage<E>,
    > GroupedDense<K, I, O, KI, KO, A, DROP, N, E, D>
{
    /// The dropout rate applied in training.
    pub const DROPOUT: f64 = DROP as f64 / 1000.0;

    /// `KI` and `KO` agree with `K`, `I` and `O` (checked when a forward pass is compiled).
    const WIDTHS_AGREE: () = assert!(K * I == KI && K * O == KO && K > 0);
}

impl<
        const K: usize,
        const I: usize,
        const O: usize,
        const KI: usize,
        const KO: usize,
        A,
        const DROP: u16,
        N,
        E,
        D,
    > TensorCollection<E, D> for GroupedDense<K, I, O, KI, KO, A, DROP, N, E, D>
where
    A: Activation,
    N: TensorCollection<E, D>,
    E: Float,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> =
        GroupedDense<K, I, O, KI, KO, A, DROP, N::To<E2, D2>, E2, D2>;

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
                        // Every block as its own layer: U(-l, l), l = sqrt(6 / (I + O)).
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
            |(weight, bias, batch_norm)| GroupedDense {
                weight,
                bias,
                batch_norm,
                activation: PhantomData,
            },
        )
    }
}

impl<
        const K: usize,
        const I: usize,
        const O: usize,
        const KI: usize,
        const KO: usize,
        A,
        const DROP: u16,
        N,
        E,
        D,
    > GroupedDense<K, I, O, KI, KO, A, DROP, N, E, D>
where
    A: Activation,
    E: Float,
    D: Device<E>,
{
    /// `A(x_k·W_kᵀ + b_k)` for every block, with the parameters recorded on `x`'s tape.
    fn affine<T: Tape<E, D>>(&self, x: Batch<KI, E, D, T>) -> Result<Batch<KO, E, D, T>, D::Err> {
        #[allow(clippy::let_unit_value)]
        let () = Self::WIDTHS_AGREE;
        let batch = x.shape().0;
        // [B, K·I] → [K, B, I]
        let x = x
            .try_reshape_like(&(batch, Const::<K>, Const::<I>))?
            .try_permute::<_, Axes3<1, 0, 2>>()?;
        // [K·O, I] → [K, I, O]
        let w = self
            .weight
            .retaped::<T>()
            .try_reshape_like(&(Const::<K>, Const::<O>, Const::<I>))?
            .try_permute::<_, Axes3<0, 2, 1>>()?;
        // [K, B, O] → [B, K·O]
        let y = x
            .try_matmul(w)?
            .try_permute::<_, Axes3<1, 0, 2>>()?
            .try_reshape_like(&(batch, Const::<KO>))?;
        let y = y.try_add(
            self.bias
                .retaped::<T>()
                .try_broadcast_like(&(batch, Const::<KO>))?,
        )?;
        A::apply(y)
    }
}

impl<
        const K: usize,
        const I: usize,
        const O: usize,
        const KI: usize,
        const KO: usize,
        A,
        const DROP: u16,
        N,
        E,
        D,
    > Module<Tensor<(usize, Const<KI>), E, D, NoneTape>>
    for GroupedDense<K, I, O, KI, KO, A, DROP, N, E, D>
where
    A: Activation,
    E: Float,
    D: Device<E>,
    N: Module<
        Tensor<(usize, Const<KO>), E, D, NoneTape>,
        Output = Tensor<(usize, Const<KO>), E, D, NoneTape>,
        Error = D::Err,
    >,
{
    type Output = Tensor<(usize, Const<KO>), E, D, NoneTape>;
    type Error = D::Err;

    fn try_forward(
        &self,
        x: Tensor<(usize, Const<KI>), E, D, NoneTape>,
    ) -> Result<Self::Output, D::Err> {
        self.batch_norm.try_forward(self.affine(x)?)
    }
}

impl<
        const K: usize,
        const I: usize,
        const O: usize,
        const KI: usize,
        const KO: usize,
        A,
        const DROP: u16,
        N,
        E,
        D,
    > ModuleMut<Tensor<(usize, Const<KI>), E, D, OwnedTape<E, D>>>
    for GroupedDense<K, I, O, KI, KO, A, DROP, N, E, D>
where
    A: Activation,
    E: Float,
    D: Device<E>,
    N: ModuleMut<
        Tensor<(usize, Const<KO>), E, D, OwnedTape<E, D>>,
        Output = Tensor<(usize, Const<KO>), E, D, OwnedTape<E, D>>,
        Error = D::Err,
    >,
{
    type Output = Tensor<(usize, Const<KO>), E, D, OwnedTape<E, D>>;
    type Error = D::Err;

    fn try_forward_mut(
        &mut self,
        x: Tensor<(usize, Const<KI>), E, D, OwnedTape<E, D>>,
    ) -> Result<Self::Output, D::Err> {
        let mut y = self.affine(x)?;
        if DROP > 0 {
            y = y.try_dropout(Self::DROPOUT)?;
        }
        self.batch_norm.try_forward_mut(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Dense, NoNorm, Relu};

    /// Block k of a grouped layer computes what a Dense layer with block k's parameters
    /// computes on columns `k·I..(k+1)·I`, forward and backward.
    #[test]
    fn each_block_is_an_independent_dense_layer() {
        const K: usize = 3;
        const I: usize = 4;
        const O: usize = 2;
        let dev = Cpu::seed_from_u64(7);
        let mut g = GroupedDense::<K, I, O, 12, 6, Relu, 0, NoNorm, f32, Cpu>::build(&dev);
        g.bias = dev.sample_normal();
        let x: Tensor<(usize, Const<12>), f32, Cpu> = dev.sample_normal_like(&(5, Const));
        let grads = g.alloc_grads();
        let y = g.forward_mut(x.clone().traced(grads));
        let y_values = y.as_vec();
        let grads = y.square().sum().backward();
        let (gw, gb) = (grads.get(&g.weight).as_vec(), grads.get(&g.bias).as_vec());
        let (w, b, xs) = (g.weight.as_vec(), g.bias.as_vec(), x.as_vec());
        for k in 0..K {
            let mut dense = Dense::<I, O, Relu, 0, NoNorm, f32, Cpu>::build(&dev);
            dense.weight = dev.tensor(w[k * O * I..(k + 1) * O * I].to_vec());
            dense.bias = dev.tensor(b[k * O..(k + 1) * O].to_vec());
            let cols: Vec<f32> = (0..5)
                .flat_map(|r| xs[r * 12 + k * I..r * 12 + (k + 1) * I].to_vec())
                .collect();
            let xk: Tensor<(usize, Const<I>), f32, Cpu> = dev.tensor_from_vec(cols, (5, Const));
            let dgrads = dense.alloc_grads();
            let yk = dense.forward_mut(xk.traced(dgrads));
            for (r, row) in yk.as_vec().chunks(O).enumerate() {
                for (j, v) in row.iter().enumerate() {
                    assert!((v - y_values[r * K * O + k * O + j]).abs() < 1e-5);
                }
            }
            let dgrads = yk.square().sum().backward();
            let dw = dgrads.get(&dense.weight).as_vec();
            let db = dgrads.get(&dense.bias).as_vec();
            for (a, e) in dw.iter().zip(&gw[k * O * I..(k + 1) * O * I]) {
                assert!((a - e).abs() < 1e-4, "weight gradient of block {k}");
            }
            for (a, e) in db.iter().zip(&gb[k * O..(k + 1) * O]) {
                assert!((a - e).abs() < 1e-4, "bias gradient of block {k}");
            }
        }
    }
}
