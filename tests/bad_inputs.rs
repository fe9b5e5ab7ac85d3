//! Bad inputs and faults: each ends in a clear error (naming the file, column, row, task or
//! tensor, and how to fix it) or in the correct behaviour; nothing hangs, aborts or loses a good
//! checkpoint or output. The crafted files are small and written by the tests.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, Int8Array, RecordBatch, UInt64Array};
use arrow_schema::{Field, Schema as ArrowSchema};
use mtl::data::{ColumnValues, Dataset, LoadOptions, StreamingDataset};
use mtl::embedding::RowOptimizerConfig;
use mtl::prelude::*;
use mtl::preprocess::{CsvOptions, Input, PreprocessConfig, Role, Split, Target};
use mtl::schema::{ColumnSchema, DType, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

mtl_model! {
    /// A small model with a binary and a multiclass task.
    pub struct Tiny {
        inputs: { price: continuous, user: categorical(cardinality = 10, dim = 4) },
        body: mlp[8],
        tasks: { click: binary, kind: multiclass(classes = 3) },
    }
}

mtl_model! {
    /// A table far larger than any machine's memory: 4e8 rows x 288 dims (460 GB).
    pub struct Huge {
        inputs: { user: categorical(cardinality = 400_000_000, dim = 288) },
        body: mlp[4],
        tasks: { click: binary },
    }
}

fn schema() -> Schema {
    Schema::new([
        ColumnSchema::new("user")
            .with_tags(["categorical"])
            .unwrap()
            .with_dtype(DType::Int64)
            .with_int_domain(0, 9, None),
        ColumnSchema::new("price")
            .with_tags(["continuous"])
            .unwrap()
            .with_dtype(DType::Float64),
        ColumnSchema::new("click")
            .with_tags(["binary_classification", "target"])
            .unwrap()
            .with_dtype(DType::Int8),
        ColumnSchema::new("kind")
            .with_tags(["multi_class_classification", "target"])
            .unwrap()
            .with_dtype(DType::Int64),
    ])
    .unwrap()
}

/// `n` good rows in memory.
fn dataset(n: usize) -> Dataset {
    dataset_with_kind((0..n).map(|i| (i % 3) as f32).collect())
}

fn dataset_with_kind(kind: Vec<f32>) -> Dataset {
    let n = kind.len();
    Dataset::from_columns(
        schema(),
        vec![
            (
                "user".into(),
                ColumnValues::Ids((0..n).map(|i| (i % 10) as u32).collect()),
            ),
            (
                "price".into(),
                ColumnValues::Floats((0..n).map(|i| i as f32 / n as f32).collect()),
            ),
            (
                "click".into(),
                ColumnValues::Floats((0..n).map(|i| (i % 2) as f32).collect()),
            ),
            ("kind".into(), ColumnValues::Floats(kind)),
        ],
    )
    .unwrap()
}

fn trainer(config: TrainConfig) -> Trainer<Tiny> {
    Trainer::<Tiny>::new(Cpu::seed_from_u64(1), config).unwrap()
}

/// Writes one Parquet file of `columns`, one row group.
fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(ArrowSchema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(None)
        .build();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn err<T>(r: mtl::Result<T>) -> String {
    match r {
        Ok(_) => panic!("an error was expected"),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "`{p}` is not in: {message}");
    }
}

// ------------------------------------------------------------------ hangs and crashes

#[test]
fn evaluation_terminates_on_nan_scores_and_reports_them() {
    // A blown-up head: every click score is NaN (ReLU would swallow NaN inputs).
    let mut t = trainer(TrainConfig::default().with_batch_size(64));
    t.network.heads.click.bias = Cpu::default().tensor([f32::NAN]);
    let report = t.evaluate(&dataset(200)).unwrap();
    assert!(report.get("click/binary_output/auc").unwrap().is_nan());
    assert!(report
        .to_json()
        .contains("\"click/binary_output/auc\": null"));
}

#[test]
fn deeply_nested_schema_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.pbtxt");
    std::fs::write(&path, "feature {".repeat(20_000)).unwrap();
    assert_mentions(
        &err(Schema::from_file(&path)),
        &["schema.pbtxt", "nested more than 64"],
    );
    let json = dir.path().join("schema.json");
    std::fs::write(&json, "[".repeat(100_000)).unwrap();
    assert!(Schema::from_file(&json).is_err());
}

