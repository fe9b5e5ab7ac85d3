//! Exporting a trained model to ONNX: the whole network, embedding lookups included, one named
//! output per task, a dynamic batch dimension.
//!
//! The graph is written from the same program the fused CPU engine runs (`crate::fused`'s
//! plan, built from the model's spec), with the network's weights copied by name, so what is
//! exported is what was trained. Its interface:
//!
//! - **inputs**, one per model feature, named as the feature (the encoded data column):
//!   categorical features `int64 [batch]` (encoded ids: `0` is the out-of-vocabulary row, ids
//!   must be below the table's rows), list features `int64 [batch, max_len]` (each row's ids
//!   first, then `-1`; pooled in the graph), continuous features `float32 [batch]`
//!   (standardised as in training). Preprocessing raw values stays outside the graph, as NVTabular stays
//!   outside Merlin's TensorFlow model: `Predictor` does it in Rust.
//! - **outputs**, one per task, named by its Merlin output name (`click/binary_output`,
//!   `watching_times/regression_output`, `<task>/multi_class_output`): `float32 [batch, 1]`
//!   probabilities (binary) or values (regression), `float32 [batch, classes]` class
//!   probabilities (multiclass); then, per chained task (`given`, ESMM), `<task>/joint_output`
//!   `float32 [batch, 1]`, the product of the chain's probabilities.
//! - **opset** 17 of the default domain (IR version 8); operators: Gather, Concat, Unsqueeze,
//!   Gemm, Slice, Mul, Add, Relu, Tanh, Sigmoid, Selu, Erf, Softmax, Identity; for list
//!   features GreaterOrEqual, Max, Cast, ReduceSum, Div, Sqrt.
//! - **weights** as initializers: in the `.onnx` file, or, when they would pass protobuf's
//!   2 GB limit (or when asked), in one external data file beside it (`<file>.data`,
//!   64-byte aligned), which ONNX Runtime and tract read from the model's directory.
//!
//! Models with batch normalisation, a custom body or an AITM transfer are not exported (an
//! error says which).
//!
//! Files: `proto` (the ONNX protobuf messages), `graph` (building nodes and initializers).

mod graph;
mod proto;

use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;

use self::graph::{int_attr, Graph};
use self::proto::*;
use crate::embedding::EmbeddingTable;
use crate::error::{Error, Result};
use crate::fused::plan::{self, Op};
use crate::model::NamedParameters;
use crate::spec::{FeatureKind, ModelSpec, TaskKind};

/// The ONNX operator set the export targets.
pub const OPSET: i64 = 17;
/// The ONNX IR version written (the one that goes with opset 17).
pub const IR_VERSION: i64 = 8;
/// Protobuf messages cannot pass 2 GiB; above this many bytes of weights, `Auto` moves them
/// to the external data file.
const INLINE_LIMIT: u64 = 1_800_000_000;

/// Where the weights go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExternalData {
    /// Inline below 1.8 GB of weights, else every weight tensor external.
    #[default]
    Auto,
    /// Every weight tensor (but scalar constants) in the external data file.
    Always,
    /// Always inline; an error if that passes protobuf's limit.
    Never,
}

/// Export settings.
#[derive(Debug, Clone, Default)]
pub struct OnnxOptions {
    pub external_data: ExternalData,
}

/// One input or output of an exported graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxValue {
    pub name: String,
    /// `"int64"` or `"float32"`.
    pub dtype: &'static str,
    /// Dimensions; `None` is the dynamic `batch` dimension.
    pub shape: Vec<Option<usize>>,
}

/// What [`onnx`] wrote.
#[derive(Debug, Clone)]
pub struct OnnxExport {
    pub model: PathBuf,
    /// The external data file, when weights went there.
    pub external_data: Option<PathBuf>,
    pub inputs: Vec<OnnxValue>,
    pub outputs: Vec<OnnxValue>,
    pub nodes: usize,
    /// Float weights written (tables and dense parameters).
    pub parameters: u64,
    pub opset: i64,
}

