//! The loop around a training step: seeds, early stopping, progress output, schedules,
//! regularization, clipping, reports.

use mtl::data::synthetic::generate_data;
use mtl::data::Dataset;
use mtl::prelude::*;

mtl_model! {
    /// A small MMoE over the notebook's schema (small embeddings for quick tests).
    pub struct Small {
        schema: "tests/fixtures/merlin-tenrec-video/schema.json",
        inputs: {
            user_id: categorical(dim = 8), item_id: categorical(dim = 8),
            video_category: categorical(dim = 4), gender: categorical(dim = 4), age: categorical(dim = 4),
        },
        body: mmoe(experts = 2, expert = mlp[8], gate = mlp[4]),
        towers: mlp[4],
        tasks: { click: binary, like: binary, watching_times: regression },
    }
}

fn data(rows: usize, seed: u64) -> (Dataset, Dataset) {
    let mut splits = generate_data("tenrec-video", rows, &[0.8, 0.2], seed).unwrap();
    let valid = splits.pop().unwrap();
    (splits.pop().unwrap(), valid)
}

/// Every dense parameter of a trainer's network, in visiting order.
fn dense(t: &Trainer<Small>) -> Vec<f32> {
    mtl::__private::named_parameters(&t.network)
        .unwrap()
        .into_iter()
        .flat_map(|(_, v)| v)
        .collect()
}

#[test]
fn the_seed_fixes_the_dense_initialisation_and_different_seeds_differ() {
    let trainer = |seed: u64, device: Cpu| {
        Trainer::<Small>::new(device, TrainConfig::default().with_seed(seed)).unwrap()
    };
    // The device's own RNG (and its seed) no longer matters.
    let a = dense(&trainer(1, Cpu::seed_from_u64(100)));
    let b = dense(&trainer(1, Cpu::seed_from_u64(200)));
    let c = dense(&trainer(2, Cpu::seed_from_u64(100)));
    assert_eq!(a, b, "one seed, one initialisation");
    assert_ne!(a, c, "another seed, another initialisation");
    let differing = a.iter().zip(&c).filter(|(x, y)| x != y).count();
    assert!(differing > a.len() / 2, "{differing} of {} differ", a.len());

    // And so a run: same seed, same validation AUC; other seeds, other AUCs.
    let (train, valid) = data(4_000, 3);
    let auc = |seed: u64| {
        let mut t = Trainer::<Small>::new(
            Cpu::default(),
            TrainConfig::default().with_seed(seed).with_batch_size(256),
        )
        .unwrap();
        t.fit(&train, None).unwrap();
        t.evaluate(&valid)
            .unwrap()
            .get("click/binary_output/auc")
            .unwrap()
    };
    assert_eq!(auc(5), auc(5));
    let others: Vec<f64> = (6..9).map(auc).collect();
    assert!(others.iter().all(|a| *a != auc(5)), "{others:?}");
}

mtl_model! {
    // Twins for the class-weight override: same network, class weights in the DSL or not.
    inputs: { user_id: categorical(cardinality = 20, dim = 4), age: continuous },
    body: mlp[8],

    pub struct WeightedInDsl {
        tasks: { click: binary(class_weights = (1.0, 5.0)) },
    }
    pub struct Unweighted {
        tasks: { click: binary },
    }
}

fn cpu_config(fused: bool) -> TrainConfig {
    TrainConfig::default()
        .with_seed(4)
        .with_batch_size(512)
        .with_fused_cpu(fused)
}

/// Every trainable value of a trainer: dense parameters, then the tables.
fn all_values(t: &Trainer<Small>) -> Vec<f32> {
    let mut v = dense(t);
    for table in &t.embeddings.tables {
        v.extend_from_slice(&table.weights);
    }
    v
}

