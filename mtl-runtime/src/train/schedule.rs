//! Learning-rate schedules: a warm-up, a decay ([`LrSchedule`]) and [`ReduceOnPlateau`], which
//! together give the factor every step's learning rates (dense and embeddings) are multiplied by.
//!
//! `rate(step) = base · warmup(step) · decay(step, epoch) · plateau`, where
//! - `warmup(step) = min(1, (step + 1) / warmup_steps)` (linear from `1/warmup_steps`; 1 without
//!   a warm-up);
//! - `decay` is 1 ([`LrSchedule::Constant`]), `gamma^⌊epoch / epochs⌋` ([`LrSchedule::StepDecay`],
//!   PyTorch's `StepLR`), or Keras' `CosineDecay` over the steps after the warm-up
//!   ([`LrSchedule::Cosine`]);
//! - `plateau` is the product of the [`ReduceOnPlateau`] reductions so far, which stop once the
//!   dense base rate times `plateau` would fall below `min_lr` (Keras' `ReduceLROnPlateau`).

use super::config::{EarlyStopping, Monitor};

/// How the learning rate decays. Steps count optimizer updates (batches) from the first `fit`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum LrSchedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiplied by `gamma` every `epochs` epochs (PyTorch's `StepLR(step_size, gamma)`).
    StepDecay { epochs: usize, gamma: f64 },
    /// Keras' `CosineDecay(decay_steps, alpha)`: over `decay_steps` steps after the warm-up
    /// the factor falls from 1 to `alpha` along half a cosine,
    /// `(1 − α)·½(1 + cos(π·min(t, T)/T)) + α`, and stays at `alpha` after.
    Cosine { decay_steps: u64, alpha: f64 },
}

/// Keras' `ReduceLROnPlateau`: multiply the rates by `factor` when the monitored validation
/// value has not improved by more than `min_delta` for `patience` epochs. Keras' defaults:
/// factor 0.1, patience 10, min_delta 1e-4, min_lr 0.
#[derive(Debug, Clone, PartialEq)]
pub struct ReduceOnPlateau {
    /// The validation value watched (minimised or maximised as [`EarlyStopping::on`] decides).
    pub monitor: Monitor,
    /// In (0, 1).
    pub factor: f64,
    pub patience: usize,
    /// The dense learning rate is never reduced below this (the embeddings' rate keeps the
    /// same ratio to it).
    pub min_lr: f64,
}

impl ReduceOnPlateau {
    /// Watches `name` with Keras' defaults (factor 0.1, patience 10, min_delta 1e-4, min_lr 0).
    pub fn on(name: &str) -> Self {
        ReduceOnPlateau {
            monitor: EarlyStopping::on(name, 10).with_min_delta(1e-4).monitor,
            factor: 0.1,
            patience: 10,
            min_lr: 0.0,
        }
    }
    pub fn with_factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }
    pub fn with_patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }
    pub fn with_min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }
    pub fn with_min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta;
        self
    }
}

/// The schedule's state during training: the plateau reductions and what they watch.
#[derive(Debug, Clone)]
pub(crate) struct Scheduler {
    schedule: LrSchedule,
    warmup_steps: u64,
    plateau: Option<ReduceOnPlateau>,
    /// Product of the plateau reductions so far.
    plateau_factor: f64,
    best: Option<f64>,
    waited: usize,
    /// The dense base rate (for `min_lr`).
    base_lr: f64,
}

impl Scheduler {
    pub fn new(
        schedule: LrSchedule,
        warmup_steps: u64,
        plateau: Option<ReduceOnPlateau>,
        base_lr: f64,
    ) -> Self {
        Scheduler {
            schedule,
            warmup_steps,
            plateau,
            plateau_factor: 1.0,
            best: None,
            waited: 0,
            base_lr,
        }
    }

