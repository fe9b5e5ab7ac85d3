//! Running a [`Plan`] on one chunk of rows: the forward pass, the losses and the backward pass,
//! in buffers owned by the chunk and reused from step to step.
//!
//! A chunk's buffers are `[C, W]` row-major with rows `W` apart. Gradient buffers are never
//! cleared: the plan says which backward write comes first to each column range (it overwrites)
//! and which columns no op writes (zeroed before the pass). Parameter gradients are written, not
//! accumulated: every parameter belongs to exactly one op.

use rand_chacha::ChaCha8Rng;

use super::gemm::{matmul, Mat};
use super::kernels::{self, ExpertRef, GateRef};
use super::plan::{Cols, Op, Plan};

/// The activation, gradient, pre-activation and dropout-mask buffers of one chunk.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    rows: usize,
    acts: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    pre: Vec<Vec<f32>>,
    masks: Vec<Vec<f32>>,
}

impl Workspace {
    /// Sizes every buffer for `rows` rows (keeping capacity from earlier chunks).
    pub fn resize(&mut self, plan: &Plan, rows: usize) {
        fn fit(bufs: &mut Vec<Vec<f32>>, widths: &[usize], rows: usize) {
            bufs.resize_with(widths.len(), Vec::new);
            for (b, &w) in bufs.iter_mut().zip(widths) {
                b.resize(rows * w, 0.0);
            }
        }
        self.rows = rows;
        fit(&mut self.acts, &plan.widths, rows);
        fit(&mut self.grads, &plan.widths, rows);
        fit(&mut self.pre, &plan.pre_widths, rows);
        fit(&mut self.masks, &plan.mask_widths, rows);
    }

    /// The `[C, INPUT_WIDTH]` input of the last forward pass.
    pub fn input(&self) -> &[f32] {
        &self.acts[0]
    }

    /// The `[C, INPUT_WIDTH]` input, to be filled before [`Workspace::forward`].
    pub fn input_mut(&mut self) -> &mut [f32] {
        &mut self.acts[0]
    }

    /// Exchanges the input's gradient buffer with `buf` (same size): the backward pass then
    /// writes the input's gradient into memory the caller keeps.
    pub fn swap_input_grad(&mut self, buf: &mut Vec<f32>) {
        debug_assert_eq!(buf.len(), self.grads[0].len());
        std::mem::swap(&mut self.grads[0], buf);
    }

    /// The activations and gradient of columns `c` (for the loss to write the gradient).
    pub fn output_and_grad(&mut self, plan: &Plan, c: Cols) -> (&[f32], &mut [f32], usize) {
        (
            &self.acts[c.buf][c.start..],
            &mut self.grads[c.buf][c.start..],
            plan.widths[c.buf],
        )
    }

    /// The forward pass; `train` applies dropout (masks drawn from `rng`) and saves what the
    /// backward pass needs.
    pub fn forward(&mut self, plan: &Plan, params: &[f32], train: bool, rng: &mut ChaCha8Rng) {
        let rows = self.rows;
        for op in &plan.ops {
            match op {
                Op::Dense(d) => {
                    let (iw, ow) = (d.input.width, d.out_width);
                    let mut out = std::mem::take(&mut self.acts[d.output]);
                    let input = &self.acts[d.input.buf][d.input.start..];
                    let w = &params[d.weight..d.weight + ow * iw];
                    matmul(
                        &mut out,
                        ow,
                        false,
                        Mat::rows(input, rows, iw, plan.widths[d.input.buf]),
                        Mat::rows(w, ow, iw, iw).t(),
                    );
                    let pre = if train {
                        d.pre.map(|p| &mut self.pre[p][..])
                    } else {
                        None
                    };
                    let dropout = match (train, d.mask) {
                        (true, Some(m)) => Some((&mut self.masks[m][..], &mut *rng)),
                        _ => None,
                    };
                    kernels::dense_forward_epilogue(
                        &mut out,
                        ow,
                        rows,
                        &d.segments,
                        params,
                        pre,
                        dropout,
                    );
                    self.acts[d.output] = out;
                }
                Op::Softmax(s) => {
                    let mut out = std::mem::take(&mut self.acts[s.output]);
                    kernels::softmax_forward(
                        &self.acts[s.input.buf],
                        plan.widths[s.input.buf],
                        s.input.start,
                        &mut out,
                        s.input.width,
                        rows,
                        s.inv_temperature,
                    );
                    self.acts[s.output] = out;
                }
                Op::Mix(m) => {
                    let mut out = std::mem::take(&mut self.acts[m.output]);
                    let (experts, gates) = mix_refs(plan, &self.acts, m);
                    kernels::mix_forward(&experts, &gates, m.h, rows, &mut out);
                    drop((experts, gates));
                    self.acts[m.output] = out;
                }
            }
        }
    }

