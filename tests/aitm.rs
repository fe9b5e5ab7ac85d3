//! AITM (`given = parent, transfer = aitm`): the calibrator's math, the generated network
//! (transfer block, parameter names and counts, summary), training on synthetic tenrec-video
//! with the calibrator doing its job, saving and serving, and ONNX's clear refusal.

use mtl::data::synthetic::generate_data;
use mtl::loss::calibration_row;
use mtl::prelude::*;

mtl_model! {
    schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
    inputs: { user_id: categorical(dim = 8), item_id: categorical(dim = 8), video_category: categorical(dim = 4), .. },
    body: mlp[16],
    towers: mlp[8],

    /// AITM on tenrec-video: like (which fires only after a click) reads what click's tower
    /// passes on; the default calibration weight.
    pub struct Aitm {
        tasks: {
            click: binary(metrics = [auc]),
            like: binary(given = click, transfer = aitm, metrics = [auc]),
        },
    }

    /// The same with a heavy calibrator, and a chain: share transfers from like, with a tower
    /// of another width.
    pub struct AitmChain {
        tasks: {
            click: binary(metrics = [auc]),
            like: binary(given = click, transfer = aitm, calibration = 20.0, metrics = [auc]),
            share: binary(given = like, transfer = aitm, calibration = 20.0, tower = mlp[6]),
        },
    }

    /// Backwards on purpose: click (about 10x likelier than like) declared as like's child, so
    /// that the calibrator has work: it pushes P(click) below P(like).
    pub struct Reversed {
        tasks: {
            like: binary,
            click: binary(given = like, transfer = aitm, calibration = 20.0),
        },
    }

    /// The same without a calibrator.
    pub struct ReversedUncalibrated {
        tasks: {
            like: binary,
            click: binary(given = like, transfer = aitm, calibration = 0.0),
        },
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn calibration_value_and_gradient() {
    for (zc, zp) in [
        (0.5f32, -1.0f32),
        (2.0, 1.5),
        (-1.0, 0.5),
        (3.0, 2.9),
        (-6.0, -7.0),
    ] {
        let (value, gc, gp) = calibration_row(zc, zp);
        let direct = |c: f64, p: f64| (sigmoid(c) - sigmoid(p)).max(0.0);
        let (c, p) = (f64::from(zc), f64::from(zp));
        assert!((value - direct(c, p)).abs() < 1e-12, "{zc} {zp}");
        let h = 1e-6;
        let dc = (direct(c + h, p) - direct(c - h, p)) / (2.0 * h);
        let dp = (direct(c, p + h) - direct(c, p - h)) / (2.0 * h);
        assert!(
            (dc - f64::from(gc)).abs() < 1e-6,
            "∂/∂z_c at {zc} {zp}: {dc} vs {gc}"
        );
        assert!(
            (dp - f64::from(gp)).abs() < 1e-6,
            "∂/∂z_p at {zc} {zp}: {dp} vs {gp}"
        );
        // Only a child likelier than its parent is penalised.
        assert_eq!(value > 0.0, zc > zp);
    }
}

#[test]
fn the_network_has_one_transfer_per_aitm_task() {
    let spec = AitmChain::spec();
    let like = spec.task("like").unwrap();
    assert_eq!(like.given, None, "AITM multiplies nothing");
    let aitm = like.aitm.unwrap();
    assert_eq!((aitm.parent, aitm.calibration), ("click", 20.0));
    assert_eq!(spec.task("share").unwrap().aitm.unwrap().parent, "like");
    assert_eq!(
        Aitm::spec().task("like").unwrap().aitm.unwrap().calibration,
        0.6
    );
    // Parents first.
    assert_eq!(spec.aitm_order(), [1, 2]);
    assert!(spec.chained_tasks().is_empty());

    let net = Cpu::default().build_module::<AitmChain, f32>();
    // like's transfer: info 8 → 8 with bias, query/key/value 8 × 8; share's: 8 → 6.
    assert_eq!(
        net.transfers.like.num_trainable_params(),
        8 * 8 + 8 + 3 * 64
    );
    assert_eq!(
        net.transfers.share.num_trainable_params(),
        8 * 6 + 6 + 3 * 36
    );
    assert_eq!(
        spec.dense_parameters(),
        Some(net.num_trainable_params() as u128)
    );
    // The parameter names, as a safetensors file lists them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.safetensors");
    net.save_safetensors(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let names: Vec<String> = header.as_object().unwrap().keys().cloned().collect();
    for name in [
        "transfers.like.info.weight",
        "transfers.like.info.bias",
        "transfers.like.query.weight",
        "transfers.like.key.weight",
        "transfers.like.value.weight",
        "transfers.share.value.weight",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    let summary = net.to_string();
    assert!(summary.contains("transfers.like"), "{summary}");
    assert!(summary.contains("aitm(from click)"), "{summary}");
    assert!(summary.contains("aitm(from like)"), "{summary}");

    // The fused engine has no transfer op: the generic path trains it, and says why.
    let trainer = Trainer::<AitmChain>::new(Cpu::default(), TrainConfig::default()).unwrap();
    assert_eq!(
        trainer.engine_name(),
        "generic (task `like` uses an AITM transfer)"
    );
}

/// The mean of `max(p_child − p_parent, 0)` over the rows (the calibrator's value).
fn violation(child: &[f32], parent: &[f32]) -> f64 {
    let sum: f64 = child
        .iter()
        .zip(parent)
        .map(|(&c, &p)| f64::from((c - p).max(0.0)))
        .sum();
    sum / child.len() as f64
}

#[test]
fn aitm_trains_calibrates_saves_and_serves() {
    let splits = generate_data("tenrec-video", 30_000, &[0.8, 0.2], 5).unwrap();
    let (train, valid) = (&splits[0], &splits[1]);
    let config = TrainConfig::default()
        .with_batch_size(512)
        .with_epochs(3)
        .with_seed(4)
        .with_progress(false);

    let mut heavy = Trainer::<AitmChain>::new(Cpu::default(), config.clone()).unwrap();
    let history = heavy.fit(train, Some(valid)).unwrap();

    // It learns: like's AUC on every impression, the end-to-end probability AITM predicts.
    let report = heavy.evaluate(valid).unwrap();
    for name in ["click/binary_output/auc", "like/binary_output/auc"] {
        let auc = report.get(name).unwrap();
        assert!(auc > 0.55 && auc < 1.0, "{name} {auc}: {report}");
    }
    let last = history.epochs.last().unwrap();
    assert!(last.train.get("loss").unwrap().is_finite());

    // Here like and share are rarer than their parents anyway: no violation to speak of.
    let p = heavy.predict(valid).unwrap();
    assert!(violation(&p[1], &p[0]) < 1e-3 && violation(&p[2], &p[1]) < 1e-3);

    // The calibrator pushes a child's probability below its parent's where the data does not:
    // click declared as like's child.
    let mut calibrated = Trainer::<Reversed>::new(Cpu::default(), config.clone()).unwrap();
    let with_history = calibrated.fit(train, None).unwrap();
    let mut uncalibrated =
        Trainer::<ReversedUncalibrated>::new(Cpu::default(), config.clone()).unwrap();
    let without_history = uncalibrated.fit(train, None).unwrap();
    // The reported loss is the task losses plus the calibrator: above them while the first
    // epoch still has violations to push down, equal to them without a calibrator.
    let excess = |h: &History| {
        let e = &h.epochs[0].train;
        e.get("loss").unwrap()
            - e.get("click/binary_output_loss").unwrap()
            - e.get("like/binary_output_loss").unwrap()
    };
    assert!(excess(&with_history) > 1e-4, "{}", excess(&with_history));
    assert!(
        excess(&without_history).abs() < 2e-5,
        "{}",
        excess(&without_history)
    );
    let (with, without) = (
        calibrated.predict(valid).unwrap(),
        uncalibrated.predict(valid).unwrap(),
    );
    // Outputs in task-name order: click, like.
    let (with, without) = (
        violation(&with[0], &with[1]),
        violation(&without[0], &without[1]),
    );
    eprintln!("mean max(P(click) − P(like), 0): {with:.4} calibrated vs {without:.4} not");
    assert!(
        without > 0.1 && with < 0.25 * without,
        "mean max(P(click) − P(like), 0): {with:.4} calibrated vs {without:.4} not"
    );

    // Saved and loaded, the model scores exactly as the trainer does.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aitm.mtl");
    heavy.save_model(&path).unwrap();
    let predictor = Predictor::<AitmChain>::load(&path).unwrap();
    assert_eq!(
        predictor.predict(valid).unwrap(),
        heavy.predict(valid).unwrap()
    );
    let outputs: Vec<String> = predictor.outputs().into_iter().map(|o| o.name).collect();
    assert_eq!(
        outputs,
        [
            "click/binary_output",
            "like/binary_output",
            "share/binary_output"
        ]
    );
    // ONNX export has no attention transfer yet: a clear error, no file.
    let onnx = dir.path().join("aitm.onnx");
    let err = predictor
        .export_onnx(&onnx, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("AITM"), "{err}");
    assert!(!onnx.exists());
}
