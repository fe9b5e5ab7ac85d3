//! One training step, on either path: the fused CPU engine ([`crate::fused`]) or the
//! device-generic dfdx path (the tape: forward, one backward, dense Adam, sparse row update).

use dfdx::prelude::*;

use std::collections::BTreeMap;

use super::dense_adam::DenseAdam;
use super::{Bound, Scratch, StepGradients, Trainer};
use crate::data::{Batch, BatchOptions, BatchView, Dataset};
use crate::error::{Error, Result};
use crate::fused::{AdamStep, StepInput};
use crate::loss::task_loss;
use crate::model::{MtlModel, TaskNetwork};
use crate::nn::host_values;

impl<M, D> Trainer<M, D>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    /// One step of the fused CPU engine on `view`; returns the unweighted per-task losses, the
    /// total (weighted losses plus regularization) and the regularization.
    pub(super) fn fused_step(
        &mut self,
        view: &BatchView,
        bound: &Bound,
    ) -> Result<(Vec<f32>, f32, f32)> {
        let opt = &self.dense_optimizer;
        let adam = AdamStep::new(opt.lr, opt.betas, opt.eps, opt.weight_decay, opt.t + 1)
            .with_regularization(
                self.config.dense_l2 as f32,
                self.config.clip_global_norm.map(|c| c as f32),
            );
        let input = StepInput {
            view: *view,
            binding: &bound.input,
            tasks: &bound.tasks,
            loss_weights: &self.loss_weights,
            chains: &self.chains,
            step: self.step,
            // Data-parallel processes draw different dropout masks, as one process's rows
            // would.
            seed: self.config.seed
                ^ self
                    .sync
                    .as_ref()
                    .map_or(0, |s| (s.rank() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            embeddings_l2: self.config.embeddings_l2 as f32,
        };
        let engine = self
            .engine
            .as_mut()
            .ok_or_else(|| Error::invalid("internal error: the fused engine was not started"))?;
        let out = engine.step(&input, &mut self.embeddings, &mut self.row_optimizer, adam)?;
        self.dense_optimizer.t += 1;
        self.step += 1;
        Ok(out)
    }

    /// One training step on `batch`; returns the unweighted per-task losses and the total.
    /// The generic path's forward pass, losses and backward pass on `batch`: per-task losses,
    /// the total, the gradients and the input tensor they are keyed by.
    #[allow(clippy::type_complexity)]
    fn generic_backward(
        &mut self,
        batch: &Batch,
        bound: &Bound,
        scratch: &mut Scratch,
    ) -> Result<(
        Vec<f32>,
        f32,
        Gradients<f32, D>,
        crate::model::DynBatch<f32, D>,
    )> {
        let x = self.input(batch, &bound.input, scratch)?;
        let x_ref = x.clone();
        let outputs = self
            .network
            .try_forward_train(x.leaky_traced())
            .map_err(Self::device_err)?;
        let outputs: Vec<_> = outputs.into_iter().collect();
        // Task relations: chained tasks' (ESMM) joint losses and AITM's calibration term, and the
        // gradients they send to the logits of the tasks involved, computed on the host (as the
        // fused engine does for chains) and fed back through `Σ g·z` terms, whose gradient in
        // the logits z is exactly g. Their value is counted in `total_value` instead.
        let relations = self.relation_gradients(batch, bound, &outputs)?;
        let mut total: Option<Tensor<Rank0, f32, D, OwnedTape<f32, D>>> = None;
        let mut total_value = relations.as_ref().map_or(0.0, |r| r.calibration);
        let mut losses = Vec::with_capacity(outputs.len());
        let non_finite = |task: &str, value: f32, step: u64| {
            Error::invalid(format!(
                "the loss of task `{task}` is {value} at step {step}; training stopped before \
                 this step changed any weight (check the data for extreme values, lower the \
                 learning rate)"
            ))
        };
        for (t, ((out, task), &lambda)) in outputs
            .into_iter()
            .zip(&bound.tasks)
            .zip(&self.loss_weights)
            .enumerate()
        {
            let view = BatchView::of_batch(batch);
            task.targets(&view, &mut scratch.targets);
            task.check_targets(&view, &scratch.targets)?;
            task.weights(&view, &scratch.targets, &mut scratch.weights);
            let extra = match &relations {
                Some(r) if r.grads[t].iter().any(|&g| g != 0.0) => Some(&r.grads[t]),
                _ => None,
            };
            let surrogate = |z: crate::model::DynBatch<f32, D, OwnedTape<f32, D>>, g: &[f32]| {
                let (b, w) = *z.shape();
                let g = z.device().try_tensor_from_vec(g.to_vec(), (b, w))?;
                z.try_mul(g)?.try_sum()
            };
            if let (Some(r), true) = (&relations, task.spec.given.is_some()) {
                // The joint loss is this task's loss; its gradient is all in `Σ g·z`.
                let value = r.joint[t] as f32;
                if !value.is_finite() {
                    return Err(non_finite(task.spec.name, value, self.step));
                }
                losses.push(value);
                total_value += f64::from(lambda) * r.joint[t];
                let term = surrogate(out, extra.map_or(&[][..], |g| g.as_slice()))
                    .map_err(Self::device_err)?;
                total = Some(match total {
                    None => term,
                    Some(t) => t.try_add(term).map_err(Self::device_err)?,
                });
                continue;
            }
            // A parent of a chained task, or a task of an AITM pair: its own loss plus the
            // relation's gradient.
            let copy = extra.map(|_| out.with_empty_tape());
            let loss = task_loss(task.spec.kind, out, &scratch.targets, &scratch.weights)
                .map_err(Self::device_err)?;
            let value = loss.as_vec()[0];
            if !value.is_finite() {
                return Err(non_finite(task.spec.name, value, self.step));
            }
            losses.push(value);
            total_value += f64::from(lambda) * f64::from(value);
            let mut weighted = loss.try_mul(lambda).map_err(Self::device_err)?;
            if let (Some(copy), Some(g)) = (copy, extra) {
                let term = surrogate(copy, g).map_err(Self::device_err)?;
                weighted = weighted.try_add(term).map_err(Self::device_err)?;
            }
            total = Some(match total {
                None => weighted,
                Some(t) => t.try_add(weighted).map_err(Self::device_err)?,
            });
        }
        let total = total.ok_or_else(|| Error::invalid("the model has no tasks"))?;
        Ok((losses, total_value as f32, total.backward(), x_ref))
    }

    /// One step of the generic path on `batch`; returns the unweighted per-task losses, the
    /// total (weighted losses plus regularization) and the regularization.
    pub(super) fn train_step(
        &mut self,
        batch: &Batch,
        bound: &Bound,
        scratch: &mut Scratch,
    ) -> Result<(Vec<f32>, f32, f32)> {
        let (losses, total_value, mut grads, x_ref) =
            self.generic_backward(batch, bound, scratch)?;
        let mut input_grad = host_values(&grads.get(&x_ref));
        let mut regularization = 0.0f64;
        let embeddings_l2 = self.config.embeddings_l2 as f32;
        if embeddings_l2 > 0.0 {
            let x = host_values(&x_ref);
            regularization += crate::embedding::embedding_l2(
                &bound.input,
                &x,
                &mut input_grad,
                batch.len(),
                embeddings_l2,
            );
        }
        // Nothing moves unless every gradient is finite.
        let bad = if input_grad.iter().all(|g| g.is_finite()) {
            DenseAdam::first_non_finite(&self.network, &mut grads).map_err(Self::device_err)?
        } else {
            Some("the input (embeddings)".to_string())
        };
        if let Some(name) = bad {
            return Err(Error::invalid(format!(
                "the gradient of `{name}` is not finite at step {}; training stopped before this \
                 step changed any weight (lower the learning rate, check the data)",
                self.step
            )));
        }
        // The dense L2 term joins the kernels' gradients inside the update; clipping scales
        // every gradient by one factor.
        let dense_l2 = self.config.dense_l2;
        self.dense_optimizer.l2 = dense_l2 as f32;
        let mut scale = 1.0f32;
        if dense_l2 > 0.0 || self.config.clip_global_norm.is_some() {
            let (dense_sq, kernel_sq) = self
                .dense_optimizer
                .norms(&self.network, &mut grads)
                .map_err(Self::device_err)?;
            regularization += dense_l2 * kernel_sq;
            if let Some(max_norm) = self.config.clip_global_norm {
                let rows_sq = self
                    .embeddings
                    .gradient_norm_sq(batch, &bound.input, &input_grad);
                let norm = (dense_sq + rows_sq).sqrt();
                if norm > max_norm {
                    scale = (max_norm / norm) as f32;
                }
            }
        }
        self.dense_optimizer.grad_scale = scale;
        self.dense_optimizer
            .update(&mut self.network, &mut grads)
            .map_err(Self::device_err)?;
        self.embeddings.apply_scaled_gradient(
            batch,
            &bound.input,
            &input_grad,
            scale,
            &mut self.row_optimizer,
        )?;
        self.step += 1;
        let regularization = regularization as f32;
        Ok((losses, total_value + regularization, regularization))
    }

    /// The gradients one training step would apply on the first `batch_size` rows of `data`
    /// (in order), without applying them, from whichever path `fit` would use. For tests that
    /// check the fused engine against the generic path.
    #[doc(hidden)]
    pub fn step_gradients(&mut self, data: &Dataset) -> Result<StepGradients> {
        let bound = self.bind(data.layout())?;
        let mut batches = data.batches(BatchOptions::sequential(self.config.batch_size), 0)?;
        let batch = batches
            .next()
            .ok_or_else(|| Error::invalid("no rows to take gradients on"))?;
        self.start()?;
        if let Some(engine) = &mut self.engine {
            engine.load_params(&self.network)?;
            let input = StepInput {
                view: BatchView::of_batch(batch),
                binding: &bound.input,
                tasks: &bound.tasks,
                loss_weights: &self.loss_weights,
                chains: &self.chains,
                step: self.step,
                seed: self.config.seed,
                embeddings_l2: 0.0,
            };
            let (losses, dense, input) = engine.gradients(&input, &self.embeddings)?;
            return Ok(StepGradients {
                losses,
                dense: dense.into_iter().collect(),
                input,
            });
        }
        let (losses, _, mut grads, x_ref) =
            self.generic_backward(batch, &bound, &mut Scratch::default())?;
        Ok(StepGradients {
            losses,
            dense: named_gradients(&self.network, &mut grads)?,
            input: host_values(&grads.get(&x_ref)),
        })
    }
}

/// What task relations add to a generic step: per task, `∂(relation terms)/∂z` on its logits
/// (`[B]`, zeros for a task in no relation); per task the joint loss of a chained task (0 for
/// the others); and the weighted calibration total `Σ λ_c·κ_c·C_c`.
struct RelationGradients {
    grads: Vec<Vec<f32>>,
    joint: Vec<f64>,
    calibration: f64,
}

/// Every trainable tensor's gradient in `grads`, by parameter name.
fn named_gradients<M: TensorCollection<f32, D>, D: Device<f32>>(
    network: &M,
    grads: &mut Gradients<f32, D>,
) -> Result<BTreeMap<String, Vec<f32>>> {
    struct Collect<'a, D: Device<f32>> {
        grads: &'a mut Gradients<f32, D>,
        out: BTreeMap<String, Vec<f32>>,
    }
    impl<D: Device<f32>> TensorVisitor<f32, D> for Collect<'_, D> {
        type Viewer = (ViewTensorRef, ViewTensorName);
        type Err = D::Err;
        type E2 = f32;
        type D2 = D;
        fn visit<S: Shape>(
            &mut self,
            opts: TensorOptions<S, f32, D>,
            (t, name): (&Tensor<S, f32, D>, String),
        ) -> std::result::Result<Option<Tensor<S, f32, D>>, D::Err> {
            if opts.do_gradient_update {
                // A parameter the pass did not reach has a zero gradient.
                self.grads.try_alloc_for(t)?;
                self.out.insert(name, host_values(&self.grads.get(t)));
            }
            Ok(None)
        }
    }
    let mut c = Collect {
        grads,
        out: BTreeMap::new(),
    };
    M::iter_tensors(&mut RecursiveWalker {
        m: (network, String::new()),
        f: &mut c,
    })
    .map_err(|e| Error::invalid(format!("device error: {e:?}")))?;
    Ok(c.out)
}

