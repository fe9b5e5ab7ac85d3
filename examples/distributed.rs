//! Data-parallel training over MPI: the same binary on N processes, each with its share of the
//! rows, one core and batch B/N; rank 0 prints the throughput of the global batch.
//!
//! ```text
//! cargo build --release --features mpi --example distributed
//! mpirun -np 1 target/release/examples/distributed [--rows 400000] [--batch 4096] [--epochs 2]
//! mpirun -np 2 target/release/examples/distributed [--rows 400000] [--batch 4096] [--epochs 2]
//! ```
//! (As root, Open MPI also wants `--allow-run-as-root`; on one machine with fewer cores than
//! processes, `--oversubscribe`.) Every rank generates the same synthetic tenrec-video rows
//! and keeps its share (`Cluster::shard`); with real data, give each rank its own Parquet parts.

use std::time::Instant;

use mtl::data::synthetic::generate_data;
use mtl::distributed::Cluster;
use mtl::prelude::*;

mtl_model! {
    /// Shared-bottom over tenrec-video with 64-dimensional embeddings.
    pub struct Video {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        inputs: { user_id: categorical(dim = 64), item_id: categorical(dim = 64), .. },
        body: mlp[64, 32],
        towers: mlp[16],
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut rows, mut batch, mut epochs) = (400_000usize, 4096usize, 2usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("`{flag}` needs a value"))?;
        match flag.as_str() {
            "--rows" => rows = value.parse()?,
            "--batch" => batch = value.parse()?,
            "--epochs" => epochs = value.parse()?,
            other => return Err(format!("unknown flag `{other}`").into()),
        }
    }
    let cluster = Cluster::init()?;
    let n = cluster.size();
    if batch % n != 0 {
        return Err(format!("the batch {batch} must be a multiple of the {n} processes").into());
    }
    let splits = generate_data("tenrec-video", rows, &[0.9, 0.1], 42)?;
    let share = cluster.shard(&splits[0], batch / n)?;
    let valid = cluster.gather(&cluster.shard(&splits[1], 1_000)?)?;
    let config = TrainConfig::default()
        .with_batch_size(batch / n)
        .with_epochs(epochs)
        .with_threads(1)
        .with_progress(false);
    let mut trainer = Trainer::<Video>::new(Cpu::default(), config)?;
    trainer.distribute(cluster.clone())?;
    trainer.prepare()?;
    let start = Instant::now();
    let history = trainer.fit(&share, None)?;
    let seconds = start.elapsed().as_secs_f64();
    let report = trainer.evaluate(&valid)?;
    if cluster.is_root() {
        let trained = splits[0].num_rows() * epochs;
        println!(
            "{n} process(es), 1 thread each, global batch {batch}, {} dense parameters: {:.0} \
             samples/s over {epochs} epochs ({:.1} s); final train loss {:.4}; validation click \
             AUC {:.4}",
            Video::spec().dense_parameters().unwrap_or(0),
            trained as f64 / seconds,
            seconds,
            history
                .epochs
                .last()
                .and_then(|e| e.train.get("loss"))
                .unwrap_or(f64::NAN),
            report.get("click/binary_output/auc").unwrap_or(f64::NAN)
        );
        std::fs::create_dir_all("data-out")?;
        trainer.save_checkpoint("data-out/distributed.ckpt")?;
    }
    Ok(())
}
