//! [`Aitm`]: the adaptive information transfer of AITM (Xi et al., KDD 2021) from a parent
//! task's tower into its child's.
//!
//! With `q` the child's tower output (`[B, C]`) and `p` the parent's (`[B, P]`):
//!
//! - info `i = relu(p·W_infoᵀ + b_info)` (`[B, C]`): what the parent passes on;
//! - for each of the two candidates `u ∈ {q, i}`, a score `s_u = ⟨u·W_Qᵀ, u·W_Kᵀ⟩ / √C`;
//! - weights `a = softmax(s_q, s_i)` per row, and the output `z = a_q·(q·W_Vᵀ) + a_i·(i·W_Vᵀ)`.
//!
//! The child's head reads `z`. `W_Q`, `W_K`, `W_V` are bias-free `[C, C]` projections, as in the
//! paper's reference code; every kernel starts glorot-uniform, the bias at zero. The reference
//! code also applies dropout to the info layer; here it has none.

use std::marker::PhantomData;

use dfdx::prelude::*;
use rand_distr::Uniform;

use super::dense::Float;
use super::Fanout;

/// `[B, W]` with a batch dimension known at run time.
type Batch<const W: usize, E, D, T> = Tensor<(usize, Const<W>), E, D, T>;

/// The transfer from a parent tower `P` wide into a child tower `C` wide (parameters
/// `info.weight`, `info.bias`, `query.weight`, `key.weight`, `value.weight`: kernels, so dense
/// L2 applies to all four).
#[derive(Debug, Clone)]
pub struct Aitm<const P: usize, const C: usize, E: Dtype, D: Storage<E>> {
    pub info_weight: Tensor<Rank2<C, P>, E, D>,
    pub info_bias: Tensor<Rank1<C>, E, D>,
    pub query: Tensor<Rank2<C, C>, E, D>,
    pub key: Tensor<Rank2<C, C>, E, D>,
    pub value: Tensor<Rank2<C, C>, E, D>,
    marker: PhantomData<fn() -> (E, D)>,
}

/// The glorot-uniform limit `√(6 / (fan_in + fan_out))`.
fn glorot_limit<E: Float>(fan_in: usize, fan_out: usize) -> E {
    E::from_f64((6.0 / (fan_in + fan_out) as f64).sqrt()).unwrap_or(E::ONE)
}

impl<const P: usize, const C: usize, E: Float, D: Device<E>> TensorCollection<E, D>
    for Aitm<P, C, E, D>
{
    type To<E2: Dtype, D2: Device<E2>> = Aitm<P, C, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "info.weight",
                    |s| &s.info_weight,
                    |s| &mut s.info_weight,
                    TensorOptions::reset_with(|t| {
                        let limit = glorot_limit::<E>(P, C);
                        t.try_fill_with_distr(Uniform::new(-limit, limit))
                    }),
                ),
                Self::tensor(
                    "info.bias",
                    |s| &s.info_bias,
                    |s| &mut s.info_bias,
                    TensorOptions::reset_to_zeros(),
                ),
                Self::tensor(
                    "query.weight",
                    |s| &s.query,
                    |s| &mut s.query,
                    TensorOptions::reset_with(|t| {
                        let limit = glorot_limit::<E>(C, C);
                        t.try_fill_with_distr(Uniform::new(-limit, limit))
                    }),
                ),
                Self::tensor(
                    "key.weight",
                    |s| &s.key,
                    |s| &mut s.key,
                    TensorOptions::reset_with(|t| {
                        let limit = glorot_limit::<E>(C, C);
                        t.try_fill_with_distr(Uniform::new(-limit, limit))
                    }),
                ),
                Self::tensor(
                    "value.weight",
                    |s| &s.value,
                    |s| &mut s.value,
                    TensorOptions::reset_with(|t| {
                        let limit = glorot_limit::<E>(C, C);
                        t.try_fill_with_distr(Uniform::new(-limit, limit))
                    }),
                ),
            ),
            |(info_weight, info_bias, query, key, value)| Aitm {
                info_weight,
                info_bias,
                query,
                key,
                value,
                marker: PhantomData,
            },
        )
    }
}

impl<const P: usize, const C: usize, E: Float, D: Device<E>> Aitm<P, C, E, D> {
    /// `z` from the child's tower output `child` and the parent's `parent` (inference with
    /// `NoneTape`, training with `OwnedTape`: the parameters are recorded on the inputs' tape).
    pub fn try_transfer<T: Tape<E, D>>(
        &self,
        child: Batch<C, E, D, T>,
        parent: Batch<P, E, D, T>,
    ) -> Result<Batch<C, E, D, T>, D::Err> {
        let batch = child.shape().0;
        let info = parent
            .try_matmul(self.info_weight.retaped::<T>().try_permute()?)?
            .try_add(
                self.info_bias
                    .retaped::<T>()
                    .try_broadcast_like(&(batch, Const::<C>))?,
            )?
            .try_relu()?;
        let mut q = Fanout::new(child);
        let mut i = Fanout::new(info);
        let s_q = self.score(q.next(), q.next())?;
        let s_i = self.score(i.next(), i.next())?;
        // softmax over two candidates: a_q = σ(s_q − s_i), a_i = 1 − a_q, so
        // z = v_i + a_q·(v_q − v_i).
        let a_q = s_q.try_sub(s_i)?.try_sigmoid()?;
        let v_q = q
            .next()
            .try_matmul(self.value.retaped::<T>().try_permute()?)?;
        let mut v_i = Fanout::new(
            i.next()
                .try_matmul(self.value.retaped::<T>().try_permute()?)?,
        );
        let a_q = a_q.try_broadcast_like(&(batch, Const::<C>))?;
        let diff = v_q.try_sub(v_i.next())?;
        v_i.next().try_add(a_q.try_mul(diff)?)
    }

