//! Row kernels of the fused engine: bias + activation + dropout, softmax gates and expert
//! mixing, each forward and backward, on `[C, W]` row-major buffers.
//!
//! Each kernel makes one pass over its rows and writes its result in place or into a buffer
//! owned by the op; nothing is allocated. Their math is the dfdx operations' (checked against
//! the generic path by `tests/fused_engine.rs`).

use rand::Rng;

use crate::spec::Activation;

/// √(2/π) and the GELU constants (exact, erf-based GELU as dfdx's `accurate_gelu`).
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_LAMBDA: f32 = 1.050_701;

/// `act(z)`.
#[inline(always)]
fn act(a: Activation, z: f32) -> f32 {
    match a {
        Activation::Relu => z.max(0.0),
        Activation::Linear => z,
        Activation::Tanh => z.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Activation::Gelu => 0.5 * z * (1.0 + libm::erff(z * FRAC_1_SQRT_2)),
        Activation::Selu => {
            if z > 0.0 {
                SELU_LAMBDA * z
            } else {
                SELU_LAMBDA * SELU_ALPHA * (z.exp() - 1.0)
            }
        }
    }
}

/// `act'(z)`.
#[inline(always)]
fn act_grad(a: Activation, z: f32) -> f32 {
    match a {
        Activation::Relu => {
            if z > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Linear => 1.0,
        Activation::Tanh => {
            let t = z.tanh();
            1.0 - t * t
        }
        Activation::Sigmoid => {
            let s = 1.0 / (1.0 + (-z).exp());
            s * (1.0 - s)
        }
        Activation::Gelu => {
            0.5 * (1.0 + libm::erff(z * FRAC_1_SQRT_2)) + z * FRAC_1_SQRT_2PI * (-0.5 * z * z).exp()
        }
        Activation::Selu => {
            if z > 0.0 {
                SELU_LAMBDA
            } else {
                SELU_LAMBDA * SELU_ALPHA * z.exp()
            }
        }
    }
}

/// One output segment's forward pass over `rows` rows: `y = act(y + b)`, saving the
/// pre-activation in `pre` and applying inverted dropout with a fresh mask when asked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn bias_act_forward(
    y: &mut [f32],
    ld: usize,
    rows: usize,
    (start, width): (usize, usize),
    bias: Option<&[f32]>,
    activation: Activation,
    mut pre: Option<&mut [f32]>,
    dropout: Option<(f32, &mut [f32], &mut dyn rand::RngCore)>,
) {
    let (rate, mut mask, rng) = match dropout {
        Some((rate, mask, rng)) => (rate, Some(mask), Some(rng)),
        None => (0.0, None, None),
    };
    let keep_scale = 1.0 / (1.0 - rate);
    let mut rng = rng;
    for r in 0..rows {
        let o = r * ld + start;
        let row = &mut y[o..o + width];
        if let Some(b) = bias {
            for (v, b) in row.iter_mut().zip(b) {
                *v += b;
            }
        }
        if let Some(p) = pre.as_deref_mut() {
            p[o..o + width].copy_from_slice(row);
        }
        match activation {
            Activation::Relu => row.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Linear => {}
            a => row.iter_mut().for_each(|v| *v = act(a, *v)),
        }
        if let (Some(m), Some(rng)) = (mask.as_deref_mut(), rng.as_deref_mut()) {
            let m = &mut m[o..o + width];
            for (v, m) in row.iter_mut().zip(m) {
                *m = if rng.gen::<f32>() < rate { 0.0 } else { keep_scale };
                *v *= *m;
            }
        }
    }
}

