//! List (multi-hot) features end to end: list columns through Parquet, the DSL's pooled inputs
//! (inferred from the schema or declared), training on both paths, prediction and serving, and
//! the planted signal of synthetic tenrec-video's `recent_categories`.

use mtl::data::synthetic::{generate_data_with, SyntheticOptions};
use mtl::data::{Dataset, WriteOptions};
use mtl::metrics::auc;
use mtl::prelude::*;

mtl_model! {
    schema: "tests/fixtures/tenrec-recent/schema.pbtxt",
    body: mlp[32, 16],
    tasks: { click: binary(metrics = [auc]) },

    /// user, item and the list of recent categories, pooled by the schema's default (mean,
    /// whole lists).
    pub struct WithRecent {
        inputs: { user_id: categorical(dim = 8), item_id: categorical(dim = 8), recent_categories: categorical(dim = 8) },
    }

    /// The same without the list.
    pub struct WithoutRecent {
        inputs: { user_id: categorical(dim = 8), item_id: categorical(dim = 8) },
    }

    /// Every option: sum pooling over the first 6 ids.
    pub struct SumFirstSix {
        inputs: { user_id: categorical(dim = 8), recent_categories: categorical(dim = 4, combiner = sum, max_len = 6) },
    }

    /// Inputs inferred from the schema take the list too.
    pub struct Inferred {
        exclude: [watching_times],
    }
}

fn data(rows: usize, seed: u64) -> Vec<Dataset> {
    let options = SyntheticOptions {
        recent_categories: true,
        ..Default::default()
    };
    generate_data_with("tenrec-video", rows, &[0.8, 0.2], seed, &options).unwrap()
}

#[test]
fn the_dsl_pools_list_inputs() {
    let spec = WithRecent::spec();
    let recent = spec.feature("recent_categories").unwrap();
    assert!(recent.is_list());
    assert_eq!(
        (
            recent.max_len,
            recent.combiner,
            recent.cardinality,
            recent.dim
        ),
        (10, mtl::spec::Combiner::Mean, 51, 8)
    );
    // The pooled width is the dim: user 8 + item 8 + recent 8.
    assert_eq!(spec.input_width, 24);
    let sum = SumFirstSix::spec();
    let recent = sum.feature("recent_categories").unwrap();
    assert_eq!(
        (recent.max_len, recent.combiner),
        (6, mtl::spec::Combiner::Sum)
    );
    assert!(Inferred::spec()
        .feature("recent_categories")
        .is_some_and(|f| f.is_list() && f.max_len == 10));
    let summary = Cpu::default().build_module::<WithRecent, f32>().to_string();
    assert!(
        summary.contains("mean of up to 10 ids") && summary.contains("[B, 10] -> [B, 8]"),
        "{summary}"
    );
}

#[test]
fn list_columns_round_trip_through_parquet() {
    let splits = data(2_000, 3);
    let train = &splits[0];
    let dir = tempfile::tempdir().unwrap();
    train
        .write_parquet(
            dir.path(),
            &WriteOptions {
                rows_per_file: Some(700),
                row_group_rows: 256,
            },
        )
        .unwrap();
    let back = Dataset::open(dir.path()).unwrap();
    assert_eq!(back.num_rows(), train.num_rows());
    let column = back.schema().get("recent_categories").unwrap();
    assert!(column.is_list() && column.is_ragged());
    assert_eq!(column.value_count().unwrap().max, Some(10));
    let mut lengths = [0usize; 11];
    for r in 0..train.num_rows() {
        let list = back.id_list("recent_categories", r).unwrap();
        assert_eq!(
            list,
            train.id_list("recent_categories", r).unwrap(),
            "row {r}"
        );
        assert!(list.iter().all(|&c| (1..=50).contains(&c)));
        lengths[list.len()] += 1;
    }
    // Every length 0..=10 occurs, empty lists included.
    assert!(lengths.iter().all(|&n| n > 0), "{lengths:?}");
    // `head` prints lists as lists.
    assert!(back.head(3).to_string().contains('['));
}

