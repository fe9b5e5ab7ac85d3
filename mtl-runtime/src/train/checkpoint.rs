//! Checkpoints: dense network, embedding tables, both optimizers' state and the model's spec in
//! one safetensors file, written atomically.
//!
//! Tensors: `dense/<parameter>` (every dense tensor, batch-norm statistics included),
//! `embedding/<table>` `[rows, dim]`, `row_opt/<table>/{m,v,steps}`,
//! `dense_opt/<parameter>/{m,v}`. Metadata: `mtl.spec` (features and tasks as JSON), `mtl.step`,
//! `mtl.dense_opt.t`. The file is written to `<path>.tmp` and renamed over `<path>`, so a crash
//! never leaves a half-written checkpoint. Loading checks the spec first and names the first
//! feature or task that differs.

use std::collections::HashMap;
use std::path::Path;

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
        "features": spec.features.iter().map(|f| serde_json::json!({
            "name": f.name,
            "kind": if f.kind == FeatureKind::Categorical { "categorical" } else { "continuous" },
            "cardinality": f.cardinality,
            "dim": f.dim,
        })).collect::<Vec<_>>(),
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

fn read_f32(view: &TensorView<'_>) -> Vec<f32> {
    view.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
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

struct DenseReader<'a, 'd> {
    file: &'a SafeTensors<'d>,
    missing: Option<String>,
}

impl<D: Device<f32>> TensorVisitor<f32, D> for DenseReader<'_, '_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = D::Err;
    type E2 = f32;
    type D2 = D;
    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, D>,
        (t, name): (&mut Tensor<S, f32, D>, String),
    ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
        match self.file.tensor(&format!("dense/{name}")) {
            Ok(view) if view.data().len() == t.as_vec().len() * 4 => t.copy_from(&read_f32(&view)),
            _ => {
                self.missing.get_or_insert(name);
            }
        }
        Ok(None)
    }
}

impl<M, D> Trainer<M, D>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    /// Writes the checkpoint to `path` (atomically: `<path>.tmp`, then rename).
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
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
            if let Some(state) = self.row_optimizer.state.get(i) {
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
        let moments = self.dense_optimizer.host_moments();
        for (name, Moments { m, v }) in &moments {
            entries.push((format!("dense_opt/{name}/m"), Entry::f32(vec![m.len()], m)));
            entries.push((format!("dense_opt/{name}/v"), Entry::f32(vec![v.len()], v)));
        }
        let views: Vec<(String, TensorView<'_>)> = entries
            .iter()
            .map(|(n, e)| {
                TensorView::new(e.dtype, e.shape.clone(), &e.data).map(|v| (n.clone(), v))
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::file(path, format!("cannot serialise the checkpoint: {e:?}")))?;
        let metadata: HashMap<String, String> = [
            ("mtl.spec".to_string(), fingerprint(M::SPEC).to_string()),
            ("mtl.step".to_string(), self.step.to_string()),
            (
                "mtl.dense_opt.t".to_string(),
                self.dense_optimizer.t.to_string(),
            ),
        ]
        .into();
        let tmp = path.with_extension("tmp");
        ::safetensors::tensor::serialize_to_file(views, &Some(metadata), &tmp)
            .map_err(|e| Error::file(&tmp, format!("cannot write the checkpoint: {e:?}")))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    /// Restores a checkpoint written by [`Trainer::save_checkpoint`] for the same model.
    pub fn load_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |msg: String| Error::file(path, msg);
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a safetensors checkpoint: {e:?}")))?;
        let info = meta.metadata().clone().unwrap_or_default();
        let saved: serde_json::Value = info
            .get("mtl.spec")
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| bad("no mtl.spec metadata: not an mtl checkpoint".into()))?;
        if let Some(diff) = spec_difference(&saved, &fingerprint(M::SPEC)) {
            return Err(bad(format!(
                "the checkpoint was written for another model: {diff}"
            )));
        }
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("corrupt checkpoint: {e:?}")))?;
        let mut reader = DenseReader {
            file: &file,
            missing: None,
        };
        M::Built::iter_tensors(&mut RecursiveWalker {
            m: (&mut self.network, String::new()),
            f: &mut reader,
        })
        .map_err(|e| Error::invalid(format!("device error: {e:?}")))?;
        if let Some(name) = reader.missing {
            return Err(bad(format!(
                "dense parameter `{name}` is missing or has another shape"
            )));
        }
        self.row_optimizer.ensure_state(&self.embeddings.tables);
        for (i, table) in self.embeddings.tables.iter_mut().enumerate() {
            let view = file
                .tensor(&format!("embedding/{}", table.name))
                .map_err(|_| bad(format!("table `{}` is missing", table.name)))?;
            let weights = read_f32(&view);
            if weights.len() != table.weights.len() {
                return Err(bad(format!(
                    "table `{}` has {} values, the model {}",
                    table.name,
                    weights.len(),
                    table.weights.len()
                )));
            }
            table.weights = weights;
            let state = &mut self.row_optimizer.state[i];
            if let Ok(v) = file.tensor(&format!("row_opt/{}/m", table.name)) {
                state.first = read_f32(&v);
            }
            if let Ok(v) = file.tensor(&format!("row_opt/{}/v", table.name)) {
                state.second = read_f32(&v);
            }
            if let Ok(v) = file.tensor(&format!("row_opt/{}/steps", table.name)) {
                state.steps = v
                    .data()
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
            }
        }
        let mut moments = Vec::new();
        for (name, _) in file.tensors() {
            if let Some(param) = name
                .strip_prefix("dense_opt/")
                .and_then(|n| n.strip_suffix("/m"))
            {
                let m = read_f32(&file.tensor(&name).map_err(|e| bad(format!("{e:?}")))?);
                let v = file
                    .tensor(&format!("dense_opt/{param}/v"))
                    .map(|t| read_f32(&t))
                    .unwrap_or_else(|_| vec![0.0; m.len()]);
                moments.push((param.to_string(), Moments { m, v }));
            }
        }
        self.dense_optimizer
            .set_moments(&self.device, moments)
            .map_err(|e| bad(format!("{e:?}")))?;
        self.step = info
            .get("mtl.step")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        self.dense_optimizer.t = info
            .get("mtl.dense_opt.t")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok(())
    }
}