#[test]
fn a_table_that_cannot_fit_is_an_error_naming_it() {
    let e = err(Trainer::<Huge>::new(Cpu::default(), TrainConfig::default()));
    assert_mentions(
        &e,
        &["`user`", "400000000 rows x 288 dims", "TB", "available"],
    );
}

#[test]
fn learning_rates_and_optimizer_settings_are_checked() {
    for lr in [f64::NAN, f64::INFINITY, 0.0, -1e-3] {
        let c = TrainConfig {
            dense_lr: lr,
            ..TrainConfig::default()
        };
        let e = err(Trainer::<Tiny>::new(Cpu::default(), c));
        assert_mentions(&e, &["dense_lr", "finite and > 0"]);
    }
    let c = TrainConfig {
        embeddings: RowOptimizerConfig::LazyAdam {
            lr: f32::NAN,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            weight_decay: 0.0,
        },
        ..TrainConfig::default()
    };
    assert_mentions(
        &err(Trainer::<Tiny>::new(Cpu::default(), c)),
        &["embeddings' learning rate"],
    );
    let c = TrainConfig {
        dense_betas: [1.0, 0.999],
        ..TrainConfig::default()
    };
    assert_mentions(
        &err(Trainer::<Tiny>::new(Cpu::default(), c)),
        &["dense_betas[0]"],
    );
    assert_mentions(
        &err(Trainer::<Tiny>::new(
            Cpu::default(),
            TrainConfig::default().with_batch_size(0),
        )),
        &["batch_size"],
    );
}

// ------------------------------------------------------------------ checkpoints

/// Every weight of a trainer (network tensors, then tables).
fn weights(t: &Trainer<Tiny>) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.safetensors");
    t.network.save_safetensors(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let mut v: Vec<f32> = bytes.iter().map(|&b| f32::from(b)).collect();
    v.extend(t.embeddings.tables.iter().flat_map(|tb| tb.weights.clone()));
    v
}

/// Rewrites a checkpoint through `edit` (name → tensor), without its checksum.
fn rewrite(path: &Path, edit: impl Fn(&str, Vec<usize>, Vec<u8>) -> Option<(Vec<usize>, Vec<u8>)>) {
    use ::safetensors::tensor::{SafeTensors, TensorView};
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut info = meta.metadata().clone().unwrap_or_default();
    info.remove("mtl.checksum");
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut kept = Vec::new();
    for (name, view) in file.tensors() {
        let name: String = name;
        if let Some((shape, data)) = edit(&name, view.shape().to_vec(), view.data().to_vec()) {
            kept.push((name, view.dtype(), shape, data));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = kept
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    ::safetensors::tensor::serialize_to_file(views, &Some(info), path).unwrap();
}

fn trained_checkpoint(dir: &Path) -> (Trainer<Tiny>, std::path::PathBuf) {
    let mut t = trainer(TrainConfig::default().with_batch_size(50));
    t.fit(&dataset(200), None).unwrap();
    let path = dir.join("tiny.ckpt");
    t.save_checkpoint(&path).unwrap();
    (t, path)
}

#[test]
fn flipped_bits_in_a_checkpoint_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = trained_checkpoint(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 7] ^= 0x10; // inside the last tensor's data
    std::fs::write(&path, bytes).unwrap();
    let mut fresh = trainer(TrainConfig::default());
    let before = weights(&fresh);
    assert_mentions(
        &err(fresh.load_checkpoint(&path)),
        &["tiny.ckpt", "checksum", "corrupt"],
    );
    assert!(weights(&fresh) == before, "a failed load changes nothing");
}

#[test]
fn checkpoint_tensors_must_have_their_exact_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = trained_checkpoint(dir.path());
    // Optimizer state shorter than the model's.
    let short = dir.path().join("short.ckpt");
    std::fs::copy(&path, &short).unwrap();
    rewrite(&short, |name, shape, data| {
        if name == "row_opt/user/steps" {
            Some((vec![shape[0] - 1], data[..data.len() - 4].to_vec()))
        } else {
            Some((shape, data))
        }
    });
    let mut fresh = trainer(TrainConfig::default());
    let before = weights(&fresh);
    assert_mentions(
        &err(fresh.load_checkpoint(&short)),
        &["row_opt/user/steps", "[9]", "[10]"],
    );
    assert!(weights(&fresh) == before);
    // A transposed dense weight: the same bytes, another shape.
    let transposed = dir.path().join("transposed.ckpt");
    std::fs::copy(&path, &transposed).unwrap();
    rewrite(&transposed, |name, shape, data| {
        if name == "dense/body.0.weight" {
            Some((vec![shape[1], shape[0]], data))
        } else {
            Some((shape, data))
        }
    });
    assert_mentions(
        &err(fresh.load_checkpoint(&transposed)),
        &["dense/body.0.weight", "[5, 8]"],
    );
    // A missing table: nothing is loaded (the dense weights were checked first and are kept).
    let missing = dir.path().join("missing.ckpt");
    std::fs::copy(&path, &missing).unwrap();
    rewrite(&missing, |name, shape, data| {
        (name != "embedding/user").then_some((shape, data))
    });
    assert_mentions(
        &err(fresh.load_checkpoint(&missing)),
        &["embedding/user", "missing"],
    );
    assert!(weights(&fresh) == before, "all or nothing");
    // The good one loads.
    fresh.load_checkpoint(&path).unwrap();
    assert!(weights(&fresh) != before);
}