#[test]
fn l2_adds_its_exact_penalty_to_the_loss_on_both_paths() {
    let (train, _) = data(640, 5);
    let train = train.slice(0..512); // one batch: one step
    let (dense_l2, embeddings_l2) = (1e-3, 1e-2);
    for fused in [true, false] {
        let config = cpu_config(fused)
            .with_dense_l2(dense_l2)
            .with_embeddings_l2(embeddings_l2);
        let mut t = Trainer::<Small>::new(Cpu::default(), config).unwrap();
        // The penalty of the weights the step starts from.
        let kernels: f64 = mtl::__private::named_parameters(&t.network)
            .unwrap()
            .iter()
            .filter(|(n, _)| n.ends_with("weight"))
            .flat_map(|(_, v)| v.iter().map(|x| f64::from(*x).powi(2)))
            .sum();
        let mut lookups = 0.0f64;
        for f in Small::spec().features {
            let table = t.embeddings.tables.iter().find(|tb| tb.name == f.table);
            if let (Some(table), Some(ids)) = (table, train.ids(f.name)) {
                for &id in ids {
                    lookups += table
                        .row(id as usize)
                        .iter()
                        .map(|x| f64::from(*x).powi(2))
                        .sum::<f64>();
                }
            }
        }
        let expected = dense_l2 * kernels + embeddings_l2 * lookups;
        let history = t.fit(&train, None).unwrap();
        let report = &history.epochs[0].train;
        let reg = report.get("regularization_loss").unwrap();
        assert!(
            (reg - expected).abs() < 1e-4 * expected,
            "fused {fused}: regularization {reg} vs {expected}"
        );
        // The loss of the step is the weighted task losses plus the penalty.
        let tasks: f64 = ["click", "like", "watching_times"]
            .iter()
            .map(|t| {
                let out = Small::spec().task(t).unwrap().output_name;
                report.get(&format!("{out}_loss")).unwrap()
            })
            .sum();
        let loss = report.get("loss").unwrap();
        assert!((loss - (tasks + reg)).abs() < 1e-4, "fused {fused}: {loss}");
        // Without L2 the penalty is 0.
        let mut plain = Trainer::<Small>::new(Cpu::default(), cpu_config(fused)).unwrap();
        let h = plain.fit(&train, None).unwrap();
        assert_eq!(h.epochs[0].train.get("regularization_loss"), Some(0.0));
    }
}