impl<M, D> Trainer<M, D>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    /// For a model with task relations (chained tasks, AITM transfers): per task, the
    /// gradient its logits receive from the chained tasks' joint losses and the calibration
    /// terms, the chained tasks' joint losses, and the weighted calibration total. `None`
    /// without relations.
    fn relation_gradients<T>(
        &self,
        batch: &Batch,
        bound: &Bound,
        outputs: &[crate::model::DynBatch<f32, D, T>],
    ) -> Result<Option<RelationGradients>> {
        let spec = M::SPEC;
        if spec
            .tasks
            .iter()
            .all(|t| t.given.is_none() && t.aitm.is_none())
        {
            return Ok(None);
        }
        let rows = batch.len();
        let view = BatchView::of_batch(batch);
        let logits: Vec<Vec<f32>> = outputs.iter().map(|o| o.as_vec()).collect();
        let mut targets = Vec::with_capacity(spec.tasks.len());
        for task in &bound.tasks {
            let mut y = Vec::new();
            task.targets(&view, &mut y);
            task.check_targets(&view, &y)?;
            targets.push(y);
        }
        let mut out = RelationGradients {
            grads: vec![vec![0.0f32; rows]; spec.tasks.len()],
            joint: vec![0.0f64; spec.tasks.len()],
            calibration: 0.0,
        };
        for (t, task) in bound.tasks.iter().enumerate() {
            if let Some(aitm) = task.spec.aitm {
                let parent = spec
                    .tasks
                    .iter()
                    .position(|p| p.name == aitm.parent)
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "internal error: task `{}` transfers from unknown task `{}`",
                            task.spec.name, aitm.parent
                        ))
                    })?;
                // The calibrator belongs to the child's loss: λ_c·(L_c + κ·C).
                let scale = self.loss_weights[t] * aitm.calibration;
                let mut sum = 0.0f64;
                let (child_z, parent_z) = (&logits[t], &logits[parent]);
                for (r, (&zc, &zp)) in child_z.iter().zip(parent_z).enumerate() {
                    let (c, gc, gp) = crate::loss::calibration_row(zc, zp);
                    sum += c;
                    out.grads[t][r] += gc * scale / rows as f32;
                    out.grads[parent][r] += gp * scale / rows as f32;
                }
                out.calibration += f64::from(scale) * sum / rows as f64;
            }
            if task.spec.given.is_none() {
                continue;
            }
            let chain = &self.chains[t];
            let mut weights = Vec::new();
            task.weights(&view, &targets[t], &mut weights);
            let scale = self.loss_weights[t] / rows as f32;
            let grads = &mut out.grads;
            let sum = crate::loss::chain_batch_loss(
                chain,
                rows,
                |m, r| logits[m][r],
                |m, r| targets[m][r],
                |r| weights[r],
                |r, w, g| {
                    for (&m, gk) in chain.iter().zip(g) {
                        grads[m][r] += gk * scale * w;
                    }
                },
            );
            out.joint[t] = sum / rows as f64;
        }
        Ok(Some(out))
    }
}