#[test]
fn concurrent_saves_to_one_path_never_mix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.ckpt");
    let mut a = trainer(TrainConfig::default().with_batch_size(50).with_seed(1));
    let mut b = trainer(TrainConfig::default().with_batch_size(50).with_seed(2));
    a.fit(&dataset(100), None).unwrap();
    b.fit(&dataset(150), None).unwrap();
    let (wa, wb) = (weights(&a), weights(&b));
    assert!(wa != wb);
    for _ in 0..20 {
        std::thread::scope(|s| {
            s.spawn(|| a.save_checkpoint(&path).unwrap());
            s.spawn(|| b.save_checkpoint(&path).unwrap());
        });
        let mut t = trainer(TrainConfig::default());
        t.load_checkpoint(&path).unwrap();
        let w = weights(&t);
        assert!(w == wa || w == wb, "the file is one of the two, whole");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "shared.ckpt")
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files left: {leftovers:?}"
    );
}

/// The child of `a_killed_saver_never_loses_its_checkpoint`: saves two alternating states
/// to `MTL_CRASH_PATH` until killed.
#[test]
#[ignore = "run by a_killed_saver_never_loses_its_checkpoint in a child process"]
fn crash_safety_child() {
    let Some(path) = std::env::var_os("MTL_CRASH_PATH") else {
        return;
    };
    let (a, b) = crash_states();
    a.save_checkpoint(&path).unwrap();
    // Tells the parent this child is saving now (the file alone may be an earlier round's).
    if let Some(marker) = std::env::var_os("MTL_CRASH_MARKER") {
        std::fs::write(marker, b"saving").unwrap();
    }
    loop {
        b.save_checkpoint(&path).unwrap();
        a.save_checkpoint(&path).unwrap();
    }
}

/// Two trainers whose checkpoints differ, built the same way in parent and child.
fn crash_states() -> (Trainer<Tiny>, Trainer<Tiny>) {
    let mut a = trainer(TrainConfig::default().with_batch_size(50).with_seed(1));
    let mut b = trainer(TrainConfig::default().with_batch_size(50).with_seed(2));
    a.fit(&dataset(100), None).unwrap();
    b.fit(&dataset(150), None).unwrap();
    (a, b)
}

#[test]
fn a_killed_saver_never_loses_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.ckpt");
    let marker = dir.path().join("saving");
    let (a, b) = crash_states();
    let (wa, wb) = (weights(&a), weights(&b));
    let mut delay = 0x2545_f491_4f6c_dd1du64;
    for round in 0..20 {
        let _ = std::fs::remove_file(&marker);
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_safety_child", "--ignored", "--nocapture"])
            .env("MTL_CRASH_PATH", &path)
            .env("MTL_CRASH_MARKER", &marker)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Until this child has saved once and is in its saving loop, then a pseudo-random
        // moment.
        while !marker.exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        delay ^= delay << 13;
        delay ^= delay >> 7;
        delay ^= delay << 17;
        std::thread::sleep(std::time::Duration::from_millis(20 + delay % 200));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut t = trainer(TrainConfig::default());
        t.load_checkpoint(&path)
            .unwrap_or_else(|e| panic!("round {round}: the last checkpoint does not load: {e}"));
        let w = weights(&t);
        assert!(w == wa || w == wb, "round {round}: a mixed checkpoint");
    }
}

