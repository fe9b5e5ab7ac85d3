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
        // The pooled inputs' gradient, which every id of a list gets its share of.
        for (x, y) in a.input.iter().zip(&b.input) {
            assert!((x - y).abs() < 1e-5, "{name}: input gradient {x} vs {y}");
        }
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

    // Streamed from Parquet row groups, the lists score as they do in memory.
    let dir = tempfile::tempdir().unwrap();
    let parts = dir.path().join("valid");
    valid
        .write_parquet(
            &parts,
            &WriteOptions {
                rows_per_file: Some(500),
                row_group_rows: 128,
            },
        )
        .unwrap();
    let stream = mtl::data::StreamingDataset::open(&parts).unwrap();
    assert_eq!(fused.predict(&stream).unwrap(), p);

    // Saved and loaded, the model scores exactly as the trainer does.
    let path = dir.path().join("recent.mtl");
    fused.save_model(&path).unwrap();
    let predictor = Predictor::<WithRecent>::load(&path).unwrap();
    assert_eq!(predictor.predict(valid).unwrap(), p);
    // ONNX export of pooled lists: tests/onnx_export.rs.
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

mtl_model! {
    /// The preprocessed table of `raw_csv_lists_preprocess_train_and_score`: a hashed user
    /// column, an item and the recently seen items sharing one vocabulary and one table, and
    /// tags pooled by sum.
    pub struct FromCsv {
        inputs: {
            user: categorical(cardinality = 17, dim = 4),
            item: categorical(cardinality = 9, dim = 4),
            recent_items: categorical(cardinality = 9, dim = 4, max_len = 4, table = item),
            tags: categorical(cardinality = 5, dim = 4, max_len = 3, combiner = sum),
        },
        body: mlp[8],
        tasks: { bought: binary },
    }
}

/// `rows` raw rows: user, item, recent items (`|`-separated, 0–5 of them), tags (0–4, with
/// spaces around the separator), and the outcome: `buy` when a tag is `t0`.
fn raw_csv(rows: usize, seed: u64) -> String {
    let mut state = seed;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut text = String::from("user,item,recent_items,tags,outcome\n");
    for _ in 0..rows {
        let user = format!("u{}", next(1000));
        let item = format!("i{}", next(8));
        let recent: Vec<String> = (0..next(6)).map(|_| format!("i{}", next(8))).collect();
        let tags: Vec<String> = (0..next(5)).map(|_| format!("t{}", next(4))).collect();
        let outcome = if tags.iter().any(|t| t == "t0") {
            "buy"
        } else {
            "skip"
        };
        text.push_str(&format!(
            "{user},{item},{},{},{outcome}\n",
            recent.join("|"),
            tags.join(" | ")
        ));
    }
    text
}

