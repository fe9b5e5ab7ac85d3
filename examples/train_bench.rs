//! Training throughput: samples/s of the notebook's shared-bottom model.
//!
//! ```text
//! cargo run --release --example train_bench -- [--rows 1000000] [--batch 4096] [--epochs 1]
//! ```
//! Same model as the PyTorch reference (`shared/bench/pytorch-reference`): embeddings user_id
//! 64, item_id 64, video_category/gender/age 16, MLP [32, 16], five heads, batch 4096, Adam lr
//! 1e-3 (lazy Adam on the tables). Data: synthetic tenrec-video (signal targets), generated in
//! memory. Prints samples/s of the training epoch(s) and the validation AUC of click.

use std::time::Instant;

use mtl::data::synthetic::generate_data;
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut rows, mut batch, mut epochs) = (1_000_000usize, 4096usize, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let v: usize = args
            .next()
            .ok_or("missing value")?
            .replace('_', "")
            .parse()?;
        match flag.as_str() {
            "--rows" => rows = v,
            "--batch" => batch = v,
            "--epochs" => epochs = v,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let splits = generate_data("tenrec-video", rows + rows / 4, &[0.8, 0.2], 42)?;
    let (train, valid) = (&splits[0], &splits[1]);
    let config = TrainConfig::default()
        .with_batch_size(batch)
        .with_epochs(epochs)
        .with_seed(1);
    let mut trainer = Trainer::<SharedBottom>::new(Cpu::default(), config)?;
    let start = Instant::now();
    let history = trainer.fit(train, None)?;
    let secs = start.elapsed().as_secs_f64();
    let report = trainer.evaluate(valid)?;
    println!("model: {}", SharedBottom::spec().body);
    println!(
        "train rows: {}, batch {batch}, epochs {epochs}",
        train.num_rows()
    );
    for e in &history.epochs {
        println!(
            "epoch {}: {:.0} samples/s, loss {:.4}",
            e.epoch + 1,
            e.rows_per_second,
            e.train.get("loss").unwrap_or(f64::NAN)
        );
    }
    println!(
        "overall: {:.0} samples/s ({secs:.2}s)",
        (train.num_rows() * epochs) as f64 / secs
    );
    println!(
        "valid click AUC {:.4}",
        report.get("click/binary_output/auc").unwrap_or(f64::NAN)
    );
    Ok(())
}
