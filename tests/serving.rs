//! From a trained model to served predictions: the model file and the fitted preprocessing
//! reloaded into a `Predictor`, raw rows without labels scored (CSV, Parquet, record batches,
//! text rows), raw id columns kept exactly, unseen categories counted, and the errors a
//! serving setup meets (wrong model file, wrong preprocessing, missing columns).

use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use mtl::data::Dataset;
use mtl::prelude::*;
use mtl::preprocess::{presets, Fitted, Input};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

mtl_model! {
    /// The DeepCTR Census-Income sample's model (as in tests/preprocess.rs).
    pub struct CensusServe {
        schema: "tests/fixtures/census-income-sample/schema.json",
        body: mlp[16],
        tasks: { income: binary(metrics = [auc]), marital: binary(metrics = [auc]) },
    }
}

mtl_model! {
    /// Another model over the same schema: its files must not load as `CensusServe`.
    pub struct CensusOther {
        schema: "tests/fixtures/census-income-sample/schema.json",
        body: mlp[8],
        tasks: { income: binary },
    }
}

const RAW: &str = "data/census-income-kdd/deepctr_census-income.sample";
/// Columns the targets are derived from: a scoring request does not have them.
const TARGET_SOURCES: [&str; 2] = ["marital_stat", "income_50k"];

/// The raw sample's header and rows as text (`?` is null), as the preset reads them.
fn raw_rows() -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let mut header = vec!["row_index".to_string()];
    header.extend(presets::CENSUS_INCOME_COLUMNS.iter().map(|c| c.to_string()));
    let text = std::fs::read_to_string(RAW).unwrap();
    let rows = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<Option<String>> = line
                .split(',')
                .map(|c| Some(c.trim().to_string()).filter(|c| c != "?" && !c.is_empty()))
                .collect();
            assert_eq!(cells.len(), header.len());
            cells
        })
        .collect();
    (header, rows)
}

/// Preprocesses the sample into `dir/encoded`, trains two epochs, saves the model file and
/// the full checkpoint; returns the trainer.
fn train(dir: &Path) -> Trainer<CensusServe> {
    let (csv, config) = presets::census_income_kdd_deepctr_sample(2, 2024);
    config
        .run(&Input::csv(RAW, csv), dir.join("encoded"))
        .unwrap();
    let train = Dataset::open(dir.join("encoded/train")).unwrap();
    let config = TrainConfig::default()
        .with_epochs(2)
        .with_batch_size(32)
        .with_seed(7);
    let mut trainer = Trainer::<CensusServe>::new(Cpu::default(), config).unwrap();
    trainer.fit(&train, None).unwrap();
    trainer.save_model(dir.join("model.safetensors")).unwrap();
    trainer
        .save_checkpoint(dir.join("checkpoint.safetensors"))
        .unwrap();
    trainer
}

/// The request: every raw column but the target sources, as strings, plus an int64 request
/// id above 2^53 (not representable as a float64) that must come back unchanged.
fn request_batch(header: &[String], rows: &[Vec<Option<String>>]) -> RecordBatch {
    let mut columns: Vec<(String, ArrayRef)> = vec![(
        "request_id".into(),
        Arc::new(Int64Array::from_iter_values(
            (0..rows.len() as i64).map(|i| (1 << 53) + 2 * i + 1),
        )),
    )];
    for (c, name) in header.iter().enumerate() {
        if TARGET_SOURCES.contains(&name.as_str()) {
            continue;
        }
        let values: StringArray = rows.iter().map(|r| r[c].as_deref()).collect();
        columns.push((name.clone(), Arc::new(values)));
    }
    RecordBatch::try_from_iter(columns).unwrap()
}