/// One output segment's backward pass: `g ← g · mask · act'(z)` in place, with `z` from `pre`
/// (or, for ReLU without dropout, read off the output `y`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn bias_act_backward(
    g: &mut [f32],
    y: &[f32],
    ld: usize,
    rows: usize,
    (start, width): (usize, usize),
    activation: Activation,
    pre: Option<&[f32]>,
    mask: Option<&[f32]>,
) {
    for r in 0..rows {
        let o = r * ld + start;
        let gr = &mut g[o..o + width];
        if let Some(m) = mask {
            for (g, m) in gr.iter_mut().zip(&m[o..o + width]) {
                *g *= m;
            }
        }
        match (activation, pre) {
            (Activation::Linear, _) => {}
            (Activation::Relu, None) => {
                for (g, y) in gr.iter_mut().zip(&y[o..o + width]) {
                    if *y <= 0.0 {
                        *g = 0.0;
                    }
                }
            }
            (a, Some(p)) => {
                for (g, z) in gr.iter_mut().zip(&p[o..o + width]) {
                    *g *= act_grad(a, *z);
                }
            }
            (_, None) => unreachable!("the plan saves pre-activations for this activation"),
        }
    }
}

/// Column sums of `g`'s segment: a bias gradient.
pub(crate) fn column_sums(
    g: &[f32],
    ld: usize,
    rows: usize,
    (start, width): (usize, usize),
    out: &mut [f32],
) {
    out[..width].fill(0.0);
    for r in 0..rows {
        let o = r * ld + start;
        for (s, v) in out.iter_mut().zip(&g[o..o + width]) {
            *s += v;
        }
    }
}

/// Row-wise `y = softmax(z · inv_t)`; `z` at columns `zs..zs+w` of rows `ldz` apart, `y`
/// `[rows, w]` dense.
pub(crate) fn softmax_forward(
    z: &[f32],
    ldz: usize,
    zs: usize,
    y: &mut [f32],
    w: usize,
    rows: usize,
    inv_t: f32,
) {
    for r in 0..rows {
        let zr = &z[r * ldz + zs..r * ldz + zs + w];
        let yr = &mut y[r * w..(r + 1) * w];
        let m = zr.iter().copied().fold(f32::NEG_INFINITY, f32::max) * inv_t;
        let mut sum = 0.0;
        for (y, z) in yr.iter_mut().zip(zr) {
            *y = (z * inv_t - m).exp();
            sum += *y;
        }
        let inv = 1.0 / sum;
        yr.iter_mut().for_each(|v| *v *= inv);
    }
}

/// `dz (+)= inv_t · y ⊙ (dy − ⟨dy, y⟩)` row by row.
#[allow(clippy::too_many_arguments)]
pub(crate) fn softmax_backward(
    y: &[f32],
    dy: &[f32],
    w: usize,
    rows: usize,
    dz: &mut [f32],
    ldz: usize,
    zs: usize,
    overwrite: bool,
    inv_t: f32,
) {
    for r in 0..rows {
        let yr = &y[r * w..(r + 1) * w];
        let gr = &dy[r * w..(r + 1) * w];
        let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
        let out = &mut dz[r * ldz + zs..r * ldz + zs + w];
        for ((o, y), g) in out.iter_mut().zip(yr).zip(gr) {
            let v = inv_t * y * (g - dot);
            if overwrite {
                *o = v;
            } else {
                *o += v;
            }
        }
    }
}

/// `y += a·x`.
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// `⟨x, y⟩` with eight partial sums (one running sum would serialise on its additions).
#[inline(always)]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let n = x.len().min(y.len());
    let mut i = 0;
    while i + 8 <= n {
        for j in 0..8 {
            acc[j] += x[i + j] * y[i + j];
        }
        i += 8;
    }
    let mut s: f32 = acc.iter().sum();
    while i < n {
        s += x[i] * y[i];
        i += 1;
    }
    s
}

/// Where one expert's `[C, H]` output lives: a buffer and its first column.
pub(crate) struct ExpertRef<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub start: usize,
}

/// Where one gate's `[C, K_g]` weights live.
pub(crate) struct GateRef<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub start: usize,
    pub columns: &'a [usize],
}