#[test]
fn clipping_bounds_the_global_norm_of_the_update_on_both_paths() {
    let (train, _) = data(640, 6);
    let train = train.slice(0..512);
    // With lr 1 and eps 1, Adam's first step moves every value by g/(|g| + 1) ≈ g: the
    // update's norm is the (clipped) gradient's, to within the largest |g|.
    let config = |fused: bool, clip: Option<f64>| {
        let mut c = cpu_config(fused).with_learning_rate(1.0);
        c.dense_eps = 1.0;
        c.embeddings = mtl::embedding::RowOptimizerConfig::LazyAdam {
            lr: 1.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1.0,
            weight_decay: 0.0,
        };
        c.clip_global_norm = clip;
        c
    };
    let max_norm = 1e-2;
    for fused in [true, false] {
        let step_norm = |clip: Option<f64>| {
            let mut t = Trainer::<Small>::new(Cpu::default(), config(fused, clip)).unwrap();
            let before = all_values(&t);
            t.fit(&train, None).unwrap();
            let after = all_values(&t);
            before
                .iter()
                .zip(&after)
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let clipped = step_norm(Some(max_norm));
        assert!(
            clipped <= max_norm * 1.001 && clipped >= max_norm * 0.98,
            "fused {fused}: the update's norm {clipped} vs the bound {max_norm}"
        );
        let free = step_norm(None);
        assert!(
            free > 2.0 * max_norm,
            "fused {fused}: unclipped norm {free}"
        );
    }
}

#[test]
fn class_weights_can_be_overridden_at_run_time() {
    let n = 256;
    let data = mtl::data::Dataset::from_columns(
        mtl::schema::Schema::new([
            mtl::schema::ColumnSchema::new("user_id")
                .with_tags(["categorical"])
                .unwrap()
                .with_dtype(mtl::schema::DType::Int32)
                .with_int_domain(0, 19, None),
            mtl::schema::ColumnSchema::new("age")
                .with_tags(["continuous"])
                .unwrap()
                .with_dtype(mtl::schema::DType::Float32),
            mtl::schema::ColumnSchema::new("click")
                .with_tags(["binary_classification", "target"])
                .unwrap()
                .with_dtype(mtl::schema::DType::Float32),
        ])
        .unwrap(),
        vec![
            (
                "user_id".into(),
                mtl::data::ColumnValues::Ids((0..n).map(|i| (i % 20) as u32).collect()),
            ),
            (
                "age".into(),
                mtl::data::ColumnValues::Floats((0..n).map(|i| (i % 7) as f32).collect()),
            ),
            (
                "click".into(),
                mtl::data::ColumnValues::Floats(
                    (0..n).map(|i| ((i % 3) == 0) as u8 as f32).collect(),
                ),
            ),
        ],
    )
    .unwrap();
    let config = TrainConfig::default().with_seed(2).with_batch_size(n);
    let dsl = Trainer::<WeightedInDsl>::new(Cpu::default(), config.clone())
        .unwrap()
        .step_gradients(&data)
        .unwrap();
    let overridden = Trainer::<Unweighted>::new(
        Cpu::default(),
        config.clone().with_class_weights("click", (1.0, 5.0)),
    )
    .unwrap()
    .step_gradients(&data)
    .unwrap();
    let plain = Trainer::<Unweighted>::new(Cpu::default(), config.clone())
        .unwrap()
        .step_gradients(&data)
        .unwrap();
    assert_eq!(dsl.losses, overridden.losses);
    assert_ne!(dsl.losses, plain.losses);
    // And back: the DSL's weights overridden to (1, 1) are the unweighted model.
    let back = Trainer::<WeightedInDsl>::new(
        Cpu::default(),
        config.with_class_weights("click/binary_output", (1.0, 1.0)),
    )
    .unwrap()
    .step_gradients(&data)
    .unwrap();
    assert_eq!(back.losses, plain.losses);
    let err = Trainer::<Small>::new(
        Cpu::default(),
        TrainConfig::default().with_class_weights("watching_times", (1.0, 2.0)),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("not a binary task"), "{err}");
}

#[test]
fn early_stopping_needs_validation_data_and_skips_undefined_values() {
    let (train, valid) = data(3_000, 7);
    let config = TrainConfig::default()
        .with_batch_size(256)
        .with_epochs(3)
        .with_early_stopping(EarlyStopping::on("click/binary_output/auc", 1));
    let mut t = Trainer::<Small>::new(Cpu::default(), config.clone()).unwrap();
    let err = t.fit(&train, None).unwrap_err().to_string();
    assert!(
        err.contains("validation") && err.contains("early stopping"),
        "{err}"
    );

    // A validation split without a single click: its click AUC is undefined in every epoch.
    let no_clicks: Vec<u32> = valid
        .floats("click")
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == 0.0)
        .map(|(i, _)| i as u32)
        .collect();
    let valid = valid.take(&no_clicks).unwrap();
    let mut t = Trainer::<Small>::new(Cpu::default(), config).unwrap();
    let history = t.fit(&train, Some(&valid)).unwrap();
    assert_eq!(
        history.epochs.len(),
        3,
        "undefined values never stop training"
    );
    assert_eq!(history.best_epoch, None, "and never become the best");
    assert_eq!(history.stopped_early_at_best, None);
    let undefined = history
        .notes
        .iter()
        .filter(|n| n.contains("undefined at epoch"))
        .count();
    assert_eq!(undefined, 3, "{:?}", history.notes);
    assert!(history.notes.last().unwrap().contains("every epoch"));
    let report = history.epochs[0].validation.as_ref().unwrap();
    assert!(report.get("click/binary_output/auc").unwrap().is_nan());
    let table = report.to_string();
    assert!(
        table.contains("undefined") && table.contains("both classes"),
        "{table}"
    );
    assert!(report.to_csv().contains("click/binary_output/auc,NaN"));
    assert!(report
        .to_json()
        .contains("\"click/binary_output/auc\": null"));

    // min_delta: a change within it is no improvement.
    let m = EarlyStopping::minimize("loss", 1)
        .with_min_delta(0.1)
        .monitor;
    assert!(!m.improves(0.95, 1.0) && m.improves(0.85, 1.0) && !m.improves(f64::NAN, 1.0));
}

