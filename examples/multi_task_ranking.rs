//! Merlin's "Multi-Task Learning for Ranking" notebook, cell by cell, in Rust.
//!
//! ```text
//! cargo run --release --example multi_task_ranking                 # embedded default data
//! cargo run --release --example multi_task_ranking -- --data DIR   # DIR/train, DIR/valid
//!     [--rows 100000] [--seed 42] [--mode signal|merlin]
//! ```
//! Without `--data` it generates synthetic tenrec-video in memory (`NUM_ROWS` rows split
//! 0.8/0.2, like the notebook's `generate_data("tenrec-video", NUM_ROWS, set_sizes=(0.8, 0.2))`).
//! With `--data` it reads a folder holding `train/` and `valid/` datasets in the
//! Merlin/NVTabular layout (what `examples/generate_data.rs` or Merlin itself writes).
//!
//! Cells so far: generating data, the schema, the first rows of the training data, and the
//! shared-bottom model built from the schema (its summary). Training and evaluation cells arrive
//! with the trainer.

use std::path::PathBuf;

use mtl::data::synthetic::{generate_data_with, SyntheticOptions, TargetMode};
use mtl::data::{BatchOptions, Dataset};
use mtl::prelude::*;

mtl_model! {
    /// The notebook's first model: `mm.Model(mm.InputBlockV2(schema), mm.MLPBlock([32, 16]),
    /// mm.OutputBlock(schema))`. Inputs and tasks come from the tenrec-video schema.
    pub struct SharedBottom {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: mlp[32, 16],
    }
}

struct Args {
    data: Option<PathBuf>,
    rows: usize,
    seed: u64,
    mode: TargetMode,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        data: None,
        rows: std::env::var("NUM_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000),
        seed: 42,
        mode: TargetMode::Signal,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => args.data = Some(PathBuf::from(value()?)),
            "--rows" => {
                args.rows = value()?
                    .replace('_', "")
                    .parse()
                    .map_err(|e| format!("--rows: {e}"))?
            }
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--mode" => args.mode = value()?.parse().map_err(|e: mtl::Error| e.to_string())?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

fn cell(title: &str) {
    println!("\n## {title}\n");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;

    cell("Generating data");
    let (train, valid) = match &args.data {
        Some(dir) => {
            println!(
                "reading {}/train and {}/valid",
                dir.display(),
                dir.display()
            );
            (
                Dataset::open(dir.join("train"))?,
                Dataset::open(dir.join("valid"))?,
            )
        }
        None => {
            println!(
                "train_ds, valid_ds = generate_data(\"tenrec-video\", {}, set_sizes=(0.8, 0.2)), seed {}, {:?} targets",
                args.rows, args.seed, args.mode
            );
            let options = SyntheticOptions {
                mode: args.mode,
                true_probabilities: false,
            };
            let mut splits =
                generate_data_with("tenrec-video", args.rows, &[0.8, 0.2], args.seed, &options)?;
            let valid = splits.pop().ok_or("no validation split")?;
            (splits.pop().ok_or("no training split")?, valid)
        }
    };
    println!(
        "train: {} rows, valid: {} rows",
        train.num_rows(),
        valid.num_rows()
    );

    cell("schema");
    print!("{}", train.schema());

    cell("Printing first rows of the generated dataframe");
    print!("{}", train.head(5));

    cell("BATCH_SIZE = 4 * 1024");
    let batches = train.batches(BatchOptions::new(4 * 1024).with_seed(args.seed), 0)?;
    println!("{} training batches per epoch", batches.num_batches());

    cell(
        "model = mm.Model(mm.InputBlockV2(schema), mm.MLPBlock([32, 16]), mm.OutputBlock(schema))",
    );
    let dev = Cpu::default();
    let model = dev.build_module::<SharedBottom, f32>();
    print!("{model}");
    Ok(())
}