#[test]
fn both_paths_train_lists_alike_and_serve_them() {
    let splits = data(6_000, 5);
    let (train, valid) = (&splits[0], &splits[1]);
    let config = |fused: bool| {
        TrainConfig::default()
            .with_batch_size(256)
            .with_seed(2)
            .with_epochs(1)
            .with_fused_cpu(fused)
            .with_progress(false)
    };
    for (name, grads) in [
        (
            "mean",
            [
                Trainer::<WithRecent>::new(Cpu::default(), config(true)).unwrap(),
                Trainer::<WithRecent>::new(Cpu::default(), config(false)).unwrap(),
            ]
            .map(|mut t| t.step_gradients(train).unwrap()),
        ),
        (
            "sum",
            [
                Trainer::<SumFirstSix>::new(Cpu::default(), config(true)).unwrap(),
                Trainer::<SumFirstSix>::new(Cpu::default(), config(false)).unwrap(),
            ]
            .map(|mut t| t.step_gradients(train).unwrap()),
        ),
    ] {
        let [a, b] = grads;
        assert!((a.losses[0] - b.losses[0]).abs() < 1e-5, "{name}: loss");
        for (n, ga) in &a.dense {
            for (x, y) in ga.iter().zip(&b.dense[n]) {
                assert!((x - y).abs() < 1e-4, "{name}: {n}: {x} vs {y}");
            }
        }
    }
    // A whole epoch of sparse updates lands on the same weights on both paths.
    let mut fused = Trainer::<WithRecent>::new(Cpu::default(), config(true)).unwrap();
    let mut generic = Trainer::<WithRecent>::new(Cpu::default(), config(false)).unwrap();
    fused.fit(train, None).unwrap();
    generic.fit(train, None).unwrap();
    let (p, q) = (
        fused.predict(valid).unwrap(),
        generic.predict(valid).unwrap(),
    );
    let diff = p[0]
        .iter()
        .zip(&q[0])
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff < 1e-3, "fused vs generic predictions differ by {diff}");

    // Saved and loaded, the model scores exactly as the trainer does.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recent.mtl");
    fused.save_model(&path).unwrap();
    let predictor = Predictor::<WithRecent>::load(&path).unwrap();
    assert_eq!(predictor.predict(valid).unwrap(), p);
    // ONNX cannot pool lists yet: a clear error, no file.
    let onnx = dir.path().join("recent.onnx");
    let err = predictor
        .export_onnx(&onnx, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("recent_categories") && err.contains("list"),
        "{err}"
    );
    assert!(!onnx.exists());
}

#[test]
fn the_model_learns_from_the_planted_list() {
    let splits = data(120_000, 11);
    let (train, valid) = (&splits[0], &splits[1]);
    let config = TrainConfig::default()
        .with_batch_size(512)
        .with_seed(1)
        .with_epochs(3)
        .with_progress(false);
    let mut with = Trainer::<WithRecent>::new(Cpu::default(), config.clone()).unwrap();
    with.fit(train, None).unwrap();
    let mut without = Trainer::<WithoutRecent>::new(Cpu::default(), config).unwrap();
    without.fit(train, None).unwrap();
    let click = valid.floats("click").unwrap();
    let (a, b) = (
        auc(&with.predict(valid).unwrap()[0], click, None).unwrap(),
        auc(&without.predict(valid).unwrap()[0], click, None).unwrap(),
    );
    eprintln!("click AUC with recent_categories {a:.4}, without {b:.4}");
    assert!(a > b + 0.03, "with the list {a:.4}, without {b:.4}");
}

#[test]
fn list_mistakes_are_clear_errors() {
    // Data without the list column the model reads.
    let splits = data(500, 1);
    let options = SyntheticOptions {
        recent_categories: false,
        ..Default::default()
    };
    let scalar = generate_data_with("tenrec-video", 500, &[1.0], 1, &options).unwrap();
    let mut trainer = Trainer::<WithRecent>::new(Cpu::default(), TrainConfig::default()).unwrap();
    let err = trainer.fit(&scalar[0], None).unwrap_err().to_string();
    eprintln!("{err}");
    assert!(err.contains("recent_categories"), "{err}");
    // A row longer than the schema's value_count.max, in a Parquet file.
    let dir = tempfile::tempdir().unwrap();
    splits[0]
        .write_parquet(dir.path(), &WriteOptions::default())
        .unwrap();
    let schema_path = dir.path().join("schema.json");
    let text = std::fs::read_to_string(&schema_path).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let column = json["feature"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["name"] == "recent_categories")
        .unwrap();
    column["valueCount"]["max"] = serde_json::json!("3");
    // The shape in the metadata wins over valueCount: drop it.
    if let Some(meta) = column["annotation"]["extraMetadata"].as_array_mut() {
        for m in meta {
            if let Some(m) = m.as_object_mut() {
                m.remove("_dims");
            }
        }
    }
    std::fs::write(&schema_path, json.to_string()).unwrap();
    let err = Dataset::open(dir.path()).unwrap_err().to_string();
    eprintln!("{err}");
    assert!(
        err.contains("recent_categories")
            && err.contains("value_count.max 3")
            && err.contains("row"),
        "{err}"
    );
}
