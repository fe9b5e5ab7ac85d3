//! Step cost versus embedding-table size: the same training run with a 100k-row and a 10M-row
//! `user_id` table (64 dims). With sparse (row-wise) updates the cost of a step depends on the
//! rows a batch touches, not on the table size, so both rows of the table should show the same
//! samples/s.
//!
//! ```text
//! cargo run --release --example embedding_bench -- [--rows 500000] [--batch 4096]
//! ```
//! Needs about 8 GB of memory for the 10M-row table: weights and both lazy-Adam moments are
//! allocated and mapped before the epoch (`Trainer::prepare`, the setup column). The synthetic
//! ids touch few distinct rows, so this isolates the cost of table size, not of traffic; the
//! equal-work throughput figures come from `train_bench --data`.

use std::time::Instant;

use mtl::data::synthetic::generate_data;
use mtl::data::Dataset;
use mtl::prelude::*;

mtl_model! {
    /// 100k users.
    pub struct SmallTable {
        inputs: {
            user_id: categorical(cardinality = 100_001, dim = 64),
            item_id: categorical(cardinality = 179_281, dim = 64),
            video_category: categorical(cardinality = 6, dim = 16),
            gender: categorical(cardinality = 6, dim = 16),
            age: categorical(cardinality = 11, dim = 16),
        },
        body: mlp[32, 16],
        tasks: { click: binary, follow: binary, like: binary, share: binary, watching_times: regression },
    }
}

mtl_model! {
    /// 10M users.
    pub struct LargeTable {
        inputs: {
            user_id: categorical(cardinality = 10_000_001, dim = 64),
            item_id: categorical(cardinality = 179_281, dim = 64),
            video_category: categorical(cardinality = 6, dim = 16),
            gender: categorical(cardinality = 6, dim = 16),
            age: categorical(cardinality = 11, dim = 16),
        },
        body: mlp[32, 16],
        tasks: { click: binary, follow: binary, like: binary, share: binary, watching_times: regression },
    }
}

fn run<M>(name: &str, data: &Dataset, batch: usize) -> Result<(), Box<dyn std::error::Error>>
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    let start = Instant::now();
    let mut trainer = Trainer::<M>::new(
        Cpu::default(),
        TrainConfig::default().with_batch_size(batch),
    )?;
    // Tables initialised, optimizer state allocated and mapped: outside the timed epoch.
    trainer.prepare()?;
    let setup = start.elapsed().as_secs_f64();
    let history = trainer.fit(data, None)?;
    let e = &history.epochs[0];
    let steps = data.num_rows().div_ceil(batch);
    println!(
        "{name:<28} {:>12} {:>10.2} {:>12.0} {:>12.3}",
        trainer.embeddings.num_params(),
        setup,
        e.rows_per_second,
        e.seconds * 1000.0 / steps as f64
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut rows, mut batch) = (500_000usize, 4096usize);
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
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let data = generate_data("tenrec-video", rows, &[1.0], 42)?.remove(0);
    println!("{rows} rows, batch {batch}, one epoch each\n");
    println!(
        "{:<28} {:>12} {:>10} {:>12} {:>12}",
        "user_id table", "emb params", "setup s", "samples/s", "ms/step"
    );
    run::<SmallTable>("100,001 x 64", &data, batch)?;
    run::<LargeTable>("10,000,001 x 64", &data, batch)?;
    Ok(())
}