fn column_f32(batch: &RecordBatch, name: &str) -> Vec<f32> {
    let array = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("{name}"));
    array.as_primitive::<Float32Type>().values().to_vec()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn predictor_scores_raw_rows_like_the_trainer() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = train(dir.path());
    let fitted = Fitted::load(dir.path().join("encoded")).unwrap();

    // The trainer's predictions on all 200 rows, encoded with the same fitted state.
    let (csv, _) = presets::census_income_kdd_deepctr_sample(2, 2024);
    fitted
        .transform(&Input::csv(RAW, csv.clone()), &dir.path().join("all"))
        .unwrap();
    let all = Dataset::open(dir.path().join("all")).unwrap();
    let expected = trainer.predict(&all).unwrap();
    assert_eq!(expected[0].len(), 200);

    let predictor = Predictor::<CensusServe>::load(dir.path().join("model.safetensors"))
        .unwrap()
        .with_preprocessing(fitted.clone())
        .unwrap();
    let names: Vec<String> = predictor.outputs().into_iter().map(|o| o.name).collect();
    assert_eq!(names, ["income/binary_output", "marital/binary_output"]);
    assert!(!predictor
        .required_columns()
        .iter()
        .any(|c| TARGET_SOURCES.contains(&c.as_str())));

    // Encoded data: the same scores as the trainer, also written with no column kept.
    let encoded = predictor.predict(&all).unwrap();
    for t in 0..2 {
        assert!(max_abs_diff(&encoded[t], &expected[t]) < 1e-6);
    }
    let only_scores = dir.path().join("only_scores.parquet");
    predictor
        .predict_to_parquet(&all, &[], &only_scores)
        .unwrap();
    let file = std::fs::File::open(&only_scores).unwrap();
    let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let written = arrow_select_concat(&batches);
    assert_eq!(written.num_columns(), 2);
    assert_eq!(column_f32(&written, "income/binary_output"), encoded[0]);

    // A raw Parquet file without targets, the request id kept as an exact int64.
    let (header, rows) = raw_rows();
    let batch = request_batch(&header, &rows);
    let raw = dir.path().join("requests.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&raw).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    // Encoding it without labels gives the same inputs, hence the same scores.
    let encoded_dir = dir.path().join("requests_encoded");
    let seen = fitted
        .transform_inputs(&Input::parquet(&raw), &encoded_dir)
        .unwrap();
    assert_eq!(seen.rows, 200);
    let inputs_only = Dataset::open(&encoded_dir).unwrap();
    assert!(inputs_only.layout().get("income").is_none());
    let scores = predictor.predict(&inputs_only).unwrap();
    assert!(max_abs_diff(&scores[0], &expected[0]) < 1e-6);
    let err = fitted
        .transform(&Input::parquet(&raw), &dir.path().join("refused"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("marital_stat") || err.contains("income_50k"),
        "{err}"
    );
    let out = dir.path().join("scores.parquet");
    let report = predictor
        .with_batch_size(64)
        .unwrap()
        .score_file(&Input::parquet(&raw), &["request_id"], &out)
        .unwrap();
    assert_eq!(report.rows, 200);
    let scored: Vec<RecordBatch> =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let scored = arrow_select_concat(&scored);
    let ids = scored.column(0).as_primitive::<Int64Type>();
    assert_eq!(scored.schema().field(0).name(), "request_id");
    assert_eq!(
        ids.values(),
        batch.column(0).as_primitive::<Int64Type>().values()
    );
    let names: Vec<String> = scored
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "request_id",
            "income/binary_output",
            "marital/binary_output"
        ]
    );
    assert!(max_abs_diff(&column_f32(&scored, "income/binary_output"), &expected[0]) < 1e-6);
    assert!(max_abs_diff(&column_f32(&scored, "marital/binary_output"), &expected[1]) < 1e-6);
    // The preprocessing counted what it saw: nulls (`?` cells) and no unseen category
    // beyond the rare ones (which map to the out-of-vocabulary row, as in training).
    assert!(report.nulls.values().sum::<u64>() > 0);

    // The raw CSV (targets present but unused) gives the same scores; kept columns as text.
    let predictor = Predictor::<CensusServe>::load(dir.path().join("checkpoint.safetensors"))
        .unwrap()
        .with_preprocessing(fitted)
        .unwrap();
    let out_csv = dir.path().join("scores_csv.parquet");
    predictor
        .score_file(&Input::csv(RAW, csv), &["row_index"], &out_csv)
        .unwrap();
    let scored: Vec<RecordBatch> =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out_csv).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let scored = arrow_select_concat(&scored);
    assert_eq!(scored.column(0).as_string::<i32>().value(0), "138481");
    assert!(max_abs_diff(&column_f32(&scored, "income/binary_output"), &expected[0]) < 1e-6);

    // Text rows (a JSON request's shape) give the same scores too.
    let (scored, _) = predictor.score_rows(&header, &rows[..5], &[]).unwrap();
    assert_eq!(scored.num_columns(), 2);
    assert!(
        max_abs_diff(
            &column_f32(&scored, "marital/binary_output"),
            &expected[1][..5]
        ) < 1e-6
    );
}

