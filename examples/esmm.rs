//! ESMM and AITM against independent heads on synthetic tenrec-video, whose `like` fires only
//! after a click (P(like) = P(click)·P(like | click)), against the generator's ceiling.
//!
//! ```text
//! cargo run --release --example esmm [-- --rows 300000 --seeds 5 --epochs 3]
//! ```
//!
//! Four shared-bottom models (body mlp[64, 32], towers mlp[16], inputs from the schema):
//! - `independent`: `like` trained on every impression, its head predicts P(like) directly;
//! - `clicked-only`: `like` trained on clicked rows (`sample_weight = click`), the usual CVR
//!   model with its sample-selection bias; P(like) estimated as P(click)·P(like | click);
//! - `esmm`: `like: binary(given = click)`, trained through P(click and like) on every row;
//! - `aitm`: `like: binary(given = click, transfer = aitm)`: like's tower attends over what
//!   click's tower passes on, its head predicts P(like) on every row, with the calibration loss;
//!   P(like | click) estimated as P(like) / P(click).
//!
//! Reported on the validation split: the AUC of P(like) on every impression (ESMM's CTCVR),
//! and the AUC of P(like | click) on clicked rows (its CVR; `independent` uses its P(like)
//! there), each as mean ± std over seeds, with the ceiling of the generator's true
//! probabilities.

use std::time::Instant;

use mtl::data::synthetic::{generate_data_with, SyntheticOptions, TargetMode};
use mtl::data::Dataset;
use mtl::metrics::auc;
use mtl::prelude::*;

mtl_model! {
    schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
    body: mlp[64, 32],
    towers: mlp[16],

    pub struct Independent {
        tasks: { click: binary(metrics = [auc]), like: binary(metrics = [auc]) },
    }

    pub struct ClickedOnly {
        tasks: { click: binary(metrics = [auc]), like: binary(sample_weight = click, metrics = [auc]) },
    }

    pub struct Esmm {
        tasks: { click: binary(metrics = [auc]), like: binary(given = click, metrics = [auc]) },
    }

    pub struct Aitm {
        tasks: { click: binary(metrics = [auc]), like: binary(given = click, transfer = aitm, metrics = [auc]) },
    }
}

type Failure = Box<dyn std::error::Error>;

/// (P(like) on every row, P(like | click) on every row) from a trained model.
fn scores<M>(
    seed: u64,
    epochs: usize,
    train: &Dataset,
    valid: &Dataset,
) -> Result<(Vec<f32>, Vec<f32>), Failure>
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    let config = TrainConfig::default()
        .with_epochs(epochs)
        .with_batch_size(1024)
        .with_seed(seed)
        .with_progress(false);
    let mut trainer = Trainer::<M>::new(Cpu::default(), config)?;
    trainer.fit(train, None)?;
    let p = trainer.predict(valid)?; // click, like (, like joint)
    let (click, like) = (&p[0], &p[1]);
    Ok(match M::SPEC.name {
        "Independent" => (like.clone(), like.clone()),
        "Esmm" => (p[2].clone(), like.clone()),
        "Aitm" => (
            like.clone(),
            like.iter()
                .zip(click)
                .map(|(l, c)| l / c.max(1e-6))
                .collect(),
        ),
        _ => (
            click.iter().zip(like).map(|(c, l)| c * l).collect(),
            like.clone(),
        ),
    })
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    (m, var.sqrt())
}

