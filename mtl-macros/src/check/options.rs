//! Reading option lists (`name = value`, flags) and the value kinds options take: positive
//! integers, flags, weights.

use std::collections::HashSet;

use syn::Ident;

use super::Errors;
use crate::parse::{Arg, Call, Value};

/// Options of a call, keyed by name; duplicates and positional arguments reported once.
pub struct Options<'a> {
    what: String,
    items: Vec<(&'a Ident, Option<&'a Value>)>,
    used: HashSet<String>,
}

impl<'a> Options<'a> {
    pub fn new(call: &'a Call, what: &str, errors: &mut Errors) -> Options<'a> {
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        if let Some((_, args)) = &call.args {
            for arg in args {
                let (key, value) = match arg {
                    Arg::Keyed { key, value } => (key, Some(value)),
                    Arg::Flag(key) => (key, None),
                    Arg::Positional(v) => {
                        errors.at(
                            v.span(),
                            format!("expected `name = value` in the options of {what}"),
                        );
                        continue;
                    }
                };
                if !seen.insert(key.to_string()) {
                    errors.at(
                        key.span(),
                        format!("option `{key}` is given twice in {what}; keep one"),
                    );
                    continue;
                }
                items.push((key, value));
            }
        }
        Options {
            what: what.to_string(),
            items,
            used: HashSet::new(),
        }
    }

    pub fn take(&mut self, name: &str) -> Option<(&'a Ident, Option<&'a Value>)> {
        let found = self.items.iter().find(|(k, _)| *k == name).copied();
        if found.is_some() {
            self.used.insert(name.to_string());
        }
        found
    }

    /// Whether option `name` is written (without taking it).
    pub fn peek(&self, name: &str) -> bool {
        self.items.iter().any(|(k, _)| *k == name)
    }

    /// `take` when `wanted`; otherwise the option stays unused (and `finish` reports it).
    pub fn take_if(&mut self, wanted: bool, name: &str) -> Option<(&'a Ident, Option<&'a Value>)> {
        if wanted {
            self.take(name)
        } else {
            None
        }
    }

    /// Reports every option that no `take` asked for.
    pub fn finish(self, accepted: &[&str], errors: &mut Errors) {
        self.finish_hinted(accepted, |_| None, errors);
    }

    /// Like [`Options::finish`], with a specific message for keys that `hint` knows (e.g. an
    /// option of another body kind).
    pub fn finish_hinted(
        self,
        accepted: &[&str],
        hint: impl Fn(&str) -> Option<String>,
        errors: &mut Errors,
    ) {
        for (key, _) in &self.items {
            if !self.used.contains(&key.to_string()) {
                if let Some(message) = hint(&key.to_string()) {
                    errors.at(key.span(), message);
                    continue;
                }
                errors.at(
                    key.span(),
                    format!(
                        "unknown option `{key}` for {}; accepted: {}",
                        self.what,
                        accepted.join(", ")
                    ),
                );
            }
        }
    }
}

/// The `kind(..)` of an input or task entry; anything else is reported with `expected`.
pub fn kind_call<'a>(value: &'a Value, expected: &str, errors: &mut Errors) -> Option<&'a Call> {
    match value {
        Value::Call(c) if c.brackets.is_none() => Some(c),
        other => {
            errors.at(other.span(), expected);
            None
        }
    }
}

/// A positive integer of at most `max` (a spanned error otherwise, never an overflow).
pub fn positive_int(
    value: Option<&Value>,
    key: &Ident,
    max: usize,
    errors: &mut Errors,
) -> Option<usize> {
    match value {
        Some(Value::Int {
            lit,
            negative: false,
            ..
        }) => match lit.base10_parse::<u128>() {
            Ok(0) => {
                errors.at(lit.span(), format!("`{key}` must be at least 1"));
                None
            }
            Ok(v) if v > max as u128 => {
                errors.at(lit.span(), too_large(&key.to_string(), max));
                None
            }
            Ok(v) => Some(v as usize),
            Err(e) => {
                errors.at(lit.span(), e);
                None
            }
        },
        Some(v) => {
            errors.at(
                v.span(),
                format!("`{key}` must be a positive integer, found {}", v.describe()),
            );
            None
        }
        None => {
            errors.at(key.span(), format!("`{key}` needs a value: `{key} = N`"));
            None
        }
    }
}

/// The message for a size above its bound.
pub fn too_large(what: &str, max: usize) -> String {
    format!("`{what}` is at most {max} (larger sizes cannot be built)")
}

pub fn flag(value: Option<&Value>, key: &Ident, errors: &mut Errors) -> bool {
    match value {
        None => true,
        Some(Value::Bool(b)) => b.value,
        Some(v) => match v.as_ident().map(|i| i.to_string()).as_deref() {
            Some("true") => true,
            Some("false") => false,
            _ => {
                errors.at(
                    v.span(),
                    format!("`{key}` is `true` or `false` (or write `{key}` alone)"),
                );
                false
            }
        },
    }
}

/// A finite, non-negative number (loss weights, class weights).
pub fn weight(value: Option<&Value>, key: &Ident, errors: &mut Errors) -> Option<f64> {
    let Some(v) = value else {
        errors.at(key.span(), format!("`{key}` needs a value: `{key} = 1.0`"));
        return None;
    };
    match v.as_f64() {
        Some(x) if x.is_finite() && x >= 0.0 => Some(x),
        Some(x) if x < 0.0 => {
            errors.at(
                v.span(),
                format!("`{key}` cannot be negative ({x}); use 0.0 to switch a loss off"),
            );
            None
        }
        _ => {
            let nan = v.as_ident().is_some_and(|i| {
                let s = i.to_string().to_ascii_lowercase();
                s == "nan" || s == "inf" || s == "infinity"
            });
            if nan {
                errors.at(
                    v.span(),
                    format!("`{key}` must be a finite number, not NaN or infinity"),
                );
            } else {
                errors.at(
                    v.span(),
                    format!(
                        "`{key}` must be a number such as 1.0, found {}",
                        v.describe()
                    ),
                );
            }
            None
        }
    }
}
