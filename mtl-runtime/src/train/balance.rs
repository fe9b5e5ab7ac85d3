//! Learnt loss weights: uncertainty weighting (Kendall et al., CVPR 2018), see
//! [`crate::spec::LossBalancing::Uncertainty`].
//!
//! The trainer asks for each task's weight before a step ([`Uncertainty::weights`]), runs the
//! step with them (so the network's gradient is that of `Σ c_t·exp(-s_t)·L_t`), then moves the
//! log-variances with the step's task losses ([`Uncertainty::update`]): the loss's derivative
//! in s_t is `1/2 − c_t·exp(−s_t)·L_t`, applied with Adam.

use crate::spec::{ModelSpec, TaskKind};

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
        self.t += 1;
        let [b1, b2] = self.betas;
        let (c1, c2) = (1.0 - b1.powi(self.t as i32), 1.0 - b2.powi(self.t as i32));
        for (i, g) in grad.into_iter().enumerate() {
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g;
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g * g;
            self.log_vars[i] -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + self.eps);
        }
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