// ------------------------------------------------------------------ non-finite training

#[test]
fn a_blown_up_step_changes_no_weight() {
    // A learning rate this large makes step 0's update overflow the next forward pass: step 1
    // fails, and the weights must be those step 0 left.
    let data = dataset(100);
    for fused in [true, false] {
        let mut cfg = TrainConfig::default()
            .with_batch_size(50)
            .with_fused_cpu(fused);
        cfg.shuffle = false;
        cfg.dense_lr = 1e35;
        let mut t = trainer(cfg.clone());
        let e = err(t.fit(&data, None));
        assert_mentions(&e, &["step 1", "before this step changed any weight"]);
        let mut one = trainer(cfg);
        one.fit(&data.slice(0..50), None).unwrap();
        assert!(
            weights(&t) == weights(&one),
            "fused {fused}: the weights of step 0"
        );
    }
}

// ------------------------------------------------------------------ data that looks valid

#[test]
fn float64_values_beyond_float32_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.parquet");
    write_parquet(
        &path,
        vec![
            (
                "user",
                Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
            ),
            ("price", Arc::new(Float64Array::from(vec![1.0, 1e300, 2.0]))),
            ("click", Arc::new(Int8Array::from(vec![0, 1, 0]))),
            ("kind", Arc::new(Int64Array::from(vec![0, 1, 2]))),
        ],
    );
    let e = err(Dataset::open_with(
        &path,
        &LoadOptions::default().with_schema(schema()),
    ));
    assert_mentions(&e, &["big.parquet", "`price`", "float32", "row 1", "1e300"]);
}

#[test]
fn multiclass_targets_must_be_classes() {
    for bad in [7.0, -1.0, 1.5] {
        let mut kind: Vec<f32> = (0..100).map(|i| (i % 3) as f32).collect();
        kind[42] = bad;
        let data = dataset_with_kind(kind);
        for fused in [true, false] {
            let mut t = trainer(
                TrainConfig::default()
                    .with_batch_size(50)
                    .with_fused_cpu(fused),
            );
            let e = err(t.fit(&data, None));
            assert_mentions(
                &e,
                &[
                    "task `kind`",
                    &format!("target {bad}"),
                    "not a class",
                    "[0, 3)",
                ],
            );
        }
        let t = trainer(TrainConfig::default().with_batch_size(50));
        assert_mentions(&err(t.evaluate(&data)), &["task `kind`", "not a class"]);
    }
}

#[test]
fn parquet_page_checksums_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crc.parquet");
    let good = std::fs::read("tests/fixtures/crc/with_page_crc.parquet").unwrap();
    // The fixture's columns: `user_id` (ids 0..9) and `click`.
    let options = LoadOptions::default().with_schema(
        Schema::new([
            ColumnSchema::new("user_id")
                .with_tags(["categorical"])
                .unwrap()
                .with_dtype(DType::Int64)
                .with_int_domain(0, 255, None),
            ColumnSchema::new("click")
                .with_tags(["binary_classification", "target"])
                .unwrap()
                .with_dtype(DType::Int8),
        ])
        .unwrap(),
    );
    std::fs::write(&path, &good).unwrap();
    Dataset::open_with(&path, &options).unwrap();
    let mut bad = good.clone();
    bad[300] ^= 0x01; // a value byte of the `user_id` data page
    std::fs::write(&path, &bad).unwrap();
    let e = err(Dataset::open_with(&path, &options));
    assert!(
        e.contains("crc.parquet") && e.to_lowercase().contains("crc"),
        "{e}"
    );
}

#[test]
fn a_column_twice_in_a_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twice.parquet");
    write_parquet(
        &path,
        vec![
            ("user", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
            ("price", Arc::new(Float64Array::from(vec![1.0, 2.0]))),
            ("click", Arc::new(Int8Array::from(vec![0, 1]))),
            ("click", Arc::new(Int8Array::from(vec![1, 1]))),
            ("kind", Arc::new(Int64Array::from(vec![0, 1]))),
        ],
    );
    let e = err(Dataset::open_with(
        &path,
        &LoadOptions::default().with_schema(schema()),
    ));
    assert_mentions(&e, &["twice.parquet", "`click`", "appears twice"]);
}

