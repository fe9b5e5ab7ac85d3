//! Merlin's "Multi-Task Learning for Ranking" notebook, cell by cell, in Rust.
//!
//! ```text
//! cargo run --release --example multi_task_ranking                 # embedded default data
//! cargo run --release --example multi_task_ranking -- --data DIR   # DIR/train, DIR/valid
//!     [--rows 100000] [--seed 42] [--mode signal|merlin] [--device cpu|cuda]
//! ```
//! Without `--data` it generates synthetic tenrec-video in memory (`NUM_ROWS` rows split
//! 0.8/0.2, like the notebook's `generate_data("tenrec-video", NUM_ROWS, set_sizes=(0.8, 0.2))`).
//! With `--data` it reads a folder holding `train/` and `valid/` datasets in the
//! Merlin/NVTabular layout (what `examples/generate_data.rs` or Merlin itself writes).
//!
//! Cells: generating data, the schema, the first rows, the shared-bottom model from the schema
//! (summary, fit, evaluate), loss weights 5/4/3/2/1, class weights (1, 5) / (1, 20), `age` and
//! `watching_times` as weight columns, `like` restricted to `click`'s sample space with weighted
//! AUC, per-task towers, MMoE, CGC and PLE. Each prints its evaluate report; the MoE cells also
//! print the mean expert weight of every gate and write an SVG heatmap of it.

use std::path::PathBuf;

use mtl::device::DeviceKind;

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

mtl_model! {
    /// "Setting task-specific class weights": positives of the rarer `like` weigh more.
    pub struct ClassWeights {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: mlp[32, 16],
        tasks: {
            click: binary(class_weights = (1.0, 5.0)),
            like: binary(class_weights = (1.0, 20.0)),
        },
    }
}

mtl_model! {
    /// "Using other target / feature as weight per task".
    pub struct WeightColumns {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: mlp[32, 16],
        tasks: {
            click: binary(sample_weight = as_number(age)),
            like: binary(sample_weight = watching_times),
        },
    }
}

mtl_model! {
    /// "Using another binary target as sample space": `like` only where `click = 1`, with
    /// overridden metrics and weighted AUC computed on that sample space.
    pub struct SampleSpace {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: mlp[32, 16],
        tasks: {
            click: binary(metrics = [auc], weighted_metrics = [auc]),
            like: binary(sample_weight = click, metrics = [auc], weighted_metrics = [auc]),
        },
    }
}

mtl_model! {
    /// "Hard parameter sharing" with per-task towers.
    pub struct Towers {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: mlp[32, 16],
        tasks: {
            click: binary(tower = mlp[64]),
            like: binary(tower = mlp[32]),
        },
    }
}