/// `out[r, g·H..] = Σ_i w_g[r, i]·E_{columns_g[i]}[r]`, `out` `[rows, NG·H]`.
pub(crate) fn mix_forward(
    experts: &[ExpertRef],
    gates: &[GateRef],
    h: usize,
    rows: usize,
    out: &mut [f32],
) {
    let ld = gates.len() * h;
    for r in 0..rows {
        for (g, gate) in gates.iter().enumerate() {
            let o = &mut out[r * ld + g * h..r * ld + (g + 1) * h];
            o.fill(0.0);
            let w = &gate.data[r * gate.ld + gate.start..];
            for (i, &k) in gate.columns.iter().enumerate() {
                let e = &experts[k];
                let er = &e.data[r * e.ld + e.start..r * e.ld + e.start + h];
                axpy(o, w[i], er);
            }
        }
    }
}

/// The gradient of a gate's weights: `dw_g[r, i] (+)= ⟨dout_g[r], E_{columns_g[i]}[r]⟩`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mix_backward_weights(
    experts: &[ExpertRef],
    columns: &[usize],
    dout: &[f32],
    ld_out: usize,
    g_start: usize,
    h: usize,
    rows: usize,
    dw: &mut [f32],
    ldw: usize,
    ws: usize,
    overwrite: bool,
) {
    for r in 0..rows {
        let go = &dout[r * ld_out + g_start..r * ld_out + g_start + h];
        for (i, &k) in columns.iter().enumerate() {
            let e = &experts[k];
            let v = dot(go, &e.data[r * e.ld + e.start..r * e.ld + e.start + h]);
            let d = &mut dw[r * ldw + ws + i];
            if overwrite {
                *d = v;
            } else {
                *d += v;
            }
        }
    }
}

/// The gradient of one expert: `dE[r] (+)= Σ_{(g, i) weighing it} w_g[r, i]·dout_g[r]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mix_backward_expert(
    users: &[(usize, usize)],
    gates: &[GateRef],
    dout: &[f32],
    h: usize,
    rows: usize,
    de: &mut [f32],
    lde: usize,
    es: usize,
    overwrite: bool,
) {
    let ld_out = gates.len() * h;
    for r in 0..rows {
        let d = &mut de[r * lde + es..r * lde + es + h];
        if overwrite {
            d.fill(0.0);
        }
        for &(g, i) in users {
            let gate = &gates[g];
            let w = gate.data[r * gate.ld + gate.start + i];
            axpy(d, w, &dout[r * ld_out + g * h..r * ld_out + (g + 1) * h]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of `f` against an analytic derivative.
    fn check_grad(a: Activation) {
        for &z in &[-2.0f32, -0.7, -0.1, 0.2, 0.9, 2.5] {
            let e = 1e-3;
            let numeric = (act(a, z + e) - act(a, z - e)) / (2.0 * e);
            let analytic = act_grad(a, z);
            assert!(
                (numeric - analytic).abs() < 2e-3,
                "{a:?} at {z}: {numeric} vs {analytic}"
            );
        }
    }

    #[test]
    fn activation_derivatives_match_central_differences() {
        for a in [
            Activation::Relu,
            Activation::Linear,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Gelu,
            Activation::Selu,
        ] {
            check_grad(a);
        }
    }

    #[test]
    fn softmax_backward_matches_central_differences() {
        let z = [0.3f32, -1.2, 0.8, 0.1];
        let dy = [0.5f32, -0.25, 1.0, 0.75];
        let inv_t = 1.7;
        let loss = |z: &[f32]| {
            let mut y = [0.0; 4];
            softmax_forward(z, 4, 0, &mut y, 4, 1, inv_t);
            y.iter().zip(&dy).map(|(a, b)| a * b).sum::<f32>()
        };
        let mut y = [0.0; 4];
        softmax_forward(&z, 4, 0, &mut y, 4, 1, inv_t);
        let mut dz = [0.0; 4];
        softmax_backward(&y, &dy, 4, 1, &mut dz, 4, 0, true, inv_t);
        for i in 0..4 {
            let (mut p, mut m) = (z, z);
            p[i] += 1e-3;
            m[i] -= 1e-3;
            let numeric = (loss(&p) - loss(&m)) / 2e-3;
            assert!((numeric - dz[i]).abs() < 1e-3, "{i}: {numeric} vs {}", dz[i]);
        }
    }
}
