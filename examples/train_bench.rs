//! Training throughput on equal work: the PyTorch reference's four models on its own data.
//!
//! ```text
//! cargo run --release --example train_bench -- --data DIR [--model shared|mmoe|cgc|ple]
//!     [--batch 4096] [--epochs 1] [--threads N] [--generic] [--device cpu|cuda]
//! cargo run --release --example train_bench -- --synthetic [--rows 1000000] ...
//! ```
//! The models are the reference's (`shared/bench/pytorch-reference/bench_mtl.py`): embeddings
//! user_id 2,633,851 × 64, item_id 179,280 × 64, video_category / gender / age × 16 (the table
//! sizes come from `data/pytorch-reference/schema.pbtxt`, a copy of the schema its
//! `make_data.py` writes), five heads, Adam lr 1e-3 on the dense parameters and lazy Adam on the
//! table rows; `shared` is MLP [32, 16]; `mmoe` 4 experts mlp[16], gates mlp[16], towers
//! mlp[16]; `cgc` 2 experts per task + 3 shared; `ple` 2 levels of 2 per task + 1 shared with
//! the paper's gate wiring (`gate_input = level`, as the reference).
//!
//! `--data DIR` reads what `make_data.py DIR --train-rows 1000000` writes (`train.parquet`,
//! `valid.parquet`, `schema.pbtxt`) or a folder with `train/` and `valid/` datasets; the data's
//! schema must state the same table sizes as the compiled models. `--synthetic` generates rows
//! instead, with ids uniform over the same tables and random targets: a quick run without the
//! reference's files, not the reference's rows, so not a figure to compare with PyTorch.
//!
//! The optimizer state is allocated before the clock starts (`Trainer::prepare`), as the
//! reference does (`preallocate_state`). Prints samples/s of the training epoch(s), the validation
//! AUCs, the cores used and the peak RSS; the last line is one JSON object like the reference's.
//! `--generic` trains with the device-generic dfdx path instead of the fused CPU engine.

use std::time::Instant;

use mtl::data::{ColumnValues, Dataset, LoadOptions};
use mtl::device::DeviceKind;
use mtl::prelude::*;
use mtl::schema::Schema;

mtl_model! {
    // The reference's inputs and schema, shared by its four models.
    schema: "data/pytorch-reference/schema.pbtxt",
    inputs: {
        user_id: categorical(dim = 64),
        item_id: categorical(dim = 64),
        video_category: categorical(dim = 16),
        gender: categorical(dim = 16),
        age: categorical(dim = 16),
    },
    towers: mlp[16],

    /// The reference shared-bottom model (no towers).
    pub struct SharedBottom {
        body: mlp[32, 16],
        towers: none,
    }

    /// The reference MMoE model.
    pub struct MmoeBench {
        body: mmoe(experts = 4, expert = mlp[16], gate = mlp[16]),
    }

    /// The reference CGC model (2 task experts + 3 shared).
    pub struct CgcBench {
        body: cgc(task_experts = 2, shared_experts = 3, expert = mlp[16], gate = mlp[16]),
    }

    /// The reference PLE model (2 levels of 2 task experts + 1 shared; level-2 gates read the
    /// level-1 outputs, as the reference's do).
    pub struct PleBench {
        body: ple(levels = 2, task_experts = 2, shared_experts = 1, expert = mlp[16],
                  gate = mlp[16], gate_input = level),
    }
}

struct Args {
    model: String,
    data: Option<String>,
    rows: usize,
    batch: usize,
    epochs: usize,
    threads: usize,
    generic: bool,
    device: DeviceKind,
}

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        // utime and stime, in clock ticks (100 per second on Linux).
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

/// Multiply-adds per sample of the network's matrix products: every 2-D weight `[O, I]` is used
/// once per sample (the reference counts its linear layers the same way).
fn linear_macs<N: TensorCollection<f32, D>, D: Device<f32>>(network: &N) -> u64 {
    struct Count(u64);
    impl<D: Device<f32>> TensorVisitor<f32, D> for Count {
        type Viewer = ViewTensorRef;
        type Err = D::Err;
        type E2 = f32;
        type D2 = D;
        fn visit<S: Shape>(
            &mut self,
            opts: TensorOptions<S, f32, D>,
            t: &Tensor<S, f32, D>,
        ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
            if opts.do_gradient_update && S::NUM_DIMS == 2 {
                self.0 += t.shape().num_elements() as u64;
            }
            Ok(None)
        }
    }
    let mut count = Count(0);
    let walked = N::iter_tensors(&mut RecursiveWalker {
        m: network,
        f: &mut count,
    });
    if walked.is_err() {
        return 0;
    }
    count.0
}

