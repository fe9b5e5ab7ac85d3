//! Learnt loss weights (`loss_balancing: uncertainty`, Kendall et al. 2018) end to end: the
//! weights move as the formula says on both training paths, are reported per epoch (history,
//! CSV, curves), survive a checkpoint, and refuse a fixed override.

use mtl::data::{ColumnValues, Dataset};
use mtl::prelude::*;
use mtl::{ColumnSchema, DType, Schema};

mtl_model! {
    inputs: {
        item: categorical(cardinality = 12, dim = 3),
        price: continuous,
        user: categorical(cardinality = 10, dim = 4),
    },
    body: mlp[16],
    tasks: { click: binary, watch: regression },

    /// Learnt weights.
    pub struct Balanced {
        loss_balancing: uncertainty,
    }

    /// The same model with the declared weights.
    pub struct Fixed {}

    /// GradNorm weights.
    pub struct GradNormed {
        loss_balancing: gradnorm(alpha = 1.5),
    }

    /// GradNorm on PLE: shared experts only count as shared.
    pub struct GradNormPle {
        body: ple(levels = 2, task_experts = 1, shared_experts = 1, expert = mlp[8], gate = mlp[4]),
        loss_balancing: gradnorm,
    }

    /// An identity body shares no dense parameter: GradNorm has nothing to balance.
    pub struct GradNormIdentity {
        body: identity,
        towers: mlp[4],
        loss_balancing: gradnorm,
    }
}

mtl_model! {
    inputs: { user: categorical(cardinality = 10, dim = 4) },
    tasks: { click: binary, watch: regression },
    pub struct SharedMmoe { body: mmoe(experts = 2, expert = mlp[4], gate = mlp[3]), towers: mlp[2] }
    pub struct SharedCgc { body: cgc(task_experts = 1, shared_experts = 2, expert = mlp[4, 3]), towers: mlp[2] }
}

/// `n` rows: a learnable click and a noisy, large-valued regression target (its loss stays
/// well above 1, so its learnt weight must fall below its initial 1/2).
fn data(n: usize, seed: u64) -> Dataset {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut user, mut item, mut price, mut click, mut watch) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let (u, i) = ((next() % 10) as u32, (next() % 12) as u32);
        let p = (next() % 1000) as f32 / 250.0 - 2.0;
        user.push(u);
        item.push(i);
        price.push(p);
        click.push(f32::from(u < 4 || i % 4 == 0));
        watch.push(2.0 * p + (next() % 1000) as f32 / 100.0 - 5.0);
    }
    let cat = |name: &str, max: i64| {
        ColumnSchema::new(name)
            .with_tags(["categorical"])
            .unwrap()
            .with_dtype(DType::Int32)
            .with_int_domain(0, max, None)
    };
    let schema = Schema::new([
        cat("user", 9),
        cat("item", 11),
        ColumnSchema::new("price")
            .with_tags(["continuous"])
            .unwrap()
            .with_dtype(DType::Float32),
        ColumnSchema::new("click")
            .with_tags(["binary_classification", "target"])
            .unwrap()
            .with_dtype(DType::Float32),
        ColumnSchema::new("watch")
            .with_tags(["regression", "target"])
            .unwrap()
            .with_dtype(DType::Float32),
    ])
    .unwrap();
    Dataset::from_columns(
        schema,
        vec![
            ("user".into(), ColumnValues::Ids(user)),
            ("item".into(), ColumnValues::Ids(item)),
            ("price".into(), ColumnValues::Floats(price)),
            ("click".into(), ColumnValues::Floats(click)),
            ("watch".into(), ColumnValues::Floats(watch)),
        ],
    )
    .unwrap()
}

fn config(fused: bool) -> TrainConfig {
    TrainConfig::default()
        .with_epochs(5)
        .with_batch_size(32)
        .with_learning_rate(0.01)
        .with_seed(4)
        .with_fused_cpu(fused)
}

