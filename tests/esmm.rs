//! Chained tasks (`given`, ESMM): the joint loss's math, the same gradients on both training
//! paths, the joint output in evaluation, predictions and ONNX, and the evidence on synthetic
//! tenrec-video (where like fires only after a click).

use mtl::data::synthetic::generate_data;
use mtl::loss::{chain_logit, chain_probability, chain_row_loss_and_grads, row_loss_and_grad};
use mtl::prelude::*;
use mtl::spec::TaskKind;

mtl_model! {
    /// ESMM on tenrec-video: P(like | click) trained through P(click and like) on every row.
    pub struct Esmm {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        inputs: { user_id: categorical(dim = 8), item_id: categorical(dim = 8), video_category: categorical(dim = 4), .. },
        body: mlp[16],
        towers: mlp[8],
        tasks: { click: binary(metrics = [auc]), like: binary(given = click, metrics = [auc]) },
    }
}

/// ln(1 + e^x) without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

#[test]
fn joint_loss_value_and_gradient() {
    // One factor: the joint loss is the plain binary cross-entropy with logits.
    for (z, y) in [(0.3f32, 1.0f32), (-2.0, 0.0), (4.0, 0.0), (-7.5, 1.0)] {
        let mut g1 = [0.0f32];
        let mut g2 = [0.0f32];
        let a = chain_row_loss_and_grads(&[z], y, &mut g1);
        let b = row_loss_and_grad(TaskKind::Binary, &[z], y, &mut g2);
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        assert!((g1[0] - g2[0]).abs() < 1e-6, "{g1:?} vs {g2:?}");
    }
    // Two and three factors: value against the direct formula, gradient against central
    // differences (in f64 through the same function's value).
    for (z, y) in [
        (vec![0.5f32, -1.0], 0.0f32),
        (vec![0.5, -1.0], 1.0),
        (vec![-3.0, 2.0, 0.7], 1.0),
        (vec![6.0, 5.0], 0.0),
        (vec![-9.0, -8.0], 1.0),
    ] {
        let mut g = vec![0.0f32; z.len()];
        let loss = chain_row_loss_and_grads(&z, y, &mut g);
        let t: f64 = z
            .iter()
            .map(|&x| 1.0 / (1.0 + (-f64::from(x)).exp()))
            .product();
        let direct = -f64::from(y) * t.ln() - (1.0 - f64::from(y)) * (1.0 - t).ln();
        assert!(
            (loss - direct).abs() < 1e-9 * direct.abs().max(1.0),
            "{loss} vs {direct}"
        );
        assert!((f64::from(chain_probability(&z)) - t).abs() < 1e-6);
        let logit = f64::from(chain_logit(&z));
        assert!((logit - (t.ln() - (1.0 - t).ln())).abs() < 1e-4 * logit.abs().max(1.0));
        let value = |z: &[f64]| -> f64 {
            let ln_t: f64 = z.iter().map(|&x| -softplus(-x)).sum();
            -f64::from(y) * ln_t - (1.0 - f64::from(y)) * (-ln_t.exp_m1()).ln()
        };
        let z64: Vec<f64> = z.iter().map(|&x| f64::from(x)).collect();
        for k in 0..z.len() {
            let h = 1e-5;
            let (mut up, mut down) = (z64.clone(), z64.clone());
            up[k] += h;
            down[k] -= h;
            let numeric = (value(&up) - value(&down)) / (2.0 * h);
            assert!(
                (numeric - f64::from(g[k])).abs() < 1e-4,
                "z {z:?} y {y}: {numeric} vs {}",
                g[k]
            );
        }
    }
}

#[test]
fn esmm_trains_on_both_paths_and_reports_and_exports_the_joint_output() {
    let spec = Esmm::spec();
    let summary = Cpu::default().build_module::<Esmm, f32>().to_string();
    assert!(
        summary.contains("chained task (ESMM): like given click; trained through like/joint_output = P(like and click)"),
        "{summary}"
    );
    assert_eq!(spec.task("like").unwrap().given, Some("click"));
    assert_eq!(spec.chain(1), [1, 0]);
    assert_eq!(spec.chained_tasks(), [1]);
    let splits = generate_data("tenrec-video", 40_000, &[0.8, 0.2], 3).unwrap();
    let (train, valid) = (&splits[0], &splits[1]);

    // The two training paths compute the same gradients for the joint loss.
    let config = |fused: bool| {
        TrainConfig::default()
            .with_batch_size(512)
            .with_seed(9)
            .with_fused_cpu(fused)
    };
    let mut fused = Trainer::<Esmm>::new(Cpu::default(), config(true)).unwrap();
    let mut generic = Trainer::<Esmm>::new(Cpu::default(), config(false)).unwrap();
    let a = fused.step_gradients(train).unwrap();
    let b = generic.step_gradients(train).unwrap();
    for (x, y) in a.losses.iter().zip(&b.losses) {
        assert!(
            (x - y).abs() < 1e-5 * x.abs().max(1.0),
            "losses {:?} vs {:?}",
            a.losses,
            b.losses
        );
    }
    for (name, ga) in &a.dense {
        let gb = &b.dense[name];
        let scale = ga
            .iter()
            .chain(gb)
            .fold(0.0f32, |m, v| m.max(v.abs()))
            .max(1e-6);
        for (x, y) in ga.iter().zip(gb) {
            assert!(
                (x - y).abs() <= 1e-4 * scale,
                "{name}: fused {x} vs generic {y}"
            );
        }
    }

    let mut trainer = Trainer::<Esmm>::new(Cpu::default(), config(true).with_epochs(3)).unwrap();
    trainer.fit(train, Some(valid)).unwrap();
    let report = trainer.evaluate(valid).unwrap();
    for name in [
        "click/binary_output/auc",
        "like/binary_output/auc",
        "like/joint_output/auc",
    ] {
        let auc = report
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {report}"));
        assert!(auc > 0.55 && auc < 1.0, "{name} {auc}");
    }
    // Predictions: the tasks, then the joint probability = P(click)·P(like | click).
    let p = trainer.predict(valid).unwrap();
    assert_eq!(p.len(), 3);
    for ((joint, click), like) in p[2].iter().zip(&p[0]).zip(&p[1]) {
        assert!((joint - click * like).abs() < 1e-6);
    }
    let predictor = Predictor::from_trainer(&trainer).unwrap();
    let names: Vec<String> = predictor.outputs().into_iter().map(|o| o.name).collect();
    assert_eq!(
        names,
        [
            "click/binary_output",
            "like/binary_output",
            "like/joint_output"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.parquet");
    predictor.predict_to_parquet(valid, &[], &out).unwrap();
    // The file holds the same three columns, the joint one last.
    let file = std::fs::File::open(&out).unwrap();
    let mut written: Vec<Vec<f32>> = vec![Vec::new(); 3];
    for batch in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
    {
        let batch = batch.unwrap();
        for (c, name) in names.iter().enumerate() {
            let column = batch.column_by_name(name).unwrap();
            let values = column
                .as_any()
                .downcast_ref::<arrow_array::Float32Array>()
                .unwrap();
            written[c].extend(values.values().iter().copied());
        }
    }
    assert_eq!(written, p);
    let export = predictor
        .export_onnx(dir.path().join("esmm.onnx"), &Default::default())
        .unwrap();
    let outs: Vec<&str> = export.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outs, names);
}
