//! Raw CSV / Parquet → encoded Parquet splits + `schema.json` (Categorify, Normalize, targets).
//!
//! ```text
//! cargo run --release --example preprocess -- --input raw.csv --out data/encoded \
//!     --continuous age,price --log1p price --others categorical \
//!     --target bought=outcome==purchase --min-freq 10 --split 0.7,0.15,0.15 --seed 42
//! ```
//!
//! Input: `--input PATH` (CSV, `.gz` CSV, or Parquet file/directory). Already split data:
//! `--input train.csv --valid valid.csv [--test test.csv]` fits on the train file only.
//!
//! CSV reading: a header row by default; `--names a,b,c` for a file without one;
//! `--delimiter ';'` (`\t` for tabs); `--null '?'` (repeatable; the empty field is always
//! null); `--no-trim` keeps spaces around fields; `--no-quote` turns quoting off.
//!
//! Column roles (comma-separated lists, repeatable): `--categorical`, `--continuous`,
//! `--weight` (kept, never an input), `--drop`, and `--others categorical|continuous|weight|drop`
//! for every column not named (without it, an unnamed column is an error).
//! Continuous options: `--log1p COLS`, `--fill COL=VALUE` (default: nulls become the mean).
//! Categorify: `--min-freq N` (default 1), `--min-freq-for COL=N`.
//!
//! Targets (at least one; a column a target is derived from is dropped from the inputs):
//! - `--binary COL`: COL already holds 0/1;
//! - `--regression COL`: COL is a number;
//! - `--target NAME=COL==VALUE`: NAME is 1 where COL equals VALUE;
//! - `--target NAME=COL>NUMBER`: NAME is 1 where COL is above NUMBER.
//!
//! Split of a single input: `--split 0.7,0.15,0.15` (train,valid,test; default: all train),
//! `--seed N`. `--preset census-income` sets everything for the raw UCI Census-Income files
//! (min. frequency 10, split 0.7/0.15/0.15, seed 2024); `--preset census-income-sample` for
//! DeepCTR's 200-row sample of them (min. frequency 2). Flags after a preset refine it.
//!
//! Output: `OUT/{train,valid,test}/part_0.parquet + schema.json`,
//! `OUT/categories/unique.<col>.parquet`, `OUT/stats.json`. Write a model against
//! `OUT/train/schema.json` (see the README, "From raw CSV to a trained model").

use std::path::PathBuf;

use mtl::preprocess::{presets, CsvOptions, Input, PreprocessConfig, Role, Split, Target};

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn role(v: &str) -> Result<Role, String> {
    Ok(match v {
        "categorical" => Role::Categorical,
        "continuous" => Role::Continuous,
        "weight" => Role::Weight,
        "drop" => Role::Drop,
        _ => {
            return Err(format!(
                "unknown role `{v}`; expected categorical, continuous, weight or drop"
            ))
        }
    })
}

fn target(v: &str) -> Result<Target, String> {
    let (name, rule) = v
        .split_once('=')
        .ok_or_else(|| format!("--target `{v}`: expected NAME=COL==VALUE or NAME=COL>NUMBER"))?;
    if let Some((col, value)) = rule.split_once("==") {
        return Ok(Target::equals(name, col, value));
    }
    if let Some((col, t)) = rule.split_once('>') {
        let t: f64 = t
            .parse()
            .map_err(|_| format!("--target `{v}`: `{t}` is not a number"))?;
        return Ok(Target::above(name, col, t));
    }
    Err(format!(
        "--target `{v}`: expected NAME=COL==VALUE or NAME=COL>NUMBER"
    ))
}

fn key_value(v: &str, flag: &str) -> Result<(String, String), String> {
    v.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{flag} `{v}`: expected COL=VALUE"))
}

struct Args {
    input: PathBuf,
    valid: Option<PathBuf>,
    test: Option<PathBuf>,
    out: PathBuf,
    csv: CsvOptions,
    config: PreprocessConfig,
}

