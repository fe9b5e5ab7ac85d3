//! The training runtime: losses and weighting against hand-computed values, metric names,
//! sparse embedding updates, and learning on data with signal.

use mtl::data::synthetic::{generate_data_with, SyntheticOptions, TargetMode};
use mtl::data::{BatchOptions, BatchView, ColumnValues, Dataset};
use mtl::embedding::{Embeddings, RowOptimizer, RowOptimizerConfig};
use mtl::loss::{task_loss, TaskBinding};
use mtl::metrics::stream::MetricState;
use mtl::prelude::*;
use mtl::schema::{ColumnSchema, DType, Schema};
use mtl::spec::TaskKind;

mtl_model! {
    /// Two binary tasks, one weighted by the other's sample space.
    pub struct Pair {
        inputs: { user_id: categorical(cardinality = 10, dim = 4), price: continuous },
        body: mlp[8],
        tasks: {
            click: binary(class_weights = (1.0, 5.0), weighted_metrics = [auc]),
            like: binary(sample_weight = [click, price], metrics = [auc, logloss], weighted_metrics = [auc]),
        },
    }
}

mtl_model! {
    /// A single regression task.
    pub struct Single {
        inputs: { user_id: categorical(cardinality = 10, dim = 4), price: continuous },
        body: mlp[4],
        tasks: { watch: regression(metrics = [rmse, mae, mse]) },
    }
}

mtl_model! {
    /// The notebook's shared-bottom model (smaller embeddings for a quick test).
    pub struct Notebook {
        schema: "tests/fixtures/merlin-tenrec-video/schema.json",
        inputs: {
            user_id: categorical(dim = 16), item_id: categorical(dim = 16),
            video_category: categorical(dim = 4), gender: categorical(dim = 4), age: categorical(dim = 4),
        },
        body: mlp[32, 16],
    }
}

fn tiny_dataset() -> Dataset {
    tiny_dataset_with_watch(vec![2.0, 0.0, 1.0, 4.0])
}

fn tiny_dataset_with_watch(watch: Vec<f32>) -> Dataset {
    let schema = Schema::new([
        ColumnSchema::new("user_id")
            .with_tags(["categorical"])
            .unwrap()
            .with_dtype(DType::Int32)
            .with_int_domain(0, 9, None),
        ColumnSchema::new("price")
            .with_tags(["continuous"])
            .unwrap()
            .with_dtype(DType::Float32),
        ColumnSchema::new("click")
            .with_tags(["binary_classification", "target"])
            .unwrap()
            .with_dtype(DType::Int8),
        ColumnSchema::new("like")
            .with_tags(["binary_classification", "target"])
            .unwrap()
            .with_dtype(DType::Int8),
        ColumnSchema::new("watch")
            .with_tags(["regression", "target"])
            .unwrap()
            .with_dtype(DType::Float32),
    ])
    .unwrap();
    Dataset::from_columns(
        schema,
        vec![
            ("user_id".into(), ColumnValues::Ids(vec![1, 3, 3, 7])),
            (
                "price".into(),
                ColumnValues::Floats(vec![0.5, 2.0, 1.0, 3.0]),
            ),
            (
                "click".into(),
                ColumnValues::Floats(vec![1.0, 0.0, 1.0, 1.0]),
            ),
            (
                "like".into(),
                ColumnValues::Floats(vec![1.0, 0.0, 0.0, 1.0]),
            ),
            ("watch".into(), ColumnValues::Floats(watch)),
        ],
    )
    .unwrap()
}

fn bce(x: f64, y: f64) -> f64 {
    let p = 1.0 / (1.0 + (-x).exp());
    -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-5 * (1.0 + b.abs())
}