/// Peak resident memory in MB (`VmHWM`).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn bench<M, D>(
    device: D,
    train: &Dataset,
    valid: &Dataset,
    args: &Args,
) -> Result<(), Box<dyn std::error::Error>>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    let config = TrainConfig::default()
        .with_batch_size(args.batch)
        .with_epochs(args.epochs)
        .with_seed(1)
        .with_threads(args.threads)
        .with_fused_cpu(!args.generic);
    let mut trainer = Trainer::<M, D>::new(device, config)?;
    // Optimizer state for every table row, allocated and touched outside the timed region.
    trainer.prepare()?;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let history = trainer.fit(train, None)?;
    let secs = start.elapsed().as_secs_f64();
    let cores = (cpu_seconds() - cpu0) / secs;
    let report = trainer.evaluate(valid)?;
    let samples = train.num_rows() * args.epochs;
    let rate = samples as f64 / secs;
    // Forward + backward: 2 FLOPs per multiply-add forward, twice that backward.
    let flops_per_sample = 6 * linear_macs(&trainer.network);
    let gflops = flops_per_sample as f64 * rate / 1e9;
    println!(
        "model: {} ({}), engine: {}",
        M::SPEC.name,
        M::SPEC.body,
        trainer.engine_name()
    );
    println!(
        "train rows: {}, batch {}, epochs {}, threads {}",
        train.num_rows(),
        args.batch,
        args.epochs,
        trainer.threads()
    );
    for e in &history.epochs {
        let loss = e.train.get("loss").unwrap_or(f64::NAN);
        println!(
            "epoch {}: {:.0} samples/s, loss {loss:.4}",
            e.epoch + 1,
            e.rows_per_second
        );
    }
    let auc = |task: &str| {
        report
            .get(&format!("{task}/binary_output/auc"))
            .unwrap_or(f64::NAN)
    };
    let rmse = report
        .get("watching_times/regression_output/root_mean_squared_error")
        .unwrap_or(f64::NAN);
    println!(
        "overall: {rate:.0} samples/s ({secs:.2} s, {cores:.2} cores); {flops_per_sample} matmul \
         FLOPs per sample, {gflops:.1} GFLOP/s"
    );
    println!(
        "valid: auc_click={:.4} auc_follow={:.4} auc_like={:.4} auc_share={:.4} rmse_watching_times={rmse:.4}",
        auc("click"),
        auc("follow"),
        auc("like"),
        auc("share")
    );
    let peak = peak_rss_mb();
    println!("peak RSS: {peak:.0} MB");
    let json = format!(
        concat!(
            "{{\"framework\": \"mtl\", \"model\": \"{}\", \"engine\": \"{}\", \"threads\": {}, ",
            "\"batch_size\": {}, \"epochs\": {}, \"samples\": {}, \"train_s\": {:.4}, ",
            "\"samples_per_s\": {:.1}, \"cores\": {:.3}, \"auc_click\": {:.5}, \"auc_follow\": {:.5}, ",
            "\"auc_like\": {:.5}, \"auc_share\": {:.5}, \"rmse_watching_times\": {:.5}, ",
            "\"flops_per_sample\": {}, \"gflops\": {:.2}, \"peak_rss_mb\": {:.1}}}"
        ),
        args.model,
        trainer.engine_name(),
        trainer.threads(),
        args.batch,
        args.epochs,
        samples,
        secs,
        rate,
        cores,
        auc("click"),
        auc("follow"),
        auc("like"),
        auc("share"),
        rmse,
        flops_per_sample,
        gflops,
        peak
    );
    println!("{json}");
    Ok(())
}

