//! `schema.pbtxt`: the TensorFlow Metadata `Schema` protobuf in text format, as Merlin and
//! NVTabular write it (read only; write `schema.json` instead).
//!
//! `annotation.extra_metadata` is a `google.protobuf.Any` holding a `Struct`: either as
//! `type_url` + `value` with the Struct's binary wire format as an escaped byte string (what
//! Merlin writes), or in the expanded text form `[type.googleapis.com/google.protobuf.Struct] {
//! fields { key: ".." value { number_value: 1 } } }`.

use serde_json::{Map, Value};

use super::proto::{RawFeature, RawFloatDomain, RawIntDomain};
use super::protobuf_struct::{decode_struct, number};
use super::text_format::{parse, Field, FieldValue, Message, Scalar};
use super::Schema;
use crate::error::{Error, Result};

const STRUCT_URL: &str = "type.googleapis.com/google.protobuf.Struct";

/// Parses a `schema.pbtxt` document. `origin` (usually the path) prefixes every error.
pub fn from_str(text: &str, origin: &str) -> Result<Schema> {
    let doc = parse(text, origin)?;
    let mut columns = Vec::new();
    for field in doc.all("feature") {
        let ctx = Ctx {
            origin,
            line: field.line,
        };
        let msg = ctx.message(field)?;
        let raw = raw_feature(msg, ctx)?;
        let at = format!("{origin}:{} (feature `{}`)", field.line, raw.name);
        columns.push(raw.into_column(&at)?);
    }
    Schema::new(columns).map_err(|e| match e {
        Error::Schema { origin: o, message } => Error::schema(format!("{origin}: {o}"), message),
        other => other,
    })
}

#[derive(Clone, Copy)]
struct Ctx<'a> {
    origin: &'a str,
    line: usize,
}

impl Ctx<'_> {
    fn err(&self, field: &Field, msg: impl Into<String>) -> Error {
        Error::schema(
            format!("{}:{}", self.origin, field.line.max(self.line)),
            format!("field `{}`: {}", field.name, msg.into()),
        )
    }

    fn message<'m>(&self, field: &'m Field) -> Result<&'m Message> {
        match &field.value {
            FieldValue::Message(m) => Ok(m),
            FieldValue::Scalar(_) => {
                Err(self.err(field, "expected a message `{ ... }`, found a scalar"))
            }
        }
    }

    fn string(&self, field: &Field) -> Result<String> {
        match &field.value {
            FieldValue::Scalar(Scalar::Bytes(b)) => String::from_utf8(b.clone())
                .map_err(|_| self.err(field, "string is not valid UTF-8")),
            _ => Err(self.err(field, "expected a quoted string")),
        }
    }

    fn token<'m>(&self, field: &'m Field) -> Result<&'m str> {
        match &field.value {
            FieldValue::Scalar(Scalar::Token(t)) => Ok(t),
            _ => Err(self.err(
                field,
                "expected a bare value (number, enum name, true/false)",
            )),
        }
    }

    fn int(&self, field: &Field) -> Result<i64> {
        let t = self.token(field)?;
        t.parse()
            .map_err(|_| self.err(field, format!("expected an integer, found `{t}`")))
    }

    fn float(&self, field: &Field) -> Result<f64> {
        let t = self.token(field)?;
        // The special names first: `inf` ends in the `f` suffix of float literals (`1.5f`).
        match t.to_ascii_lowercase().as_str() {
            "inf" | "infinity" | "inff" | "infinityf" => return Ok(f64::INFINITY),
            "-inf" | "-infinity" | "-inff" | "-infinityf" => return Ok(f64::NEG_INFINITY),
            "nan" | "nanf" => return Ok(f64::NAN),
            _ => {}
        }
        let t = t.trim_end_matches(['f', 'F']);
        t.parse()
            .map_err(|_| self.err(field, format!("expected a number, found `{t}`")))
    }

    fn bool(&self, field: &Field) -> Result<bool> {
        match self.token(field)? {
            "true" | "True" | "t" | "1" => Ok(true),
            "false" | "False" | "f" | "0" => Ok(false),
            other => Err(self.err(field, format!("expected true or false, found `{other}`"))),
        }
    }
}

