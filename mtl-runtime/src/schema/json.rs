//! `schema.json`: the TensorFlow Metadata `Schema` protobuf in protobuf-JSON form.
//!
//! Field names are camelCase (`intDomain`, `isCategorical`, `valueCount`, `extraMetadata`),
//! int64 values are JSON strings (`"max": "100000"`; plain numbers are accepted on read), and
//! each `extraMetadata` entry is the plain JSON object of a `google.protobuf.Struct` (an
//! `{"@type": ..., "value": {...}}` wrapper is unwrapped). Unknown fields are ignored, as
//! protobuf readers do.

use serde_json::{json, Map, Value};

use super::proto::{numbers_as_doubles, RawFeature, RawFloatDomain, RawIntDomain};
use super::Schema;
use crate::error::{Error, Result};

/// Parses a `schema.json` document. `origin` (usually the path) prefixes every error.
pub fn from_str(text: &str, origin: &str) -> Result<Schema> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        Error::schema(
            format!("{origin}:{}:{}", e.line(), e.column()),
            format!("not valid JSON: {e}"),
        )
    })?;
    let Value::Object(doc) = doc else {
        return Err(Error::schema(
            origin,
            "expected a JSON object with a `feature` array at the top level",
        ));
    };
    let features = match doc.get("feature") {
        Some(Value::Array(f)) => f.as_slice(),
        None => &[],
        Some(other) => {
            return Err(Error::schema(
                format!("{origin}: feature"),
                format!("expected an array of features, found {}", kind(other)),
            ))
        }
    };
    let mut columns = Vec::with_capacity(features.len());
    for (i, feature) in features.iter().enumerate() {
        let path = format!("feature[{i}]");
        let raw = raw_feature(feature, origin, &path)?;
        let at = format!("{origin}: {path} (`{}`)", raw.name);
        columns.push(raw.into_column(&at)?);
    }
    Schema::new(columns).map_err(|e| match e {
        Error::Schema { origin: o, message } => Error::schema(format!("{origin}: {o}"), message),
        other => other,
    })
}

/// Serialises a schema the way Merlin writes `schema.json`.
pub fn to_string(schema: &Schema) -> String {
    let features: Vec<Value> = schema
        .columns()
        .iter()
        .map(|c| {
            let raw = RawFeature::from_column(c);
            let mut f = Map::new();
            f.insert("name".into(), json!(raw.name));
            if let Some((min, max)) = raw.value_count {
                let mut vc = Map::new();
                if min > 0 {
                    vc.insert("min".into(), json!(min.to_string()));
                }
                if max > 0 {
                    vc.insert("max".into(), json!(max.to_string()));
                }
                f.insert("valueCount".into(), Value::Object(vc));
            }
            if let Some(kind) = raw.kind {
                f.insert("type".into(), json!(kind));
            }
            if let Some(d) = raw.int_domain {
                let mut dom = Map::new();
                if let Some(name) = d.name {
                    dom.insert("name".into(), json!(name));
                }
                // protobuf-JSON omits default values (0, false).
                if let Some(min) = d.min.filter(|m| *m != 0) {
                    dom.insert("min".into(), json!(min.to_string()));
                }
                if let Some(max) = d.max.filter(|m| *m != 0) {
                    dom.insert("max".into(), json!(max.to_string()));
                }
                if d.is_categorical {
                    dom.insert("isCategorical".into(), json!(true));
                }
                f.insert("intDomain".into(), Value::Object(dom));
            }
            if let Some(d) = raw.float_domain {
                let mut dom = Map::new();
                if let Some(name) = d.name {
                    dom.insert("name".into(), json!(name));
                }
                dom.insert("min".into(), json!(d.min.unwrap_or(0.0)));
                dom.insert("max".into(), json!(d.max.unwrap_or(0.0)));
                f.insert("floatDomain".into(), Value::Object(dom));
            }
            f.insert(
                "annotation".into(),
                json!({"tag": raw.tags, "extraMetadata": [Value::Object(raw.extra)]}),
            );
            Value::Object(f)
        })
        .collect();
    serde_json::to_string(&json!({ "feature": features })).expect("JSON values serialise")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Field access with errors that carry the JSON path.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    origin: &'a str,
    path: String,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, origin: &'a str, path: String) -> Result<Obj<'a>> {
        match v {
            Value::Object(map) => Ok(Obj { map, origin, path }),
            other => Err(Error::schema(
                format!("{origin}: {path}"),
                format!("expected an object, found {}", kind(other)),
            )),
        }
    }

    fn err(&self, field: &str, msg: impl Into<String>) -> Error {
        Error::schema(format!("{}: {}.{field}", self.origin, self.path), msg)
    }

    fn child(&self, field: &str) -> Result<Option<Obj<'a>>> {
        self.map
            .get(field)
            .map(|v| Obj::new(v, self.origin, format!("{}.{field}", self.path)))
            .transpose()
    }

    fn string(&self, field: &str) -> Result<Option<String>> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => {
                Err(self.err(field, format!("expected a string, found {}", kind(other))))
            }
        }
    }

    fn bool(&self, field: &str) -> Result<bool> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.err(
                field,
                format!("expected true or false, found {}", kind(other)),
            )),
        }
    }

    /// An int64: a JSON string of digits (protobuf-JSON) or a JSON integer.
    fn int(&self, field: &str) -> Result<Option<i64>> {
        let parsed = match self.map.get(field) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            Some(other) => {
                return Err(self.err(
                    field,
                    format!(
                        "expected an integer string such as \"10\", found {}",
                        kind(other)
                    ),
                ))
            }
        };
        parsed.map(Some).ok_or_else(|| {
            self.err(
                field,
                format!(
                    "expected an integer such as \"10\", found {}",
                    self.map[field]
                ),
            )
        })
    }

    fn float(&self, field: &str) -> Result<Option<f64>> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            // protobuf-JSON writes non-finite floats and accepts numeric strings.
            Some(Value::String(s)) => s
                .parse::<f64>()
                .map(Some)
                .map_err(|_| self.err(field, format!("expected a number, found \"{s}\""))),
            Some(other) => {
                Err(self.err(field, format!("expected a number, found {}", kind(other))))
            }
        }
    }
}

