//! Adam over the flat dense-parameter vector: the same update as `train::dense_adam`
//! (bias-corrected moments, decoupled weight decay), one pass over contiguous memory per range
//! so that each core updates its own part.

/// Adam's settings and the step's bias corrections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// `1 − β₁ᵗ` and `1 − β₂ᵗ` for this step.
    pub c1: f32,
    pub c2: f32,
    /// L2 penalty on the kernels (`2λ·w` joins their gradients before clipping).
    pub l2: f32,
    /// Clip the step's gradient (dense and embedding rows) to this global L2 norm.
    pub clip: Option<f32>,
    /// Multiplies every gradient: set by the engine from `clip`.
    pub grad_scale: f32,
}

impl AdamStep {
    pub fn new(lr: f32, [beta1, beta2]: [f32; 2], eps: f32, weight_decay: f32, t: u64) -> Self {
        let t = t.min(i32::MAX as u64) as i32;
        AdamStep {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            c1: 1.0 - beta1.powi(t),
            c2: 1.0 - beta2.powi(t),
            l2: 0.0,
            clip: None,
            grad_scale: 1.0,
        }
    }

    /// The same step with a kernel L2 penalty and gradient clipping.
    pub fn with_regularization(mut self, l2: f32, clip: Option<f32>) -> Self {
        self.l2 = l2;
        self.clip = clip;
        self
    }

    /// `m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; w ← w − lr·(m̂/(√v̂ + ε) + λw)` with
    /// `g` the gradient times `grad_scale`.
    pub fn apply(&self, w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        let n = w.len();
        let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
        let (b1, b2, c1, c2, s) = (self.beta1, self.beta2, self.c1, self.c2, self.grad_scale);
        for i in 0..n {
            let g = g[i] * s;
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            w[i] -= self.lr
                * ((m[i] / c1) / ((v[i] / c2).sqrt() + self.eps) + self.weight_decay * w[i]);
        }
    }
}