/// Concatenates record batches of one schema (the test reads files in several batches).
fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
    let schema = batches[0].schema();
    let columns = (0..schema.fields().len())
        .map(|c| {
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            concat(&parts)
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

fn concat(parts: &[&dyn Array]) -> ArrayRef {
    use arrow_array::types::Float32Type as F;
    match parts[0].data_type() {
        arrow_schema::DataType::Int64 => Arc::new(Int64Array::from_iter_values(
            parts
                .iter()
                .flat_map(|p| p.as_primitive::<Int64Type>().values().to_vec()),
        )),
        arrow_schema::DataType::Float32 => Arc::new(arrow_array::Float32Array::from_iter_values(
            parts
                .iter()
                .flat_map(|p| p.as_primitive::<F>().values().to_vec()),
        )),
        _ => Arc::new(StringArray::from_iter(parts.iter().flat_map(|p| {
            let s = p.as_string::<i32>();
            (0..s.len())
                .map(|i| s.is_valid(i).then(|| s.value(i).to_string()))
                .collect::<Vec<_>>()
        }))),
    }
}

#[test]
fn unseen_categories_take_the_oov_row_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    let predictor = Predictor::<CensusServe>::load(dir.path().join("model.safetensors"))
        .unwrap()
        .with_preprocessing(Fitted::load(dir.path().join("encoded")).unwrap())
        .unwrap();
    let (header, mut rows) = raw_rows();
    let edu = header.iter().position(|h| h == "education").unwrap();
    let race = header.iter().position(|h| h == "race").unwrap();
    rows.truncate(3);
    // Categories below the fitted minimum frequency count as out-of-vocabulary already.
    let (_, before) = predictor.score_rows(&header, &rows, &[]).unwrap();
    let oov = |r: &mtl::preprocess::EncodeReport, c: &str| r.oov.get(c).copied().unwrap_or(0);
    rows[1][edu] = Some("a degree never seen".into());
    rows[2][edu] = Some("another unseen one".into());
    rows[2][race] = Some("unseen too".into());
    let (scored, report) = predictor
        .score_rows(&header, &rows, &["row_index"])
        .unwrap();
    assert_eq!(report.rows, 3);
    assert_eq!(oov(&report, "education"), oov(&before, "education") + 2);
    assert_eq!(oov(&report, "race"), oov(&before, "race") + 1);
    assert_eq!(report.total_oov(), before.total_oov() + 3);
    // Two different unseen values are the same row to the model.
    rows[1] = rows[2].clone();
    rows[1][edu] = Some("yet another".into());
    rows[1][race] = Some("and another".into());
    let (again, _) = predictor.score_rows(&header, &rows, &[]).unwrap();
    let p = column_f32(&again, "income/binary_output");
    assert_eq!(p[1], p[2]);
    assert_eq!(p[2], column_f32(&scored, "income/binary_output")[2]);
}

#[test]
fn serving_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    let model = dir.path().join("model.safetensors");
    let fitted = Fitted::load(dir.path().join("encoded")).unwrap();

    // Another model's file.
    let err = Predictor::<CensusOther>::load(&model)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("another model"),
        "{err}"
    );

    // Raw data without the preprocessing.
    let predictor = Predictor::<CensusServe>::load(&model).unwrap();
    let (header, rows) = raw_rows();
    let err = predictor
        .score_rows(&header, &rows[..2], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("with_preprocessing"), "{err}");

    // A preprocessing fitted with another threshold has bigger vocabularies than the tables.
    let (csv, config) = presets::census_income_kdd_deepctr_sample(1, 2024);
    let other = config.fit(&Input::csv(RAW, csv)).unwrap();
    let err = Predictor::<CensusServe>::load(&model)
        .unwrap()
        .with_preprocessing(other)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("embedding rows") && err.contains("trained with"),
        "{err}"
    );

    let predictor = predictor.with_preprocessing(fitted).unwrap();
    // A request without an input column.
    let edu = header.iter().position(|h| h == "education").unwrap();
    let mut short_header = header.clone();
    short_header.remove(edu);
    let short_rows: Vec<Vec<Option<String>>> = rows[..2]
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.remove(edu);
            r
        })
        .collect();
    let err = predictor
        .score_rows(&short_header, &short_rows, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("education"), "{err}");
    // A kept column that is not there, a row of the wrong length, a bad number.
    let err = predictor
        .score_rows(&header, &rows[..2], &["request_id"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`request_id` to keep"), "{err}");
    let err = predictor
        .score_rows(&header, &[vec![None]], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 1 has 1 values"), "{err}");
    let age = header.iter().position(|h| h == "age").unwrap();
    let mut bad = rows[..2].to_vec();
    bad[1][age] = Some("forty".into());
    let err = predictor
        .score_rows(&header, &bad, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("row 2") && err.contains("`age`") && err.contains("forty"),
        "{err}"
    );
    // Scoring onto the input file is refused; nothing is written on failure.
    let out = dir.path().join("never.parquet");
    let err = predictor
        .score_file(
            &Input::parquet(dir.path().join("missing.parquet")),
            &[],
            &out,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.parquet"), "{err}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("partial"))
            .count(),
        0
    );
}

// ---------------------------------------------------------------- the HTTP scoring server

#[path = "../examples/serve/app.rs"]
mod app;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn call(client: &HttpClient, method: &str, url: &str, body: &str) -> (u16, Value) {
    let request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The raw sample rows as JSON objects (no label sources), with request ids above 2^53.
fn json_rows(header: &[String], rows: &[Vec<Option<String>>]) -> Vec<Value> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let mut object = serde_json::Map::new();
            object.insert(
                "request_id".into(),
                json!(9_007_199_254_740_993u64 + i as u64),
            );
            for (c, value) in header.iter().zip(row) {
                if TARGET_SOURCES.contains(&c.as_str()) {
                    continue;
                }
                // Numbers as JSON numbers where they are numbers, as clients send them.
                let v = match value.as_deref().map(|v| (v, v.parse::<i64>())) {
                    Some((_, Ok(n))) => json!(n),
                    Some((v, Err(_))) => json!(v),
                    None => Value::Null,
                };
                object.insert(c.clone(), v);
            }
            Value::Object(object)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_server_scores_validates_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = tokio::task::block_in_place(|| train(dir.path()));
    let fitted = Fitted::load(dir.path().join("encoded")).unwrap();
    let predictor = Predictor::<CensusServe>::load(dir.path().join("model.safetensors"))
        .unwrap()
        .with_preprocessing(fitted.clone())
        .unwrap();
    let scorer = Arc::new(app::Scorer::new(predictor, 64));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(listener, app::router(scorer), async {
        let _ = stopped.await;
    }));
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    let (status, health) = call(&client, "GET", &format!("{base}/health"), "").await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));
    let (status, meta) = call(&client, "GET", &format!("{base}/v1/metadata"), "").await;
    assert_eq!(status, 200);
    assert_eq!(meta["model"], "CensusServe");
    assert_eq!(meta["max_rows"], 64);
    let outputs: Vec<&str> = meta["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(outputs, ["income/binary_output", "marital/binary_output"]);
    let age = meta["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "age")
        .unwrap();
    assert_eq!(age["kind"], "continuous");

    // Real rows: the same scores as the trainer on the same rows, ids back exactly.
    let (header, rows) = raw_rows();
    let (csv, _) = presets::census_income_kdd_deepctr_sample(2, 2024);
    fitted
        .transform(&Input::csv(RAW, csv), &dir.path().join("all"))
        .unwrap();
    let expected = trainer
        .predict(&Dataset::open(dir.path().join("all")).unwrap())
        .unwrap();
    let objects = json_rows(&header, &rows[..40]);
    let body = json!({ "rows": objects, "keep": ["request_id"] }).to_string();
    let (status, scored) = call(&client, "POST", &format!("{base}/v1/score"), &body).await;
    assert_eq!(status, 200, "{scored}");
    assert_eq!(scored["rows"], 40);
    let scores = scored["scores"].as_array().unwrap();
    for (i, s) in scores.iter().enumerate() {
        assert_eq!(
            s["request_id"].as_u64(),
            Some(9_007_199_254_740_993 + i as u64)
        );
        let income = s["income/binary_output"].as_f64().unwrap() as f32;
        let marital = s["marital/binary_output"].as_f64().unwrap() as f32;
        assert!(
            (income - expected[0][i]).abs() < 1e-6,
            "row {i}: {income} vs {}",
            expected[0][i]
        );
        assert!((marital - expected[1][i]).abs() < 1e-6);
    }
    // The raw table's other columns (the weight) are accepted; an unseen category is counted.
    let mut row = objects[0].clone();
    row["education"] = json!("Doctorate of Nothing");
    let (status, scored) = call(
        &client,
        "POST",
        &format!("{base}/v1/score"),
        &json!({ "rows": [row], "keep": ["request_id"] }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{scored}");
    assert_eq!(scored["unseen"]["education"], 1);

    // Validation: status and a message naming the problem.
    let post = |body: Value| {
        let (client, url) = (client.clone(), format!("{base}/v1/score"));
        async move { call(&client, "POST", &url, &body.to_string()).await }
    };
    let with = |key: &str, value: Value| {
        let mut row = objects[1].clone();
        row[key] = value;
        json!({ "rows": [row], "keep": ["request_id"] })
    };
    let without = |key: &str| {
        let mut row = objects[1].clone();
        row.as_object_mut().unwrap().remove(key);
        json!({ "rows": [row], "keep": ["request_id"] })
    };
    let cases: Vec<(Value, u16, &[&str])> = vec![
        (
            with("eduction", json!("x")),
            422,
            &["unknown column `eduction`", "did you mean `education`"],
        ),
        (
            without("education"),
            422,
            &["column `education` is missing"],
        ),
        (
            with("age", json!([1, 2])),
            422,
            &["column `age` is an array"],
        ),
        (with("age", json!("forty")), 422, &["`age`", "forty"]),
        (json!({ "rows": [] }), 422, &["empty"]),
        (
            json!({ "rows": vec![objects[0].clone(); 65] }),
            413,
            &["65 rows", "limit is 64"],
        ),
        (json!({ "rowz": [] }), 400, &["unknown field `rowz`"]),
        (
            json!({ "rows": [objects[0]], "keep": ["income/binary_output"] }),
            422,
            &["output column"],
        ),
        // An id the request does not ask to keep is a column the model does not know.
        (
            json!({ "rows": [objects[0]] }),
            422,
            &["unknown column `request_id`"],
        ),
    ];
    for (body, want, words) in cases {
        let (status, answer) = post(body.clone()).await;
        let message = answer["error"].as_str().unwrap_or_default();
        assert_eq!(status, want, "{body}: {answer}");
        for w in words {
            assert!(message.contains(w), "{body}: `{message}` lacks `{w}`");
        }
    }
    let (status, answer) = call(&client, "POST", &format!("{base}/v1/score"), "{not json").await;
    assert_eq!(status, 400, "{answer}");

    // Graceful shutdown: the server finishes and stops listening.
    stop.send(()).unwrap();
    drop(client);
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the server stops after the signal")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
            .await
            .is_err()
    );
}