impl<M, D> Trainer<M, D>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    /// GradNorm's `G_t`: for each task alone (weight 1, the others 0), the norm of its loss's
    /// gradient over the shared dense parameters, on the fused engine's current weights.
    /// One extra forward and backward pass per task.
    pub(super) fn fused_task_norms(&mut self, view: &BatchView, bound: &Bound) -> Result<Vec<f64>> {
        let tasks = M::SPEC.tasks.len();
        let mut norms = Vec::with_capacity(tasks);
        for t in 0..tasks {
            let mut weights = vec![0.0f32; tasks];
            weights[t] = 1.0;
            let input = StepInput {
                view: *view,
                binding: &bound.input,
                tasks: &bound.tasks,
                loss_weights: &weights,
                chains: &self.chains,
                step: self.step,
                seed: self.config.seed,
                embeddings_l2: 0.0,
            };
            let engine = self.engine.as_mut().ok_or_else(|| {
                Error::invalid("internal error: the fused engine was not started")
            })?;
            let (_, dense, _) = engine.gradients(&input, &self.embeddings)?;
            norms.push(shared_norm(
                M::SPEC,
                dense.iter().map(|(n, g)| (n.as_str(), &g[..])),
            ));
        }
        Ok(norms)
    }

    /// [`Trainer::fused_task_norms`] on the generic path.
    pub(super) fn generic_task_norms(
        &mut self,
        batch: &Batch,
        bound: &Bound,
        scratch: &mut Scratch,
    ) -> Result<Vec<f64>> {
        let tasks = M::SPEC.tasks.len();
        let saved = std::mem::take(&mut self.loss_weights);
        let mut norms = Vec::with_capacity(tasks);
        let mut result = Ok(());
        for t in 0..tasks {
            self.loss_weights = vec![0.0; tasks];
            self.loss_weights[t] = 1.0;
            let grads = self
                .generic_backward(batch, bound, scratch)
                .and_then(|(_, _, mut grads, _)| named_gradients(&self.network, &mut grads));
            match grads {
                Ok(g) => norms.push(shared_norm(
                    M::SPEC,
                    g.iter().map(|(n, g)| (n.as_str(), &g[..])),
                )),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.loss_weights = saved;
        result.map(|_| norms)
    }
}

/// The Euclidean norm of the gradients of the spec's shared parameters.
fn shared_norm<'a>(
    spec: &crate::spec::ModelSpec,
    grads: impl Iterator<Item = (&'a str, &'a [f32])>,
) -> f64 {
    grads
        .filter_map(|(name, g)| spec.shared_part(name, g.len()).map(|r| &g[r]))
        .map(|g| g.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
        .sum::<f64>()
        .sqrt()
}
