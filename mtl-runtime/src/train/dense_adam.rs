//! Adam for the dense parameters on the generic path, run where the parameters live (dfdx
//! tensor operations on the device: the GPU with `cuda`), with its moments keyed by parameter
//! name so that checkpoints can hold them (dfdx's `Adam` keeps its moments private).
//!
//! `m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; w ← w − lr·(m̂/(√v̂ + ε) + λ·w)` with bias-corrected
//! `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)` and decoupled weight decay `λ` (AdamW; 0 = plain Adam).
//! The fused CPU engine applies the same update to its flat parameter vector
//! (`fused::AdamStep`); the two exchange moments through [`Moments`] host copies.

use std::collections::BTreeMap;

use dfdx::prelude::*;

/// Host copy of one parameter's moments (checkpoints, the fused engine).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Moments {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

/// One parameter's moments on the device, flattened to `[n]`.
#[derive(Debug, Clone)]
struct DeviceMoments<D: Device<f32>> {
    m: Tensor<(usize,), f32, D>,
    v: Tensor<(usize,), f32, D>,
}

#[derive(Debug, Clone)]
pub(crate) struct DenseAdam<D: Device<f32>> {
    pub lr: f32,
    pub betas: [f32; 2],
    pub eps: f32,
    pub weight_decay: f32,
    /// L2 penalty `λ·Σw²` on kernels: `2λ·w` is added to their gradients.
    pub l2: f32,
    /// Multiplies every gradient (after the L2 term): gradient clipping.
    pub grad_scale: f32,
    /// Steps taken (bias correction).
    pub t: u64,
    state: BTreeMap<String, DeviceMoments<D>>,
}

/// Whether a parameter is a kernel (a layer's weight matrix), which the dense L2 penalty covers
/// (biases and batch-norm parameters are not).
pub(crate) fn is_kernel(name: &str) -> bool {
    name.ends_with("weight")
}

struct Step<'a, D: Device<f32>> {
    opt: &'a mut DenseAdam<D>,
    grads: &'a mut Gradients<f32, D>,
}

impl<D: Device<f32>> TensorVisitor<f32, D> for Step<'_, D> {
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
        // A parameter the pass did not reach (a metrics-only gate) has a zero gradient.
        self.grads.try_alloc_for(&*t)?;
        let n = t.shape().num_elements();
        let shape = *t.shape();
        let g = self.grads.get(&*t).try_reshape_like(&(n,))?;
        let w = t.clone().try_reshape_like(&(n,))?;
        let opt = &mut *self.opt;
        let g = if opt.l2 > 0.0 && is_kernel(&name) {
            g.try_add(w.clone().try_mul(2.0 * opt.l2)?)?
        } else {
            g
        };
        let g = if opt.grad_scale != 1.0 {
            g.try_mul(opt.grad_scale)?
        } else {
            g
        };
        let dev = t.device().clone();
        let s = match opt.state.entry(name) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(DeviceMoments {
                m: dev.try_zeros_like(&(n,))?,
                v: dev.try_zeros_like(&(n,))?,
            }),
        };
        let [b1, b2] = opt.betas;
        let c1 = 1.0 - b1.powi(opt.t.min(i32::MAX as u64) as i32);
        let c2 = 1.0 - b2.powi(opt.t.min(i32::MAX as u64) as i32);
        s.m =
            s.m.clone()
                .try_mul(b1)?
                .try_add(g.clone().try_mul(1.0 - b1)?)?;
        s.v =
            s.v.clone()
                .try_mul(b2)?
                .try_add(g.try_square()?.try_mul(1.0 - b2)?)?;
        let m_hat = s.m.clone().try_div(c1)?;
        let denom = s.v.clone().try_div(c2)?.try_sqrt()?.try_add(opt.eps)?;
        let update = m_hat
            .try_div(denom)?
            .try_add(w.clone().try_mul(opt.weight_decay)?)?;
        let w = w.try_sub(update.try_mul(opt.lr)?)?;
        *t = w.try_reshape_like(&shape)?;
        Ok(None)
    }
}

impl<D: Device<f32>> DenseAdam<D> {
    pub fn new(lr: f32, betas: [f32; 2], eps: f32, weight_decay: f32) -> Self {
        DenseAdam {
            lr,
            betas,
            eps,
            weight_decay,
            l2: 0.0,
            grad_scale: 1.0,
            t: 0,
            state: BTreeMap::new(),
        }
    }

