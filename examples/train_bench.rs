//! Training throughput: samples/s of the reference models.
//!
//! ```text
//! cargo run --release --example train_bench -- [--model shared|mmoe|cgc|ple] [--rows 1000000]
//!     [--batch 4096] [--epochs 1] [--device cpu|cuda]
//! ```
//! Same models as the PyTorch reference (`shared/bench/pytorch-reference`): embeddings user_id
//! 64, item_id 64, video_category/gender/age 16, five heads, Adam lr 1e-3 (lazy Adam on the
//! tables); `shared` is MLP [32, 16], `mmoe` 4 experts mlp[16], gates mlp[16], towers mlp[16],
//! `cgc` 2 experts per task + 3 shared, `ple` 2 levels of 2 experts per task + 1 shared.
//! Data: synthetic tenrec-video (signal targets), generated in memory. Prints samples/s of the
//! training epoch(s) and the validation AUC of click.

use std::time::Instant;

use mtl::data::synthetic::generate_data;
use mtl::data::Dataset;
use mtl::device::DeviceKind;
use mtl::prelude::*;

mtl_model! {
    /// The reference shared-bottom model.
    pub struct SharedBottom {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        inputs: {
            user_id: categorical(dim = 64),
            item_id: categorical(dim = 64),
            video_category: categorical(dim = 16),
            gender: categorical(dim = 16),
            age: categorical(dim = 16),
        },
        body: mlp[32, 16],
    }
}

mtl_model! {
    /// The reference MMoE model.
    pub struct MmoeBench {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        inputs: {
            user_id: categorical(dim = 64),
            item_id: categorical(dim = 64),
            video_category: categorical(dim = 16),
            gender: categorical(dim = 16),
            age: categorical(dim = 16),
        },
        body: mmoe(experts = 4, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }
}

mtl_model! {
    /// The reference CGC model (2 task experts + 3 shared, as the PyTorch reference).
    pub struct CgcBench {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        inputs: {
            user_id: categorical(dim = 64),
            item_id: categorical(dim = 64),
            video_category: categorical(dim = 16),
            gender: categorical(dim = 16),
            age: categorical(dim = 16),
        },
        body: cgc(task_experts = 2, shared_experts = 3, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }
}

mtl_model! {
    /// The reference PLE model (2 levels of 2 task experts + 1 shared, as the PyTorch reference).
    pub struct PleBench {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        inputs: {
            user_id: categorical(dim = 64),
            item_id: categorical(dim = 64),
            video_category: categorical(dim = 16),
            gender: categorical(dim = 16),
            age: categorical(dim = 16),
        },
        body: ple(levels = 2, task_experts = 2, shared_experts = 1, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }
}

fn bench<M, D>(
    device: D,
    train: &Dataset,
    valid: &Dataset,
    config: TrainConfig,
) -> Result<(), Box<dyn std::error::Error>>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    let (batch, epochs) = (config.batch_size, config.epochs);
    let mut trainer = Trainer::<M, D>::new(device, config)?;
    let start = Instant::now();
    let history = trainer.fit(train, None)?;
    let secs = start.elapsed().as_secs_f64();
    let report = trainer.evaluate(valid)?;
    println!("model: {}", M::SPEC.body);
    println!(
        "train rows: {}, batch {batch}, epochs {epochs}",
        train.num_rows()
    );
    for e in &history.epochs {
        let loss = e.train.get("loss").unwrap_or(f64::NAN);
        println!(
            "epoch {}: {:.0} samples/s, loss {loss:.4}",
            e.epoch + 1,
            e.rows_per_second
        );
    }
    println!(
        "overall: {:.0} samples/s ({secs:.2}s)",
        (train.num_rows() * epochs) as f64 / secs
    );
    let auc = report.get("click/binary_output/auc").unwrap_or(f64::NAN);
    println!("valid click AUC {auc:.4}");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut rows, mut batch, mut epochs) = (1_000_000usize, 4096usize, 1usize);
    let mut model = String::from("shared");
    let mut device = DeviceKind::Cpu;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or("missing value")?;
        match flag.as_str() {
            "--model" => model = value,
            "--rows" => rows = value.replace('_', "").parse()?,
            "--batch" => batch = value.parse()?,
            "--epochs" => epochs = value.parse()?,
            "--device" => device = value.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let splits = generate_data("tenrec-video", rows + rows / 4, &[0.8, 0.2], 42)?;
    let config = TrainConfig::default()
        .with_batch_size(batch)
        .with_epochs(epochs)
        .with_seed(1);
    // One arm per (model, device): the models are generic over the device, the choice is not.
    macro_rules! run {
        ($model:ty) => {
            match device {
                DeviceKind::Cpu => {
                    bench::<$model, Cpu>(Cpu::default(), &splits[0], &splits[1], config)
                }
                #[cfg(feature = "cuda")]
                DeviceKind::Cuda => {
                    bench::<$model, Cuda>(mtl::device::cuda(0)?, &splits[0], &splits[1], config)
                }
                #[cfg(not(feature = "cuda"))]
                DeviceKind::Cuda => Err(mtl::device::cuda_not_built().into()),
            }
        };
    }
    match model.as_str() {
        "shared" => run!(SharedBottom),
        "mmoe" => run!(MmoeBench),
        "cgc" => run!(CgcBench),
        "ple" => run!(PleBench),
        other => Err(format!("unknown model `{other}`: shared, mmoe, cgc or ple").into()),
    }
}
