//! Row kernels of the fused engine: bias + activation + dropout, softmax gates and expert
//! mixing, each forward and backward, on `[C, W]` row-major buffers.
//!
//! Each kernel makes one pass over its rows and writes its result in place or into a buffer
//! owned by the op; nothing is allocated. Their math is the dfdx operations' (checked against
//! the generic path by `tests/fused_engine.rs`).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::plan::Segment;
use crate::simd::multiversion;
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

multiversion! {
/// The part of a dense op after its matrix product, forward, in one pass over the rows (each
/// row's columns stay in L1 while every segment is done): per segment `y = act(y + b)`, the
/// pre-activation saved in `pre` when given, and inverted dropout with a fresh mask when a
/// segment has a rate and `dropout` is given. `params` holds the biases (`Segment::bias`).
pub(crate) fn dense_forward_epilogue(
    y: &mut [f32],
    ld: usize,
    rows: usize,
    segments: &[Segment],
    params: &[f32],
    pre: Option<&mut [f32]>,
    dropout: Option<(&mut [f32], &mut ChaCha8Rng)>,
) {
    let (mut pre, mut dropout) = (pre, dropout);
    for r in 0..rows {
        let row = &mut y[r * ld..(r + 1) * ld];
        for s in segments {
            let v = &mut row[s.start..s.start + s.width];
            if let Some(b) = s.bias {
                for (v, b) in v.iter_mut().zip(&params[b..b + s.width]) {
                    *v += b;
                }
            }
            if let Some(p) = pre.as_deref_mut() {
                p[r * ld + s.start..r * ld + s.start + s.width].copy_from_slice(v);
            }
            match s.activation {
                Activation::Relu => v.iter_mut().for_each(|v| *v = v.max(0.0)),
                Activation::Linear => {}
                a => v.iter_mut().for_each(|v| *v = act(a, *v)),
            }
            if let (true, Some((mask, rng))) = (s.dropout > 0.0, dropout.as_mut()) {
                let keep = 1.0 / (1.0 - s.dropout);
                let m = &mut mask[r * ld + s.start..r * ld + s.start + s.width];
                for (v, m) in v.iter_mut().zip(m) {
                    *m = if rng.gen::<f32>() < s.dropout { 0.0 } else { keep };
                    *v *= *m;
                }
            }
        }
    }
}
}

multiversion! {
/// The part of a dense op's backward pass before its matrix products, in one pass over the
/// rows: per segment `g ← g · mask · act'(z)` in place (`z` from `pre`; ReLU without dropout
/// reads the output `y`), and the bias gradients (column sums of `g`) into `param_grad`.
pub(crate) fn dense_backward_prologue(
    g: &mut [f32],
    y: &[f32],
    ld: usize,
    rows: usize,
    segments: &[Segment],
    pre: Option<&[f32]>,
    mask: Option<&[f32]>,
    param_grad: &mut [f32],
) {
    for s in segments {
        if let Some(b) = s.bias {
            param_grad[b..b + s.width].fill(0.0);
        }
    }
    for r in 0..rows {
        let o = r * ld;
        for s in segments {
            let range = o + s.start..o + s.start + s.width;
            let gr = &mut g[range.clone()];
            if let (true, Some(m)) = (s.dropout > 0.0, mask) {
                for (g, m) in gr.iter_mut().zip(&m[range.clone()]) {
                    *g *= m;
                }
            }
            match (s.activation, pre) {
                (Activation::Linear, _) => {}
                (Activation::Relu, None) => {
                    for (g, y) in gr.iter_mut().zip(&y[range.clone()]) {
                        *g = if *y > 0.0 { *g } else { 0.0 };
                    }
                }
                (a, Some(p)) => {
                    for (g, z) in gr.iter_mut().zip(&p[range.clone()]) {
                        *g *= act_grad(a, *z);
                    }
                }
                (_, None) => unreachable!("the plan saves pre-activations for this activation"),
            }
            if let Some(b) = s.bias {
                for (d, g) in param_grad[b..b + s.width].iter_mut().zip(gr.iter()) {
                    *d += g;
                }
            }
        }
    }
}
}

multiversion! {
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
}

multiversion! {
/// `dz (+)= inv_t · y ⊙ (dy − ⟨dy, y⟩)` row by row.
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
}