fn parse_args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut a = Args {
        model: "shared".into(),
        data: None,
        rows: 1_000_000,
        batch: 4096,
        epochs: 1,
        threads: 0,
        generic: false,
        device: DeviceKind::Cpu,
    };
    let mut synthetic = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--generic" => {
                a.generic = true;
                continue;
            }
            "--synthetic" => {
                synthetic = true;
                continue;
            }
            _ => {}
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => a.model = value,
            "--data" => a.data = Some(value),
            "--rows" => a.rows = value.replace('_', "").parse()?,
            "--batch" => a.batch = value.parse()?,
            "--epochs" => a.epochs = value.parse()?,
            "--threads" => a.threads = value.parse()?,
            "--device" => a.device = value.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.data.is_none() && !synthetic {
        return Err(
            "give --data DIR (the PyTorch reference's data: see the README's \
                    \"Training figures\"), or --synthetic for generated rows"
                .into(),
        );
    }
    Ok(a)
}

/// The train and valid splits of `dir`: the reference's `train.parquet` + `valid.parquet` +
/// `schema.pbtxt`, or `train/` and `valid/` datasets.
fn load(dir: &str) -> Result<(Dataset, Dataset), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(dir);
    if dir.join("train").is_dir() {
        return Ok((
            Dataset::open(dir.join("train"))?,
            Dataset::open(dir.join("valid"))?,
        ));
    }
    let schema = Schema::from_dir(dir)?;
    let options = LoadOptions::default().with_schema(schema);
    Ok((
        Dataset::open_with(dir.join("train.parquet"), &options)?,
        Dataset::open_with(dir.join("valid.parquet"), &options)?,
    ))
}

/// `rows` rows over the compiled models' schema: every id uniform over its whole table,
/// binary targets at random (xorshift64, seeded).
fn synthetic(rows: usize, seed: u64) -> Result<Dataset, Box<dyn std::error::Error>> {
    let spec = SharedBottom::spec();
    let schema = spec.schema().ok_or("the bench models embed no schema")??;
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut columns = Vec::new();
    for f in spec.features {
        let ids = (0..rows).map(|_| (next() % f.cardinality as u64) as u32);
        columns.push((f.name.to_string(), ColumnValues::Ids(ids.collect())));
    }
    for t in spec.tasks {
        let targets = (0..rows).map(|_| (next() % 2) as f32);
        columns.push((
            t.target.to_string(),
            ColumnValues::Floats(targets.collect()),
        ));
    }
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    Ok(Dataset::from_columns(
        schema.select_by_name(&names),
        columns,
    )?)
}

/// The data must describe the same tables as the compiled models (equal work).
fn check_tables(train: &Dataset) -> Result<(), Box<dyn std::error::Error>> {
    for f in SharedBottom::spec().features {
        let rows = train
            .schema()
            .get(f.name)
            .and_then(|c| c.cardinality())
            .ok_or_else(|| format!("the data's schema has no domain for `{}`", f.name))?;
        if rows as usize != f.cardinality {
            return Err(format!(
                "`{}`: the data's schema gives {rows} rows, the bench models {} \
                 (data/pytorch-reference/schema.pbtxt); equal work needs the same table sizes",
                f.name, f.cardinality
            )
            .into());
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let (train, valid) = match &args.data {
        Some(dir) => {
            let (train, valid) = load(dir)?;
            check_tables(&train)?;
            (train, valid)
        }
        None => {
            println!(
                "synthetic rows: uniform ids over the reference's tables, random targets \
                 (not the reference's rows; AUC stays near 0.5)"
            );
            (
                synthetic(args.rows, 42)?,
                synthetic(args.rows / 40 + 1, 43)?,
            )
        }
    };
    // One arm per (model, device): the models are generic over the device, the choice is not.
    macro_rules! run {
        ($model:ty) => {
            match args.device {
                DeviceKind::Cpu => bench::<$model, Cpu>(Cpu::default(), &train, &valid, &args),
                #[cfg(feature = "cuda")]
                DeviceKind::Cuda => {
                    bench::<$model, Cuda>(mtl::device::cuda(0)?, &train, &valid, &args)
                }
                #[cfg(not(feature = "cuda"))]
                DeviceKind::Cuda => Err(mtl::device::cuda_not_built().into()),
            }
        };
    }
    match args.model.as_str() {
        "shared" => run!(SharedBottom),
        "mmoe" => run!(MmoeBench),
        "cgc" => run!(CgcBench),
        "ple" => run!(PleBench),
        other => Err(format!("unknown model `{other}`: shared, mmoe, cgc or ple").into()),
    }
}