#[test]
fn uncertainty_weights_are_learnt_reported_and_saved() {
    assert_eq!(
        Balanced::spec().loss_balancing,
        mtl::spec::LossBalancing::Uncertainty
    );
    assert_eq!(
        Fixed::spec().loss_balancing,
        mtl::spec::LossBalancing::Fixed
    );
    let (train, valid) = (data(2_000, 1), data(500, 2));
    let mut trainer = Trainer::<Balanced>::new(Cpu::default(), config(true)).unwrap();
    // c_t·exp(-0): 1 for the binary task, 1/2 for the regression.
    assert_eq!(trainer.loss_weights(), [1.0, 0.5]);
    let history = trainer.fit(&train, Some(&valid)).unwrap();
    let weight = |e: &mtl::train::EpochRecord, task: &str| {
        e.train.get(&format!("{task}/loss_weight")).unwrap()
    };
    let last = history.epochs.last().unwrap();
    let (click, watch) = (
        weight(last, "click/binary_output"),
        weight(last, "watch/regression_output"),
    );
    assert_eq!([click as f32, watch as f32], trainer.loss_weights());
    // The regression loss stays large (its noise alone is ~8), so its weight falls towards
    // 1/(2 L); the click loss is below 1/2, so its weight rises above 1.
    let watch_loss = last
        .train
        .get("watch/regression_output_loss")
        .or(last.train.get("watch_loss"));
    assert!(watch < 0.3, "watch weight {watch} (loss {watch_loss:?})");
    assert!(click > 1.0, "click weight {click}");
    // Monotone over the epochs for the regression task.
    let watch_curve: Vec<f64> = history
        .epochs
        .iter()
        .map(|e| weight(e, "watch/regression_output"))
        .collect();
    assert!(
        watch_curve.windows(2).all(|w| w[1] < w[0]),
        "{watch_curve:?}"
    );
    // Reported in the exports and the curves.
    assert!(history
        .to_csv()
        .contains("watch/regression_output/loss_weight"));
    assert!(history
        .curves_svg()
        .contains("watch/regression_output/loss_weight"));

    // The generic path learns the same weights (same seed, same losses to float rounding).
    let mut generic = Trainer::<Balanced>::new(Cpu::default(), config(false)).unwrap();
    generic.fit(&train, Some(&valid)).unwrap();
    for (a, b) in trainer.loss_weights().iter().zip(generic.loss_weights()) {
        assert!((a - b).abs() < 1e-3 * a.abs(), "fused {a} vs generic {b}");
    }

    // A checkpoint carries the learnt state; a model file does not need it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("balanced.safetensors");
    trainer.save_checkpoint(&path).unwrap();
    let mut resumed = Trainer::<Balanced>::new(Cpu::default(), config(true)).unwrap();
    resumed.load_checkpoint(&path).unwrap();
    assert_eq!(resumed.loss_weights(), trainer.loss_weights());
    let before = resumed.evaluate(&valid).unwrap().get("loss").unwrap();
    let after = trainer.evaluate(&valid).unwrap().get("loss").unwrap();
    assert!((before - after).abs() < 1e-5, "{before} vs {after}");

    // A fixed override contradicts learnt weights.
    let err = Trainer::<Balanced>::new(Cpu::default(), config(true).with_loss_weight("watch", 2.0))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("learns its loss weights"), "{err}");
    // Early stopping on the (moving) weighted loss is refused; the plain sum is reported.
    let err = Trainer::<Balanced>::new(
        Cpu::default(),
        config(true).with_early_stopping(EarlyStopping::on("loss", 2)),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("task_loss_sum"), "{err}");
    let report = trainer.evaluate(&valid).unwrap();
    let sum = report.get("click/binary_output_loss").unwrap()
        + report.get("watch/regression_output_loss").unwrap();
    assert!((report.get("task_loss_sum").unwrap() - sum).abs() < 1e-9);
    let mut stopped = Trainer::<Balanced>::new(
        Cpu::default(),
        config(true).with_early_stopping(EarlyStopping::on("task_loss_sum", 1)),
    )
    .unwrap();
    stopped.fit(&train, Some(&valid)).unwrap();
    // The fixed model reports no weights.
    let mut fixed = Trainer::<Fixed>::new(Cpu::default(), config(true).with_epochs(1)).unwrap();
    let h = fixed.fit(&train, None).unwrap();
    assert!(h.epochs[0]
        .train
        .get("watch/regression_output/loss_weight")
        .is_none());
}