#[test]
fn the_learning_rate_follows_the_schedule_epoch_by_epoch() {
    let (train, valid) = data(2_000, 8);
    let train = train.slice(0..1_024); // 4 steps per epoch at batch 256
    let lrs = |config: TrainConfig| {
        let mut t = Trainer::<Small>::new(Cpu::default(), config.with_batch_size(256)).unwrap();
        let h = t.fit(&train, Some(&valid)).unwrap();
        (
            h.epochs.iter().map(|e| e.learning_rate).collect::<Vec<_>>(),
            h,
        )
    };
    let close = |a: &[f64], b: &[f64]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    };
    let (step, _) =
        lrs(TrainConfig::default()
            .with_epochs(3)
            .with_schedule(LrSchedule::StepDecay {
                epochs: 1,
                gamma: 0.5,
            }));
    assert!(close(&step, &[1e-3, 5e-4, 2.5e-4]), "{step:?}");
    // Warm-up over 8 steps: the last step of epoch 1 (step 3) runs at 4/8 of the rate.
    let (warm, _) = lrs(TrainConfig::default().with_epochs(2).with_warmup_steps(8));
    assert!(close(&warm, &[5e-4, 1e-3]), "{warm:?}");
    // Cosine over 8 steps to alpha 0: the last step of epoch 1 is t = 3 of 8.
    let (cosine, _) = lrs(TrainConfig::default()
        .with_epochs(2)
        .with_learning_rate(1e-2)
        .with_schedule(LrSchedule::Cosine {
            decay_steps: 8,
            alpha: 0.0,
        }));
    let at = |t: f64| 1e-2 * 0.5 * (1.0 + (std::f64::consts::PI * t / 8.0).cos());
    assert!(close(&cosine, &[at(3.0), at(7.0)]), "{cosine:?}");
    // Reduce on plateau: watching the training data's own noise, the validation loss stops
    // improving and the rate halves, with a note.
    let (plateau, history) = lrs(TrainConfig::default()
        .with_epochs(6)
        .with_learning_rate(5e-2)
        .with_reduce_on_plateau(
            ReduceOnPlateau::on("loss")
                .with_patience(1)
                .with_factor(0.5),
        ));
    assert!(
        plateau
            .windows(2)
            .any(|w| (w[1] - w[0] * 0.5).abs() < 1e-12),
        "{plateau:?}"
    );
    assert!(history
        .notes
        .iter()
        .any(|n| n.contains("reduce on plateau")));
}

#[test]
fn evaluate_and_predict_read_streamed_data_like_in_memory_data() {
    use mtl::data::{StreamingDataset, WriteOptions};
    let (train, valid) = data(3_000, 9);
    let dir = tempfile::tempdir().unwrap();
    // Small row groups: the stream reads the file in many pieces.
    valid
        .write_parquet(
            dir.path().join("valid"),
            &WriteOptions {
                rows_per_file: Some(250),
                row_group_rows: 100,
            },
        )
        .unwrap();
    let streamed = StreamingDataset::open(dir.path().join("valid")).unwrap();
    let mut t =
        Trainer::<Small>::new(Cpu::default(), TrainConfig::default().with_batch_size(128)).unwrap();
    t.fit(&train, None).unwrap();
    let (a, b) = (t.evaluate(&valid).unwrap(), t.evaluate(&streamed).unwrap());
    for (name, value) in a.iter() {
        let other = b.get(name).unwrap();
        assert!((value - other).abs() < 1e-9, "{name}: {value} vs {other}");
    }
    assert_eq!(t.predict(&valid).unwrap(), t.predict(&streamed).unwrap());

    // Predictions written batch by batch from the stream: every row, ids kept.
    let out = dir.path().join("predictions.parquet");
    t.predict_to_parquet(&streamed, &["user_id"], &out).unwrap();
    let written = mtl::data::Dataset::open_with(
        &out,
        &mtl::data::LoadOptions::default().with_schema(
            mtl::schema::Schema::new([
                mtl::schema::ColumnSchema::new("user_id").with_dtype(mtl::schema::DType::Int64),
                mtl::schema::ColumnSchema::new("click/binary_output")
                    .with_dtype(mtl::schema::DType::Float32),
            ])
            .unwrap(),
        ),
    )
    .unwrap();
    assert_eq!(written.num_rows(), valid.num_rows());
    let clicks = written.floats("click/binary_output").unwrap();
    assert_eq!(clicks, &t.predict(&valid).unwrap()[0][..]);
    let ids: Vec<f32> = valid
        .ids("user_id")
        .unwrap()
        .iter()
        .map(|&i| i as f32)
        .collect();
    assert_eq!(written.floats("user_id").unwrap(), &ids[..]);
}