/// The pooled lookup of list feature `f` from the `[B, L]` int64 input of its name (`-1` past
/// each row's length) in table `table`: the rows of the ids present, masked, summed over the
/// list and divided as the combiner says (`Σ`, `Σ / n`, `Σ / √n`, `n ≥ 1` so an empty list
/// gives zeros), `[B, D]`.
fn pooled_lookup(g: &mut Graph, f: &crate::spec::FeatureSpec, table: &str) -> String {
    const FLOAT: i64 = 1;
    let zero = g.ints(vec![0]);
    let present = g.node("GreaterOrEqual", &[f.name, &zero], vec![], None);
    let safe = g.node("Max", &[f.name, &zero], vec![], None);
    let rows = g.node("Gather", &[table, &safe], vec![int_attr("axis", 0)], None);
    let mask = g.node("Cast", &[&present], vec![int_attr("to", FLOAT)], None);
    let last = g.ints(vec![2]);
    let mask3 = g.node("Unsqueeze", &[&mask, &last], vec![], None);
    let masked = g.node("Mul", &[&rows, &mask3], vec![], None);
    let list_axis = g.ints(vec![1]);
    let sum = g.node(
        "ReduceSum",
        &[&masked, &list_axis],
        vec![int_attr("keepdims", 0)],
        None,
    );
    if f.combiner == crate::spec::Combiner::Sum {
        return sum;
    }
    let count = g.node(
        "ReduceSum",
        &[&mask, &list_axis],
        vec![int_attr("keepdims", 1)],
        None,
    );
    let one = g.scalar(1.0);
    let n = g.node("Max", &[&count, &one], vec![], None);
    let divisor = match f.combiner {
        crate::spec::Combiner::Sqrtn => g.node("Sqrt", &[&n], vec![], None),
        _ => n,
    };
    g.node("Div", &[&sum, &divisor], vec![], None)
}

