//! Learnt loss weights: uncertainty weighting (Kendall et al., CVPR 2018), see
//! [`crate::spec::LossBalancing::Uncertainty`].
//!
//! The trainer asks for each task's weight before a step ([`Uncertainty::weights`]), runs the
//! step with them (so the network's gradient is that of `Σ c_t·exp(-s_t)·L_t`), then moves the
//! log-variances with the step's task losses ([`Uncertainty::update`]): the loss's derivative
//! in s_t is `1/2 − c_t·exp(−s_t)·L_t`, applied with Adam.

use crate::spec::{ModelSpec, TaskKind};

/// One Adam step (bias-corrected) of `params` along `grads` with the moments `(m, v, t)`.
fn adam_step(
    params: &mut [f64],
    grads: &[f64],
    (m, v, t): (&mut [f64], &mut [f64], &mut u64),
    [b1, b2]: [f64; 2],
    eps: f64,
    lr: f64,
) {
    *t += 1;
    let (c1, c2) = (1.0 - b1.powi(*t as i32), 1.0 - b2.powi(*t as i32));
    for (i, g) in grads.iter().enumerate() {
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        params[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
    }
}

/// The learnt log-variances and their Adam state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Uncertainty {
    /// s_t = log σ_t², per task.
    pub log_vars: Vec<f64>,
    /// c_t: 1/2 for regression, 1 for classification.
    scale: Vec<f64>,
    pub m: Vec<f64>,
    pub v: Vec<f64>,
    pub t: u64,
    betas: [f64; 2],
    eps: f64,
}

impl Uncertainty {
    pub fn new(spec: &ModelSpec, betas: [f64; 2], eps: f64) -> Self {
        let n = spec.tasks.len();
        Uncertainty {
            log_vars: vec![0.0; n],
            scale: spec
                .tasks
                .iter()
                .map(|t| {
                    if t.kind == TaskKind::Regression {
                        0.5
                    } else {
                        1.0
                    }
                })
                .collect(),
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            betas,
            eps,
        }
    }

    /// Each task's weight `c_t·exp(−s_t)`.
    pub fn weights(&self) -> Vec<f32> {
        self.log_vars
            .iter()
            .zip(&self.scale)
            .map(|(s, c)| (c * (-s).exp()) as f32)
            .collect()
    }

    /// The `Σ s_t/2` term of the loss.
    pub fn regularizer(&self) -> f64 {
        self.log_vars.iter().sum::<f64>() / 2.0
    }

    /// The loss's gradient in each s_t for task losses `losses`.
    pub fn gradient(&self, losses: &[f32]) -> Vec<f64> {
        self.log_vars
            .iter()
            .zip(&self.scale)
            .zip(losses)
            .map(|((s, c), l)| 0.5 - c * (-s).exp() * f64::from(*l))
            .collect()
    }

    /// One Adam step of the log-variances at learning rate `lr`.
    pub fn update(&mut self, losses: &[f32], lr: f64) {
        let grad = self.gradient(losses);
        let moments = (&mut self.m[..], &mut self.v[..], &mut self.t);
        adam_step(&mut self.log_vars, &grad, moments, self.betas, self.eps, lr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A numerical derivative of `Σ c·exp(−s)·L + s/2` agrees with `gradient`, and the
    /// weights settle where `c·exp(−s) = 1/(2L)`.
    #[test]
    fn gradient_and_fixed_point() {
        let mut u = Uncertainty {
            log_vars: vec![0.3, -0.7],
            scale: vec![1.0, 0.5],
            m: vec![0.0; 2],
            v: vec![0.0; 2],
            t: 0,
            betas: [0.9, 0.999],
            eps: 1e-8,
        };
        let losses = [0.4f32, 3.0];
        let total = |s: &[f64]| -> f64 {
            s.iter()
                .zip([1.0, 0.5])
                .zip(losses)
                .map(|((s, c), l)| c * (-s).exp() * f64::from(l) + s / 2.0)
                .sum()
        };
        let g = u.gradient(&losses);
        for i in 0..2 {
            let h = 1e-6;
            let mut up = u.log_vars.clone();
            up[i] += h;
            let mut down = u.log_vars.clone();
            down[i] -= h;
            let numeric = (total(&up) - total(&down)) / (2.0 * h);
            assert!((numeric - g[i]).abs() < 1e-6, "{numeric} vs {}", g[i]);
        }
        for _ in 0..20_000 {
            u.update(&losses, 0.01);
        }
        let w = u.weights();
        assert!((f64::from(w[0]) - 1.0 / 0.8).abs() < 1e-3, "{w:?}");
        assert!((f64::from(w[1]) - 1.0 / 6.0).abs() < 1e-3, "{w:?}");
        assert!((u.regularizer() - (u.log_vars[0] + u.log_vars[1]) / 2.0).abs() < 1e-12);
    }
}

/// GradNorm's learnt weights and their Adam state, see
/// [`crate::spec::LossBalancing::GradNorm`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GradNorm {
    /// w_t, summing to the number of tasks.
    pub weights: Vec<f64>,
    /// L_t(0): the task losses of the first step, the reference of the training rates.
    pub initial: Option<Vec<f64>>,
    alpha: f64,
    pub m: Vec<f64>,
    pub v: Vec<f64>,
    pub t: u64,
    betas: [f64; 2],
    eps: f64,
}

impl GradNorm {
    pub fn new(tasks: usize, alpha: f64, betas: [f64; 2], eps: f64) -> Self {
        GradNorm {
            weights: vec![1.0; tasks],
            initial: None,
            alpha,
            m: vec![0.0; tasks],
            v: vec![0.0; tasks],
            t: 0,
            betas,
            eps,
        }
    }

