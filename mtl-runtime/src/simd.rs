//! Running hot loops with the widest vector instructions the CPU has.
//!
//! The crate is compiled for the baseline x86-64 (SSE2: 4 floats per instruction), so that the
//! binary runs anywhere. [`multiversion!`] compiles a function body two more times, with AVX2 +
//! FMA (8 floats) and with AVX-512 (16 floats) enabled, and calls the widest version the CPU
//! running it supports (detected once). The `gemm` crate does the same for matrix products;
//! this covers the engine's own row kernels. Elsewhere than x86-64 the baseline body runs.

/// The instruction sets a multiversioned function can use here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Baseline,
    /// AVX2 + FMA (x86-64-v3).
    V3,
    /// AVX-512 F/VL/BW/DQ (x86-64-v4).
    V4,
}

/// The widest level this CPU supports (detected once).
pub(crate) fn level() -> Level {
    use std::sync::atomic::{AtomicU8, Ordering};
    static LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);
    let known = LEVEL.load(Ordering::Relaxed);
    let level = match known {
        0 => return Level::Baseline,
        1 => return Level::V3,
        2 => return Level::V4,
        _ => detect(),
    };
    LEVEL.store(level as u8, Ordering::Relaxed);
    level
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    let v3 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    let v4 = v3
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq");
    match (v3, v4) {
        (_, true) => Level::V4,
        (true, false) => Level::V3,
        _ => detect(),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Baseline
}

/// Defines `fn name(args) -> ret { body }` compiled for the baseline, AVX2 + FMA and AVX-512,
/// dispatching at run time on [`level`]. The body is an ordinary safe body; helpers it calls
/// should be `#[inline(always)]` so that they are compiled with the same instructions.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v4($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v3($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                match $crate::simd::level() {
                    // SAFETY: `level` found these instructions on this CPU.
                    $crate::simd::Level::V4 => return unsafe { v4($($arg),*) },
                    $crate::simd::Level::V3 => return unsafe { v3($($arg),*) },
                    $crate::simd::Level::Baseline => {}
                }
            }
            body($($arg),*)
        }
    };
}

pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    multiversion! {
        fn scaled_sum(xs: &[f32], a: f32) -> f32 {
            xs.iter().map(|x| a * x).sum()
        }
    }

    #[test]
    fn a_multiversioned_function_computes_what_its_body_says() {
        let xs: Vec<f32> = (0..100).map(|i| i as f32).collect();
        assert_eq!(scaled_sum(&xs, 0.5), 2475.0);
        assert_eq!(level(), level(), "detected once, then remembered");
    }
}