#[test]
fn shuffled_and_stratified_splits_are_seeded_and_keep_the_label_rate() {
    // A file sorted by label: a contiguous split would put every click in one part.
    let (all, _) = data(4_000, 10);
    let n = all.num_rows();
    let clicks = all.floats("click").unwrap();
    let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
    order.sort_by(|a, b| clicks[*a as usize].total_cmp(&clicks[*b as usize]));
    let sorted = all.take(&order).unwrap();
    let rate = |d: &mtl::data::Dataset| {
        let c = d.floats("click").unwrap();
        c.iter().sum::<f32>() / c.len() as f32
    };
    let overall = rate(&sorted);
    let contiguous = sorted.split(&[0.8, 0.2]).unwrap();
    assert_eq!(rate(&contiguous[1]), 1.0, "the last fifth is all clicks");

    let shuffled = sorted.split_shuffled(&[0.8, 0.2], 3).unwrap();
    assert_eq!(shuffled[0].num_rows() + shuffled[1].num_rows(), n);
    assert!((rate(&shuffled[1]) - overall).abs() < 0.05);
    let again = sorted.split_shuffled(&[0.8, 0.2], 3).unwrap();
    assert_eq!(
        shuffled[1].ids("user_id"),
        again[1].ids("user_id"),
        "seeded"
    );
    let other = sorted.split_shuffled(&[0.8, 0.2], 4).unwrap();
    assert_ne!(shuffled[1].ids("user_id"), other[1].ids("user_id"));

    let stratified = sorted
        .split_stratified(&[0.7, 0.15, 0.15], "click", 3)
        .unwrap();
    assert_eq!(stratified.iter().map(|d| d.num_rows()).sum::<usize>(), n);
    for part in &stratified {
        assert!(
            (rate(part) - overall).abs() < 2.0 / part.num_rows() as f32,
            "{} vs {overall}",
            rate(part)
        );
    }
    let err = sorted
        .split_stratified(&[0.5], "nope", 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope") && err.contains("click"), "{err}");
}

#[test]
fn history_exports_csv_json_and_curves() {
    let (train, valid) = data(2_000, 11);
    let mut t = Trainer::<Small>::new(
        Cpu::default(),
        TrainConfig::default()
            .with_batch_size(256)
            .with_epochs(3)
            .with_train_metrics_rows(500),
    )
    .unwrap();
    let history = t.fit(&train, Some(&valid)).unwrap();
    let csv = history.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "a header and one row per epoch");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(
        &header[..4],
        ["epoch", "seconds", "rows_per_second", "learning_rate"]
    );
    for name in [
        "loss",
        "click/binary_output/auc",
        "val_loss",
        "val_click/binary_output/auc",
    ] {
        assert!(header.contains(&name), "{name} in {header:?}");
    }
    assert!(lines[3].starts_with("3,"));
    let json: serde_json::Value = serde_json::from_str(&history.to_json()).unwrap();
    assert_eq!(json["epochs"].as_array().unwrap().len(), 3);
    assert!(json["epochs"][2]["validation"]["click/binary_output/auc"].is_number());
    assert!(json["epochs"][0]["train"]["click/binary_output/auc"].is_number());
    let svg = history.curves_svg();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // The loss panel and one per task, each with a training and a validation line.
    for title in [
        ">loss<",
        ">click/binary_output/auc<",
        ">watching_times/regression_output/root_mean_squared_error<",
    ] {
        assert!(svg.contains(title), "{title}");
    }
    assert_eq!(svg.matches("<polyline").count(), 2 * 4);
}