fn raw_feature(msg: &Message, ctx: Ctx<'_>) -> Result<RawFeature> {
    let name = match msg.get("name") {
        Some(f) => ctx.string(f)?,
        None => {
            return Err(Error::schema(
                format!("{}:{}", ctx.origin, ctx.line),
                "this feature has no `name`",
            ))
        }
    };
    let mut raw = RawFeature {
        name,
        kind: msg
            .get("type")
            .map(|f| ctx.token(f).map(str::to_string))
            .transpose()?,
        ..RawFeature::default()
    };
    if let Some(f) = msg.get("int_domain") {
        let d = ctx.message(f)?;
        raw.int_domain = Some(RawIntDomain {
            name: d.get("name").map(|f| ctx.string(f)).transpose()?,
            min: d.get("min").map(|f| ctx.int(f)).transpose()?,
            max: d.get("max").map(|f| ctx.int(f)).transpose()?,
            is_categorical: d
                .get("is_categorical")
                .map(|f| ctx.bool(f))
                .transpose()?
                .unwrap_or(false),
        });
    }
    if let Some(f) = msg.get("float_domain") {
        let d = ctx.message(f)?;
        raw.float_domain = Some(RawFloatDomain {
            name: d.get("name").map(|f| ctx.string(f)).transpose()?,
            min: d.get("min").map(|f| ctx.float(f)).transpose()?,
            max: d.get("max").map(|f| ctx.float(f)).transpose()?,
        });
    }
    if let Some(f) = msg.get("value_count") {
        let d = ctx.message(f)?;
        let count = |name: &str| -> Result<u64> {
            match d.get(name) {
                None => Ok(0),
                Some(f) => {
                    let v = ctx.int(f)?;
                    u64::try_from(v)
                        .map_err(|_| ctx.err(f, format!("a list length cannot be negative ({v})")))
                }
            }
        };
        raw.value_count = Some((count("min")?, count("max")?));
    }
    if let Some(f) = msg.get("annotation") {
        let a = ctx.message(f)?;
        for t in a.all("tag") {
            raw.tags.push(ctx.string(t)?);
        }
        for m in a.all("extra_metadata") {
            raw.extra.extend(extra_metadata(ctx.message(m)?, m, ctx)?);
        }
    }
    Ok(raw)
}

/// Decodes one `extra_metadata` Any into the Struct's fields.
fn extra_metadata(any: &Message, at: &Field, ctx: Ctx<'_>) -> Result<Map<String, Value>> {
    if let Some(expanded) = any.get(&format!("[{STRUCT_URL}]")) {
        return struct_text(ctx.message(expanded)?, ctx);
    }
    let url = any.get("type_url").map(|f| ctx.string(f)).transpose()?;
    if let Some(url) = url.as_deref().filter(|u| *u != STRUCT_URL) {
        return Err(ctx.err(
            at,
            format!("expected an Any of type {STRUCT_URL}, found `{url}`"),
        ));
    }
    let Some(value) = any.get("value") else {
        return Ok(Map::new());
    };
    let FieldValue::Scalar(Scalar::Bytes(bytes)) = &value.value else {
        return Err(ctx.err(value, "expected the Struct's bytes as a quoted string"));
    };
    decode_struct(bytes).map_err(|e| {
        ctx.err(
            value,
            format!(
                "not a valid binary google.protobuf.Struct (byte {}): {}",
                e.offset, e.message
            ),
        )
    })
}

/// A `Struct` in text form: `fields { key: "k" value { ... } }`.
fn struct_text(msg: &Message, ctx: Ctx<'_>) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for entry in msg.all("fields") {
        let e = ctx.message(entry)?;
        let key = match e.get("key") {
            Some(k) => ctx.string(k)?,
            None => return Err(ctx.err(entry, "Struct entry without a `key`")),
        };
        let value = match e.get("value") {
            Some(v) => value_text(ctx.message(v)?, ctx)?,
            None => Value::Null,
        };
        map.insert(key, value);
    }
    Ok(map)
}

fn value_text(msg: &Message, ctx: Ctx<'_>) -> Result<Value> {
    let Some(field) = msg.fields.last() else {
        return Ok(Value::Null);
    };
    Ok(match field.name.as_str() {
        "null_value" => Value::Null,
        "number_value" => number(ctx.float(field)?),
        "string_value" => Value::String(ctx.string(field)?),
        "bool_value" => Value::Bool(ctx.bool(field)?),
        "struct_value" => Value::Object(struct_text(ctx.message(field)?, ctx)?),
        "list_value" => Value::Array(
            ctx.message(field)?
                .all("values")
                .map(|v| value_text(ctx.message(v)?, ctx))
                .collect::<Result<_>>()?,
        ),
        other => {
            return Err(ctx.err(
                field,
                format!("`{other}` is not a google.protobuf.Value field"),
            ))
        }
    })
}