mtl_model! {
    /// "MMoE architecture": `mm.MMOEBlock(output_block, expert_block=mm.MLPBlock([16]),
    /// num_experts=4, gate_block=mm.MLPBlock([16]))` with towers `mm.MLPBlock([16])`.
    pub struct Mmoe {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: mmoe(experts = 4, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }
}

mtl_model! {
    /// "CGC": `mm.CGCBlock(output_block, expert_block=mm.MLPBlock([16]), num_task_experts=2,
    /// num_shared_experts=3)` with towers `mm.MLPBlock([16])`.
    pub struct Cgc {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: cgc(task_experts = 2, shared_experts = 3, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }
}

mtl_model! {
    /// "PLE": `mm.PLEBlock(num_layers=2, outputs=output_block, expert_block=mm.MLPBlock([16]),
    /// num_task_experts=2, num_shared_experts=1)` with towers `mm.MLPBlock([16])`; every gate
    /// reads the body input, as in Merlin (`gate_input = level` gives the PLE paper's gates).
    pub struct Ple {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: ple(levels = 2, task_experts = 2, shared_experts = 1, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }
}

/// Prints the mean expert weight of every gate and writes the heatmap next to the temp dir's
/// other reports.
fn show_gates(report: &Report, model: &str) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(gates) = report.gate_weights() {
        println!("\nmean expert weight per gate:\n{gates}");
        let path = std::env::temp_dir().join(format!("mtl_{model}_gates.svg"));
        std::fs::write(&path, gates.to_svg())?;
        println!("gate heatmap written to {}", path.display());
    }
    Ok(())
}

/// `model.compile(...)`, `model.fit(train_ds)`, `model.evaluate(valid_ds)` on `device`.
fn fit_and_evaluate_on<M, D>(
    device: D,
    config: TrainConfig,
    train: &Dataset,
    valid: &Dataset,
) -> Result<Report, Box<dyn std::error::Error>>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    let mut trainer = Trainer::<M, D>::new(device, config)?;
    let history = trainer.fit(train, None)?;
    if let Some(e) = history.epochs.last() {
        println!(
            "fit: {} rows/s, train loss {:.4}\n",
            e.rows_per_second.round(),
            e.train.get("loss").unwrap_or(f64::NAN)
        );
    }
    let report = trainer.evaluate(valid)?;
    print!("{report}");
    Ok(report)
}

struct Args {
    device: DeviceKind,
    data: Option<PathBuf>,
    rows: usize,
    seed: u64,
    mode: TargetMode,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        device: DeviceKind::Cpu,
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
            "--device" => args.device = value()?.parse().map_err(|e: mtl::Error| e.to_string())?,
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
    // `fit_and_evaluate!(Model, config, train, valid)` on the chosen device: the models are
    // generic over the device, the choice is made at run time.
    macro_rules! fit_and_evaluate {
        ($model:ty, $config:expr, $train:expr, $valid:expr) => {
            match args.device {
                DeviceKind::Cpu => {
                    fit_and_evaluate_on::<$model, Cpu>(Cpu::default(), $config, $train, $valid)
                }
                #[cfg(feature = "cuda")]
                DeviceKind::Cuda => fit_and_evaluate_on::<$model, Cuda>(
                    mtl::device::cuda(0)?,
                    $config,
                    $train,
                    $valid,
                ),
                #[cfg(not(feature = "cuda"))]
                DeviceKind::Cuda => Err(mtl::device::cuda_not_built().into()),
            }
        };
    }
    if args.device == DeviceKind::Cuda && !mtl::device::CUDA_BUILT {
        return Err(mtl::device::cuda_not_built().into());
    }

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
                ..Default::default()
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

    let config = TrainConfig::default()
        .with_batch_size(4 * 1024)
        .with_seed(args.seed)
        .with_progress(std::io::IsTerminal::is_terminal(&std::io::stderr()));

    cell("model.fit(train_ds, batch_size=BATCH_SIZE); model.evaluate(valid_ds, batch_size=BATCH_SIZE)");
    fit_and_evaluate!(SharedBottom, config.clone(), &train, &valid)?;

    cell("Setting loss weights: click 5, like 4, share 3, follow 2, watching_times 1");
    let weighted = config
        .clone()
        .with_loss_weight("click/binary_output", 5.0)
        .with_loss_weight("like/binary_output", 4.0)
        .with_loss_weight("share/binary_output", 3.0)
        .with_loss_weight("follow/binary_output", 2.0)
        .with_loss_weight("watching_times/regression_output", 1.0);
    fit_and_evaluate!(SharedBottom, weighted, &train, &valid)?;

    cell("1. Setting class weights per task: click (1, 5), like (1, 20)");
    fit_and_evaluate!(ClassWeights, config.clone(), &train, &valid)?;

    cell(
        "2. Using other target / feature as weight per task: click by age, like by watching_times",
    );
    fit_and_evaluate!(WeightColumns, config.clone(), &train, &valid)?;

    cell("3. Using another binary target as sample space: like where click = 1, weighted AUC");
    fit_and_evaluate!(SampleSpace, config.clone(), &train, &valid)?;

    cell("Hard parameter sharing with task towers: click mlp[64], like mlp[32]");
    fit_and_evaluate!(Towers, config.clone(), &train, &valid)?;

    cell("MMoE: 4 experts mlp[16], gates mlp[16], towers mlp[16]");
    print!("{}", dev.build_module::<Mmoe, f32>());
    let report = fit_and_evaluate!(Mmoe, config.clone().with_gate_metrics(true), &train, &valid)?;
    show_gates(&report, "mmoe")?;

    cell("CGC: 2 task experts + 3 shared experts mlp[16], gates mlp[16], towers mlp[16]");
    let report = fit_and_evaluate!(Cgc, config.clone().with_gate_metrics(true), &train, &valid)?;
    show_gates(&report, "cgc")?;

    cell(
        "PLE: 2 levels of 2 task experts + 1 shared expert mlp[16], gates mlp[16], towers mlp[16]",
    );
    print!("{}", dev.build_module::<Ple, f32>());
    let report = fit_and_evaluate!(Ple, config.with_gate_metrics(true), &train, &valid)?;
    show_gates(&report, "ple")?;
    Ok(())
}
