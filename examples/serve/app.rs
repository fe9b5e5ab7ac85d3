//! The scoring server of `examples/serve.rs`: an axum router over a [`Predictor`] with its
//! fitted preprocessing. Shared with `tests/serve.rs`, which starts it on a loopback port.
//!
//! - `GET /health` → `{"status": "ok"}`
//! - `GET /v1/metadata` → the model's name, its raw input columns (with their kind), its outputs
//!   (Merlin names) and the request limit.
//! - `POST /v1/score` with `{"rows": [{column: value, ...}, ...], "keep": ["request_id"]}` →
//!   `{"model", "rows", "scores": [{output: score, ..., kept columns}], "unseen": {column: n}}`.
//!   Values are strings, numbers, booleans or null (a missing value); every input column must
//!   be present in every row; other columns of the raw table (weights, labels) are ignored;
//!   `keep` names columns copied to the scores verbatim (ids).
//!
//! Errors are JSON `{"error": "..."}`: 400 for a body that is not the request's JSON shape,
//! 413 for more rows than the limit, 422 for rows that do not fit the model (unknown or
//! missing column, a value of the wrong type, a non-number in a continuous column).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mtl::dfdx::prelude::{BuildOnDevice, Cpu};
use mtl::inference::Predictor;
use mtl::preprocess::Role;
use mtl::{MtlModel, TaskNetwork};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// What the handlers share: the predictor and the request limit.
pub struct Scorer<M>
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
{
    pub predictor: Predictor<M>,
    /// The raw columns every row must carry, in the order scoring takes them.
    pub inputs: Vec<String>,
    /// Columns a request may carry without the model reading them (the raw table's weights,
    /// label sources and dropped columns): accepted and ignored.
    pub ignored: Vec<String>,
    pub max_rows: usize,
}

impl<M> Scorer<M>
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    pub fn new(predictor: Predictor<M>, max_rows: usize) -> Self {
        let inputs = predictor.required_columns();
        let ignored = predictor
            .preprocessing()
            .map(|f| f.raw_columns())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| !inputs.iter().any(|i| i == c))
            .map(str::to_string)
            .collect();
        Scorer {
            predictor,
            inputs,
            ignored,
            max_rows,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreRequest {
    rows: Vec<Map<String, Value>>,
    #[serde(default)]
    keep: Vec<String>,
}

/// An error response: status and message.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn unprocessable(message: String) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// The router; handlers score on the blocking pool so the async workers stay responsive.
pub fn router<M>(scorer: Arc<Scorer<M>>) -> Router
where
    M: MtlModel + BuildOnDevice<Cpu, f32> + Send + Sync + 'static,
    M::Built: TaskNetwork<f32, Cpu> + Clone + Send + Sync,
{
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/v1/metadata", get(metadata::<M>))
        .route("/v1/score", post(score::<M>))
        .with_state(scorer)
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in
/// flight (graceful shutdown) and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metadata<M>(State(scorer): State<Arc<Scorer<M>>>) -> Json<Value>
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    let kinds: Vec<(String, Role)> = scorer
        .predictor
        .preprocessing()
        .map(|f| {
            f.input_columns()
                .into_iter()
                .map(|(n, r)| (n.to_string(), r))
                .collect()
        })
        .unwrap_or_default();
    let inputs: Vec<Value> = scorer
        .inputs
        .iter()
        .map(|name| {
            let kind = match kinds.iter().find(|(n, _)| n == name).map(|(_, r)| r) {
                Some(Role::Continuous) => "continuous",
                _ => "categorical",
            };
            json!({ "name": name, "kind": kind })
        })
        .collect();
    let outputs: Vec<Value> = scorer
        .predictor
        .outputs()
        .into_iter()
        .map(|o| json!({ "name": o.name, "task": o.task, "holds": o.holds }))
        .collect();
    Json(json!({
        "model": M::SPEC.name,
        "inputs": inputs,
        "outputs": outputs,
        "max_rows": scorer.max_rows,
    }))
}

async fn score<M>(
    State(scorer): State<Arc<Scorer<M>>>,
    body: Result<Json<ScoreRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError>
where
    M: MtlModel + BuildOnDevice<Cpu, f32> + Send + Sync + 'static,
    M::Built: TaskNetwork<f32, Cpu> + Clone + Send + Sync,
{
    let Json(request) = body.map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "{}; send {{\"rows\": [{{column: value, ...}}], \"keep\": [column, ...]}}",
                e.body_text()
            ),
        )
    })?;
    tokio::task::spawn_blocking(move || score_rows(&scorer, request))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// Validates the request and scores it.