/// `y += a·x`.
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// `⟨x, y⟩` with sixteen partial sums (one running sum would serialise on the additions'
/// latency). Reducing the sixteen as a tree measured slower than summing them in order.
#[inline(always)]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let n = x.len().min(y.len());
    let (xc, yc) = (x[..n].chunks_exact(16), y[..n].chunks_exact(16));
    let tail: f32 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in xc.zip(yc) {
        for j in 0..16 {
            acc[j] += a[j] * b[j];
        }
    }
    acc.iter().sum::<f32>() + tail
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

/// Calls `$f::<H>` with the expert width as a constant for the common widths (so the row loops
/// unroll into whole vectors), or `$f::<0>` (width read at run time) otherwise.
macro_rules! by_width {
    ($h:expr, $f:ident($($arg:expr),*)) => {
        match $h {
            8 => $f::<8>($($arg),*),
            16 => $f::<16>($($arg),*),
            32 => $f::<32>($($arg),*),
            64 => $f::<64>($($arg),*),
            _ => $f::<0>($($arg),*),
        }
    };
}

/// `H` if it is a constant width, else the run-time width `h`.
#[inline(always)]
fn width<const H: usize>(h: usize) -> usize {
    if H > 0 {
        H
    } else {
        h
    }
}

#[inline(always)]
fn mix_forward_rows<const H: usize>(
    experts: &[ExpertRef],
    gates: &[GateRef],
    h: usize,
    rows: usize,
    out: &mut [f32],
) {
    let h = width::<H>(h);
    let ld = gates.len() * h;
    for r in 0..rows {
        for (g, gate) in gates.iter().enumerate() {
            let o = &mut out[r * ld + g * h..][..h];
            o.fill(0.0);
            let w = &gate.data[r * gate.ld + gate.start..];
            for (i, &k) in gate.columns.iter().enumerate() {
                let e = &experts[k];
                axpy(o, w[i], &e.data[r * e.ld + e.start..][..h]);
            }
        }
    }
}

multiversion! {
/// `out[r, g·H..] = Σ_i w_g[r, i]·E_{columns_g[i]}[r]`, `out` `[rows, NG·H]`.
pub(crate) fn mix_forward(
    experts: &[ExpertRef],
    gates: &[GateRef],
    h: usize,
    rows: usize,
    out: &mut [f32],
) {
    by_width!(h, mix_forward_rows(experts, gates, h, rows, out))
}
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn mix_backward_weights_rows<const H: usize>(
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
    let h = width::<H>(h);
    for r in 0..rows {
        let go = &dout[r * ld_out + g_start..][..h];
        for (i, &k) in columns.iter().enumerate() {
            let e = &experts[k];
            let v = dot(go, &e.data[r * e.ld + e.start..][..h]);
            let d = &mut dw[r * ldw + ws + i];
            if overwrite {
                *d = v;
            } else {
                *d += v;
            }
        }
    }
}

multiversion! {
/// The gradient of a gate's weights: `dw_g[r, i] (+)= ⟨dout_g[r], E_{columns_g[i]}[r]⟩`.
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
    by_width!(
        h,
        mix_backward_weights_rows(
            experts, columns, dout, ld_out, g_start, h, rows, dw, ldw, ws, overwrite
        )
    )
}
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn mix_backward_expert_rows<const H: usize>(
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
    let h = width::<H>(h);
    let ld_out = gates.len() * h;
    for r in 0..rows {
        let d = &mut de[r * lde + es..][..h];
        if overwrite {
            d.fill(0.0);
        }
        for &(g, i) in users {
            let gate = &gates[g];
            let w = gate.data[r * gate.ld + gate.start + i];
            axpy(d, w, &dout[r * ld_out + g * h..][..h]);
        }
    }
}

multiversion! {
/// The gradient of one expert: `dE[r] (+)= Σ_{(g, i) weighing it} w_g[r, i]·dout_g[r]`.
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
    by_width!(h, mix_backward_expert_rows(users, gates, dout, h, rows, de, lde, es, overwrite))
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
            assert!(
                (numeric - dz[i]).abs() < 1e-3,
                "{i}: {numeric} vs {}",
                dz[i]
            );
        }
    }
}