#[test]
fn class_weights_and_weight_columns_cascade_like_merlin() {
    let ds = tiny_dataset();
    let mut batches = ds.batches(BatchOptions::sequential(4), 0).unwrap();
    let batch = BatchView::of_batch(batches.next().unwrap());
    let batch = &batch;
    let click = TaskBinding::bind(Pair::spec().task("click").unwrap(), ds.layout()).unwrap();
    let like = TaskBinding::bind(Pair::spec().task("like").unwrap(), ds.layout()).unwrap();
    let (mut y, mut w) = (Vec::new(), Vec::new());
    click.targets(batch, &mut y);
    click.weights(batch, &y, &mut w);
    assert_eq!(w, [5.0, 1.0, 5.0, 5.0], "pos weight where click == 1");
    like.targets(batch, &mut y);
    like.weights(batch, &y, &mut w);
    assert_eq!(
        w,
        [0.5, 0.0, 1.0, 3.0],
        "click (target first) times price (feature)"
    );
}

#[test]
fn each_loss_matches_a_hand_computed_value() {
    let dev = Cpu::default();
    let logits = [0.3f32, -1.2, 2.0, 0.0];
    let targets = [1.0f32, 0.0, 0.0, 1.0];
    let weights = [5.0f32, 1.0, 0.0, 2.0];
    let x: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(logits.to_vec(), (4, 1));
    let loss = task_loss(TaskKind::Binary, x.leaky_traced(), &targets, &weights)
        .unwrap()
        .as_vec()[0];
    let expected: f64 = logits
        .iter()
        .zip(&targets)
        .zip(&weights)
        .map(|((&x, &y), &w)| f64::from(w) * bce(f64::from(x), f64::from(y)))
        .sum::<f64>()
        / 4.0;
    assert!(close(f64::from(loss), expected), "bce {loss} vs {expected}");

    // Numerically stable for extreme logits.
    let x: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(vec![80.0, -80.0], (2, 1));
    let loss = task_loss(TaskKind::Binary, x.leaky_traced(), &[0.0, 0.0], &[1.0, 1.0])
        .unwrap()
        .as_vec()[0];
    assert!(close(f64::from(loss), 40.0), "{loss}");

    let x: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(vec![1.0, 2.0, 3.0], (3, 1));
    let loss = task_loss(
        TaskKind::Regression,
        x.leaky_traced(),
        &[0.0, 2.0, 5.0],
        &[1.0, 1.0, 0.5],
    )
    .unwrap()
    .as_vec()[0];
    assert!(
        close(f64::from(loss), (1.0 + 0.0 + 0.5 * 4.0) / 3.0),
        "mse {loss}"
    );

    let x: Tensor<(usize, usize), f32, Cpu> =
        dev.tensor_from_vec(vec![1.0, 2.0, 0.5, 0.0, 0.0, 3.0], (2, 3));
    let loss = task_loss(
        TaskKind::Multiclass { classes: 3 },
        x.leaky_traced(),
        &[1.0, 2.0],
        &[1.0, 2.0],
    )
    .unwrap()
    .as_vec()[0];
    let lse = |r: [f64; 3]| r.iter().map(|v| v.exp()).sum::<f64>().ln();
    let expected = ((lse([1.0, 2.0, 0.5]) - 2.0) + 2.0 * (lse([0.0, 0.0, 3.0]) - 3.0)) / 2.0;
    assert!(close(f64::from(loss), expected), "ce {loss} vs {expected}");

    // A 0/1 sample space keeps the batch size as denominator (Merlin), halving the loss here.
    let x: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(vec![0.0; 4], (4, 1));
    let loss = task_loss(
        TaskKind::Binary,
        x.leaky_traced(),
        &[1.0, 0.0, 1.0, 0.0],
        &[1.0, 1.0, 0.0, 0.0],
    )
    .unwrap()
    .as_vec()[0];
    assert!(
        close(f64::from(loss), 0.5 * std::f64::consts::LN_2),
        "{loss}"
    );
}