fn parse() -> Result<Args, String> {
    let mut input = None;
    let (mut valid, mut test, mut out) = (None, None, None);
    let mut csv = CsvOptions::default();
    let mut config = PreprocessConfig::new();
    let mut nulls = vec![String::new()];
    let mut fractions: Option<Vec<f64>> = None;
    let mut seed: Option<u64> = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--input" => input = Some(PathBuf::from(value()?)),
            "--valid" => valid = Some(PathBuf::from(value()?)),
            "--test" => test = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--preset" => match value()?.as_str() {
                "census-income" => {
                    let (c, p) = presets::census_income_kdd(10, 2024);
                    nulls = c.null_markers.clone();
                    (csv, config) = (c, p);
                }
                "census-income-sample" => {
                    let (c, p) = presets::census_income_kdd_deepctr_sample(2, 2024);
                    nulls = c.null_markers.clone();
                    (csv, config) = (c, p);
                }
                other => {
                    return Err(format!(
                        "unknown preset `{other}`; known: census-income, census-income-sample"
                    ))
                }
            },
            "--names" => csv = csv.with_names(&list(&value()?)),
            "--delimiter" => {
                let d = value()?;
                csv.delimiter = match d.as_str() {
                    "\\t" | "tab" => b'\t',
                    _ if d.len() == 1 => d.as_bytes()[0],
                    _ => return Err(format!("--delimiter `{d}`: expected one ASCII character")),
                };
            }
            "--null" => nulls.push(value()?),
            "--no-trim" => csv.trim = false,
            "--no-quote" => csv.quote = None,
            "--categorical" => config = config.categorical(&list(&value()?)),
            "--continuous" => config = config.continuous(&list(&value()?)),
            "--weight" => config = config.weight(&list(&value()?)),
            "--drop" => config = config.drop(&list(&value()?)),
            "--others" => config = config.others(role(&value()?)?),
            "--log1p" => config = config.log1p(&list(&value()?)),
            "--fill" => {
                let (c, v) = key_value(&value()?, "--fill")?;
                let v = v
                    .parse()
                    .map_err(|_| format!("--fill {c}: `{v}` is not a number"))?;
                config = config.fill(&c, v);
            }
            "--min-freq" => {
                config.min_frequency = value()?
                    .parse()
                    .map_err(|_| "--min-freq needs an integer")?
            }
            "--min-freq-for" => {
                let (c, v) = key_value(&value()?, "--min-freq-for")?;
                let n = v
                    .parse()
                    .map_err(|_| format!("--min-freq-for {c}: `{v}` is not an integer"))?;
                config = config.min_frequency_for(&c, n);
            }
            "--binary" => {
                for c in list(&value()?) {
                    config = config.target(Target::binary(&c));
                }
            }
            "--regression" => {
                for c in list(&value()?) {
                    config = config.target(Target::regression(&c));
                }
            }
            "--target" => config = config.target(target(&value()?)?),
            "--split" => {
                let parts = list(&value()?)
                    .iter()
                    .map(|f| {
                        f.parse::<f64>()
                            .map_err(|_| format!("--split: `{f}` is not a number"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                fractions = Some(parts);
            }
            "--seed" => seed = Some(value()?.parse().map_err(|_| "--seed needs an integer")?),
            "-h" | "--help" => {
                println!("see the documentation at the top of examples/preprocess.rs");
                std::process::exit(0);
            }
            other => {
                return Err(format!(
                    "unknown flag `{other}` (see examples/preprocess.rs)"
                ))
            }
        }
    }
    csv = csv.with_null_markers(&nulls);
    if let Some(f) = fractions {
        let names = ["train", "valid", "test"];
        if f.len() > names.len() {
            return Err("--split takes at most three fractions (train,valid,test)".into());
        }
        config.split = Split {
            parts: names
                .iter()
                .zip(&f)
                .map(|(n, f)| (n.to_string(), *f))
                .collect(),
            seed: seed.unwrap_or(42),
        };
    } else if let Some(seed) = seed {
        config.split.seed = seed;
    }
    Ok(Args {
        input: input.ok_or("--input PATH is required")?,
        valid,
        test,
        out: out.ok_or("--out DIR is required")?,
        csv,
        config,
    })
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let started = std::time::Instant::now();
    let input = Input::from_path(&args.input, args.csv.clone());
    let result = if args.valid.is_some() || args.test.is_some() {
        let valid = args.valid.map(|p| Input::from_path(p, args.csv.clone()));
        let test = args.test.map(|p| Input::from_path(p, args.csv.clone()));
        let mut others = Vec::new();
        if let Some(v) = &valid {
            others.push(("valid", v));
        }
        if let Some(t) = &test {
            others.push(("test", t));
        }
        args.config.run_files(&input, &others, &args.out)
    } else {
        args.config.run(&input, &args.out)
    };
    match result {
        Ok(report) => {
            print!("{report}");
            println!(
                "schema ({:.2} s):\n{}",
                started.elapsed().as_secs_f64(),
                report.schema
            );
            println!(
                "next: write a model with `schema: \"{}\"` (see the README)",
                args.out.join("train/schema.json").display()
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