#[test]
fn gradnorm_balances_gradient_norms_on_the_shared_parameters() {
    use mtl::spec::LossBalancing;
    assert_eq!(
        GradNormed::spec().loss_balancing,
        LossBalancing::GradNorm { alpha_milli: 1500 }
    );
    // Which parameters count as shared, per body kind: (name, shared range of its values).
    fn shared<M: MtlModel + BuildOnDevice<Cpu, f32>>() -> Vec<(String, std::ops::Range<usize>)>
    where
        M::Built: TensorCollection<f32, Cpu>,
    {
        let net = Cpu::default().build_module::<M, f32>();
        mtl::__private::named_parameters(&net)
            .unwrap()
            .into_iter()
            .filter_map(|(n, v)| M::SPEC.shared_part(&n, v.len()).map(|r| (n, r)))
            .collect()
    }
    let mlp = shared::<GradNormed>();
    assert_eq!(
        mlp,
        [
            ("body.0.weight".to_string(), 0..16 * 8),
            ("body.0.bias".to_string(), 0..16)
        ]
    );
    let mmoe = shared::<SharedMmoe>();
    assert!(
        !mmoe.is_empty()
            && mmoe
                .iter()
                .all(|(n, r)| n.starts_with("experts.") && r.start == 0),
        "{mmoe:?}"
    );
    // CGC, 2 tasks x 1 task expert + 2 shared: the last 2 of 4 experts' rows of each layer.
    let cgc = shared::<SharedCgc>();
    assert_eq!(
        cgc,
        [
            ("experts.0.weight".to_string(), 8 * 4..16 * 4),
            ("experts.0.bias".to_string(), 8..16),
            ("experts.1.weight".to_string(), 6 * 4..12 * 4),
            ("experts.1.bias".to_string(), 6..12),
        ]
    );
    // PLE: level 1's shared rows, then level 2's `experts.shared` tensors whole.
    let ple = shared::<GradNormPle>();
    assert!(
        ple.iter()
            .any(|(n, r)| n.starts_with("level_1.experts.") && r.start > 0),
        "{ple:?}"
    );
    assert!(
        ple.iter()
            .any(|(n, r)| n.starts_with("level_2.experts.shared.") && r.start == 0),
        "{ple:?}"
    );
    assert!(
        !ple.iter()
            .any(|(n, _)| n.contains("gate") || n.contains("experts.click")),
        "{ple:?}"
    );

    let summary = Cpu::default().build_module::<GradNormed, f32>().to_string();
    assert!(
        summary.contains("loss balancing: gradnorm, alpha 1.5"),
        "{summary}"
    );
    let (train, valid) = (data(2_000, 1), data(500, 2));
    let mut trainer = Trainer::<GradNormed>::new(Cpu::default(), config(true)).unwrap();
    assert_eq!(trainer.loss_weights(), [1.0, 1.0]);
    let history = trainer.fit(&train, Some(&valid)).unwrap();
    for e in &history.epochs {
        let (a, b) = (
            e.train.get("click/binary_output/loss_weight").unwrap(),
            e.train.get("watch/regression_output/loss_weight").unwrap(),
        );
        assert!(
            (a + b - 2.0).abs() < 1e-5,
            "weights sum to the number of tasks: {a} + {b}"
        );
    }
    let w = trainer.loss_weights().to_vec();
    // The regression target is mostly noise, so its loss falls least relative to its start
    // (the highest L(t)/L(0)), and GradNorm raises the weight of the task that trains slowest.
    let rate = |task: &str| {
        let loss = |e: &mtl::train::EpochRecord| e.train.get(&format!("{task}_loss")).unwrap();
        loss(history.epochs.last().unwrap()) / loss(&history.epochs[0])
    };
    assert!(rate("watch/regression_output") > rate("click/binary_output"));
    assert!(w[1] > w[0], "{w:?}");
    // The generic path learns the same weights.
    let mut generic = Trainer::<GradNormed>::new(Cpu::default(), config(false)).unwrap();
    generic.fit(&train, Some(&valid)).unwrap();
    for (a, b) in w.iter().zip(generic.loss_weights()) {
        assert!(
            (a - b).abs() < 1e-2,
            "fused {w:?} vs generic {:?}",
            generic.loss_weights()
        );
    }
    // Checkpoints carry the weights and L(0).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gradnorm.safetensors");
    trainer.save_checkpoint(&path).unwrap();
    let mut resumed = Trainer::<GradNormed>::new(Cpu::default(), config(true)).unwrap();
    resumed.load_checkpoint(&path).unwrap();
    assert_eq!(resumed.loss_weights(), trainer.loss_weights());
    // PLE trains; an identity body is refused with the reason.
    let mut ple = Trainer::<GradNormPle>::new(Cpu::default(), config(true).with_epochs(1)).unwrap();
    ple.fit(&train, None).unwrap();
    let err = Trainer::<GradNormIdentity>::new(Cpu::default(), config(true))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("shares none"), "{err}");
}