fn main() -> Result<(), Failure> {
    let (mut rows, mut seeds, mut epochs) = (300_000usize, 5u64, 3usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("`{flag}` needs a value"))?;
        match flag.as_str() {
            "--rows" => rows = value.parse()?,
            "--seeds" => seeds = value.parse()?,
            "--epochs" => epochs = value.parse()?,
            other => return Err(format!("unknown flag `{other}` (see examples/esmm.rs)").into()),
        }
    }
    let started = Instant::now();
    let options = SyntheticOptions {
        mode: TargetMode::Signal,
        true_probabilities: true,
        ..Default::default()
    };
    // Per model: name, P(like) AUCs, P(like | click) AUCs, training seconds, per seed.
    #[allow(clippy::type_complexity)]
    let mut results: Vec<(&str, Vec<f64>, Vec<f64>, Vec<f64>)> =
        ["independent", "clicked-only", "esmm", "aitm"]
            .iter()
            .map(|n| (*n, vec![], vec![], vec![]))
            .collect();
    let mut ceiling = (Vec::new(), Vec::new());
    for seed in 0..seeds {
        let data = generate_data_with("tenrec-video", rows, &[0.8, 0.2], 100 + seed, &options)?;
        let (train, valid) = (&data[0], &data[1]);
        let like = valid.floats("like").ok_or("no like column")?;
        let click = valid.floats("click").ok_or("no click column")?;
        let clicked: Vec<usize> = (0..like.len()).filter(|&r| click[r] == 1.0).collect();
        let on_clicked = |s: &[f32]| -> (Vec<f32>, Vec<f32>) {
            (
                clicked.iter().map(|&r| s[r]).collect(),
                clicked.iter().map(|&r| like[r]).collect(),
            )
        };
        let cvr_auc = |s: &[f32]| {
            let (s, y) = on_clicked(s);
            auc(&s, &y, None).unwrap_or(f64::NAN)
        };
        let joint_auc = |s: &[f32]| auc(s, like, None).unwrap_or(f64::NAN);
        // The ceiling: the generator's own probabilities.
        let (p_like, p_click) = (
            valid.floats("like_true_prob").ok_or("no like_true_prob")?,
            valid
                .floats("click_true_prob")
                .ok_or("no click_true_prob")?,
        );
        let p_cvr: Vec<f32> = p_like.iter().zip(p_click).map(|(l, c)| l / c).collect();
        ceiling.0.push(joint_auc(p_like));
        ceiling.1.push(cvr_auc(&p_cvr));
        for (name, joint, cvr, seconds) in results.iter_mut() {
            let model_started = Instant::now();
            let (j, c) = match *name {
                "independent" => scores::<Independent>(seed, epochs, train, valid)?,
                "clicked-only" => scores::<ClickedOnly>(seed, epochs, train, valid)?,
                "esmm" => scores::<Esmm>(seed, epochs, train, valid)?,
                _ => scores::<Aitm>(seed, epochs, train, valid)?,
            };
            seconds.push(model_started.elapsed().as_secs_f64());
            joint.push(joint_auc(&j));
            cvr.push(cvr_auc(&c));
        }
        println!(
            "seed {seed} done ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "\ntenrec-video (signal), {rows} rows (80/20), {epochs} epochs, {seeds} seeds (mean ± std)"
    );
    println!("| model | P(like) AUC, all impressions | P(like | click) AUC, clicked rows | seconds (train + predict) |");
    println!("|---|---|---|---|");
    for (name, joint, cvr, seconds) in &results {
        let ((jm, js), (cm, cs)) = (mean_std(joint), mean_std(cvr));
        let (sm, _) = mean_std(seconds);
        println!("| {name} | {jm:.4} ± {js:.4} | {cm:.4} ± {cs:.4} | {sm:.1} |");
    }
    let ((jm, js), (cm, cs)) = (mean_std(&ceiling.0), mean_std(&ceiling.1));
    println!("| ceiling (true probabilities) | {jm:.4} ± {js:.4} | {cm:.4} ± {cs:.4} | |");
    // Paired by seed (same data): the data's variation cancels.
    println!("\npaired by seed (mean ± std of the differences):");
    let d =
        |a: &[f64], b: &[f64]| mean_std(&a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<_>>());
    for (model, other) in [(2, 0), (2, 1), (3, 0), (3, 1), (3, 2)] {
        let (m, o) = (&results[model], &results[other]);
        let ((jm, js), (cm, cs)) = (d(&m.1, &o.1), d(&m.2, &o.2));
        println!(
            "| {} − {} | {jm:+.4} ± {js:.4} | {cm:+.4} ± {cs:.4} |",
            m.0, o.0
        );
    }
    println!("total {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
