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
