//! Generates a synthetic dataset as Parquet + schema.json, like Merlin's `generate_data`.
//!
//! ```text
//! cargo run --release --example generate_data -- --dataset tenrec-video --rows 1000000 --out data/tenrec
//!     [--sizes 0.8,0.2] [--seed 42] [--mode signal|merlin] [--true-probabilities]
//!     [--rows-per-file N] [--row-group-rows N]
//! ```
//! Writes `OUT/train/` and `OUT/valid/` (for two sizes; `OUT/part_<i>/` beyond that, `OUT/`
//! itself for one), each holding `part_<k>.parquet` files and `schema.json`, then prints per
//! split the row count, target rates and, with `--true-probabilities`, the ceiling AUC of each
//! binary target (the AUC of the probabilities the targets were drawn with).

use std::path::PathBuf;
use std::time::Instant;

use mtl::data::synthetic::{generate_data_with, SyntheticOptions, TargetMode};
use mtl::data::WriteOptions;
use mtl::metrics::auc;
use mtl::Tag;

struct Args {
    dataset: String,
    rows: usize,
    sizes: Vec<f64>,
    seed: u64,
    out: PathBuf,
    options: SyntheticOptions,
    write: WriteOptions,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dataset: "tenrec-video".into(),
        rows: 100_000,
        sizes: vec![0.8, 0.2],
        seed: 42,
        out: PathBuf::from("data/tenrec-video"),
        options: SyntheticOptions::default(),
        write: WriteOptions::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| {
            v.replace('_', "")
                .parse::<usize>()
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--dataset" => args.dataset = value()?,
            "--rows" => args.rows = num(value()?)?,
            "--sizes" => {
                args.sizes = value()?
                    .split(',')
                    .map(|s| s.trim().parse::<f64>().map_err(|e| format!("--sizes: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--seed" => args.seed = num(value()?)? as u64,
            "--out" => args.out = PathBuf::from(value()?),
            "--mode" => {
                args.options.mode = value()?.parse::<TargetMode>().map_err(|e| e.to_string())?
            }
            "--true-probabilities" => args.options.true_probabilities = true,
            "--rows-per-file" => args.write.rows_per_file = Some(num(value()?)?),
            "--row-group-rows" => args.write.row_group_rows = num(value()?)?,
            "-h" | "--help" => {
                println!(
                    "{}",
                    include_str!("generate_data.rs")
                        .lines()
                        .take(9)
                        .map(|l| l.trim_start_matches("//!"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(args)
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    });
    let start = Instant::now();
    let splits = generate_data_with(
        &args.dataset,
        args.rows,
        &args.sizes,
        args.seed,
        &args.options,
    )
    .unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1);
    });
    let generated = start.elapsed();
    let names: Vec<String> = match splits.len() {
        1 => vec![String::new()],
        2 => vec!["train".into(), "valid".into()],
        n => (0..n).map(|i| format!("part_{i}")).collect(),
    };
    for (ds, name) in splits.iter().zip(&names) {
        let dir = args.out.join(name);
        ds.write_parquet(&dir, &args.write).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1);
        });
        println!("{}: {} rows", dir.display(), ds.num_rows());
        for target in ds.schema().select_by_tag(&[Tag::Target]).columns() {
            let y = ds.floats(&target.name).unwrap_or_default();
            let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / y.len().max(1) as f64;
            let ceiling = ds
                .floats(&format!("{}_true_prob", target.name))
                .and_then(|p| auc(p, y, None))
                .map(|a| format!(", ceiling AUC {a:.4}"))
                .unwrap_or_default();
            println!("  {:<15} mean {mean:.4}{ceiling}", target.name);
        }
    }
    println!(
        "generated {} rows in {:.2}s, written in {:.2}s",
        args.rows,
        generated.as_secs_f64(),
        (start.elapsed() - generated).as_secs_f64()
    );
}