#[test]
fn raw_csv_lists_preprocess_train_and_score() {
    use mtl::preprocess::{CsvOptions, Fitted, Input, PreprocessConfig, Target};

    let dir = tempfile::tempdir().unwrap();
    let train_csv = dir.path().join("train.csv");
    let valid_csv = dir.path().join("valid.csv");
    std::fs::write(&train_csv, raw_csv(3_000, 1)).unwrap();
    // Valid: one row with an unseen item in its list, one with more recent items than train
    // ever had (cut to the first ones), one with an empty list.
    let mut valid = raw_csv(300, 2);
    valid.push_str("u1,i3,i9|i3,t1,skip\nu2,i1,i1|i1|i1|i1|i1|i1|i1,t0|t1,buy\nu3,i2,,,skip\n");
    std::fs::write(&valid_csv, valid).unwrap();
    let out = dir.path().join("out");
    let config = PreprocessConfig::new()
        .categorical(&["item"])
        .categorical_list(&["recent_items", "tags"], '|')
        .max_list_len("tags", 3)
        .hash_buckets(&["user"], 16)
        .hash_seed(7)
        .shared_vocabulary(&["item", "recent_items"])
        .target(Target::equals("bought", "outcome", "buy"));
    let report = config
        .run_files(
            &Input::csv(&train_csv, CsvOptions::default()),
            &[("valid", &Input::csv(&valid_csv, CsvOptions::default()))],
            &out,
        )
        .unwrap();
    eprintln!("{report}");
    let v = report.split("valid").unwrap();
    assert_eq!(v.oov["recent_items"], 1, "i9 is unseen");
    assert_eq!(
        v.truncated_lists["recent_items"], 1,
        "7 recent items, 5 kept"
    );
    // Rows with 4 tags keep `max_list_len("tags", 3)`; train's counts show it too.
    assert!(v.truncated_lists["tags"] > 0);
    assert!(report.split("train").unwrap().truncated_lists["tags"] > 0);

    // The schema: lists with their lengths, one domain for the shared vocabulary, buckets.
    let train = Dataset::open(out.join("train")).unwrap();
    let valid = Dataset::open(out.join("valid")).unwrap();
    let schema = train.schema();
    let recent = schema.get("recent_items").unwrap();
    assert!(recent.is_list());
    assert_eq!(recent.value_count().unwrap().max, Some(5));
    assert_eq!(
        schema.get("tags").unwrap().value_count().unwrap().max,
        Some(3)
    );
    assert_eq!(recent.table_name(), "item");
    assert_eq!(schema.get("item").unwrap().table_name(), "item");
    assert_eq!(schema.get("user").unwrap().int_domain(), Some((0, 16)));
    assert_eq!(schema.get("item").unwrap().int_domain(), Some((0, 8)));
    // Shared vocabulary: the same value has the same id in both columns.
    let fitted = Fitted::load(&out).unwrap();
    let vocab = fitted.vocabulary("item").unwrap();
    let rows = valid.num_rows();
    let last = |c: &str, back: usize| valid.id_list(c, rows - back).unwrap();
    let id = |v: &str| vocab.encode(Some(v));
    assert_eq!(last("recent_items", 3), [0, id("i3")], "i9 → 0");
    assert_eq!(last("recent_items", 2), [id("i1"); 5]);
    assert!(last("recent_items", 1).is_empty() && last("tags", 1).is_empty());
    assert_eq!(valid.ids("item").unwrap()[rows - 2], id("i1"));
    // Hashing is the documented function, at fit and at inference alike.
    assert_eq!(
        valid.ids("user").unwrap()[rows - 3],
        mtl::preprocess::hash_id("u1", 16, 7)
    );

    // Train on it; the raw rows score through the saved preprocessing exactly as the
    // preprocessed ones do.
    let config = TrainConfig::default()
        .with_batch_size(128)
        .with_epochs(8)
        .with_seed(3)
        .with_learning_rate(0.01)
        .with_progress(false);
    let mut trainer = Trainer::<FromCsv>::new(Cpu::default(), config).unwrap();
    trainer.fit(&train, None).unwrap();
    let report = trainer.evaluate(&valid).unwrap();
    // One task: Merlin names its metrics without the output prefix.
    let auc = report.get("auc").unwrap();
    // `bought` is "a tag is t0": learnable only from the pooled tags (cut to 3 of up to 4,
    // so not perfectly).
    assert!(auc > 0.85, "{report}");
    let predictor = Predictor::from_trainer(&trainer)
        .unwrap()
        .with_preprocessing(fitted)
        .unwrap();
    let text = std::fs::read_to_string(&valid_csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let raw_rows: Vec<Vec<Option<String>>> = lines
        .map(|l| {
            l.split(',')
                .map(|v| Some(v.to_string()).filter(|v| !v.is_empty()))
                .collect()
        })
        .collect();
    let (scored, encode) = predictor.score_rows(&header, &raw_rows, &[]).unwrap();
    assert_eq!(encode.truncated_lists["recent_items"], 1);
    let scores = scored
        .column_by_name("bought/binary_output")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::Float32Array>()
        .unwrap()
        .values()
        .to_vec();
    assert_eq!(scores, trainer.predict(&valid).unwrap()[0]);
}

#[test]
fn raw_parquet_list_columns_preprocess_as_lists() {
    use std::sync::Arc;

    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use mtl::preprocess::{CsvOptions, Input, PreprocessConfig, Target};

    let dir = tempfile::tempdir().unwrap();
    // Lists of strings: one holds the CSV separator inside a value, one is null, one empty,
    // one has a null element.
    let mut tags = ListBuilder::new(StringBuilder::new());
    tags.values().append_value("a|b");
    tags.values().append_value("c");
    tags.append(true);
    tags.append(false);
    tags.append(true);
    tags.values().append_value("c");
    tags.values().append_null();
    tags.values().append_value("c");
    tags.append(true);
    let click = Int64Array::from(vec![1, 0, 0, 1]);
    let batch = RecordBatch::try_from_iter([
        ("tags", Arc::new(tags.finish()) as ArrayRef),
        ("click", Arc::new(click) as ArrayRef),
    ])
    .unwrap();
    let raw = dir.path().join("raw.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&raw).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let out = dir.path().join("out");
    let report = PreprocessConfig::new()
        .categorical_list(&["tags"], '|')
        .target(Target::binary("click"))
        .run(&Input::from_path(&raw, CsvOptions::default()), &out)
        .unwrap();
    let train = report.split("train").unwrap();
    assert_eq!(train.nulls["tags"], 2, "the null list and the null element");
    let ds = Dataset::open(out.join("train")).unwrap();
    // Vocabulary by frequency: c (3 times) = 1, `a|b` = 2; a null element is id 0.
    let lists: Vec<Vec<u32>> = (0..4).map(|r| ds.id_list("tags", r).unwrap()).collect();
    assert_eq!(lists, [vec![2, 1], vec![], vec![], vec![1, 0, 1]]);
    assert_eq!(
        ds.schema().get("tags").unwrap().value_count().unwrap().max,
        Some(3)
    );

    // Hashed lists keep their length and hash every value.
    let hashed = dir.path().join("hashed");
    PreprocessConfig::new()
        .categorical_list(&["tags"], '|')
        .hash_buckets(&["tags"], 8)
        .target(Target::binary("click"))
        .run(&Input::from_path(&raw, CsvOptions::default()), &hashed)
        .unwrap();
    let ds = Dataset::open(hashed.join("train")).unwrap();
    let h = |v: &str| mtl::preprocess::hash_id(v, 8, 0);
    assert_eq!(ds.id_list("tags", 0).unwrap(), [h("a|b"), h("c")]);
    assert_eq!(ds.id_list("tags", 3).unwrap(), [h("c"), 0, h("c")]);

    // A list column not declared as one is an error, not one category per distinct list.
    let err = PreprocessConfig::new()
        .categorical(&["tags"])
        .target(Target::binary("click"))
        .run(
            &Input::from_path(&raw, CsvOptions::default()),
            dir.path().join("bad"),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("categorical_list"), "{err}");
}

#[test]
fn fixed_size_and_large_lists_load_with_id_policies() {
    use std::sync::Arc;

    use arrow_array::builder::{
        FixedSizeListBuilder, Int32Builder, Int64Builder, LargeListBuilder,
    };
    use arrow_array::{ArrayRef, RecordBatch};
    use mtl::data::{IdPolicy, LoadOptions};
    use mtl::schema::{ColumnSchema, DType, Schema};

    let dir = tempfile::tempdir().unwrap();
    // `pair`: fixed length 2, one element out of the domain (9 > 5) and one null element.
    let mut pair = FixedSizeListBuilder::new(Int32Builder::new(), 2);
    for row in [[Some(1), Some(2)], [Some(9), Some(3)], [Some(4), None]] {
        for v in row {
            pair.values().append_option(v);
        }
        pair.append(true);
    }
    // `recent`: a large (64-bit offsets) ragged list with an empty and a null row.
    let mut recent = LargeListBuilder::new(Int64Builder::new());
    recent.values().append_value(5);
    recent.append(true);
    recent.append(true);
    recent.append(false);
    let batch = RecordBatch::try_from_iter([
        ("pair", Arc::new(pair.finish()) as ArrayRef),
        ("recent", Arc::new(recent.finish()) as ArrayRef),
    ])
    .unwrap();
    let path = dir.path().join("part_0.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let column = |name: &str, min: u64, max: u64| {
        ColumnSchema::new(name)
            .with_dtype(DType::Int64)
            .with_int_domain(0, 5, None)
            .with_list_len(min, Some(max))
            .with_tags(["categorical"])
            .unwrap()
    };
    let schema = Schema::new(vec![column("pair", 2, 2), column("recent", 0, 4)]).unwrap();
    assert!(!schema.get("pair").unwrap().is_ragged());
    schema.write_json(dir.path().join("schema.json")).unwrap();

    // Strict by default: the out-of-domain element is an error naming column and row.
    let err = Dataset::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("`pair`") && err.contains("row 1") && err.contains(": 9"),
        "{err}"
    );
    // Mapped to the out-of-vocabulary id 0 when asked, and counted.
    let ds = Dataset::open_with(
        dir.path(),
        &LoadOptions::default().with_id_policy(IdPolicy::MapToOov),
    )
    .unwrap();
    let pairs: Vec<Vec<u32>> = (0..3).map(|r| ds.id_list("pair", r).unwrap()).collect();
    assert_eq!(pairs, [vec![1, 2], vec![0, 3], vec![4, 0]]);
    let repairs = &ds.report().columns["pair"];
    assert_eq!((repairs.out_of_range_ids, repairs.null_ids), (1, 1));
    let recent: Vec<Vec<u32>> = (0..3).map(|r| ds.id_list("recent", r).unwrap()).collect();
    assert_eq!(recent, [vec![5], vec![], vec![]]);
}