    /// The targets `Ḡ·r_t^α` of the weighted norms `w_t·G_t`, given each task's unweighted
    /// shared-gradient norm `G_t` and loss `L_t` (the first call fixes `L_t(0)`).
    pub fn targets(&mut self, norms: &[f64], losses: &[f32]) -> Vec<f64> {
        let initial = self
            .initial
            .get_or_insert_with(|| losses.iter().map(|&l| f64::from(l)).collect());
        let n = norms.len() as f64;
        let mean_norm = norms
            .iter()
            .zip(&self.weights)
            .map(|(g, w)| g * w)
            .sum::<f64>()
            / n;
        let rates: Vec<f64> = losses
            .iter()
            .zip(initial.iter())
            .map(|(&l, &l0)| if l0 > 0.0 { f64::from(l) / l0 } else { 1.0 })
            .collect();
        let mean_rate = rates.iter().sum::<f64>() / n;
        rates
            .iter()
            .map(|r| {
                let r = if mean_rate > 0.0 { r / mean_rate } else { 1.0 };
                mean_norm * r.powf(self.alpha)
            })
            .collect()
    }

    /// `L_grad = Σ |w_t·G_t − target_t|` and its gradient in each w_t (the targets held
    /// constant, as in the paper): `sign(w_t·G_t − target_t)·G_t`.
    pub fn loss_and_gradient(&self, norms: &[f64], targets: &[f64]) -> (f64, Vec<f64>) {
        let mut loss = 0.0;
        let grad = norms
            .iter()
            .zip(&self.weights)
            .zip(targets)
            .map(|((g, w), target)| {
                let d = w * g - target;
                loss += d.abs();
                d.signum() * g
            })
            .collect();
        (loss, grad)
    }

    /// One Adam step on the weights at learning rate `lr`, then the renormalisation to
    /// `Σ w_t = T` (weights kept above 1e-3 of their mean so none switches off for good).
    /// Returns `L_grad` before the step.
    pub fn update(&mut self, norms: &[f64], losses: &[f32], lr: f64) -> f64 {
        let targets = self.targets(norms, losses);
        let (loss, grad) = self.loss_and_gradient(norms, &targets);
        let moments = (&mut self.m[..], &mut self.v[..], &mut self.t);
        adam_step(&mut self.weights, &grad, moments, self.betas, self.eps, lr);
        for w in &mut self.weights {
            *w = w.max(1e-3);
        }
        let n = self.weights.len() as f64;
        let sum: f64 = self.weights.iter().sum();
        for w in &mut self.weights {
            *w *= n / sum;
        }
        loss
    }
}

/// The learnt loss weights of a model, by method.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Balance {
    Uncertainty(Uncertainty),
    GradNorm(GradNorm),
}

impl Balance {
    /// Each task's current loss weight.
    pub fn weights(&self) -> Vec<f32> {
        match self {
            Balance::Uncertainty(u) => u.weights(),
            Balance::GradNorm(g) => g.weights.iter().map(|&w| w as f32).collect(),
        }
    }

