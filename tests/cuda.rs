//! CPU/CUDA parity. Needs the `cuda` feature and an NVIDIA GPU, so every test here is ignored by
//! default and runs with
//! `cargo test --release --features cuda --test cuda -- --ignored` (or from the binaries
//! `scripts/build-cuda.sh` builds). Without a GPU they fail with the device error — never pass.
#![cfg(feature = "cuda")]

use mtl::data::synthetic::generate_data;
use mtl::prelude::*;

mtl_model! {
    pub struct SharedBottom {
        schema: "tests/fixtures/merlin-tenrec-video/schema.json",
        body: mlp[32, 16],
    }
}

mtl_model! {
    pub struct Mmoe {
        schema: "tests/fixtures/merlin-tenrec-video/schema.json",
        body: mmoe(experts = 4, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }
}

/// Largest per-metric difference between CPU and CUDA after the same training: same initial
/// weights (a CPU checkpoint loaded on the GPU), same data order, no dropout.
fn parity<M>() -> f64
where
    M: MtlModel + BuildOnDevice<Cpu, f32> + BuildOnDevice<Cuda, f32>,
    <M as BuildOnDevice<Cpu, f32>>::Built: TaskNetwork<f32, Cpu> + Clone,
    <M as BuildOnDevice<Cuda, f32>>::Built: TaskNetwork<f32, Cuda> + Clone,
{
    let splits = generate_data("tenrec-video", 60_000, &[0.8, 0.2], 7).unwrap();
    let config = TrainConfig::default()
        .with_batch_size(1024)
        .with_epochs(2)
        .with_seed(3);
    let dir = tempfile::tempdir().unwrap();
    let init = dir.path().join("init.ckpt");
    let mut cpu = Trainer::<M, Cpu>::new(Cpu::default(), config.clone()).unwrap();
    cpu.save_checkpoint(&init).unwrap();
    let gpu_device = mtl::device::cuda(0).expect("a CUDA GPU");
    let mut gpu = Trainer::<M, Cuda>::new(gpu_device, config).unwrap();
    gpu.load_checkpoint(&init).unwrap();
    cpu.fit(&splits[0], None).unwrap();
    gpu.fit(&splits[0], None).unwrap();
    let (a, b) = (
        cpu.evaluate(&splits[1]).unwrap(),
        gpu.evaluate(&splits[1]).unwrap(),
    );
    let mut worst = 0.0f64;
    for name in a.names() {
        let (x, y) = (a.get(name).unwrap(), b.get(name).unwrap());
        println!("{name}: cpu {x:.5} cuda {y:.5}");
        worst = worst.max((x - y).abs());
    }
    worst
}

/// Tolerance: float32 reductions run in another order on the GPU (cuBLAS), which moves metrics
/// after two epochs by far less than this.
const TOLERANCE: f64 = 5e-3;

#[test]
#[ignore = "needs an NVIDIA GPU: cargo test --release --features cuda --test cuda -- --ignored"]
fn shared_bottom_trains_the_same_on_cpu_and_cuda() {
    let worst = parity::<SharedBottom>();
    assert!(worst < TOLERANCE, "largest metric difference {worst}");
}

#[test]
#[ignore = "needs an NVIDIA GPU: cargo test --release --features cuda --test cuda -- --ignored"]
fn mmoe_trains_the_same_on_cpu_and_cuda() {
    let worst = parity::<Mmoe>();
    assert!(worst < TOLERANCE, "largest metric difference {worst}");
}
