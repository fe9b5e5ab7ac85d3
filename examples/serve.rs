//! From a trained model to served scores, on Census-Income (KDD): train and package the
//! artefacts, serve them over HTTP, load-test the server.
//!
//! ```text
//! cargo run --release --example serve -- train   [--input data/census-income-kdd/census-income.test.gz]
//!                                                [--out data-out/serve] [--epochs 20]
//! cargo run --release --example serve -- serve   [--dir data-out/serve] [--addr 127.0.0.1:8080]
//!                                                [--max-rows 1024]
//! cargo run --release --example serve -- bench   [--dir data-out/serve] [--seconds 3]
//! ```
//!
//! `train` preprocesses the raw file (the `census_income` example's settings), trains the MMoE
//! with early stopping, and writes into `--out`: `encoded/` (the splits and the fitted
//! preprocessing), `model.safetensors` (weights only), `model.onnx`, `request.json` (three raw
//! rows without labels, for curl), `requests.json` (1,000 such rows, for `bench`) and
//! `onnx_check/` (encoded test rows and mtl's scores, which `scripts/onnxruntime_check.py`
//! compares with ONNX Runtime's).
//!
//! `serve` loads the model file and the preprocessing into a `Predictor` and serves
//! `examples/serve/app.rs`'s endpoints until Ctrl-C or SIGTERM (requests in flight finish).
//!
//! `bench` starts the same server on a loopback port and measures it from this process:
//! requests/s, rows/s and p50/p99 latency at batch 1 and 64 with 1 and 16 concurrent clients.

#[path = "serve/app.rs"]
mod app;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mtl::data::Dataset;
use mtl::export::OnnxOptions;
use mtl::prelude::*;
use mtl::preprocess::{check_schema_matches, presets, Fitted, Input};
use mtl::schema::{json, Schema};
use serde_json::{json, Value};

const SPLIT_SEED: u64 = 2024;
const MIN_FREQUENCY: u64 = 10;
const SCHEMA_PATH: &str = "examples/census_income/schema.json";
const COMPILED_SCHEMA: &str = include_str!("census_income/schema.json");
/// The raw columns the labels are derived from: requests do not carry them.
const LABEL_SOURCES: [&str; 2] = ["income_50k", "marital_stat"];