    /// The backward pass after the loss has written the heads' gradients: parameter gradients
    /// into `param_grad` (each op's range overwritten) and the input's gradient (if the plan
    /// needs it) into the buffer given to [`Workspace::swap_input_grad`].
    pub fn backward(&mut self, plan: &Plan, params: &[f32], param_grad: &mut [f32]) {
        let rows = self.rows;
        for c in &plan.zero_grads {
            let w = plan.widths[c.buf];
            for r in 0..rows {
                self.grads[c.buf][r * w + c.start..r * w + c.start + c.width].fill(0.0);
            }
        }
        for op in plan.ops.iter().rev() {
            match op {
                Op::Dense(d) => {
                    let (iw, ow) = (d.input.width, d.out_width);
                    let ld_in = plan.widths[d.input.buf];
                    let mut g = std::mem::take(&mut self.grads[d.output]);
                    let y = &self.acts[d.output];
                    kernels::dense_backward_prologue(
                        &mut g,
                        y,
                        ow,
                        rows,
                        &d.segments,
                        d.pre.map(|p| &self.pre[p][..]),
                        d.mask.map(|m| &self.masks[m][..]),
                        param_grad,
                    );
                    let input = &self.acts[d.input.buf][d.input.start..];
                    // dW = gᵀ·X: [O, C] × [C, I].
                    matmul(
                        &mut param_grad[d.weight..d.weight + ow * iw],
                        iw,
                        false,
                        Mat::rows(&g, rows, ow, ow).t(),
                        Mat::rows(input, rows, iw, ld_in),
                    );
                    // dX (+)= g·W: [C, O] × [O, I].
                    if let Some(overwrite) = d.input_grad {
                        let w = &params[d.weight..d.weight + ow * iw];
                        matmul(
                            &mut self.grads[d.input.buf][d.input.start..],
                            ld_in,
                            !overwrite,
                            Mat::rows(&g, rows, ow, ow),
                            Mat::rows(w, ow, iw, iw),
                        );
                    }
                    self.grads[d.output] = g;
                }
                Op::Softmax(s) => {
                    let w = s.input.width;
                    let dy = std::mem::take(&mut self.grads[s.output]);
                    kernels::softmax_backward(
                        &self.acts[s.output],
                        &dy,
                        w,
                        rows,
                        &mut self.grads[s.input.buf],
                        plan.widths[s.input.buf],
                        s.input.start,
                        s.input_grad_overwrite,
                        s.inv_temperature,
                    );
                    self.grads[s.output] = dy;
                }
                Op::Mix(m) => {
                    let dout = std::mem::take(&mut self.grads[m.output]);
                    let ld_out = m.gates.len() * m.h;
                    let (experts, gates) = mix_refs(plan, &self.acts, m);
                    for (g, gate) in m.gates.iter().enumerate() {
                        let c = gate.weights;
                        kernels::mix_backward_weights(
                            &experts,
                            &gate.columns,
                            &dout,
                            ld_out,
                            g * m.h,
                            m.h,
                            rows,
                            &mut self.grads[c.buf],
                            plan.widths[c.buf],
                            c.start,
                            gate.weights_grad_overwrite,
                        );
                    }
                    for ((e, users), &overwrite) in
                        m.experts.iter().zip(&m.users).zip(&m.expert_grad_overwrite)
                    {
                        kernels::mix_backward_expert(
                            users,
                            &gates,
                            &dout,
                            m.h,
                            rows,
                            &mut self.grads[e.buf],
                            plan.widths[e.buf],
                            e.start,
                            overwrite,
                        );
                    }
                    drop((experts, gates));
                    self.grads[m.output] = dout;
                }
            }
        }
    }
}

/// Views of a mix op's experts and gate weights in the activation buffers.
fn mix_refs<'a>(
    plan: &Plan,
    acts: &'a [Vec<f32>],
    m: &'a super::plan::MixOp,
) -> (Vec<ExpertRef<'a>>, Vec<GateRef<'a>>) {
    let experts = m
        .experts
        .iter()
        .map(|e| ExpertRef {
            data: &acts[e.buf],
            ld: plan.widths[e.buf],
            start: e.start,
        })
        .collect();
    let gates = m
        .gates
        .iter()
        .map(|g| GateRef {
            data: &acts[g.weights.buf],
            ld: plan.widths[g.weights.buf],
            start: g.weights.start,
            columns: &g.columns,
        })
        .collect();
    (experts, gates)
}