/// Trains with `progress` on in a child process of the test below, whose standard error is a
/// pipe (what a training job writing to a log file sees). Ignored by itself.
#[test]
#[ignore = "run by off_a_terminal_progress_is_one_line_per_epoch"]
fn progress_child() {
    let (train, valid) = data(2_000, 12);
    let mut t = Trainer::<Small>::new(
        Cpu::default(),
        TrainConfig::default()
            .with_batch_size(256)
            .with_epochs(3)
            .with_progress(true)
            .with_early_stopping(EarlyStopping::on("loss", 5)),
    )
    .unwrap();
    t.fit(&train, Some(&valid)).unwrap();
}

#[test]
fn off_a_terminal_progress_is_one_line_per_epoch() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "progress_child", "--ignored", "--nocapture"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let epochs: Vec<&str> = stderr.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 3, "{stderr}");
    for (i, line) in epochs.iter().enumerate() {
        assert!(line.starts_with(&format!("epoch {}/3 - ", i + 1)), "{line}");
        for part in [
            " rows/s",
            " - loss ",
            " - val_loss ",
            " - val_click/binary_output/auc ",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
    }
    // Lines only: no progress bar, no terminal control codes.
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
}

/// A browser that can take a headless screenshot: `MTL_BROWSER`, else chromium or chrome.
fn browser() -> Option<std::path::PathBuf> {
    if let Some(b) = std::env::var_os("MTL_BROWSER") {
        return Some(b.into());
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

#[test]
fn the_run_report_renders_in_a_headless_browser() {
    let (train, valid) = data(2_000, 13);
    let mut t = Trainer::<Small>::new(
        Cpu::default(),
        TrainConfig::default()
            .with_batch_size(256)
            .with_epochs(3)
            .with_train_metrics_rows(500)
            .with_gate_metrics(true),
    )
    .unwrap();
    let history = t.fit(&train, Some(&valid)).unwrap();
    let evaluation = t.evaluate(&valid).unwrap();
    let report = t
        .run_report("Small MMoE on synthetic tenrec-video", &history)
        .with_evaluation("valid", &evaluation);
    let html = report.to_html();
    // Self-contained: nothing to fetch, nothing to run.
    for external in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(external), "{external}");
    }
    for part in [
        "Training curves",
        "Gates (valid)",
        "Epochs",
        "Settings",
        "fused-cpu",
        "experts",
    ] {
        assert!(html.contains(part), "{part}");
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    report.write(&page).unwrap();
    if let Some(keep) = std::env::var_os("MTL_KEEP_REPORT") {
        report.write(keep).unwrap();
    }

    let Some(browser) = browser() else {
        // CI sets MTL_REQUIRE_BROWSER (and installs chromium): there this is a failure.
        assert!(
            std::env::var_os("MTL_REQUIRE_BROWSER").is_none(),
            "no headless browser found (install chromium or set MTL_BROWSER)"
        );
        eprintln!("skipped the rendering check: no chromium on this machine");
        return;
    };
    let shot = dir.path().join("shot.png");
    let status = std::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1100,2400",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{} failed", browser.display());
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let count = |rgb: [u8; 3]| {
        pixels[..info.buffer_size()]
            .chunks(channels)
            .filter(|p| (0..3).all(|c| p[c].abs_diff(rgb[c]) <= 12))
            .count()
    };
    // The curves drawn in both colours, and the heatmap's cells, are on the rendered page.
    let (train_px, valid_px) = (count([0x1f, 0x77, 0xb4]), count([0xff, 0x7f, 0x0e]));
    assert!(
        train_px > 500 && valid_px > 500,
        "curves: {train_px} / {valid_px} pixels"
    );
    let heat = pixels[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p[2] == 255 && p[0] == p[1] && p[0] < 200)
        .count();
    assert!(heat > 2_000, "heatmap: {heat} pixels");
}
