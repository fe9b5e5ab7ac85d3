//! Data-path benchmark: prints rows/s for generating, writing, loading and batching the
//! tenrec-video dataset.
//!
//! ```text
//! cargo run --release --example data_bench -- [--rows 1000000] [--batch 4096] [--dir /tmp/mtl-bench]
//! ```
//! Measures, on `--rows` rows of synthetic tenrec-video (10 columns):
//! - generate: `generate_data` in memory;
//! - write: Parquet (snappy, row groups of 128k rows);
//! - load: `Dataset::open` of that Parquet file (decode + validate every value);
//! - batches (in memory): one shuffled epoch of batch assembly at `--batch` rows;
//! - batches (streaming): one shuffled epoch through a 256k-row shuffle buffer, with its peak
//!   resident rows (the memory bound).
//!
//! Each figure is the best of three runs.

use std::time::{Duration, Instant};

use mtl::data::synthetic::generate_data;
use mtl::data::{BatchOptions, BatchSource, Dataset, StreamingDataset, WriteOptions};

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let start = Instant::now();
        let v = f();
        best = best.min(start.elapsed());
        out = Some(v);
    }
    (best, out.expect("at least one run"))
}

fn main() {
    let mut rows = 1_000_000usize;
    let mut batch = 4096usize;
    let mut dir = std::env::temp_dir().join("mtl-data-bench");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => rows = value.replace('_', "").parse().expect("--rows: a number"),
            "--batch" => batch = value.parse().expect("--batch: a number"),
            "--dir" => dir = value.into(),
            other => panic!("unknown argument {other}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let (t_gen, ds) = best_of(3, || {
        generate_data("tenrec-video", rows, &[1.0], 42)
            .unwrap()
            .remove(0)
    });
    let (t_write, ()) = best_of(3, || {
        ds.write_parquet(&dir, &WriteOptions::default()).unwrap()
    });
    let (t_load, loaded) = best_of(3, || Dataset::open(&dir).unwrap());
    assert_eq!(loaded.num_rows(), rows);

    let (t_mem, n_mem) = best_of(3, || {
        let mut it = loaded
            .batches(BatchOptions::new(batch).with_seed(1), 0)
            .unwrap();
        let mut n = 0;
        while let Some(b) = it.next() {
            n += b.len();
        }
        n
    });
    let stream = StreamingDataset::open(&dir).unwrap();
    let (t_stream, (n_stream, peak)) = best_of(3, || {
        let mut it = stream
            .batches(BatchOptions::new(batch).with_seed(1), 0)
            .unwrap();
        let mut n = 0;
        while let Some(b) = it.next_batch().unwrap() {
            n += b.len();
        }
        (n, it.peak_resident_rows())
    });
    assert_eq!((n_mem, n_stream), (rows, rows));

    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!("tenrec-video, {rows} rows, batch {batch} (best of 3)\n");
    println!("{:<34} {:>10} {:>14}", "step", "seconds", "rows/s");
    for (name, d) in [
        ("generate (in memory)", t_gen),
        ("write Parquet", t_write),
        ("load Parquet (decode + validate)", t_load),
        ("shuffled batches, in memory", t_mem),
        ("shuffled batches, streaming", t_stream),
    ] {
        println!("{name:<34} {:>10.3} {:>14.0}", d.as_secs_f64(), rate(d));
    }
    println!(
        "\nstreaming peak resident rows: {peak} (shuffle buffer {} + one row group of {})",
        mtl::data::DEFAULT_SHUFFLE_BUFFER_ROWS,
        WriteOptions::default().row_group_rows
    );
    let _ = std::fs::remove_dir_all(&dir);
}