/// Writes the model `spec` with dense parameters `params` (by network name) and embedding
/// `tables` to the ONNX file `path` (see the module docs). Files are written next to their
/// final paths and renamed into place: a failed export leaves existing files as they were.
pub fn onnx(
    spec: &ModelSpec,
    params: &NamedParameters,
    tables: &[EmbeddingTable],
    path: &Path,
    options: &OnnxOptions,
) -> Result<OnnxExport> {
    if let Some(why) = crate::fused::unsupported(spec) {
        return Err(Error::invalid(format!(
            "model `{}` cannot be exported to ONNX: {why}",
            spec.name
        )));
    }
    let plan = plan::build(spec).map_err(|e| {
        Error::invalid(format!(
            "model `{}` cannot be exported to ONNX: {e}",
            spec.name
        ))
    })?;
    let mut g = Graph::default();
    let mut inputs = Vec::new();

    // The `[B, INPUT_WIDTH]` input: every feature at its offset (features are ordered by it).
    let mut features: Vec<_> = spec.features.iter().collect();
    features.sort_by_key(|f| f.offset);
    let mut parts = Vec::new();
    let mut width = 0;
    for f in &features {
        if f.offset != width {
            return Err(Error::invalid(format!(
                "feature `{}` starts at column {} instead of {width}",
                f.name, f.offset
            )));
        }
        width += f.dim;
        match f.kind {
            FeatureKind::Categorical => {
                let table = tables.iter().find(|t| t.name == f.table).ok_or_else(|| {
                    Error::invalid(format!("no embedding table `{}` to export", f.table))
                })?;
                let name = format!("embedding/{}", table.name);
                if !g.weights.iter().any(|(n, ..)| *n == name) {
                    g.weight(
                        &name,
                        vec![table.rows as i64, table.dim as i64],
                        table.weights.clone(),
                    );
                }
                // A list input is `[batch, max_len]`, pooled in the graph.
                let (part, shape) = if f.is_list() {
                    (pooled_lookup(&mut g, f, &name), vec![None, Some(f.max_len)])
                } else {
                    let gather = vec![int_attr("axis", 0)];
                    (g.node("Gather", &[&name, f.name], gather, None), vec![None])
                };
                parts.push(part);
                inputs.push(OnnxValue {
                    name: f.name.to_string(),
                    dtype: "int64",
                    shape,
                });
            }
            FeatureKind::Continuous => {
                if f.dim != 1 {
                    return Err(Error::invalid(format!(
                        "continuous feature `{}` has width {}; only scalar continuous features \
                         are exported",
                        f.name, f.dim
                    )));
                }
                let axes = g.ints(vec![1]);
                parts.push(g.node("Unsqueeze", &[f.name, &axes], vec![], None));
                inputs.push(OnnxValue {
                    name: f.name.to_string(),
                    dtype: "float32",
                    shape: vec![None],
                });
            }
        }
    }
    if width != spec.input_width {
        return Err(Error::invalid(format!(
            "the features cover {width} input columns, the model has {}",
            spec.input_width
        )));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let input = if refs.len() == 1 {
        refs[0].to_string()
    } else {
        g.node("Concat", &refs, vec![int_attr("axis", 1)], None)
    };

    // The dense parameters in the engine's flat layout (fused layers are contiguous).
    let mut flat = vec![0f32; plan.num_params];
    for entry in &plan.params {
        let values = params
            .iter()
            .find(|(n, _)| *n == entry.name)
            .map(|(_, v)| v)
            .ok_or_else(|| Error::invalid(format!("parameter `{}` is missing", entry.name)))?;
        if values.len() != entry.len() {
            return Err(Error::invalid(format!(
                "parameter `{}` has {} values, the model needs {}",
                entry.name,
                values.len(),
                entry.len()
            )));
        }
        flat[entry.offset..entry.offset + entry.len()].copy_from_slice(values);
    }
    let name_of = |offset: usize| -> String {
        plan.params
            .iter()
            .find(|p| p.offset == offset)
            .map_or_else(|| format!("param_{offset}"), |p| p.name.clone())
    };

    // Every buffer of the plan becomes one `[B, W]` value.
    let mut buffers: Vec<Option<String>> = vec![None; plan.widths.len()];
    buffers[0] = Some(input);
    let read = |g: &mut Graph, buffers: &[Option<String>], c: plan::Cols| -> Result<String> {
        let x = buffers[c.buf]
            .clone()
            .ok_or_else(|| Error::invalid(format!("buffer {} read before written", c.buf)))?;
        Ok(g.columns(&x, plan.widths[c.buf], c.start, c.start + c.width))
    };
    for op in &plan.ops {
        match op {
            Op::Dense(d) => {
                let x = read(&mut g, &buffers, d.input)?;
                let (rows, cols) = (d.out_width, d.input.width);
                let w = g.weight(
                    &name_of(d.weight),
                    vec![rows as i64, cols as i64],
                    flat[d.weight..d.weight + rows * cols].to_vec(),
                );
                let mut bias = vec![0f32; rows];
                for s in &d.segments {
                    if let Some(b) = s.bias {
                        bias[s.start..s.start + s.width].copy_from_slice(&flat[b..b + s.width]);
                    }
                }
                let mut gemm_inputs = vec![x.as_str(), w.as_str()];
                let b;
                if d.segments.iter().any(|s| s.bias.is_some()) {
                    let bias_name = d
                        .segments
                        .iter()
                        .find_map(|s| s.bias)
                        .map_or_else(|| format!("bias_{}", d.weight), &name_of);
                    b = g.weight(&bias_name, vec![rows as i64], bias);
                    gemm_inputs.push(&b);
                }
                let z = g.node("Gemm", &gemm_inputs, vec![int_attr("transB", 1)], None);
                let first = d.segments[0].activation;
                let y = if d.segments.iter().all(|s| s.activation == first) {
                    g.activation(&z, first)
                } else {
                    let pieces: Vec<String> = d
                        .segments
                        .iter()
                        .map(|s| {
                            let part = g.columns(&z, rows, s.start, s.start + s.width);
                            g.activation(&part, s.activation)
                        })
                        .collect();
                    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
                    g.node("Concat", &refs, vec![int_attr("axis", 1)], None)
                };
                buffers[d.output] = Some(y);
            }
            Op::Softmax(s) => {
                let mut x = read(&mut g, &buffers, s.input)?;
                if s.inv_temperature != 1.0 {
                    let t = g.scalar(s.inv_temperature);
                    x = g.node("Mul", &[&x, &t], vec![], None);
                }
                buffers[s.output] = Some(g.node("Softmax", &[&x], vec![int_attr("axis", 1)], None));
            }
            Op::Mix(m) => {
                let mut outs = Vec::new();
                for gate in &m.gates {
                    let weights = read(&mut g, &buffers, gate.weights)?;
                    let mut acc: Option<String> = None;
                    for (i, &e) in gate.columns.iter().enumerate() {
                        let w = g.columns(&weights, gate.weights.width, i, i + 1);
                        let expert = read(&mut g, &buffers, m.experts[e])?;
                        let term = g.node("Mul", &[&w, &expert], vec![], None);
                        acc = Some(match acc {
                            None => term,
                            Some(a) => g.node("Add", &[&a, &term], vec![], None),
                        });
                    }
                    outs.push(acc.ok_or_else(|| Error::invalid("a gate weighs no expert"))?);
                }
                let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
                buffers[m.output] = Some(if refs.len() == 1 {
                    refs[0].to_string()
                } else {
                    g.node("Concat", &refs, vec![int_attr("axis", 1)], None)
                });
            }
        }
    }

    let mut outputs = Vec::new();
    for (task, head) in spec.tasks.iter().zip(&plan.heads) {
        let z = read(&mut g, &buffers, *head)?;
        let name = Some(task.output_name);
        let width = match task.kind {
            TaskKind::Binary => {
                g.node("Sigmoid", &[&z], vec![], name);
                1
            }
            TaskKind::Regression => {
                g.node("Identity", &[&z], vec![], name);
                1
            }
            TaskKind::Multiclass { classes } => {
                g.node("Softmax", &[&z], vec![int_attr("axis", 1)], name);
                classes
            }
        };
        outputs.push(OnnxValue {
            name: task.output_name.to_string(),
            dtype: "float32",
            shape: vec![None, Some(width)],
        });
    }
    // Chained tasks (ESMM): the joint probability, the product along the chain.
    for t in spec.chained_tasks() {
        let chain = spec.chain(t);
        let name = crate::train::joint_output_name(spec.tasks[t].name);
        let mut product = spec.tasks[chain[0]].output_name.to_string();
        for (k, &m) in chain.iter().enumerate().skip(1) {
            let last = k + 1 == chain.len();
            product = g.node(
                "Mul",
                &[&product, spec.tasks[m].output_name],
                vec![],
                last.then_some(name.as_str()),
            );
        }
        outputs.push(OnnxValue {
            name,
            dtype: "float32",
            shape: vec![None, Some(1)],
        });
    }
    write(spec, g, inputs, outputs, path, options)
}

fn value_info(v: &OnnxValue) -> ValueInfoProto {
    ValueInfoProto {
        name: v.name.clone(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: if v.dtype == "int64" { INT64 } else { FLOAT },
                shape: Some(TensorShapeProto {
                    dim: v
                        .shape
                        .iter()
                        .map(|d| match d {
                            Some(n) => Dimension {
                                dim_value: Some(*n as i64),
                                dim_param: None,
                            },
                            None => Dimension {
                                dim_value: None,
                                dim_param: Some("batch".into()),
                            },
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

/// Places the weights, encodes the model and writes the file(s).
fn write(
    spec: &ModelSpec,
    mut g: Graph,
    inputs: Vec<OnnxValue>,
    outputs: Vec<OnnxValue>,
    path: &Path,
    options: &OnnxOptions,
) -> Result<OnnxExport> {
    let weight_bytes: u64 = g.weights.iter().map(|(_, _, v)| v.len() as u64 * 4).sum();
    let parameters = weight_bytes / 4;
    let external = match options.external_data {
        ExternalData::Always => true,
        ExternalData::Never => false,
        ExternalData::Auto => weight_bytes > INLINE_LIMIT,
    };
    if !external && weight_bytes > INLINE_LIMIT {
        return Err(Error::invalid(format!(
            "the weights take {weight_bytes} bytes, past what one ONNX protobuf file holds; \
             export with `ExternalData::Auto` or `Always`"
        )));
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::file(path, "is not a file path"))?;
    let data_name = format!("{file_name}.data");
    let data_path = path.with_file_name(&data_name);
    let (model_tmp, data_tmp) = (
        crate::train::temporary_path(path),
        crate::train::temporary_path(&data_path),
    );
    let result = (|| -> Result<OnnxExport> {
        let mut data_file = if external {
            let f = std::fs::File::create(&data_tmp).map_err(|e| Error::io(&data_tmp, e))?;
            Some(std::io::BufWriter::new(f))
        } else {
            None
        };
        let mut offset: u64 = 0;
        for (name, dims, values) in std::mem::take(&mut g.weights) {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            let mut tensor = TensorProto {
                dims,
                data_type: FLOAT,
                name,
                ..Default::default()
            };
            match data_file.as_mut().filter(|_| values.len() > 1) {
                Some(w) => {
                    // 64-byte alignment lets readers map tensors in place.
                    let pad = (64 - offset % 64) % 64;
                    w.write_all(&vec![0u8; pad as usize])
                        .and_then(|_| w.write_all(&bytes))
                        .map_err(|e| Error::io(&data_path, e))?;
                    offset += pad;
                    tensor.data_location = Some(EXTERNAL);
                    tensor.external_data = [
                        ("location", data_name.clone()),
                        ("offset", offset.to_string()),
                        ("length", bytes.len().to_string()),
                    ]
                    .into_iter()
                    .map(|(k, v)| StringStringEntryProto {
                        key: k.into(),
                        value: v,
                    })
                    .collect();
                    offset += bytes.len() as u64;
                }
                None => tensor.raw_data = bytes,
            }
            g.initializers.push(tensor);
        }
        if let Some(w) = data_file {
            w.into_inner()
                .map_err(|e| Error::io(&data_path, e.into_error()))?
                .sync_all()
                .map_err(|e| Error::io(&data_path, e))?;
        }
        let nodes = g.nodes.len();
        let model = ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "mtl".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: format!("mtl model `{}`", spec.name),
            graph: Some(GraphProto {
                node: g.nodes,
                name: spec.name.into(),
                initializer: g.initializers,
                doc_string: String::new(),
                input: inputs.iter().map(value_info).collect(),
                output: outputs.iter().map(value_info).collect(),
            }),
            metadata_props: vec![StringStringEntryProto {
                key: "mtl.outputs".into(),
                value: outputs
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            }],
        };
        std::fs::write(&model_tmp, model.encode_to_vec()).map_err(|e| Error::io(&model_tmp, e))?;
        if external {
            std::fs::rename(&data_tmp, &data_path).map_err(|e| Error::io(&data_path, e))?;
        }
        std::fs::rename(&model_tmp, path).map_err(|e| Error::io(path, e))?;
        Ok(OnnxExport {
            model: path.to_path_buf(),
            external_data: external.then(|| data_path.clone()),
            inputs,
            outputs,
            nodes,
            parameters,
            opset: OPSET,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&model_tmp);
        let _ = std::fs::remove_file(&data_tmp);
    }
    result
}
