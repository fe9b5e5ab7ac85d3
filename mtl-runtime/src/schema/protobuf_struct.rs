//! Decoding a binary `google.protobuf.Struct` into JSON values.
//!
//! Merlin stores a column's extra metadata in `schema.pbtxt` as a protobuf `Any` whose value is
//! the wire-format bytes of a `Struct`. The wire format needed is tiny, so it is decoded by hand:
//! - `Struct`:    field 1, repeated map entry `{1: key (string), 2: Value}`;
//! - `Value`:     oneof 1 null (varint), 2 number (fixed64 double), 3 string, 4 bool (varint),
//!   5 Struct, 6 ListValue;
//! - `ListValue`: field 1, repeated Value.
//!
//! Numbers are doubles, as protobuf `Struct` defines them.

use serde_json::{Map, Number, Value};

/// A decoding failure with the byte offset where it happened.
#[derive(Debug)]
pub(crate) struct DecodeError {
    pub offset: usize,
    pub message: String,
}

type Decoded<T> = Result<T, DecodeError>;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the outermost buffer, for error messages.
    base: usize,
}

enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(Reader<'a>),
    Fixed32,
}

impl<'a> Reader<'a> {
    fn err<T>(&self, message: impl Into<String>) -> Decoded<T> {
        Err(DecodeError {
            offset: self.base + self.pos,
            message: message.into(),
        })
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Decoded<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return self.err("truncated varint");
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.err("varint longer than 10 bytes")
    }

    /// Next `(field number, value)`.
    fn field(&mut self) -> Decoded<(u64, Wire<'a>)> {
        let key = self.varint()?;
        let (number, wire_type) = (key >> 3, key & 7);
        let value = match wire_type {
            0 => Wire::Varint(self.varint()?),
            1 => {
                let Some(bytes) = self.buf.get(self.pos..self.pos + 8) else {
                    return self.err("truncated fixed64");
                };
                self.pos += 8;
                Wire::Fixed64(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
            }
            2 => {
                let len = self.varint()? as usize;
                let start = self.pos;
                let Some(bytes) = self.buf.get(start..start.saturating_add(len)) else {
                    return self.err(format!("length {len} runs past the end of the data"));
                };
                self.pos += len;
                Wire::Bytes(Reader {
                    buf: bytes,
                    pos: 0,
                    base: self.base + start,
                })
            }
            5 => {
                if self.buf.len() < self.pos + 4 {
                    return self.err("truncated fixed32");
                }
                self.pos += 4;
                Wire::Fixed32
            }
            other => return self.err(format!("unsupported wire type {other}")),
        };
        Ok((number, value))
    }
}

/// The deepest `Struct`/`ListValue` nesting accepted (Merlin writes two levels); the bound
/// keeps corrupt bytes from exhausting the stack.
const MAX_NESTING: usize = 64;

/// Decodes the bytes of a `google.protobuf.Struct`.
pub(crate) fn decode_struct(bytes: &[u8]) -> Decoded<Map<String, Value>> {
    struct_fields(
        Reader {
            buf: bytes,
            pos: 0,
            base: 0,
        },
        0,
    )
}

fn struct_fields(mut r: Reader<'_>, depth: usize) -> Decoded<Map<String, Value>> {
    if depth >= MAX_NESTING {
        return r.err(format!("values nested more than {MAX_NESTING} deep"));
    }
    let mut map = Map::new();
    while !r.done() {
        if let (1, Wire::Bytes(mut entry)) = r.field()? {
            let mut key = None;
            let mut value = Value::Null;
            while !entry.done() {
                match entry.field()? {
                    (1, Wire::Bytes(k)) => match std::str::from_utf8(k.buf) {
                        Ok(s) => key = Some(s.to_string()),
                        Err(_) => return k.err("map key is not UTF-8"),
                    },
                    (2, Wire::Bytes(v)) => value = decode_value(v, depth + 1)?,
                    _ => {} // unknown fields are skipped, as protobuf requires
                }
            }
            let Some(key) = key else {
                return entry.err("Struct entry without a key");
            };
            map.insert(key, value);
        }
    }
    Ok(map)
}

fn decode_value(mut r: Reader<'_>, depth: usize) -> Decoded<Value> {
    if depth >= MAX_NESTING {
        return r.err(format!("values nested more than {MAX_NESTING} deep"));
    }
    let mut value = Value::Null;
    while !r.done() {
        value = match r.field()? {
            (1, Wire::Varint(_)) => Value::Null,
            (2, Wire::Fixed64(bits)) => number(f64::from_bits(bits)),
            (3, Wire::Bytes(s)) => match std::str::from_utf8(s.buf) {
                Ok(s) => Value::String(s.to_string()),
                Err(_) => return s.err("string value is not UTF-8"),
            },
            (4, Wire::Varint(b)) => Value::Bool(b != 0),
            (5, Wire::Bytes(s)) => Value::Object(struct_fields(s, depth + 1)?),
            (6, Wire::Bytes(mut list)) => {
                let mut items = Vec::new();
                while !list.done() {
                    if let (1, Wire::Bytes(v)) = list.field()? {
                        items.push(decode_value(v, depth + 1)?);
                    }
                }
                Value::Array(items)
            }
            _ => continue,
        };
    }
    Ok(value)
}

/// A JSON number from a double; NaN and infinities (which JSON cannot hold) become null.
pub(crate) fn number(x: f64) -> Value {
    Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        let mut e = vec![0x0a, key.len() as u8];
        e.extend(key.as_bytes());
        e.push(0x12);
        e.push(value.len() as u8);
        e.extend(value);
        let mut out = vec![0x0a, e.len() as u8];
        out.extend(e);
        out
    }

    #[test]
    fn decodes_every_value_kind() {
        let mut bytes = entry("n", &[0x08, 0x00]);
        let mut dbl = vec![0x11];
        dbl.extend(32.0f64.to_le_bytes());
        bytes.extend(entry("d", &dbl));
        bytes.extend(entry("s", b"\x1a\x02hi"));
        bytes.extend(entry("b", &[0x20, 0x01]));
        bytes.extend(entry("l", &[0x32, 0x04, 0x0a, 0x02, 0x20, 0x00]));
        let map = decode_struct(&bytes).unwrap();
        assert_eq!(
            Value::Object(map),
            serde_json::json!({"n": null, "d": 32.0, "s": "hi", "b": true, "l": [false]})
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // Struct{fields: {"k": Value{struct_value: Struct{...}}}} nested 2,000 times.
        let mut bytes = Vec::new();
        for _ in 0..2_000 {
            let mut entry = vec![(1 << 3) | 2, 1, b'k', (2 << 3) | 2];
            let mut inner = vec![(5 << 3) | 2];
            push_len(&mut inner, bytes.len());
            inner.extend(&bytes);
            push_len(&mut entry, inner.len());
            entry.extend(inner);
            bytes = vec![(1 << 3) | 2];
            push_len(&mut bytes, entry.len());
            bytes.extend(entry);
        }
        let err = decode_struct(&bytes).unwrap_err();
        assert!(
            err.message.contains("nested more than 64"),
            "{}",
            err.message
        );
    }

    fn push_len(v: &mut Vec<u8>, mut n: usize) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                v.push(b);
                return;
            }
            v.push(b | 0x80);
        }
    }

    #[test]
    fn truncated_data_is_an_error_with_an_offset() {
        let err = decode_struct(&[0x0a, 0x10, 0x0a]).unwrap_err();
        assert!(err.message.contains("runs past the end"), "{}", err.message);
        assert_eq!(err.offset, 2);
    }
}
