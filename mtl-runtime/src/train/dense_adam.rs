//! Adam for the dense parameters, with its state keyed by parameter name so that checkpoints
//! can hold it (dfdx's `Adam` keeps its moments private).
//!
//! `m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; w ← w − lr·(m̂/(√v̂ + ε) + λ·w)` with bias-corrected
//! `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)` and decoupled weight decay `λ` (AdamW; 0 = plain Adam).

use std::collections::BTreeMap;

use dfdx::prelude::*;

/// Moments of one parameter tensor.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Moments {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DenseAdam {
    pub lr: f32,
    pub betas: [f32; 2],
    pub eps: f32,
    pub weight_decay: f32,
    pub t: u64,
    pub state: BTreeMap<String, Moments>,
}

struct Step<'a, E, D: Storage<E>> {
    opt: &'a mut DenseAdam,
    grads: &'a Gradients<E, D>,
}

impl<D: Device<f32>> TensorVisitor<f32, D> for Step<'_, f32, D> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = D::Err;
    type E2 = f32;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f32, D>,
        (t, name): (&mut Tensor<S, f32, D>, String),
    ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        let g = self.grads.get(&*t).as_vec();
        let mut w = t.as_vec();
        let opt = &mut *self.opt;
        let s = opt.state.entry(name).or_insert_with(|| Moments {
            m: vec![0.0; w.len()],
            v: vec![0.0; w.len()],
        });
        let [b1, b2] = opt.betas;
        let c1 = 1.0 - b1.powi(opt.t as i32);
        let c2 = 1.0 - b2.powi(opt.t as i32);
        for i in 0..w.len() {
            s.m[i] = b1 * s.m[i] + (1.0 - b1) * g[i];
            s.v[i] = b2 * s.v[i] + (1.0 - b2) * g[i] * g[i];
            w[i] -= opt.lr
                * ((s.m[i] / c1) / ((s.v[i] / c2).sqrt() + opt.eps) + opt.weight_decay * w[i]);
        }
        t.copy_from(&w);
        Ok(None)
    }
}

impl DenseAdam {
    /// One update of every trainable tensor of `module` from `grads`.
    pub fn update<M: TensorCollection<f32, D>, D: Device<f32>>(
        &mut self,
        module: &mut M,
        grads: &Gradients<f32, D>,
    ) -> Result<(), D::Err> {
        self.t += 1;
        let mut step = Step { opt: self, grads };
        M::iter_tensors(&mut RecursiveWalker {
            m: (module, String::new()),
            f: &mut step,
        })?;
        Ok(())
    }
}
