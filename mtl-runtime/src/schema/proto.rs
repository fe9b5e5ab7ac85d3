//! The TensorFlow Metadata `Feature` record that both schema formats decode into, and Merlin's
//! load-time normalisation of it into a [`ColumnSchema`] (and back, for writing).
//!
//! Load rules (merlin-core `io/tensorflow_metadata.py`):
//! - tags are the annotation tags; `is_categorical: true` on the domain adds CATEGORICAL;
//! - properties are the decoded `extra_metadata`, numbers as doubles;
//! - domain min defaults to 0;
//! - dtype: INT + `dtype_item_size` 8/16/32/64 gives int8..int64, no size gives int64; FLOAT
//!   gives float16/32/64, no size float64; BYTES gives string;
//! - shape: from `_dims` when present and non-empty, else from `value_count`, else from
//!   `is_list`; `_dims`, `is_list`, `is_ragged` and `dtype_item_size` are consumed, not kept.

use serde_json::{Map, Value};

use super::column::{ColumnSchema, DType, Dim, Domain};
use super::protobuf_struct::number;
use super::tags::TagSet;
use crate::error::{Error, Result};

/// Properties rebuilt into typed fields at load time and regenerated when writing.
pub(crate) const CONSUMED_PROPERTIES: [&str; 4] =
    ["_dims", "is_list", "is_ragged", "dtype_item_size"];

#[derive(Debug, Default)]
pub(crate) struct RawFeature {
    pub name: String,
    /// `INT`, `FLOAT` or `BYTES` (`TYPE_UNKNOWN` or absent: unknown).
    pub kind: Option<String>,
    pub int_domain: Option<RawIntDomain>,
    pub float_domain: Option<RawFloatDomain>,
    pub value_count: Option<(u64, u64)>,
    pub tags: Vec<String>,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Default)]
pub(crate) struct RawIntDomain {
    pub name: Option<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub is_categorical: bool,
}