    /// What the method adds to the loss (uncertainty's `Σ s_t/2`; nothing for GradNorm,
    /// whose own loss only moves the weights).
    pub fn regularizer(&self) -> f64 {
        match self {
            Balance::Uncertainty(u) => u.regularizer(),
            Balance::GradNorm(_) => 0.0,
        }
    }

    /// Everything to save in a checkpoint, flat.
    pub fn state(&self) -> Vec<f64> {
        match self {
            Balance::Uncertainty(u) => [&u.log_vars, &u.m, &u.v]
                .into_iter()
                .flatten()
                .copied()
                .chain([u.t as f64])
                .collect(),
            Balance::GradNorm(g) => {
                let n = g.weights.len();
                let initial = g.initial.clone().unwrap_or_else(|| vec![f64::NAN; n]);
                [&g.weights, &initial, &g.m, &g.v]
                    .into_iter()
                    .flatten()
                    .copied()
                    .chain([g.t as f64])
                    .collect()
            }
        }
    }

    /// Restores [`Balance::state`]; `false` when its length does not fit.
    pub fn set_state(&mut self, state: &[f64]) -> bool {
        match self {
            Balance::Uncertainty(u) => {
                let n = u.log_vars.len();
                if state.len() != 3 * n + 1 {
                    return false;
                }
                u.log_vars = state[..n].to_vec();
                u.m = state[n..2 * n].to_vec();
                u.v = state[2 * n..3 * n].to_vec();
                u.t = state[3 * n] as u64;
            }
            Balance::GradNorm(g) => {
                let n = g.weights.len();
                if state.len() != 4 * n + 1 {
                    return false;
                }
                g.weights = state[..n].to_vec();
                let initial = &state[n..2 * n];
                g.initial = (!initial.iter().any(|x| x.is_nan())).then(|| initial.to_vec());
                g.m = state[2 * n..3 * n].to_vec();
                g.v = state[3 * n..4 * n].to_vec();
                g.t = state[4 * n] as u64;
            }
        }
        true
    }
}

#[cfg(test)]
mod gradnorm_tests {
    use super::*;

    /// Targets follow the paper: Ḡ·r^α; a task that trains slower (higher L/L0) gets the
    /// higher target, and updates move the weights towards equalised norms.
    #[test]
    fn targets_and_updates() {
        let mut g = GradNorm::new(2, 1.0, [0.9, 0.999], 1e-8);
        // First call fixes L(0).
        let t0 = g.targets(&[1.0, 3.0], &[1.0, 2.0]);
        assert!(
            (t0[0] - 2.0).abs() < 1e-12 && (t0[1] - 2.0).abs() < 1e-12,
            "{t0:?}"
        );
        // Task 0 trained to half its loss, task 1 not at all: r = (0.5, 1)/0.75.
        let t = g.targets(&[1.0, 3.0], &[0.5, 2.0]);
        assert!((t[0] - 2.0 * (0.5 / 0.75)).abs() < 1e-12, "{t:?}");
        assert!((t[1] - 2.0 * (1.0 / 0.75)).abs() < 1e-12, "{t:?}");
        let (loss, grad) = g.loss_and_gradient(&[1.0, 3.0], &t);
        assert!((loss - ((1.0 - t[0]).abs() + (3.0 - t[1]).abs())).abs() < 1e-12);
        assert_eq!(grad, vec![-1.0, 3.0]);
        // Equal rates: the weights converge to equal weighted norms w·G, summing to 2.
        let mut g = GradNorm::new(2, 1.5, [0.9, 0.999], 1e-8);
        for _ in 0..5_000 {
            g.update(&[1.0, 3.0], &[1.0, 1.0], 0.001);
        }
        assert!((g.weights.iter().sum::<f64>() - 2.0).abs() < 1e-9);
        let (a, b) = (g.weights[0] * 1.0, g.weights[1] * 3.0);
        assert!((a - b).abs() < 0.05, "{:?}", g.weights);
        // State round trip.
        let mut h = Balance::GradNorm(GradNorm::new(2, 1.5, [0.9, 0.999], 1e-8));
        let state = Balance::GradNorm(g.clone()).state();
        assert!(h.set_state(&state));
        assert_eq!(h, Balance::GradNorm(g));
    }
}