#[test]
fn auc_is_exact_and_plain_metrics_ignore_sample_weights() {
    let outputs = [0.1f32, 0.4, 0.4, 0.8, -0.3, 0.4, 0.9, 0.1];
    let targets = [0.0f32, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
    let mut brute = (0.0, 0.0);
    for i in 0..8 {
        for j in 0..8 {
            if targets[i] == 1.0 && targets[j] == 0.0 {
                brute.1 += 1.0;
                brute.0 += if outputs[i] > outputs[j] {
                    1.0
                } else if outputs[i] == outputs[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    let mut plain = MetricState::new(&["auc"]);
    plain.update(TaskKind::Binary, &outputs, &targets, None);
    assert!((plain.value("auc") - brute.0 / brute.1).abs() < 1e-12);

    let zero_out = [1.0f32, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0]; // removes the row scored 0.9
    let mut weighted = MetricState::new(&["auc"]);
    weighted.update(TaskKind::Binary, &outputs, &targets, Some(&zero_out));
    let kept: Vec<usize> = (0..8).filter(|&i| i != 6).collect();
    let mut manual = MetricState::new(&["auc"]);
    manual.update(
        TaskKind::Binary,
        &kept.iter().map(|&i| outputs[i]).collect::<Vec<_>>(),
        &kept.iter().map(|&i| targets[i]).collect::<Vec<_>>(),
        None,
    );
    assert_eq!(
        weighted.value("auc"),
        manual.value("auc"),
        "weight 0 removes the row"
    );
    assert_ne!(weighted.value("auc"), plain.value("auc"));
}

fn train_and_report<M>(data: &Dataset, weights: &[(&str, f32)]) -> Report
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    let mut config = TrainConfig::default().with_batch_size(2).with_seed(3);
    for (k, w) in weights {
        config = config.with_loss_weight(k, *w);
    }
    let mut trainer = Trainer::<M>::new(Cpu::default(), config).unwrap();
    trainer.fit(data, None).unwrap();
    trainer.evaluate(data).unwrap()
}

#[test]
fn report_names_follow_merlin_for_one_and_many_tasks() {
    let data = tiny_dataset();
    let report = train_and_report::<Pair>(&data, &[]);
    assert_eq!(
        report.names().collect::<Vec<_>>(),
        [
            "loss",
            "click/binary_output_loss",
            "like/binary_output_loss",
            "click/binary_output/precision",
            "click/binary_output/recall",
            "click/binary_output/binary_accuracy",
            "click/binary_output/auc",
            "click/binary_output/weighted_auc",
            "like/binary_output/auc",
            "like/binary_output/logloss",
            "like/binary_output/weighted_auc",
            "regularization_loss",
            "loss_batch",
        ]
    );
    // loss = Σ λ L_t (λ = 1): the sum of the per-task losses.
    let sum = report.get("click/binary_output_loss").unwrap()
        + report.get("like/binary_output_loss").unwrap();
    assert!(close(report.get("loss").unwrap(), sum));

    let single = train_and_report::<Single>(&data, &[]);
    assert_eq!(
        single.names().collect::<Vec<_>>(),
        [
            "loss",
            "root_mean_squared_error",
            "mean_absolute_error",
            "mean_squared_error",
            "regularization_loss",
            "loss_batch",
        ]
    );
    let rmse = single.get("root_mean_squared_error").unwrap();
    assert!(close(
        rmse * rmse,
        single.get("mean_squared_error").unwrap()
    ));
    assert!(
        close(
            single.get("loss").unwrap(),
            single.get("mean_squared_error").unwrap()
        ),
        "MSE loss, no weights"
    );

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["regularization_loss"], 0.0);
    assert!(report.to_csv().starts_with("name,value\nloss,"));
    assert!(report
        .to_string()
        .contains("click/binary_output/weighted_auc"));
}

#[test]
fn the_notebook_model_reports_merlins_exact_key_set() {
    let splits = generate_data_with(
        "tenrec-video",
        2_000,
        &[0.5, 0.5],
        1,
        &SyntheticOptions::default(),
    )
    .unwrap();
    let mut trainer =
        Trainer::<Notebook>::new(Cpu::default(), TrainConfig::default().with_batch_size(512))
            .unwrap();
    trainer.fit(&splits[0], None).unwrap();
    let report = trainer.evaluate(&splits[1]).unwrap();
    let mut expected = vec!["loss".to_string()];
    for t in ["click", "follow", "like", "share"] {
        expected.push(format!("{t}/binary_output_loss"));
    }
    expected.push("watching_times/regression_output_loss".into());
    for t in ["click", "follow", "like", "share"] {
        for m in ["precision", "recall", "binary_accuracy", "auc"] {
            expected.push(format!("{t}/binary_output/{m}"));
        }
    }
    expected.push("watching_times/regression_output/root_mean_squared_error".into());
    expected.push("regularization_loss".into());
    expected.push("loss_batch".into());
    assert_eq!(report.names().collect::<Vec<_>>(), expected);
}

#[test]
fn loss_weight_overrides_change_only_the_total_loss() {
    let data = tiny_dataset();
    let plain = train_and_report::<Pair>(&data, &[("click", 0.0), ("like", 0.0)]);
    // λ = 0 everywhere: nothing trains, the total is 0 while per-task losses are still reported.
    assert_eq!(plain.get("loss"), Some(0.0));
    assert!(plain.get("click/binary_output_loss").unwrap() > 0.0);
    let err = Trainer::<Pair>::new(
        Cpu::default(),
        TrainConfig::default().with_loss_weight("clicks", 2.0),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("unknown task `clicks`") && err.contains("click/binary_output"),
        "{err}"
    );
}

#[test]
fn lazy_adam_moves_only_the_rows_a_batch_touched_once_per_distinct_id() {
    let data = tiny_dataset();
    let spec = Pair::spec();
    let mut emb = Embeddings::new(spec, 7).unwrap();
    let before = emb.clone();
    assert!(
        emb.tables[0].weights.iter().all(|w| w.abs() <= 0.05),
        "Keras uniform init"
    );
    let binding = emb.bind(spec, data.layout()).unwrap();
    let mut batches = data.batches(BatchOptions::sequential(4), 0).unwrap();
    let batch = batches.next().unwrap();
    let width = spec.input_width; // price (1) + user_id (4)
    let mut input = Vec::new();
    emb.gather(batch, &binding, &mut input).unwrap();
    assert_eq!(
        &input[1..5],
        emb.tables[0].row(1),
        "row 0 holds user 1's vector after price"
    );
    assert_eq!(input[0], 0.5);
    let grad: Vec<f32> = (0..4 * width).map(|i| (i % 7) as f32 - 3.0).collect();
    let mut opt = RowOptimizer::new(RowOptimizerConfig::default());
    emb.apply_gradient(batch, &binding, &grad, &mut opt)
        .unwrap();
    let table = &emb.tables[0];
    for id in 0..10 {
        let moved = table.row(id) != before.tables[0].row(id);
        assert_eq!(moved, [1, 3, 7].contains(&id), "row {id}");
        assert_eq!(
            opt.row_steps(0, id),
            u32::from([1, 3, 7].contains(&id)),
            "one update per distinct id"
        );
    }
    // The first lazy-Adam step moves each coordinate by lr·sign(g) (bias-corrected m/√v = ±1).
    let summed: Vec<f32> = (0..4)
        .map(|d| grad[width + 1 + d] + grad[2 * width + 1 + d])
        .collect();
    for (d, g) in summed.iter().enumerate() {
        let delta = table.row(3)[d] - before.tables[0].row(3)[d];
        assert!(
            (delta + 1e-3 * g.signum()).abs() < 1e-6,
            "coordinate {d}: {delta}"
        );
    }
}

#[test]
fn a_non_finite_loss_stops_training_naming_task_and_step() {
    let data = tiny_dataset_with_watch(vec![3e38, 0.0, 1.0, 4.0]);
    let mut trainer =
        Trainer::<Single>::new(Cpu::default(), TrainConfig::default().with_batch_size(4)).unwrap();
    let err = trainer.fit(&data, None).unwrap_err().to_string();
    assert!(
        err.contains("task `watch`") && err.contains("step 0"),
        "{err}"
    );
}

#[test]
fn training_on_signal_data_lifts_click_auc_toward_the_ceiling() {
    let options = SyntheticOptions {
        mode: TargetMode::Signal,
        true_probabilities: false,
        ..Default::default()
    };
    let splits = generate_data_with("tenrec-video", 250_000, &[0.8, 0.2], 5, &options).unwrap();
    let mut config = TrainConfig::default()
        .with_batch_size(1024)
        .with_epochs(3)
        .with_seed(5);
    config.dense_lr = 3e-3;
    config.embeddings = RowOptimizerConfig::LazyAdam {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-7,
        weight_decay: 0.0,
    };
    let mut trainer = Trainer::<Notebook>::new(Cpu::default(), config).unwrap();
    let before = trainer
        .evaluate(&splits[1])
        .unwrap()
        .get("click/binary_output/auc")
        .unwrap();
    trainer.fit(&splits[0], None).unwrap();
    let after = trainer
        .evaluate(&splits[1])
        .unwrap()
        .get("click/binary_output/auc")
        .unwrap();
    println!("click AUC before {before:.4}, after {after:.4} (ceiling 0.827)");
    assert!(after > MEASURED_FLOOR, "click AUC {after}");
    assert!(after > before + 0.1, "{before} -> {after}");
}

/// Measured 0.784 on this configuration (see the test output; ceiling 0.827); asserted with a margin.
const MEASURED_FLOOR: f64 = 0.75;

mtl_model! {
    /// Same features as `Pair`, another embedding dim: a checkpoint of `Pair` must not load.
    pub struct PairWide {
        inputs: { user_id: categorical(cardinality = 10, dim = 6), price: continuous },
        body: mlp[8],
        tasks: { click: binary, like: binary },
    }
}

#[test]
fn a_checkpoint_round_trip_gives_identical_predictions_and_training() {
    let data = tiny_dataset();
    let config = TrainConfig::default().with_batch_size(2).with_seed(9);
    let mut a = Trainer::<Pair>::new(Cpu::default(), config.clone()).unwrap();
    a.fit(&data, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pair.ckpt");
    a.save_checkpoint(&path).unwrap();
    assert!(
        !dir.path().join("pair.tmp").exists(),
        "the temporary file was renamed"
    );

    // Another device seed: another dense initialisation (same shuffling seed for the resumed epoch).
    let mut b = Trainer::<Pair>::new(Cpu::seed_from_u64(77), config).unwrap();
    assert_ne!(a.predict(&data).unwrap(), b.predict(&data).unwrap());
    b.load_checkpoint(&path).unwrap();
    assert_eq!(a.predict(&data).unwrap(), b.predict(&data).unwrap());
    assert_eq!(a.embeddings, b.embeddings);
    assert_eq!(
        a.row_optimizer, b.row_optimizer,
        "row-wise optimizer state restored"
    );
    // Optimizer state travels too: one more epoch on both gives the same model.
    a.fit(&data, None).unwrap();
    b.fit(&data, None).unwrap();
    assert_eq!(a.predict(&data).unwrap(), b.predict(&data).unwrap());

    let mut wide = Trainer::<PairWide>::new(Cpu::default(), TrainConfig::default()).unwrap();
    let err = wide.load_checkpoint(&path).unwrap_err().to_string();
    assert!(
        err.contains("pair.ckpt") && err.contains("feature `user_id` differs"),
        "{err}"
    );
}

#[test]
fn predictions_are_written_to_parquet_beside_the_id_columns() {
    let data = tiny_dataset();
    let trainer = Trainer::<Pair>::new(Cpu::default(), TrainConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pred.parquet");
    trainer
        .predict_to_parquet(&data, &["user_id"], &path)
        .unwrap();
    let schema = Schema::new([
        ColumnSchema::new("user_id")
            .with_tags(["categorical"])
            .unwrap()
            .with_int_domain(0, 9, None),
        ColumnSchema::new("click/binary_output").with_dtype(DType::Float32),
        ColumnSchema::new("like/binary_output").with_dtype(DType::Float32),
    ])
    .unwrap();
    let back = Dataset::open_with(
        &path,
        &mtl::data::LoadOptions::default().with_schema(schema),
    )
    .unwrap();
    assert_eq!(back.ids("user_id").unwrap(), &[1, 3, 3, 7]);
    let probs = trainer.predict(&data).unwrap();
    assert_eq!(
        back.floats("click/binary_output").unwrap(),
        probs[0].as_slice()
    );
    assert!(probs[1].iter().all(|p| (0.0..=1.0).contains(p)));
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    let options = SyntheticOptions {
        mode: TargetMode::Merlin,
        true_probabilities: false,
        ..Default::default()
    };
    let splits = generate_data_with("tenrec-video", 4_000, &[0.5, 0.5], 2, &options).unwrap();
    // Noise targets: validation loss stops improving quickly.
    let mut config = TrainConfig::default()
        .with_batch_size(256)
        .with_epochs(30)
        .with_early_stopping(EarlyStopping::on("loss", 1));
    config.dense_lr = 1e-2;
    let mut trainer = Trainer::<Notebook>::new(Cpu::default(), config).unwrap();
    let history = trainer.fit(&splits[0], Some(&splits[1])).unwrap();
    let best = history
        .stopped_early_at_best
        .expect("stopped early on noise");
    assert!(history.epochs.len() < 30);
    assert_eq!(
        history.epochs.len(),
        best + 2,
        "patience 1: one epoch past the best"
    );
    let best_loss = history.epochs[best]
        .validation
        .as_ref()
        .unwrap()
        .get("loss")
        .unwrap();
    assert!(history
        .epochs
        .iter()
        .all(|e| e.validation.as_ref().unwrap().get("loss").unwrap() >= best_loss));
    let now = trainer.evaluate(&splits[1]).unwrap().get("loss").unwrap();
    assert!(
        close(now, best_loss),
        "the best epoch's weights are back: {now} vs {best_loss}"
    );
    assert_eq!(history.best_epoch, Some(best));
}

#[test]
fn early_stopping_guesses_the_direction_from_the_name() {
    let maximized = |name: &str| EarlyStopping::on(name, 2).monitor.maximize;
    assert!(maximized("click/binary_output/auc"));
    assert!(maximized("click/binary_output/precision"));
    assert!(maximized("kind/categorical_output/categorical_accuracy"));
    for minimized in [
        "loss",
        "loss_batch",
        "regularization_loss",
        "click/binary_output_loss",
        "click/binary_output/logloss",
        "watching_times/regression_output/root_mean_squared_error",
        "watch/mse",
        "watch/mae",
    ] {
        assert!(!maximized(minimized), "{minimized}");
    }
    assert!(
        !EarlyStopping::minimize("click/binary_output/auc", 1)
            .monitor
            .maximize
    );
    assert!(EarlyStopping::maximize("loss", 1).monitor.maximize);
}

#[test]
fn ids_beyond_a_table_are_an_error_not_clamped() {
    let schema = Schema::new([
        ColumnSchema::new("user_id")
            .with_tags(["categorical"])
            .unwrap()
            .with_dtype(DType::Int32),
        ColumnSchema::new("price")
            .with_tags(["continuous"])
            .unwrap()
            .with_dtype(DType::Float32),
        ColumnSchema::new("watch")
            .with_tags(["regression", "target"])
            .unwrap()
            .with_dtype(DType::Float32),
    ])
    .unwrap();
    let data = Dataset::from_columns(
        schema,
        vec![
            ("user_id".into(), ColumnValues::Ids(vec![1, 50])),
            ("price".into(), ColumnValues::Floats(vec![0.5, 2.0])),
            ("watch".into(), ColumnValues::Floats(vec![1.0, 0.0])),
        ],
    )
    .unwrap();
    let mut trainer = Trainer::<Single>::new(Cpu::default(), TrainConfig::default()).unwrap();
    let err = trainer.fit(&data, None).unwrap_err().to_string();
    assert!(
        err.contains("id 50 of input `user_id`") && err.contains("10 rows"),
        "{err}"
    );
}

#[test]
fn metrics_can_be_overridden_from_the_training_config() {
    let data = tiny_dataset();
    let config = TrainConfig::default()
        .with_batch_size(2)
        .with_metrics("click/binary_output", &["auc"])
        .with_weighted_metrics("like", &["logloss", "binary_accuracy"]);
    let trainer = Trainer::<Pair>::new(Cpu::default(), config).unwrap();
    let names: Vec<String> = trainer
        .evaluate(&data)
        .unwrap()
        .names()
        .map(str::to_string)
        .collect();
    assert_eq!(
        names[3..8],
        [
            "click/binary_output/auc",
            "click/binary_output/weighted_auc",
            "like/binary_output/auc",
            "like/binary_output/logloss",
            "like/binary_output/weighted_logloss",
        ]
    );
    assert_eq!(names[8], "like/binary_output/weighted_binary_accuracy");
    let err = Trainer::<Pair>::new(
        Cpu::default(),
        TrainConfig::default().with_metrics("like", &["rmse"]),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("metric `rmse` does not fit task `like`"),
        "{err}"
    );
}

#[test]
fn training_from_a_streamed_dataset_matches_in_memory_training() {
    let data = mtl::data::synthetic::generate_data("tenrec-video", 3_000, &[1.0], 8)
        .unwrap()
        .remove(0);
    let dir = tempfile::tempdir().unwrap();
    data.write_parquet(
        dir.path(),
        &mtl::data::WriteOptions {
            rows_per_file: Some(1_000),
            row_group_rows: 250,
        },
    )
    .unwrap();
    let stream = mtl::data::StreamingDataset::open(dir.path()).unwrap();
    let mut config = TrainConfig::default()
        .with_batch_size(256)
        .with_epochs(2)
        .with_seed(4);
    config.shuffle = false; // the same batches in the same order from both sources
    let mut in_memory = Trainer::<Notebook>::new(Cpu::default(), config.clone()).unwrap();
    let mut streamed = Trainer::<Notebook>::new(Cpu::default(), config).unwrap();
    let a = in_memory.fit(&data, None).unwrap();
    let b = streamed.fit_streaming(&stream, None).unwrap();
    assert_eq!(a.epochs[1].train.get("loss"), b.epochs[1].train.get("loss"));
    assert_eq!(
        in_memory.predict(&data).unwrap(),
        streamed.predict(&data).unwrap()
    );

    // Shuffled streaming trains too (through the bounded buffer).
    let shuffled = mtl::data::StreamingDataset::open(dir.path())
        .unwrap()
        .with_shuffle_buffer_rows(1_000);
    let mut trainer =
        Trainer::<Notebook>::new(Cpu::default(), TrainConfig::default().with_batch_size(256))
            .unwrap();
    let history = trainer.fit_streaming(&shuffled, Some(&data)).unwrap();
    assert!(history.epochs[0]
        .validation
        .as_ref()
        .unwrap()
        .get("loss")
        .unwrap()
        .is_finite());
}