#[derive(Debug, Default)]
pub(crate) struct RawFloatDomain {
    pub name: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl RawFeature {
    /// Merlin's normalisation; `origin` names the file and feature for errors.
    pub(crate) fn into_column(self, origin: &str) -> Result<ColumnSchema> {
        let mut tags: Vec<String> = self.tags;
        if self.int_domain.as_ref().is_some_and(|d| d.is_categorical) {
            tags.push("categorical".into());
        }
        let tags = TagSet::new(tags.iter().map(String::as_str))
            .map_err(|e| Error::schema(origin, format!("annotation.tag: {e}")))?;

        let mut properties = self.extra;
        let size = properties.get("dtype_item_size").and_then(Value::as_f64);
        let dtype = match (self.kind.as_deref(), size.map(|s| s as u32)) {
            (Some("INT"), None) => DType::Int64,
            (Some("INT"), Some(8)) => DType::Int8,
            (Some("INT"), Some(16)) => DType::Int16,
            (Some("INT"), Some(32)) => DType::Int32,
            (Some("INT"), Some(64)) => DType::Int64,
            (Some("FLOAT"), None) => DType::Float64,
            (Some("FLOAT"), Some(16)) => DType::Float16,
            (Some("FLOAT"), Some(32)) => DType::Float32,
            (Some("FLOAT"), Some(64)) => DType::Float64,
            (Some("BYTES"), _) => DType::String,
            (None | Some("TYPE_UNKNOWN"), _) => DType::Unknown,
            (Some(kind @ ("INT" | "FLOAT")), Some(bits)) => {
                return Err(Error::schema(
                    origin,
                    format!(
                        "dtype_item_size {bits} is not a valid size for type {kind}; \
                         expected 8, 16, 32 or 64"
                    ),
                ))
            }
            (Some(other), _) => {
                return Err(Error::schema(
                    origin,
                    format!("type: expected INT, FLOAT or BYTES, found `{other}`"),
                ))
            }
        };

        let dims = match properties.get("_dims") {
            Some(Value::Array(d)) if !d.is_empty() => parse_dims(d, origin)?,
            _ => match self.value_count {
                Some((min, max)) if min > 0 || max > 0 => vec![Dim {
                    min,
                    max: (max > 0).then_some(max),
                }],
                _ if properties.get("is_list") == Some(&Value::Bool(true)) => {
                    vec![Dim { min: 0, max: None }]
                }
                _ => Vec::new(),
            },
        };
        for key in CONSUMED_PROPERTIES {
            properties.remove(key);
        }

        let domain = match (self.int_domain, self.float_domain) {
            (Some(d), _) => Some(Domain::Int {
                min: d.min.unwrap_or(0),
                max: d.max.unwrap_or(0),
                name: d.name,
            }),
            (None, Some(d)) => Some(Domain::Float {
                min: d.min.unwrap_or(0.0),
                max: d.max.unwrap_or(0.0),
                name: d.name,
            }),
            (None, None) => None,
        };
        if let Some(Domain::Int { min, max, .. }) = &domain {
            if min > max {
                return Err(Error::schema(
                    origin,
                    format!("int_domain: min {min} is above max {max}"),
                ));
            }
        }

        Ok(ColumnSchema {
            name: self.name,
            tags,
            dtype,
            dims,
            domain,
            properties,
        })
    }

    /// The reverse of [`RawFeature::into_column`], for writing.
    pub(crate) fn from_column(c: &ColumnSchema) -> RawFeature {
        let kind = match c.dtype {
            d if d.is_integer() || d == DType::Bool => Some("INT"),
            d if d.is_float() => Some("FLOAT"),
            DType::String => Some("BYTES"),
            _ => None,
        };
        let mut extra = c.properties.clone();
        extra.insert("is_list".into(), Value::Bool(c.is_list()));
        extra.insert("is_ragged".into(), Value::Bool(c.is_ragged()));
        if let Some(bits) = c.dtype.bits() {
            extra.insert("dtype_item_size".into(), number(f64::from(bits)));
        }
        let mut dims: Vec<Value> = Vec::new();
        if c.is_list() {
            // Merlin's `_dims` includes the batch dimension, unbounded.
            dims.push(Value::Array(vec![number(0.0), Value::Null]));
            for d in &c.dims {
                dims.push(Value::Array(vec![
                    number(d.min as f64),
                    d.max.map(|m| number(m as f64)).unwrap_or(Value::Null),
                ]));
            }
        }
        extra.insert("_dims".into(), Value::Array(dims));

        let is_categorical = c.tags.contains(&super::Tag::Categorical);
        let (int_domain, float_domain) = match &c.domain {
            Some(Domain::Int { min, max, name }) => (
                Some(RawIntDomain {
                    name: name.clone(),
                    min: Some(*min),
                    max: Some(*max),
                    is_categorical,
                }),
                None,
            ),
            Some(Domain::Float { min, max, name }) => (
                None,
                Some(RawFloatDomain {
                    name: name.clone(),
                    min: Some(*min),
                    max: Some(*max),
                }),
            ),
            None => (None, None),
        };
        RawFeature {
            name: c.name.clone(),
            kind: kind.map(str::to_string),
            int_domain,
            float_domain,
            value_count: c.value_count().map(|d| (d.min, d.max.unwrap_or(0))),
            tags: c.tags.iter().map(|t| t.as_str().to_string()).collect(),
            extra,
        }
    }
}

/// `_dims`: one entry per dimension including the batch one; each a number (fixed) or a
/// `[min, max]` pair with `null` for unbounded.
fn parse_dims(dims: &[Value], origin: &str) -> Result<Vec<Dim>> {
    let bad = |i: usize, v: &Value| {
        Error::schema(
            origin,
            format!("_dims[{i}]: expected a length or a [min, max] pair, found {v}"),
        )
    };
    let as_len = |v: &Value| v.as_f64().filter(|x| *x >= 0.0).map(|x| x as u64);
    dims.iter()
        .enumerate()
        .skip(1) // the batch dimension
        .map(|(i, v)| match v {
            Value::Array(pair) if pair.len() == 2 => Ok(Dim {
                min: as_len(&pair[0]).ok_or_else(|| bad(i, v))?,
                max: match &pair[1] {
                    Value::Null => None,
                    m => Some(as_len(m).ok_or_else(|| bad(i, v))?),
                },
            }),
            v => as_len(v)
                .map(|n| Dim {
                    min: n,
                    max: Some(n),
                })
                .ok_or_else(|| bad(i, v)),
        })
        .collect()
}

/// Protobuf `Struct` semantics: every number is a double. Normalising JSON input this way makes
/// a `schema.json` and a `schema.pbtxt` of the same schema load to equal values.
pub(crate) fn numbers_as_doubles(value: Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map(number).unwrap_or(Value::Null),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_doubles).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_doubles(v)))
                .collect(),
        ),
        other => other,
    }
}
