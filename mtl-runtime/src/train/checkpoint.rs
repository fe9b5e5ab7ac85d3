//! Checkpoints: dense network, embedding tables, both optimizers' state and the model's spec in
//! one safetensors file.
//!
//! Tensors: `dense/<parameter>` (every dense tensor, batch-norm statistics included),
//! `embedding/<table>` `[rows, dim]`, `row_opt/<table>/{m,v,steps}`,
//! `dense_opt/<parameter>/{m,v}`. Metadata: `mtl.spec` (features and tasks as JSON), `mtl.step`,
//! `mtl.dense_opt.t`, `mtl.checksum` (xxHash64 of every tensor's name, shape and bytes).
//!
//! **Saving is atomic**: the file is written to a temporary file of its own in the same
//! directory (unique per process and call, so concurrent savers never share one), flushed to
//! disk (`fsync`), renamed over the target and the directory entry flushed too; on any error the
//! temporary is removed. A reader (or a crash) sees the old checkpoint or the new one, whole.
//!
//! **Loading is all-or-nothing**: the spec is checked first (naming the first feature or task
//! that differs), then the checksum, then every tensor's presence, dtype and exact shape; only
//! when everything is valid does anything in the trainer change.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::path::{Path, PathBuf};

use ::safetensors::tensor::{Dtype as SDtype, SafeTensors, TensorView};
use dfdx::prelude::*;

use super::dense_adam::Moments;
use super::Trainer;
use crate::error::{Error, Result};
use crate::model::{MtlModel, TaskNetwork};
use crate::spec::{FeatureKind, ModelSpec};

/// The parts of a spec a checkpoint must agree on, as JSON.
fn fingerprint(spec: &ModelSpec) -> serde_json::Value {
    serde_json::json!({
        "model": spec.name,
        "input_width": spec.input_width,
        "body": spec.body,
        "features": spec.features.iter().map(|f| {
            let mut feature = serde_json::json!({
                "name": f.name,
                "kind": if f.kind == FeatureKind::Categorical { "categorical" } else { "continuous" },
                "cardinality": f.cardinality,
                "dim": f.dim,
            });
            // Only list features carry the key, so files saved before lists existed still load.
            if f.is_list() {
                feature["list"] = format!("{}(max_len = {})", f.combiner.keyword(), f.max_len).into();
            }
            feature
        }).collect::<Vec<_>>(),
        "tasks": spec.tasks.iter().map(|t| serde_json::json!({
            "name": t.name,
            "output": t.output_name,
            "width": t.kind.output_width(),
            "tower": t.tower.map_or(&[][..], |m| m.widths),
        })).collect::<Vec<_>>(),
    })
}

/// The first difference between a checkpoint's spec and the model's, in words.
fn spec_difference(saved: &serde_json::Value, model: &serde_json::Value) -> Option<String> {
    for key in ["features", "tasks"] {
        let (a, b) = (saved[key].as_array()?, model[key].as_array()?);
        for item in b {
            let name = item["name"].as_str().unwrap_or("?");
            match a.iter().find(|s| s["name"] == item["name"]) {
                None => {
                    return Some(format!(
                        "{} `{name}` of the model is not in the checkpoint",
                        &key[..key.len() - 1]
                    ))
                }
                Some(s) if s != item => {
                    return Some(format!(
                        "{} `{name}` differs: checkpoint {s}, model {item}",
                        &key[..key.len() - 1]
                    ))
                }
                _ => {}
            }
        }
        if let Some(extra) = a.iter().find(|s| !b.iter().any(|i| i["name"] == s["name"])) {
            return Some(format!(
                "{} `{}` of the checkpoint is not in the model",
                &key[..key.len() - 1],
                extra["name"].as_str().unwrap_or("?")
            ));
        }
    }
    for key in ["model", "input_width", "body"] {
        if saved[key] != model[key] {
            return Some(format!(
                "{key} differs: checkpoint {}, model {}",
                saved[key], model[key]
            ));
        }
    }
    None
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u32_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

struct Entry {
    dtype: SDtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Entry {
    fn f32(shape: Vec<usize>, values: &[f32]) -> Entry {
        Entry {
            dtype: SDtype::F32,
            shape,
            data: f32_bytes(values),
        }
    }

    fn f64(shape: Vec<usize>, values: &[f64]) -> Entry {
        Entry {
            dtype: SDtype::F64,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

struct DenseWriter<'a>(&'a mut Vec<(String, Entry)>);

impl<D: Device<f32>> TensorVisitor<f32, D> for DenseWriter<'_> {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = D::Err;
    type E2 = f32;
    type D2 = D;
    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, D>,
        (t, name): (&Tensor<S, f32, D>, String),
    ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
        let shape: Vec<usize> = t.shape().concrete().into_iter().collect();
        self.0.push((
            format!("dense/{name}"),
            Entry {
                dtype: SDtype::F32,
                shape,
                data: f32_bytes(&t.as_vec()),
            },
        ));
        Ok(None)
    }
}

/// The name and shape of every dense tensor of a network.
struct DenseShapes(Vec<(String, Vec<usize>)>);

impl<D: Device<f32>> TensorVisitor<f32, D> for DenseShapes {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = D::Err;
    type E2 = f32;
    type D2 = D;
    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, D>,
        (t, name): (&Tensor<S, f32, D>, String),
    ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
        self.0
            .push((name, t.shape().concrete().into_iter().collect()));
        Ok(None)
    }
}

/// Writes staged values (validated beforehand) into a network's tensors.
struct DenseWrite<'a>(&'a HashMap<String, Vec<f32>>);