    /// The factor of step `step` (0-based, counted over the whole run) in epoch `epoch`.
    pub fn factor(&self, step: u64, epoch: usize) -> f64 {
        let warmup = if self.warmup_steps == 0 {
            1.0
        } else {
            ((step + 1) as f64 / self.warmup_steps as f64).min(1.0)
        };
        let decay = match self.schedule {
            LrSchedule::Constant => 1.0,
            LrSchedule::StepDecay { epochs, gamma } => {
                gamma.powi((epoch / epochs.max(1)).min(i32::MAX as usize) as i32)
            }
            LrSchedule::Cosine { decay_steps, alpha } => {
                let t = step.saturating_sub(self.warmup_steps).min(decay_steps) as f64;
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * t / decay_steps as f64).cos());
                (1.0 - alpha) * cosine + alpha
            }
        };
        warmup * decay * self.plateau_factor
    }

    /// Records an epoch's validation report; returns a note when it reduced the rates.
    pub fn end_epoch(&mut self, value: Option<f64>) -> Option<String> {
        let p = self.plateau.as_ref()?;
        let value = value.filter(|v| !v.is_nan());
        match (value, self.best) {
            (Some(v), Some(b)) if !p.monitor.improves(v, b) => self.waited += 1,
            (Some(v), _) => {
                self.best = Some(v);
                self.waited = 0;
                return None;
            }
            (None, _) => self.waited += 1,
        }
        if self.waited < p.patience.max(1) {
            return None;
        }
        self.waited = 0;
        // `min_lr` bounds the plateau reductions (of the dense base rate), as in Keras.
        let floor = p.min_lr / self.base_lr;
        let reduced = (self.plateau_factor * p.factor).max(floor);
        if reduced >= self.plateau_factor {
            return None;
        }
        self.plateau_factor = reduced;
        Some(format!(
            "reduce on plateau: `{}` did not improve for {} epochs; learning rates × {} (now {:.3e} dense)",
            p.monitor.name,
            p.patience.max(1),
            p.factor,
            self.base_lr * self.plateau_factor
        ))
    }

    /// The validation value the plateau watches, if any.
    pub fn monitor(&self) -> Option<&str> {
        self.plateau.as_ref().map(|p| p.monitor.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn warm_up_rises_linearly_then_holds() {
        let s = Scheduler::new(LrSchedule::Constant, 4, None, 1e-3);
        let f: Vec<f64> = (0..6).map(|t| s.factor(t, 0)).collect();
        assert!(close(f[0], 0.25) && close(f[1], 0.5) && close(f[3], 1.0) && close(f[5], 1.0));
    }

    #[test]
    fn step_decay_multiplies_by_gamma_every_n_epochs() {
        let s = Scheduler::new(
            LrSchedule::StepDecay {
                epochs: 2,
                gamma: 0.5,
            },
            0,
            None,
            1e-3,
        );
        let f: Vec<f64> = (0..5).map(|e| s.factor(0, e)).collect();
        assert_eq!(f, [1.0, 1.0, 0.5, 0.5, 0.25]);
    }

    #[test]
    fn cosine_decay_follows_keras_after_the_warm_up() {
        let s = Scheduler::new(
            LrSchedule::Cosine {
                decay_steps: 100,
                alpha: 0.1,
            },
            10,
            None,
            1e-3,
        );
        assert!(close(s.factor(9, 0), 1.0), "end of the warm-up");
        assert!(close(s.factor(10, 0), 1.0), "start of the decay");
        assert!(
            close(s.factor(60, 0), 0.9 * 0.5 + 0.1),
            "halfway: cos(π/2) = 0"
        );
        assert!(close(s.factor(110, 0), 0.1) && close(s.factor(10_000, 0), 0.1));
    }

    #[test]
    fn reduce_on_plateau_waits_for_patience_and_respects_min_lr() {
        let p = ReduceOnPlateau::on("loss")
            .with_patience(2)
            .with_factor(0.5)
            .with_min_lr(2e-4);
        let mut s = Scheduler::new(LrSchedule::Constant, 0, Some(p), 1e-3);
        assert!(s.end_epoch(Some(1.0)).is_none());
        assert!(s.end_epoch(Some(0.9)).is_none(), "improved");
        assert!(
            s.end_epoch(Some(0.95)).is_none(),
            "1 epoch without improvement"
        );
        assert!(s.end_epoch(Some(0.9)).is_some(), "2: reduced");
        assert!(close(s.factor(0, 0), 0.5));
        s.end_epoch(Some(1.0));
        s.end_epoch(Some(1.0));
        assert!(close(s.factor(0, 0), 0.25));
        s.end_epoch(Some(1.0));
        s.end_epoch(Some(1.0));
        assert!(close(s.factor(0, 0), 0.2), "floored at min_lr / base = 0.2");
        assert!(s.end_epoch(Some(1.0)).is_none() && s.end_epoch(Some(1.0)).is_none());
        assert!(close(s.factor(0, 0), 0.2));
    }
}