    /// `(Σ‖g‖², Σ_kernels w²)` over `module`: the squared norm of the gradient the update would
    /// apply before clipping (the L2 term included) and the kernels' squared norm (for the
    /// penalty's value). One device sum per tensor comes back to the host.
    pub fn norms<M: TensorCollection<f32, D>>(
        &self,
        module: &M,
        grads: &mut Gradients<f32, D>,
    ) -> Result<(f64, f64), D::Err> {
        struct Norms<'a, D: Device<f32>> {
            grads: &'a mut Gradients<f32, D>,
            l2: f32,
            grad_sq: f64,
            kernel_sq: f64,
        }
        impl<D: Device<f32>> TensorVisitor<f32, D> for Norms<'_, D> {
            type Viewer = (ViewTensorRef, ViewTensorName);
            type Err = D::Err;
            type E2 = f32;
            type D2 = D;
            fn visit<S: Shape>(
                &mut self,
                opts: TensorOptions<S, f32, D>,
                (t, name): (&Tensor<S, f32, D>, String),
            ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
                if !opts.do_gradient_update {
                    return Ok(None);
                }
                self.grads.try_alloc_for(t)?;
                let n = t.shape().num_elements();
                let host = |x: Tensor<(usize,), f32, D>| -> Result<f64, D::Err> {
                    let mut v = [0.0f32];
                    x.try_square()?.try_sum::<(), _>()?.copy_into(&mut v);
                    Ok(f64::from(v[0]))
                };
                let g = self.grads.get(t).try_reshape_like(&(n,))?;
                if is_kernel(&name) {
                    let w = t.clone().try_reshape_like(&(n,))?;
                    self.kernel_sq += host(w.clone())?;
                    if self.l2 > 0.0 {
                        self.grad_sq += host(g.try_add(w.try_mul(2.0 * self.l2)?)?)?;
                        return Ok(None);
                    }
                }
                self.grad_sq += host(g)?;
                Ok(None)
            }
        }
        let mut norms = Norms {
            grads,
            l2: self.l2,
            grad_sq: 0.0,
            kernel_sq: 0.0,
        };
        M::iter_tensors(&mut RecursiveWalker {
            m: (module, String::new()),
            f: &mut norms,
        })?;
        Ok((norms.grad_sq, norms.kernel_sq))
    }

    /// One update of every trainable tensor of `module` from `grads`.
    pub fn update<M: TensorCollection<f32, D>>(
        &mut self,
        module: &mut M,
        grads: &mut Gradients<f32, D>,
    ) -> Result<(), D::Err> {
        self.t += 1;
        let mut step = Step { opt: self, grads };
        M::iter_tensors(&mut RecursiveWalker {
            m: (module, String::new()),
            f: &mut step,
        })?;
        Ok(())
    }

    /// The name of the first trainable tensor of `module` whose gradient in `grads` is not
    /// finite (checked on the device: one sum per tensor comes back), if any.
    pub fn first_non_finite<M: TensorCollection<f32, D>>(
        module: &M,
        grads: &mut Gradients<f32, D>,
    ) -> Result<Option<String>, D::Err> {
        struct Check<'a, D: Device<f32>> {
            grads: &'a mut Gradients<f32, D>,
            found: Option<String>,
        }
        impl<D: Device<f32>> TensorVisitor<f32, D> for Check<'_, D> {
            type Viewer = (ViewTensorRef, ViewTensorName);
            type Err = D::Err;
            type E2 = f32;
            type D2 = D;
            fn visit<S: Shape>(
                &mut self,
                opts: TensorOptions<S, f32, D>,
                (t, name): (&Tensor<S, f32, D>, String),
            ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
                if opts.do_gradient_update && self.found.is_none() {
                    self.grads.try_alloc_for(t)?;
                    // NaN and ±inf survive a sum (inf − inf is NaN).
                    let sum = self.grads.get(t).try_sum::<(), _>()?;
                    let mut value = [0.0f32];
                    sum.copy_into(&mut value);
                    if !value[0].is_finite() {
                        self.found = Some(name);
                    }
                }
                Ok(None)
            }
        }
        let mut check = Check { grads, found: None };
        M::iter_tensors(&mut RecursiveWalker {
            m: (module, String::new()),
            f: &mut check,
        })?;
        Ok(check.found)
    }

    /// Host copies of every parameter's moments, by name.
    pub fn host_moments(&self) -> BTreeMap<String, Moments> {
        self.state
            .iter()
            .map(|(name, s)| {
                let (mut m, mut v) = (vec![0.0; s.m.shape().0], vec![0.0; s.v.shape().0]);
                s.m.copy_into(&mut m);
                s.v.copy_into(&mut v);
                (name.clone(), Moments { m, v })
            })
            .collect()
    }

    /// Replaces every moment with `moments` (host copies), on `device`.
    pub fn set_moments(
        &mut self,
        device: &D,
        moments: impl IntoIterator<Item = (String, Moments)>,
    ) -> Result<(), D::Err> {
        self.state.clear();
        for (name, Moments { m, v }) in moments {
            let n = m.len();
            let dm = DeviceMoments {
                m: device.try_tensor_from_vec(m, (n,))?,
                v: device.try_tensor_from_vec(v, (n,))?,
            };
            self.state.insert(name, dm);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The device update equals the scalar formula, step after step.
    #[test]
    fn the_device_update_matches_the_formula() {
        let dev = Cpu::default();
        let mut w: Tensor<Rank1<3>, f32, _> = dev.tensor([0.5, -1.0, 2.0]);
        let mut opt = DenseAdam::new(0.1, [0.9, 0.999], 1e-7, 0.01);
        let (mut m, mut v, mut host) = ([0.0f32; 3], [0.0f32; 3], [0.5f32, -1.0, 2.0]);
        for step in 1..=3 {
            let g = [0.3f32 * step as f32, -0.2, 0.05];
            let mut grads = Gradients::leaky();
            grads.get_or_alloc_mut(&w).unwrap().copy_from_slice(&g);
            // One step of the update, as `update` runs it on every tensor of a module.
            opt.t += 1;
            let mut s = Step {
                opt: &mut opt,
                grads: &mut grads,
            };
            s.visit(TensorOptions::reset_to_zeros(), (&mut w, "w".to_string()))
                .unwrap();
            let (c1, c2) = (1.0 - 0.9f32.powi(step), 1.0 - 0.999f32.powi(step));
            for i in 0..3 {
                m[i] = 0.9 * m[i] + 0.1 * g[i];
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                host[i] -= 0.1 * ((m[i] / c1) / ((v[i] / c2).sqrt() + 1e-7) + 0.01 * host[i]);
            }
            for (a, b) in w.as_vec().iter().zip(&host) {
                assert!((a - b).abs() < 1e-5, "step {step}: {a} vs {b}");
            }
        }
        let saved = opt.host_moments();
        assert_eq!(saved["w"].m.len(), 3);
        assert!((saved["w"].m[1] - m[1]).abs() < 1e-7);
    }
}