#[test]
fn zero_rows_are_errors() {
    let empty = dataset(0);
    let mut t = trainer(TrainConfig::default());
    assert_mentions(&err(t.fit(&empty, None)), &["training data has no rows"]);
    assert_mentions(
        &err(t.fit(&dataset(100), Some(&empty))),
        &["evaluate has no rows"],
    );
    assert_mentions(&err(t.evaluate(&empty)), &["no rows"]);
}

#[test]
fn an_empty_schema_is_an_error() {
    for (name, text) in [
        ("schema.json", "{}"),
        ("schema.json", r#"{"feature": []}"#),
        ("schema.pbtxt", ""),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_parquet(
            &dir.path().join("part_0.parquet"),
            vec![("user", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)],
        );
        std::fs::write(dir.path().join(name), text).unwrap();
        assert_mentions(&err(Dataset::open(dir.path())), &["no columns"]);
    }
}

#[test]
fn schema_domains_are_read_and_enforced_exactly() {
    let pbtxt = r#"feature { name: "price" type: FLOAT float_domain { min: 0 max: inf } }"#;
    let s = mtl::schema::pbtxt::from_str(pbtxt, "inline.pbtxt").unwrap();
    assert_eq!(
        s.get("price").unwrap().float_domain(),
        Some((0.0, f64::INFINITY))
    );
    // Ids below the domain's min, and a u64 id beyond i64::MAX printed as it is.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ids.parquet");
    let with_min = Schema::new([ColumnSchema::new("user")
        .with_tags(["categorical"])
        .unwrap()
        .with_dtype(DType::Int64)
        .with_int_domain(1, 9, None)])
    .unwrap();
    write_parquet(
        &path,
        vec![(
            "user",
            Arc::new(Int64Array::from(vec![3, 0, 2])) as ArrayRef,
        )],
    );
    let e = err(Dataset::open_with(
        &path,
        &LoadOptions::default().with_schema(with_min.clone()),
    ));
    assert_mentions(&e, &["`user`", "outside [1, 9]", "row 1", ": 0"]);
    write_parquet(
        &path,
        vec![(
            "user",
            Arc::new(UInt64Array::from(vec![3, u64::MAX])) as ArrayRef,
        )],
    );
    let e = err(Dataset::open_with(
        &path,
        &LoadOptions::default().with_schema(with_min),
    ));
    assert_mentions(&e, &["18446744073709551615"]);
}

// ------------------------------------------------------------------ preprocessing

fn preprocess(csv: &str, out: &Path) -> mtl::Result<()> {
    let dir = out.parent().unwrap();
    let input_path = dir.join(format!("raw-{}.csv", csv.len()));
    std::fs::write(&input_path, csv).unwrap();
    PreprocessConfig::new()
        .continuous(&["price"])
        .others(Role::Categorical)
        .target(Target::binary("click"))
        .split(Split::train_valid_test(0.6, 0.2, 0.2, 1))
        .run(&Input::csv(&input_path, CsvOptions::default()), out)
        .map(|_| ())
}

fn good_csv(rows: usize) -> String {
    let mut s = String::from("user,price,click\n");
    for i in 0..rows {
        s.push_str(&format!("u{},{}.5,{}\n", i % 7, i % 13, i % 2));
    }
    s
}

#[test]
fn preprocessing_rejects_values_it_cannot_represent() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut csv = good_csv(30);
    csv.push_str("u1,1e300,1\n");
    let e = err(preprocess(&csv, &out));
    assert_mentions(&e, &[":32:", "column `price`", "1e300"]);
}

#[test]
fn an_unterminated_quote_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut csv = good_csv(10);
    csv.push_str("u1,\"2.5,1\nu2,3.5,0\nu3,4.5,1\n");
    let e = err(preprocess(&csv, &out));
    assert_mentions(&e, &[":12:", "quote opened on this line is never closed"]);
}

#[test]
fn a_failed_preprocessing_run_keeps_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    preprocess(&good_csv(50), &out).unwrap();
    let part = out.join("train/part_0.parquet");
    let before = std::fs::read(&part).unwrap();
    let stats = std::fs::read(out.join("stats.json")).unwrap();
    let mut bad = good_csv(60);
    bad.push_str("u1,not-a-number,1\n");
    assert!(preprocess(&bad, &out).is_err());
    assert_eq!(
        std::fs::read(&part).unwrap(),
        before,
        "the old part file is whole"
    );
    assert_eq!(std::fs::read(out.join("stats.json")).unwrap(), stats);
    Dataset::open(out.join("train")).unwrap();
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".mtl-")), "{names:?}");
}