impl<D: Device<f32>> TensorVisitor<f32, D> for DenseWrite<'_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = D::Err;
    type E2 = f32;
    type D2 = D;
    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, D>,
        (t, name): (&mut Tensor<S, f32, D>, String),
    ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
        if let Some(values) = self.0.get(&name) {
            t.copy_from(values);
        }
        Ok(None)
    }
}

/// xxHash64 of every tensor's name, shape and bytes, in name order.
fn checksum<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a [usize], &'a [u8])>) -> String {
    let mut sorted: Vec<_> = tensors.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = twox_hash::XxHash64::with_seed(0x6d74_6c5f_636b_7074);
    for (name, shape, data) in sorted {
        h.write(name.as_bytes());
        h.write_u8(0);
        for d in shape {
            h.write_u64(*d as u64);
        }
        h.write_u64(data.len() as u64);
        h.write(data);
    }
    format!("{:016x}", h.finish())
}

/// A temporary file name next to `path`, unique to this process and call.
pub(crate) fn temporary_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or("checkpoint".into(), |n| n.to_string_lossy().into_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    path.with_file_name(format!(
        ".{name}.{}.{}.{nanos}.partial",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Flushes `path`'s directory entry to disk (a rename is durable only then). Best effort on
/// systems where directories cannot be opened.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::File::open(dir) {
        Ok(d) => d.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

/// Serialises `entries` with the metadata (spec, step, Adam's t, checksum) to `path`:
/// written to a unique temporary file, synced, renamed over `path`, the directory synced.
fn write_entries(
    path: &Path,
    entries: &[(String, Entry)],
    spec: &ModelSpec,
    step: u64,
    t: u64,
) -> Result<()> {
    let views: Vec<(String, TensorView<'_>)> = entries
        .iter()
        .map(|(n, e)| TensorView::new(e.dtype, e.shape.clone(), &e.data).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::file(path, format!("cannot serialise the checkpoint: {e:?}")))?;
    let sum = checksum(
        entries
            .iter()
            .map(|(n, e)| (n.as_str(), e.shape.as_slice(), e.data.as_slice())),
    );
    let metadata: HashMap<String, String> = [
        ("mtl.spec".to_string(), fingerprint(spec).to_string()),
        ("mtl.step".to_string(), step.to_string()),
        ("mtl.dense_opt.t".to_string(), t.to_string()),
        ("mtl.checksum".to_string(), sum),
    ]
    .into();
    let tmp = temporary_path(path);
    let written = ::safetensors::tensor::serialize_to_file(views, &Some(metadata), &tmp)
        .map_err(|e| Error::file(path, format!("cannot write the checkpoint: {e:?}")))
        .and_then(|()| {
            // Durable before it becomes visible.
            let f = std::fs::OpenOptions::new()
                .append(true)
                .open(&tmp)
                .map_err(|e| Error::io(&tmp, e))?;
            f.sync_all().map_err(|e| Error::io(&tmp, e))?;
            drop(f);
            std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
            sync_parent(path).map_err(|e| Error::io(path, e))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

impl<M, D> Trainer<M, D>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    /// Writes the checkpoint to `path` atomically (a temporary file of its own beside it, then
    /// a rename): the network, the tables, both optimizers' state and the model's spec.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        self.write_checkpoint(path.as_ref(), true)
    }

    /// Writes what scoring needs, in the checkpoint format without optimizer state (a third of
    /// the size with lazy Adam): the network, the tables and the spec. `Predictor::load`
    /// reads it (or a full checkpoint); `load_checkpoint` too, with fresh optimizer state.
    pub fn save_model(&self, path: impl AsRef<Path>) -> Result<()> {
        self.write_checkpoint(path.as_ref(), false)
    }

    fn write_checkpoint(&self, path: &Path, optimizer_state: bool) -> Result<()> {
        let mut entries: Vec<(String, Entry)> = Vec::new();
        M::Built::iter_tensors(&mut RecursiveWalker {
            m: (&self.network, String::new()),
            f: &mut DenseWriter(&mut entries),
        })
        .map_err(|e| Error::invalid(format!("device error: {e:?}")))?;
        for (i, table) in self.embeddings.tables.iter().enumerate() {
            entries.push((
                format!("embedding/{}", table.name),
                Entry::f32(vec![table.rows, table.dim], &table.weights),
            ));
            let state = self.row_optimizer.state.get(i).filter(|_| optimizer_state);
            if let Some(state) = state {
                let n = table.rows * table.dim;
                if state.first.len() == n {
                    entries.push((
                        format!("row_opt/{}/m", table.name),
                        Entry::f32(vec![table.rows, table.dim], &state.first),
                    ));
                }
                entries.push((
                    format!("row_opt/{}/v", table.name),
                    Entry::f32(vec![table.rows, table.dim], &state.second),
                ));
                entries.push((
                    format!("row_opt/{}/steps", table.name),
                    Entry {
                        dtype: SDtype::U32,
                        shape: vec![table.rows],
                        data: u32_bytes(&state.steps),
                    },
                ));
            }
        }
        if let (Some(b), true) = (&self.balance, optimizer_state) {
            // Learnt loss weights and their optimizer state: training state, not needed to
            // score.
            let state = b.state();
            entries.push((
                "balance/state".into(),
                Entry::f64(vec![state.len()], &state),
            ));
        }
        if optimizer_state {
            let moments = self.dense_optimizer.host_moments();
            for (name, Moments { m, v }) in &moments {
                entries.push((format!("dense_opt/{name}/m"), Entry::f32(vec![m.len()], m)));
                entries.push((format!("dense_opt/{name}/v"), Entry::f32(vec![v.len()], v)));
            }
        }
        let (step, t) = if optimizer_state {
            (self.step, self.dense_optimizer.t)
        } else {
            (0, 0)
        };
        write_entries(path, &entries, M::SPEC, step, t)
    }

    /// Restores a checkpoint written by [`Trainer::save_checkpoint`] for the same model (or a
    /// model file from [`Trainer::save_model`]: the optimizers then start fresh). Either
    /// everything is restored or, on any error, nothing changes.
    pub fn load_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let staged = stage(path, M::SPEC, &self.network, &self.embeddings.tables)?;
        let bad = |msg: String| Error::file(path, msg);
        let row_state = staged.tables.iter().any(|t| t.1.is_some() || t.2.is_some());
        if row_state {
            self.row_optimizer
                .ensure_state(&self.embeddings.tables)
                .map_err(|e| bad(e.to_string()))?;
        }
        // Everything is valid: apply.
        let mut network = self.network.clone();
        apply_dense(&staged, &mut network)?;
        self.dense_optimizer
            .set_moments(&self.device, staged.moments)
            .map_err(|e| bad(format!("{e:?}")))?;
        self.network = network;
        let adagrad = matches!(
            self.row_optimizer.config,
            crate::embedding::RowOptimizerConfig::Adagrad { .. }
        );
        for (i, (table, (weights, m, v, steps))) in self
            .embeddings
            .tables
            .iter_mut()
            .zip(staged.tables)
            .enumerate()
        {
            table.weights = weights;
            let Some(state) = self.row_optimizer.state.get_mut(i).filter(|_| row_state) else {
                continue;
            };
            let n = table.rows * table.dim;
            state.first = if adagrad {
                Vec::new()
            } else {
                m.unwrap_or_else(|| vec![0.0; n])
            };
            state.second = v.unwrap_or_else(|| vec![0.0; n]);
            state.steps = steps.unwrap_or_else(|| vec![0; table.rows]);
        }
        if !row_state {
            // A model file: the row optimizer starts fresh (allocated when training starts).
            self.row_optimizer.state.clear();
        }
        if let (Some(b), Some(state)) = (&mut self.balance, &staged.balance) {
            // Lengths were checked against this model's method when staging.
            b.set_state(state);
            self.loss_weights = b.weights();
        }
        self.step = staged.step;
        self.dense_optimizer.t = staged.t;
        Ok(())
    }
}

impl<M, D> Trainer<M, D>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    /// Reads and validates the model file or checkpoint at `path` for this model.
    pub(crate) fn stage_file(&self, path: &Path) -> Result<Staged> {
        stage(path, M::SPEC, &self.network, &self.embeddings.tables)
    }

    /// Takes the weights (dense and tables) of `staged`, ignoring any optimizer state.
    pub(crate) fn apply_weights(&mut self, staged: Staged) -> Result<()> {
        apply_dense(&staged, &mut self.network)?;
        for (table, (weights, ..)) in self.embeddings.tables.iter_mut().zip(staged.tables) {
            table.weights = weights;
        }
        Ok(())
    }
}

/// A checkpoint's contents, validated against the model and staged in memory.
pub(crate) struct Staged {
    /// Every dense tensor by name.
    pub dense: HashMap<String, Vec<f32>>,
    /// Per table (in the model's order): weights and, when saved, the row optimizer's state.
    #[allow(clippy::type_complexity)]
    pub tables: Vec<(
        Vec<f32>,
        Option<Vec<f32>>,
        Option<Vec<f32>>,
        Option<Vec<u32>>,
    )>,
    pub moments: Vec<(String, Moments)>,
    /// Learnt loss weights' state (`balance/state`), when saved.
    pub balance: Option<Vec<f64>>,
    pub step: u64,
    pub t: u64,
}

/// Reads and validates the checkpoint or model file at `path` for a model with `spec`, whose
/// network looks like `network` and whose tables are `tables`: the spec must match, the
/// checksum hold, every tensor be present with its exact dtype and shape. Nothing is applied.
pub(crate) fn stage<N: TensorCollection<f32, D>, D: Device<f32>>(
    path: &Path,
    spec: &ModelSpec,
    network: &N,
    tables: &[crate::embedding::EmbeddingTable],
) -> Result<Staged> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |msg: String| Error::file(path, msg);
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors checkpoint: {e:?}")))?;
    let info = meta.metadata().clone().unwrap_or_default();
    let saved: serde_json::Value = info
        .get("mtl.spec")
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| bad("no mtl.spec metadata: not an mtl checkpoint".into()))?;
    if let Some(diff) = spec_difference(&saved, &fingerprint(spec)) {
        return Err(bad(format!(
            "the checkpoint was written for another model: {diff}"
        )));
    }
    let file =
        SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("corrupt checkpoint: {e:?}")))?;
    // Checkpoints from before checksums were written carry none.
    if let Some(expected) = info.get("mtl.checksum") {
        let tensors = file.tensors();
        let found = checksum(
            tensors
                .iter()
                .map(|(n, v)| (n.as_str(), v.shape(), v.data())),
        );
        if &found != expected {
            return Err(bad(format!(
                "the tensor data does not match the checksum stored with it ({found} against \
                 {expected}): the file is corrupt; restore it from a copy"
            )));
        }
    }
    let number = |key: &str| -> Result<u64> {
        match info.get(key) {
            None => Ok(0),
            Some(v) => v
                .parse()
                .map_err(|_| bad(format!("metadata `{key}` is not a number: {v:?}"))),
        }
    };
    let (step, t) = (number("mtl.step")?, number("mtl.dense_opt.t")?);
    // A tensor of the file, checked to be `dtype` with exactly `shape`.
    let tensor = |name: &str, dtype: SDtype, shape: &[usize]| -> Result<Vec<u8>> {
        let view = file
            .tensor(name)
            .map_err(|_| bad(format!("tensor `{name}` is missing")))?;
        if view.dtype() != dtype || view.shape() != shape {
            return Err(bad(format!(
                "tensor `{name}` is {:?} {:?}; the model needs {dtype:?} {shape:?}",
                view.dtype(),
                view.shape()
            )));
        }
        Ok(view.data().to_vec())
    };
    let f32s = |b: Vec<u8>| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let u32s = |b: Vec<u8>| -> Vec<u32> {
        b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };

    let mut shapes = DenseShapes(Vec::new());
    N::iter_tensors(&mut RecursiveWalker {
        m: (network, String::new()),
        f: &mut shapes,
    })
    .map_err(|e| Error::invalid(format!("device error: {e:?}")))?;
    let mut dense = HashMap::new();
    let mut numel = BTreeMap::new();
    for (name, shape) in &shapes.0 {
        let values = f32s(tensor(&format!("dense/{name}"), SDtype::F32, shape)?);
        numel.insert(name.clone(), values.len());
        dense.insert(name.clone(), values);
    }
    let mut staged_tables = Vec::new();
    for table in tables {
        let (rows, dim) = (table.rows, table.dim);
        let weights = f32s(tensor(
            &format!("embedding/{}", table.name),
            SDtype::F32,
            &[rows, dim],
        )?);
        // Optimizer state is absent from model files and checkpoints saved before any step.
        let optional = |name: String, dtype: SDtype, shape: &[usize]| -> Result<Option<Vec<u8>>> {
            match file.tensor(&name) {
                Err(_) => Ok(None),
                Ok(_) => tensor(&name, dtype, shape).map(Some),
            }
        };
        let m = optional(
            format!("row_opt/{}/m", table.name),
            SDtype::F32,
            &[rows, dim],
        )?;
        let v = optional(
            format!("row_opt/{}/v", table.name),
            SDtype::F32,
            &[rows, dim],
        )?;
        let steps = optional(
            format!("row_opt/{}/steps", table.name),
            SDtype::U32,
            &[rows],
        )?;
        staged_tables.push((weights, m.map(f32s), v.map(f32s), steps.map(u32s)));
    }
    let mut moments = Vec::new();
    for (name, _) in file.tensors() {
        let Some(param) = name
            .strip_prefix("dense_opt/")
            .and_then(|n| n.strip_suffix("/m"))
        else {
            continue;
        };
        let n = *numel.get(param).ok_or_else(|| {
            bad(format!(
                "optimizer state for `{param}`, which the model does not have"
            ))
        })?;
        let m = f32s(tensor(&name, SDtype::F32, &[n])?);
        let v = f32s(tensor(&format!("dense_opt/{param}/v"), SDtype::F32, &[n])?);
        moments.push((param.to_string(), Moments { m, v }));
    }
    let tasks = spec.tasks.len();
    // Uncertainty saves 3 values per task + 1, GradNorm 4 per task + 1.
    let balance_len = match spec.loss_balancing {
        crate::spec::LossBalancing::Fixed => None,
        crate::spec::LossBalancing::Uncertainty => Some(3 * tasks + 1),
        crate::spec::LossBalancing::GradNorm { .. } => Some(4 * tasks + 1),
    };
    let balance = match (file.tensor("balance/state"), balance_len) {
        (Ok(_), Some(n)) => Some(
            tensor("balance/state", SDtype::F64, &[n])?
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        _ => None,
    };
    Ok(Staged {
        dense,
        tables: staged_tables,
        moments,
        balance,
        step,
        t,
    })
}

/// Writes the staged dense tensors into `network` (all of them: weights, biases, batch-norm
/// statistics).
pub(crate) fn apply_dense<N: TensorCollection<f32, D>, D: Device<f32>>(
    staged: &Staged,
    network: &mut N,
) -> Result<()> {
    N::iter_tensors(&mut RecursiveWalker {
        m: (network, String::new()),
        f: &mut DenseWrite(&staged.dense),
    })
    .map_err(|e| Error::invalid(format!("device error: {e:?}")))?;
    Ok(())
}