    /// `⟨u·W_Qᵀ, u·W_Kᵀ⟩ / √C` per row, from two handles of the same `u`.
    fn score<T: Tape<E, D>>(
        &self,
        for_query: Batch<C, E, D, T>,
        for_key: Batch<C, E, D, T>,
    ) -> Result<Tensor<(usize,), E, D, T>, D::Err> {
        let q = for_query.try_matmul(self.query.retaped::<T>().try_permute()?)?;
        let k = for_key.try_matmul(self.key.retaped::<T>().try_permute()?)?;
        let inv_sqrt = E::from_f64(1.0 / (C as f64).sqrt()).unwrap_or(E::ONE);
        q.try_mul(k)?
            .try_sum::<(usize,), Axis<1>>()?
            .try_mul(inv_sqrt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transfer of one row, written out on the host.
    fn by_hand(m: &Aitm<3, 2, f64, Cpu>, q: [f64; 2], p: [f64; 3]) -> [f64; 2] {
        let w = m.info_weight.array();
        let b = m.info_bias.array();
        let i: Vec<f64> = (0..2)
            .map(|c| (b[c] + (0..3).map(|k| w[c][k] * p[k]).sum::<f64>()).max(0.0))
            .collect();
        let proj = |m: [[f64; 2]; 2], u: &[f64]| -> Vec<f64> {
            (0..2).map(|c| m[c][0] * u[0] + m[c][1] * u[1]).collect()
        };
        let score = |u: &[f64]| {
            let (a, b) = (proj(m.query.array(), u), proj(m.key.array(), u));
            (a[0] * b[0] + a[1] * b[1]) / 2f64.sqrt()
        };
        let (sq, si) = (score(&q), score(&i));
        let aq = sq.exp() / (sq.exp() + si.exp());
        let (vq, vi) = (proj(m.value.array(), &q), proj(m.value.array(), &i));
        [
            aq * vq[0] + (1.0 - aq) * vi[0],
            aq * vq[1] + (1.0 - aq) * vi[1],
        ]
    }

    #[test]
    fn the_transfer_is_attention_over_the_tower_and_the_info() {
        let dev = Cpu::seed_from_u64(7);
        let mut m: Aitm<3, 2, f64, Cpu> = BuildModule::build(&dev);
        m.info_bias = dev.tensor([0.1, -0.2]);
        let q = [[0.5, -1.0], [2.0, 0.3]];
        let p = [[1.0, 0.5, -0.5], [-1.0, 2.0, 0.25]];
        let z = m
            .try_transfer(
                dev.tensor(q).realize::<(usize, Const<2>)>(),
                dev.tensor(p).realize::<(usize, Const<3>)>(),
            )
            .unwrap();
        let z = z.as_vec();
        for r in 0..2 {
            let want = by_hand(&m, q[r], p[r]);
            for c in 0..2 {
                assert!((z[r * 2 + c] - want[c]).abs() < 1e-12, "row {r} col {c}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let dev = Cpu::seed_from_u64(11);
        let m: Aitm<3, 2, f64, Cpu> = BuildModule::build(&dev);
        let q = [[0.5, -1.0]];
        let p = [[1.0, 0.5, -0.5]];
        // loss = Σ z·(1, −2)
        let loss_of = |m: &Aitm<3, 2, f64, Cpu>| {
            let z = by_hand(m, q[0], p[0]);
            z[0] - 2.0 * z[1]
        };
        let qt = dev.tensor(q).realize::<(usize, Const<2>)>();
        let pt = dev.tensor(p).realize::<(usize, Const<3>)>();
        let z = m.try_transfer(qt.leaky_trace(), pt.retaped()).unwrap();
        let g = dev.tensor([[1.0, -2.0]]).realize::<(usize, Const<2>)>();
        let grads = (z * g).sum().backward();
        let h = 1e-6;
        let analytic = grads.get(&m.query).array();
        for r in 0..2 {
            for c in 0..2 {
                let mut plus = m.clone();
                let mut a = plus.query.array();
                a[r][c] += h;
                plus.query = dev.tensor(a);
                let mut minus = m.clone();
                let mut a = minus.query.array();
                a[r][c] -= h;
                minus.query = dev.tensor(a);
                let numeric = (loss_of(&plus) - loss_of(&minus)) / (2.0 * h);
                assert!(
                    (numeric - analytic[r][c]).abs() < 1e-6,
                    "query[{r}][{c}]: {numeric} vs {}",
                    analytic[r][c]
                );
            }
        }
        let analytic = grads.get(&m.info_weight).array();
        for r in 0..2 {
            for c in 0..3 {
                let mut plus = m.clone();
                let mut a = plus.info_weight.array();
                a[r][c] += h;
                plus.info_weight = dev.tensor(a);
                let mut minus = m.clone();
                let mut a = minus.info_weight.array();
                a[r][c] -= h;
                minus.info_weight = dev.tensor(a);
                let numeric = (loss_of(&plus) - loss_of(&minus)) / (2.0 * h);
                assert!(
                    (numeric - analytic[r][c]).abs() < 1e-6,
                    "info.weight[{r}][{c}]: {numeric} vs {}",
                    analytic[r][c]
                );
            }
        }
        // The child's input receives a gradient too (it reaches the child's tower).
        let gq = grads.get(&qt).as_vec();
        assert!(gq.iter().any(|&g| g != 0.0));
    }
}
