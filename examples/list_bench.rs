//! Pooled list lookups at speed: one training epoch of a model whose input is a user id and a
//! list of item ids (one 179,281 × 64 table, Zipf-like ids) pooled by mean, for lists of
//! average length 1, 5 and 20, against the same model with a scalar item id. Reports samples/s
//! and looked-up ids/s (each id is gathered in the forward pass and gets its share of the
//! gradient in the sparse lazy-Adam update).
//!
//! ```text
//! cargo run --release --example list_bench -- [--rows 400000] [--batch 4096]
//! ```

use std::time::Instant;

use mtl::data::{ColumnValues, Dataset};
use mtl::prelude::*;
use mtl::schema::{ColumnSchema, DType, Schema};
use rand::{Rng, SeedableRng};

mtl_model! {
    body: mlp[64, 32],
    tasks: { click: binary },

    /// The scalar baseline: one item id per row.
    pub struct ScalarItem {
        inputs: {
            user_id: categorical(cardinality = 100_001, dim = 64),
            item: categorical(cardinality = 179_281, dim = 64),
        },
    }

    /// Up to 40 item ids per row, pooled by mean.
    pub struct ItemList {
        inputs: {
            user_id: categorical(cardinality = 100_001, dim = 64),
            items: categorical(cardinality = 179_281, dim = 64, max_len = 40),
        },
    }
}

/// An id in `1..=max` from a heavy-tailed distribution (about Zipf 1.1).
fn heavy_id(rng: &mut impl Rng, max: u32) -> u32 {
    let u: f64 = rng.gen_range(1e-9..1.0);
    ((u.powf(-1.0 / 0.1) as u64).min(u64::from(max)) as u32).max(1)
}

/// `rows` rows: user ids, item lists of average length `mean_len` (uniform in
/// `0..=2·mean_len`, at most 40), one scalar item, a click.
fn data(rows: usize, mean_len: usize, seed: u64) -> Result<Dataset, Box<dyn std::error::Error>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut users, mut lists, mut items, mut clicks) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rows {
        users.push(heavy_id(&mut rng, 100_000));
        let n = rng.gen_range(0..=2 * mean_len).min(40);
        lists.push(
            (0..n)
                .map(|_| heavy_id(&mut rng, 179_280))
                .collect::<Vec<u32>>(),
        );
        items.push(heavy_id(&mut rng, 179_280));
        clicks.push(f32::from(u8::from(rng.gen_bool(0.3))));
    }
    let id = |name: &str, max: i64| {
        ColumnSchema::new(name)
            .with_dtype(DType::Int64)
            .with_int_domain(0, max, None)
            .with_tags(["categorical"])
    };
    let schema = Schema::new(vec![
        id("user_id", 100_000)?,
        id("item", 179_280)?,
        id("items", 179_280)?.with_list_len(0, Some(40)),
        ColumnSchema::new("click")
            .with_dtype(DType::Int8)
            .with_tags(["binary_classification", "target"])?,
    ])?;
    Ok(Dataset::from_columns(
        schema,
        vec![
            ("user_id".into(), ColumnValues::Ids(users)),
            ("item".into(), ColumnValues::Ids(items)),
            ("items".into(), ColumnValues::IdLists(lists)),
            ("click".into(), ColumnValues::Floats(clicks)),
        ],
    )?)
}

/// One epoch on `data`: samples/s.
fn epoch<M>(data: &Dataset, batch: usize) -> Result<f64, Box<dyn std::error::Error>>
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    let config = TrainConfig::default()
        .with_batch_size(batch)
        .with_progress(false);
    let mut trainer = Trainer::<M>::new(Cpu::default(), config)?;
    trainer.prepare()?;
    let start = Instant::now();
    trainer.fit(data, None)?;
    Ok(data.num_rows() as f64 / start.elapsed().as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut rows, mut batch) = (400_000usize, 4096usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("`{flag}` needs a value"))?;
        match flag.as_str() {
            "--rows" => rows = value.parse()?,
            "--batch" => batch = value.parse()?,
            other => return Err(format!("unknown flag `{other}`").into()),
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{rows} rows, batch {batch}, {threads} threads, fused CPU engine, one epoch each\n");
    println!("| input | mean ids per row | samples/s | ids/s |");
    println!("|---|---|---|---|");
    let scalar = data(rows, 1, 7)?;
    let s = epoch::<ScalarItem>(&scalar, batch)?;
    println!("| scalar item id | 1 | {:.0}k | {:.0}k |", s / 1e3, s / 1e3);
    for mean_len in [1usize, 5, 20] {
        let d = data(rows, mean_len, 7)?;
        let ids: usize = (0..d.num_rows())
            .map(|r| d.id_list("items", r).map_or(0, |l| l.len()))
            .sum();
        let per_row = ids as f64 / d.num_rows() as f64;
        let s = epoch::<ItemList>(&d, batch)?;
        println!(
            "| list of item ids, mean | {per_row:.2} | {:.0}k | {:.0}k |",
            s / 1e3,
            s * per_row / 1e3
        );
    }
    Ok(())
}