fn raw_feature(v: &Value, origin: &str, path: &str) -> Result<RawFeature> {
    let f = Obj::new(v, origin, path.to_string())?;
    let name = f
        .string("name")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| f.err("name", "every feature needs a non-empty `name`"))?;
    let mut raw = RawFeature {
        name,
        kind: f.string("type")?,
        ..RawFeature::default()
    };
    if let Some(d) = f.child("intDomain")? {
        raw.int_domain = Some(RawIntDomain {
            name: d.string("name")?,
            min: d.int("min")?,
            max: d.int("max")?,
            is_categorical: d.bool("isCategorical")?,
        });
    }
    if let Some(d) = f.child("floatDomain")? {
        raw.float_domain = Some(RawFloatDomain {
            name: d.string("name")?,
            min: d.float("min")?,
            max: d.float("max")?,
        });
    }
    if let Some(vc) = f.child("valueCount")? {
        let count = |field: &str| -> Result<u64> {
            let v = vc.int(field)?.unwrap_or(0);
            u64::try_from(v)
                .map_err(|_| vc.err(field, format!("a list length cannot be negative ({v})")))
        };
        raw.value_count = Some((count("min")?, count("max")?));
    }
    if let Some(a) = f.child("annotation")? {
        match a.map.get("tag") {
            None | Some(Value::Null) => {}
            Some(Value::Array(tags)) => {
                for (i, t) in tags.iter().enumerate() {
                    match t {
                        Value::String(s) => raw.tags.push(s.clone()),
                        other => {
                            return Err(a.err(
                                &format!("tag[{i}]"),
                                format!("expected a string, found {}", kind(other)),
                            ))
                        }
                    }
                }
            }
            Some(other) => {
                return Err(a.err(
                    "tag",
                    format!("expected an array of strings, found {}", kind(other)),
                ))
            }
        }
        match a.map.get("extraMetadata") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let item = match item {
                        Value::Object(m) if m.contains_key("@type") => {
                            m.get("value").unwrap_or(&Value::Null)
                        }
                        other => other,
                    };
                    match numbers_as_doubles(item.clone()) {
                        Value::Object(m) => raw.extra.extend(m),
                        other => {
                            return Err(a.err(
                                &format!("extraMetadata[{i}]"),
                                format!(
                                    "expected an object (a protobuf Struct), found {}",
                                    kind(&other)
                                ),
                            ))
                        }
                    }
                }
            }
            Some(other) => {
                return Err(a.err(
                    "extraMetadata",
                    format!("expected an array of objects, found {}", kind(other)),
                ))
            }
        }
    }
    Ok(raw)
}