fn score_rows<M>(scorer: &Scorer<M>, request: ScoreRequest) -> Result<Json<Value>, ApiError>
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    let rows = &request.rows;
    if rows.is_empty() {
        return Err(unprocessable(
            "`rows` is empty: send at least one row".into(),
        ));
    }
    if rows.len() > scorer.max_rows {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} rows in one request; the limit is {}: split the request",
                rows.len(),
                scorer.max_rows
            ),
        ));
    }
    let inputs = &scorer.inputs;
    let outputs: Vec<String> = scorer
        .predictor
        .outputs()
        .into_iter()
        .map(|o| o.name)
        .collect();
    for k in &request.keep {
        if outputs.contains(k) {
            return Err(unprocessable(format!(
                "`keep` names `{k}`, which is an output column"
            )));
        }
    }
    let known: BTreeSet<&str> = inputs
        .iter()
        .map(String::as_str)
        .chain(scorer.ignored.iter().map(String::as_str))
        .chain(request.keep.iter().map(String::as_str))
        .collect();
    let mut table = Vec::with_capacity(rows.len());
    for (r, row) in rows.iter().enumerate() {
        if let Some(unknown) = row.keys().find(|k| !known.contains(k.as_str())) {
            return Err(unprocessable(format!(
                "row {}: unknown column `{unknown}`{}; the model's input columns are: {}",
                r + 1,
                mtl::error::closest(unknown, inputs.iter().map(String::as_str), 3)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default(),
                inputs.join(", ")
            )));
        }
        let mut values = Vec::with_capacity(inputs.len());
        for name in inputs {
            let value = row.get(name).ok_or_else(|| {
                unprocessable(format!(
                    "row {}: column `{name}` is missing; send null for a missing value",
                    r + 1
                ))
            })?;
            values.push(text(value).map_err(|kind| {
                unprocessable(format!(
                    "row {}: column `{name}` is {kind}; send a string, number, boolean or null",
                    r + 1
                ))
            })?);
        }
        for k in &request.keep {
            if !row.contains_key(k) {
                return Err(unprocessable(format!(
                    "row {}: column `{k}` to keep is missing",
                    r + 1
                )));
            }
        }
        table.push(values);
    }
    let (scored, report) = scorer
        .predictor
        .score_rows(inputs, &table, &[])
        .map_err(|e| unprocessable(e.to_string()))?;
    let columns: Vec<&[f32]> = outputs
        .iter()
        .map(|name| {
            scored
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<arrow_array::Float32Array>())
                .map(|a| a.values().as_ref())
                .unwrap_or_default()
        })
        .collect();
    let scores: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let mut out = Map::new();
            for k in &request.keep {
                out.insert(k.clone(), row[k].clone());
            }
            for (name, values) in outputs.iter().zip(&columns) {
                out.insert(name.clone(), json!(values[r]));
            }
            Value::Object(out)
        })
        .collect();
    Ok(Json(json!({
        "model": M::SPEC.name,
        "rows": rows.len(),
        "scores": scores,
        "unseen": report.oov,
    })))
}

/// A JSON value as the text preprocessing reads (integers without a decimal point, booleans
/// as 1/0, as raw Parquet values are rendered); the value's kind when it has no text form.
fn text(value: &Value) -> Result<Option<String>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.trim().to_string())),
        Value::Bool(b) => Ok(Some(u8::from(*b).to_string())),
        Value::Number(n) => Ok(Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        })),
        Value::Array(_) => Err("an array"),
        Value::Object(_) => Err("an object"),
    }
}