mtl_model! {
    /// The `census_income` example's MMoE: 8 experts, a softmax gate per task.
    pub struct CensusMmoe {
        schema: "examples/census_income/schema.json",
        body: mmoe(experts = 8, expert = mlp[32]),
        towers: mlp[16],
        tasks: { income: binary(metrics = [auc]), marital: binary(metrics = [auc]) },
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    command: String,
    input: PathBuf,
    dir: PathBuf,
    epochs: usize,
    addr: String,
    max_rows: usize,
    seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let command = raw.next().unwrap_or_default();
    if !["train", "serve", "bench"].contains(&command.as_str()) {
        return Err(format!(
            "unknown command `{command}`: use `train`, `serve` or `bench` (see examples/serve.rs)"
        ));
    }
    let mut args = Args {
        command,
        input: PathBuf::from("data/census-income-kdd/census-income.test.gz"),
        dir: PathBuf::from("data-out/serve"),
        epochs: 20,
        addr: "127.0.0.1:8080".into(),
        max_rows: 1024,
        seconds: 3.0,
    };
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().ok_or(format!("`{flag}` needs a value"));
        let number = |v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("`{flag}`: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--input" => args.input = value()?.into(),
            "--out" | "--dir" => args.dir = value()?.into(),
            "--epochs" => args.epochs = number(value()?)? as usize,
            "--addr" => args.addr = value()?,
            "--max-rows" => args.max_rows = number(value()?)? as usize,
            "--seconds" => args.seconds = number(value()?)?,
            other => return Err(format!("unknown flag `{other}` (see examples/serve.rs)")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), Failure> {
    let args = parse_args()?;
    match args.command.as_str() {
        "train" => train(&args),
        command => {
            let runtime = tokio::runtime::Runtime::new()?;
            let scorer = Arc::new(app::Scorer::new(load(&args)?, args.max_rows));
            if command == "serve" {
                runtime.block_on(serve(&args, scorer))
            } else {
                runtime.block_on(bench(&args, scorer))
            }
        }
    }
}

/// Preprocess, train, save the model, export ONNX, write sample requests and the ONNX check.
fn train(args: &Args) -> Result<(), Failure> {
    let started = Instant::now();
    let encoded = args.dir.join("encoded");
    let (csv, config) = presets::census_income_kdd(MIN_FREQUENCY, SPLIT_SEED);
    let raw = Input::csv(&args.input, csv);
    let report = config.run(&raw, &encoded)?;
    let compiled: Schema = json::from_str(COMPILED_SCHEMA, SCHEMA_PATH)?;
    check_schema_matches(&compiled, &report.schema, SCHEMA_PATH)?;
    let open = |s: &str| Dataset::open(encoded.join(s));
    let (train, valid, test) = (open("train")?, open("valid")?, open("test")?);

    let config = TrainConfig::default()
        .with_epochs(args.epochs)
        .with_batch_size(1024)
        .with_seed(0)
        .with_early_stopping(EarlyStopping::on("loss", 2));
    let mut trainer = Trainer::<CensusMmoe>::new(Cpu::default(), config)?;
    let history = trainer.fit(&train, Some(&valid))?;
    let metrics = trainer.evaluate(&test)?;
    println!(
        "trained {} epochs: test income AUC {:.4}, marital AUC {:.4}",
        history.epochs.len(),
        metrics.get("income/binary_output/auc").unwrap_or(f64::NAN),
        metrics.get("marital/binary_output/auc").unwrap_or(f64::NAN)
    );
    let model = args.dir.join("model.safetensors");
    trainer.save_model(&model)?;

    // Everything below uses only the saved artefacts, as a serving process would.
    let predictor =
        Predictor::<CensusMmoe>::load(&model)?.with_preprocessing(Fitted::load(&encoded)?)?;
    let onnx = predictor.export_onnx(args.dir.join("model.onnx"), &OnnxOptions::default())?;
    println!(
        "wrote {} ({} nodes, {} weights, opset {}); outputs: {}",
        onnx.model.display(),
        onnx.nodes,
        onnx.parameters,
        onnx.opset,
        onnx.outputs
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Raw rows as a client would send them: no label columns, a request id to join on.
    let (columns, rows) = raw.head(1000)?;
    let requests: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut object = serde_json::Map::new();
            object.insert(
                "request_id".into(),
                json!(9_007_199_254_740_993u64 + i as u64),
            );
            for (c, value) in columns.iter().zip(row) {
                if !LABEL_SOURCES.contains(&c.as_str()) {
                    object.insert(c.clone(), json!(value));
                }
            }
            Value::Object(object)
        })
        .collect();
    let write = |name: &str, value: Value| -> Result<(), Failure> {
        let path = args.dir.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&value)?)?;
        println!("wrote {}", path.display());
        Ok(())
    };
    write(
        "request.json",
        json!({ "rows": requests[..3], "keep": ["request_id"] }),
    )?;
    write("requests.json", Value::Array(requests))?;

    // The ONNX Runtime check's inputs: encoded test rows and mtl's scores for them.
    let check = args.dir.join("onnx_check");
    std::fs::create_dir_all(&check)?;
    let names: Vec<&str> = CensusMmoe::SPEC.features.iter().map(|f| f.name).collect();
    let batch = test.record_batch(0..test.num_rows())?.project(
        &names
            .iter()
            .map(|n| {
                test.layout()
                    .columns()
                    .iter()
                    .position(|c| c.schema.name == *n)
                    .unwrap()
            })
            .collect::<Vec<_>>(),
    )?;
    let file = std::fs::File::create(check.join("inputs.parquet"))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
    writer.write(&batch)?;
    writer.close()?;
    predictor.predict_to_parquet(&test, &[], check.join("predictions.parquet"))?;
    println!(
        "wrote {} (compare with: python3 scripts/onnxruntime_check.py {})",
        check.display(),
        args.dir.display()
    );
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn load(args: &Args) -> Result<Predictor<CensusMmoe>, Failure> {
    let missing = |what: &str| {
        format!(
            "{what} not found in {}: run `cargo run --release --example serve -- train` first",
            args.dir.display()
        )
    };
    let model = args.dir.join("model.safetensors");
    if !model.exists() {
        return Err(missing("model.safetensors").into());
    }
    let fitted = Fitted::load(args.dir.join("encoded"))
        .map_err(|e| format!("{}: {e}", missing("the preprocessing")))?;
    Ok(Predictor::<CensusMmoe>::load(model)?.with_preprocessing(fitted)?)
}

async fn serve(args: &Args, scorer: Arc<app::Scorer<CensusMmoe>>) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    println!(
        "serving {} on http://{} (POST /v1/score, GET /v1/metadata, GET /health); Ctrl-C stops",
        CensusMmoe::SPEC.name,
        listener.local_addr()?
    );
    app::serve(listener, app::router(scorer), shutdown_signal()).await?;
    println!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM (what `docker stop` and Kubernetes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// The load test: the server on a loopback port, clients in this process.
async fn bench(args: &Args, scorer: Arc<app::Scorer<CensusMmoe>>) -> Result<(), Failure> {
    let path = args.dir.join("requests.json");
    let rows: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}; run `cargo run --release --example serve -- train` first",
            path.display()
        )
    })?)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1/score", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(listener, app::router(scorer), async {
        let _ = stopped.await;
    }));
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    println!(
        "{} on loopback, {} cores shared by server and clients, {:.0} s per cell",
        CensusMmoe::SPEC.name,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        args.seconds
    );
    println!("| batch | concurrency | requests/s | rows/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    for batch in [1usize, 64] {
        // Request bodies, rotating through the sample rows.
        let bodies: Arc<Vec<Bytes>> = Arc::new(
            (0..16)
                .map(|k| {
                    let chunk: Vec<&Value> = (0..batch)
                        .map(|i| &rows[(k * batch + i) % rows.len()])
                        .collect();
                    Bytes::from(json!({ "rows": chunk, "keep": ["request_id"] }).to_string())
                })
                .collect(),
        );
        for concurrency in [1usize, 16] {
            let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
            let mut tasks = Vec::new();
            for worker in 0..concurrency {
                let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut k = worker;
                    while Instant::now() < deadline {
                        let request = hyper::Request::post(&url)
                            .header("content-type", "application/json")
                            .body(Full::new(bodies[k % bodies.len()].clone()))?;
                        let sent = Instant::now();
                        let response = client.request(request).await?;
                        let status = response.status();
                        let body = response.into_body().collect().await?.to_bytes();
                        if !status.is_success() {
                            return Err(
                                format!("{status}: {}", String::from_utf8_lossy(&body)).into()
                            );
                        }
                        latencies.push(sent.elapsed());
                        k += 1;
                    }
                    Ok::<_, Failure>(latencies)
                }));
            }
            let started = Instant::now();
            let mut latencies = Vec::new();
            for t in tasks {
                latencies.extend(t.await??);
            }
            let elapsed = started.elapsed().as_secs_f64();
            latencies.sort();
            let pct = |p: f64| {
                latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)]
                    .as_secs_f64()
                    * 1e3
            };
            let requests = latencies.len() as f64 / elapsed;
            println!(
                "| {batch} | {concurrency} | {requests:.0} | {:.0} | {:.2} | {:.2} |",
                requests * batch as f64,
                pct(0.50),
                pct(0.99)
            );
        }
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
