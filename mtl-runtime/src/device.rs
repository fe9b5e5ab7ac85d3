//! Choosing the device at run time: `--device cpu|cuda` in the examples.
//!
//! The CPU is always there. CUDA needs the `cuda` feature at build time (see
//! `scripts/build-cuda.sh`) and a visible NVIDIA GPU at run time; each missing piece is a clear
//! error, never a panic.
//!
//! Data path on CUDA: embedding tables and their optimizer state stay in host memory (they can
//! exceed GPU memory). Each step gathers the batch's rows on the host into one `[B, INPUT_WIDTH]`
//! buffer, copies it to the GPU once, runs the dense network, losses and dense optimizer there,
//! copies the input gradient back once and applies the sparse update on the host.

use std::str::FromStr;

use crate::error::{Error, Result};

/// Where the dense network trains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda,
}

impl FromStr for DeviceKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" | "gpu" => Ok(DeviceKind::Cuda),
            other => Err(Error::invalid(format!(
                "unknown device `{other}`: expected `cpu` or `cuda`"
            ))),
        }
    }
}

/// Whether this build has the `cuda` feature.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// The error for `--device cuda` in a build without the `cuda` feature.
pub fn cuda_not_built() -> Error {
    Error::invalid(
        "this binary was built without the `cuda` feature: rebuild with `--features cuda` \
         (scripts/build-cuda.sh does it on a machine without a CUDA toolkit)",
    )
}

/// The first CUDA GPU, seeded like `Cpu::seed_from_u64`.
#[cfg(feature = "cuda")]
pub fn cuda(seed: u64) -> Result<dfdx::prelude::Cuda> {
    dfdx::prelude::Cuda::try_build(0, seed).map_err(|e| {
        Error::invalid(format!(
            "no usable CUDA GPU ({e:?}): check that `nvidia-smi` lists one and that the CUDA 13 \
             libraries (libcuda.so.1, libnvrtc.so.13, libcublas.so.13) are on LD_LIBRARY_PATH"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_with_a_clear_error() {
        assert_eq!("cpu".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        assert_eq!("cuda".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda);
        let err = "tpu".parse::<DeviceKind>().unwrap_err().to_string();
        assert!(err.contains("`tpu`") && err.contains("cuda"), "{err}");
        if !CUDA_BUILT {
            assert!(cuda_not_built().to_string().contains("--features cuda"));
        }
    }
}