// ------------------------------------------------------------------ outputs and streaming

#[test]
fn predictions_never_overwrite_their_input() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    dataset(120)
        .write_parquet(&data_dir, &mtl::data::WriteOptions::default())
        .unwrap();
    let data = Dataset::open(&data_dir).unwrap();
    let part = data.files()[0].clone();
    let before = std::fs::read(&part).unwrap();
    let t = trainer(TrainConfig::default());
    let e = err(t.predict_to_parquet(&data, &["user"], &part));
    assert_mentions(&e, &["is the file the predictions are computed from"]);
    assert_eq!(std::fs::read(&part).unwrap(), before);
    let out = dir.path().join("predictions.parquet");
    t.predict_to_parquet(&data, &["user"], &out).unwrap();
    assert!(out.exists());
}

#[test]
fn streaming_reads_a_huge_row_group_in_slices() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300_000usize;
    write_parquet(
        &dir.path().join("part_0.parquet"),
        vec![
            (
                "user",
                Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| i % 10))) as ArrayRef,
            ),
            (
                "price",
                Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64))),
            ),
            (
                "click",
                Arc::new(Int8Array::from_iter_values((0..n).map(|i| (i % 2) as i8))),
            ),
            (
                "kind",
                Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| i % 3))),
            ),
        ],
    );
    schema().write_json(dir.path().join("schema.json")).unwrap();
    let data = StreamingDataset::open(dir.path())
        .unwrap()
        .with_shuffle_buffer_rows(10_000);
    assert_eq!(data.max_chunk_rows(), Some(n), "one row group");
    let mut batches = data
        .batches(mtl::data::BatchOptions::new(1000).with_seed(3), 0)
        .unwrap();
    let mut rows = 0;
    while let Some(b) = mtl::data::BatchSource::next_batch(&mut batches).unwrap() {
        rows += b.len();
    }
    assert_eq!(rows, n);
    let peak = batches.peak_resident_rows();
    assert!(
        peak <= 10_000 + mtl::data::READ_SLICE_ROWS && peak < n / 3,
        "peak {peak} rows resident"
    );
}

// ------------------------------------------------------------------ the schema parsers

/// Mutations of the real schema files never make a parser panic (a bounded run of the fuzz
/// targets in `fuzz/`, for CI).
#[test]
fn mutated_schema_files_never_panic() {
    let files = [
        "tests/fixtures/merlin-tenrec-video/schema.pbtxt",
        "tests/fixtures/merlin-tenrec-video/schema.json",
        "data/pytorch-reference/schema.pbtxt",
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let tokens: [&[u8]; 8] = [b"{", b"}", b"\"", b"\\", b":", b"[", b"\\377", b"\n"];
    for file in files {
        let original = std::fs::read(file).unwrap();
        for round in 0..1500 {
            let mut bytes = original.clone();
            for _ in 0..1 + next(4) {
                let at = next(bytes.len());
                match next(5) {
                    0 => bytes[at] = next(256) as u8,
                    1 => bytes.truncate(at),
                    2 => {
                        let end = (at + next(64)).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    3 => {
                        let t = tokens[next(tokens.len())];
                        bytes.splice(at..at, t.iter().copied());
                    }
                    _ => {
                        let end = (at + next(256)).min(bytes.len());
                        let copy = bytes[at..end].to_vec();
                        bytes.splice(at..at, copy);
                    }
                }
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let parsed = std::panic::catch_unwind(|| {
                if file.ends_with(".json") {
                    let _ = mtl::schema::json::from_str(&text, "fuzz.json");
                } else {
                    let _ = mtl::schema::pbtxt::from_str(&text, "fuzz.pbtxt");
                }
            });
            assert!(
                parsed.is_ok(),
                "{file}, mutation {round}: the parser panicked on:\n{text}"
            );
        }
    }
}

mtl_model! {
    /// A dense network of 2e10 parameters (80 GB of weights alone).
    pub struct WideNet {
        inputs: { x: continuous(width = 100000) },
        body: mlp[100000, 100000],
        tasks: { y: regression },
    }
}

#[test]
fn a_dense_network_that_cannot_fit_is_an_error() {
    let e = err(Trainer::<WideNet>::new(
        Cpu::default(),
        TrainConfig::default(),
    ));
    assert_mentions(
        &e,
        &["dense network", "20000300001 parameters", "available"],
    );
}
