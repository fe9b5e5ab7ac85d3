//! Semantic checks: syntax tree → [`Model`], every problem a `syn::Error` on the token at fault.
//!
//! Errors are collected, not returned early, so a model with several mistakes reports them all
//! in one compile. Each check that fails leaves a harmless default behind (a zero-width input
//! is skipped, an unknown option ignored, ...) so that later checks do not repeat the complaint.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use mtl_runtime::schema::{Schema, Tag};
use mtl_runtime::spec::{canonical_metric, infer_embedding_dim};
use proc_macro2::Span;
use syn::Ident;

use crate::model::{
    Activation, Body, Feature, FeatureKind, GateInput, Mlp, Model, Moe, SchemaFile, Task, TaskKind,
};
use crate::parse::{Arg, Call, Entry, ModelDef, Value};

const SECTIONS: [&str; 6] = ["schema", "inputs", "exclude", "body", "towers", "tasks"];
const MAX_MLP_LAYERS: usize = 6;

#[derive(Default)]
pub struct Errors(Vec<syn::Error>);

impl Errors {
    pub fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.0.push(syn::Error::new(span, msg));
    }

    pub fn into_vec(self) -> Vec<syn::Error> {
        self.0
    }
}

/// Options of a call, keyed by name; duplicates and positional arguments reported once.
struct Options<'a> {
    what: String,
    items: Vec<(&'a Ident, Option<&'a Value>)>,
    used: HashSet<String>,
}

impl<'a> Options<'a> {
    fn new(call: &'a Call, what: &str, errors: &mut Errors) -> Options<'a> {
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

    fn take(&mut self, name: &str) -> Option<(&'a Ident, Option<&'a Value>)> {
        let found = self.items.iter().find(|(k, _)| *k == name).copied();
        if found.is_some() {
            self.used.insert(name.to_string());
        }
        found
    }

    /// `take` when `wanted`; otherwise the option stays unused (and `finish` reports it).
    fn take_if(&mut self, wanted: bool, name: &str) -> Option<(&'a Ident, Option<&'a Value>)> {
        if wanted {
            self.take(name)
        } else {
            None
        }
    }

    /// Reports every option that no `take` asked for.
    fn finish(self, accepted: &[&str], errors: &mut Errors) {
        self.finish_hinted(accepted, |_| None, errors);
    }

    /// Like [`Options::finish`], with a specific message for keys that `hint` knows (e.g. an
    /// option of another body kind).
    fn finish_hinted(
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
fn kind_call<'a>(value: &'a Value, expected: &str, errors: &mut Errors) -> Option<&'a Call> {
    match value {
        Value::Call(c) if c.brackets.is_none() => Some(c),
        other => {
            errors.at(other.span(), expected);
            None
        }
    }
}

fn positive_int(value: Option<&Value>, key: &Ident, errors: &mut Errors) -> Option<usize> {
    match value {
        Some(Value::Int {
            lit,
            negative: false,
            ..
        }) => match lit.base10_parse::<usize>() {
            Ok(0) => {
                errors.at(lit.span(), format!("`{key}` must be at least 1"));
                None
            }
            Ok(v) => Some(v),
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

fn flag(value: Option<&Value>, key: &Ident, errors: &mut Errors) -> bool {
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
fn weight(value: Option<&Value>, key: &Ident, errors: &mut Errors) -> Option<f64> {
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

pub fn resolve(def: &ModelDef) -> (Option<Model>, Errors) {
    let mut errors = Errors::default();
    let mut sections: BTreeMap<String, &Entry> = BTreeMap::new();
    for entry in &def.sections {
        let key = entry.key.to_string();
        if !SECTIONS.contains(&key.as_str()) {
            errors.at(
                entry.key.span(),
                format!(
                    "unknown section `{key}`; sections are: {}",
                    SECTIONS.join(", ")
                ),
            );
        } else if let std::collections::btree_map::Entry::Vacant(slot) = sections.entry(key.clone())
        {
            slot.insert(entry);
        } else {
            errors.at(
                entry.key.span(),
                format!("section `{key}` is given twice; keep one"),
            );
        }
    }

    let schema = sections
        .get("schema")
        .and_then(|e| load_schema(&e.value, &mut errors));
    // A schema that failed to load was already reported; do not also complain about what it
    // would have provided (inputs, tasks).
    let schema_failed = sections.contains_key("schema") && schema.is_none();
    let excluded = sections
        .get("exclude")
        .map(|e| exclude(&e.value, schema.as_ref(), &mut errors))
        .unwrap_or_default();
    let features = match sections.get("inputs") {
        Some(e) => explicit_inputs(&e.value, schema.as_ref(), &mut errors),
        None => match &schema {
            Some((_, s)) => schema_inputs(s, &excluded, def, &mut errors),
            None if schema_failed => Vec::new(),
            None => {
                errors.at(def.name.span(), "the model has no inputs: add an `inputs: { .. }` section or a `schema: \"..\"` to infer them from");
                Vec::new()
            }
        },
    };
    let body = match sections.get("body") {
        Some(e) => body(&e.value, &mut errors),
        None => {
            errors.at(
                def.name.span(),
                "missing `body:` section, e.g. `body: mlp[32, 16]` or `body: identity`",
            );
            None
        }
    };
    let default_tower = sections
        .get("towers")
        .and_then(|e| mlp_value(&e.value, "`towers`", &mut errors));
    let inputs: HashSet<String> = features.iter().map(|f| f.name.clone()).collect();
    let tasks = match sections.get("tasks") {
        Some(e) => explicit_tasks(
            &e.value,
            schema.as_ref(),
            &inputs,
            &default_tower,
            &mut errors,
        ),
        None => match &schema {
            Some((lit_span, s)) => {
                schema_tasks(s, *lit_span, &excluded, &default_tower, &mut errors)
            }
            None if schema_failed => Vec::new(),
            None => {
                errors.at(def.name.span(), "the model has no tasks: add a `tasks: { .. }` section or a `schema: \"..\"` to infer them from its targets");
                Vec::new()
            }
        },
    };
    let (Some(body), false) = (body, features.is_empty() || tasks.is_empty()) else {
        return (None, errors);
    };
    // `shared` names the shared gate and expert group of these bodies (fields and parameter
    // names), so a task cannot take it.
    if let Body::Moe(moe) = &body {
        if moe.kind != "mmoe" {
            for t in tasks.iter().filter(|t| t.name == "shared") {
                errors.at(t.span, format!("a task cannot be named `shared` in a `{}` body: the name belongs to its shared gate and experts; rename the target column, or use `mmoe`", moe.kind));
            }
        }
    }
    if !errors.0.is_empty() {
        return (None, errors);
    }
    let schema = sections.get("schema").and_then(|e| match &e.value {
        Value::Str(s) => resolve_schema_path(s).ok().map(|abs| SchemaFile {
            path: s.value(),
            absolute: abs.display().to_string(),
        }),
        _ => None,
    });
    let model = Model {
        attrs: def.attrs.clone(),
        vis: def.vis.clone(),
        name: def.name.clone(),
        schema,
        features,
        body,
        tasks,
    };
    (Some(model), errors)
}

fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(Into::into)
        .unwrap_or_default()
}

/// Where a schema path points: relative to CARGO_MANIFEST_DIR, or failing that to the file
/// invoking the macro (as `include_str!` resolves paths).
pub fn resolve_schema_path(lit: &syn::LitStr) -> Result<std::path::PathBuf, String> {
    let rel = lit.value();
    if Path::new(&rel).is_absolute() {
        return Err("the schema path must be relative to the crate root (CARGO_MANIFEST_DIR) so that the build works on every machine".into());
    }
    let from_manifest = manifest_dir().join(&rel);
    if from_manifest.is_file() {
        return Ok(from_manifest);
    }
    let from_file = lit
        .span()
        .unwrap()
        .local_file()
        .and_then(|f| f.parent().map(|d| d.join(&rel)))
        .filter(|p| p.is_file());
    from_file.ok_or_else(|| format!("schema file `{rel}` not found relative to the crate root (CARGO_MANIFEST_DIR) nor to this source file"))
}

fn load_schema(value: &Value, errors: &mut Errors) -> Option<(Span, Schema)> {
    let Value::Str(lit) = value else {
        errors.at(value.span(), "`schema` is a path in quotes, relative to the crate root: `schema: \"data/schema.json\"`");
        return None;
    };
    let path = match resolve_schema_path(lit) {
        Ok(p) => p,
        Err(msg) => {
            errors.at(lit.span(), msg);
            return None;
        }
    };
    let rel = lit.value();
    match Schema::from_file(&path) {
        Ok(s) => Some((lit.span(), s)),
        Err(e) => {
            let what = if rel.ends_with(".json") {
                "JSON"
            } else {
                "pbtxt"
            };
            let shown = e.to_string().replace(&path.display().to_string(), &rel);
            errors.at(
                lit.span(),
                format!("cannot read the schema ({what}): {shown}"),
            );
            None
        }
    }
}

fn exclude(value: &Value, schema: Option<&(Span, Schema)>, errors: &mut Errors) -> HashSet<String> {
    let mut out = HashSet::new();
    let Value::List { items, .. } = value else {
        errors.at(
            value.span(),
            "`exclude` is a list of column names: `exclude: [like, share]`",
        );
        return out;
    };
    for item in items {
        let Some(name) = item.as_ident() else {
            errors.at(item.span(), "expected a column name");
            continue;
        };
        match schema {
            None => errors.at(
                name.span(),
                "`exclude` drops schema columns, but the model has no `schema`",
            ),
            Some((_, s)) if !s.contains(&name.to_string()) => errors.at(
                name.span(),
                format!(
                    "`{name}` is not a column of the schema; columns: {}",
                    s.column_names().join(", ")
                ),
            ),
            _ => {
                out.insert(name.to_string());
            }
        }
    }
    out
}

fn is_target(s: &Schema, name: &str) -> bool {
    s.get(name).is_some_and(|c| c.has_tag(&Tag::Target))
}

fn explicit_inputs(
    value: &Value,
    schema: Option<&(Span, Schema)>,
    errors: &mut Errors,
) -> Vec<Feature> {
    let Value::Map { entries, .. } = value else {
        errors.at(
            value.span(),
            "`inputs` is a block: `inputs: { user_id: categorical(dim = 32), price: continuous }`",
        );
        return Vec::new();
    };
    let mut features: Vec<Feature> = Vec::new();
    for entry in entries {
        let name = entry.key.to_string();
        if features.iter().any(|f| f.name == name) {
            errors.at(
                entry.key.span(),
                format!("input `{name}` is declared twice"),
            );
            continue;
        }
        let column = schema.and_then(|(_, s)| s.get(&name));
        if let Some((_, s)) = schema {
            if column.is_none() {
                errors.at(
                    entry.key.span(),
                    format!(
                        "input `{name}` is not a column of the schema; columns: {}",
                        s.column_names().join(", ")
                    ),
                );
                continue;
            }
            if is_target(s, &name) {
                errors.at(
                    entry.key.span(),
                    format!("`{name}` is a target in the schema and cannot also be an input"),
                );
                continue;
            }
        }
        let Some(call) = kind_call(
            &entry.value,
            "expected `categorical(..)` or `continuous(..)`",
            errors,
        ) else {
            continue;
        };
        match call.name.to_string().as_str() {
            "categorical" => {
                let mut opts = Options::new(call, &format!("categorical input `{name}`"), errors);
                let cardinality = match opts.take("cardinality") {
                    Some((k, v)) => positive_int(v, k, errors).map(|c| c as u64),
                    None => match column.and_then(|c| c.cardinality()) {
                        Some(c) => Some(c),
                        None => {
                            let why = if column.is_some() {
                                "its schema column has no int domain"
                            } else {
                                "there is no schema"
                            };
                            errors.at(entry.key.span(), format!("the cardinality of `{name}` is unknown ({why}): write `categorical(cardinality = N)`"));
                            None
                        }
                    },
                };
                let dim = match opts.take("dim") {
                    Some((k, v)) => positive_int(v, k, errors),
                    None => cardinality.map(infer_embedding_dim),
                };
                opts.finish(&["cardinality", "dim"], errors);
                if let (Some(cardinality), Some(dim)) = (cardinality, dim) {
                    let table = column
                        .map(|c| c.table_name().to_string())
                        .unwrap_or_else(|| name.clone());
                    features.push(Feature {
                        name,
                        kind: FeatureKind::Categorical {
                            cardinality,
                            dim,
                            table,
                        },
                    });
                }
            }
            "continuous" => {
                let mut opts = Options::new(call, &format!("continuous input `{name}`"), errors);
                let width = match opts.take("width") {
                    Some((k, v)) => positive_int(v, k, errors),
                    None => Some(1),
                };
                opts.finish(&["width"], errors);
                if let Some(width) = width {
                    features.push(Feature {
                        name,
                        kind: FeatureKind::Continuous { width },
                    });
                }
            }
            other => errors.at(
                call.name.span(),
                format!("unknown input kind `{other}`; expected `categorical` or `continuous`"),
            ),
        }
    }
    features.sort_by(|a, b| a.name.cmp(&b.name));
    features
}

/// Merlin's InputBlockV2: every non-target categorical or continuous column.
fn schema_inputs(
    s: &Schema,
    excluded: &HashSet<String>,
    def: &ModelDef,
    errors: &mut Errors,
) -> Vec<Feature> {
    let mut features = Vec::new();
    for c in s
        .excluding_by_tag(&[Tag::Target, Tag::BinaryClassification, Tag::Regression])
        .columns()
    {
        if excluded.contains(&c.name) {
            continue;
        }
        if c.has_tag(&Tag::Categorical) {
            match c.cardinality() {
                Some(cardinality) => features.push(Feature {
                    name: c.name.clone(),
                    kind: FeatureKind::Categorical { cardinality, dim: infer_embedding_dim(cardinality), table: c.table_name().to_string() },
                }),
                None => errors.at(def.name.span(), format!("schema column `{}` is categorical but has no int domain, so its cardinality is unknown; declare it in `inputs` with `cardinality = N` or `exclude` it", c.name)),
            }
        } else if c.has_tag(&Tag::Continuous) {
            features.push(Feature {
                name: c.name.clone(),
                kind: FeatureKind::Continuous { width: 1 },
            });
        }
    }
    features.sort_by(|a, b| a.name.cmp(&b.name));
    features
}

fn mlp_value(value: &Value, what: &str, errors: &mut Errors) -> Option<Mlp> {
    match value {
        Value::Call(call) if call.name == "mlp" => mlp(call, what, errors),
        other => {
            errors.at(
                other.span(),
                format!("{what} must be an MLP, e.g. `mlp[32, 16]`"),
            );
            None
        }
    }
}

fn mlp(call: &Call, what: &str, errors: &mut Errors) -> Option<Mlp> {
    let Some((bracket_span, items)) = &call.brackets else {
        errors.at(
            call.name.span(),
            "an MLP lists its layer widths: `mlp[32, 16]`",
        );
        return None;
    };
    let mut ok = true;
    if items.is_empty() {
        errors.at(
            *bracket_span,
            "an MLP needs at least one layer: `mlp[32, 16]`",
        );
        ok = false;
    }
    if items.len() > MAX_MLP_LAYERS {
        errors.at(
            *bracket_span,
            format!(
                "an MLP has at most {MAX_MLP_LAYERS} layers here ({} given)",
                items.len()
            ),
        );
        ok = false;
    }
    let mut widths = Vec::new();
    for item in items {
        match item {
            Value::Int {
                lit,
                negative: false,
                ..
            } => match lit.base10_parse::<usize>() {
                Ok(0) => {
                    errors.at(lit.span(), "a layer width must be at least 1");
                    ok = false;
                }
                Ok(w) => widths.push(w),
                Err(e) => {
                    errors.at(lit.span(), e);
                    ok = false;
                }
            },
            other => {
                errors.at(other.span(), "a layer width is a positive integer");
                ok = false;
            }
        }
    }
    let mut opts = Options::new(call, what, errors);
    let activation = match opts.take("activation") {
        Some((key, Some(v))) => {
            match v.as_ident().and_then(|i| Activation::parse(&i.to_string())) {
                Some(a) => a,
                None => {
                    let shown = v
                        .as_ident()
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| v.describe().to_string());
                    errors.at(
                        v.span(),
                        format!(
                            "unknown activation `{shown}`; expected one of: {}",
                            Activation::NAMES.join(", ")
                        ),
                    );
                    let _ = key;
                    Activation::Relu
                }
            }
        }
        Some((key, None)) => {
            errors.at(
                key.span(),
                "`activation` needs a value: `activation = relu`",
            );
            Activation::Relu
        }
        None => Activation::Relu,
    };
    let dropout = match opts.take("dropout") {
        Some((key, v)) => match v.and_then(Value::as_f64) {
            Some(p) if (0.0..1.0).contains(&p) => {
                let permille = (p * 1000.0).round();
                if (permille - p * 1000.0).abs() > 1e-9 {
                    errors.at(
                        v.map_or(key.span(), Value::span),
                        "a dropout rate is a multiple of 0.001",
                    );
                }
                permille as u16
            }
            _ => {
                errors.at(
                    v.map_or(key.span(), Value::span),
                    "`dropout` is a rate in [0, 1), e.g. `dropout = 0.1`",
                );
                0
            }
        },
        None => 0,
    };
    let batch_norm = opts
        .take("batch_norm")
        .is_some_and(|(k, v)| flag(v, k, errors));
    let no_activation_last_layer = opts
        .take("no_activation_last_layer")
        .is_some_and(|(k, v)| flag(v, k, errors));
    opts.finish(
        &[
            "activation",
            "dropout",
            "batch_norm",
            "no_activation_last_layer",
        ],
        errors,
    );
    ok.then_some(Mlp {
        widths,
        activation,
        dropout,
        batch_norm,
        no_activation_last_layer,
    })
}

fn body(value: &Value, errors: &mut Errors) -> Option<Body> {
    let call = match value {
        Value::Call(c) => c,
        other => {
            errors.at(
                other.span(),
                "expected a body: `mlp[..]`, `identity` or `custom(Block, width = N)`",
            );
            return None;
        }
    };
    match call.name.to_string().as_str() {
        "mlp" => mlp(call, "the `mlp` body", errors).map(Body::Mlp),
        "identity" => {
            if let Some((span, _)) = &call.args {
                errors.at(*span, "`identity` takes no options");
            }
            Some(Body::Identity)
        }
        "custom" => {
            let Some((span, args)) = &call.args else {
                errors.at(
                    call.name.span(),
                    "write `custom(Block, width = N)`: your block type and its output width",
                );
                return None;
            };
            let mut ty = None;
            let mut width = None;
            for arg in args {
                match arg {
                    Arg::Positional(Value::Type(t)) if ty.is_none() => ty = Some(t.clone()),
                    Arg::Positional(v) if ty.is_none() => match v.as_ident() {
                        Some(i) => ty = Some(syn::parse_quote!(#i)),
                        None => errors.at(v.span(), "expected your block's type"),
                    },
                    Arg::Flag(i) if ty.is_none() => ty = Some(syn::parse_quote!(#i)),
                    Arg::Keyed { key, value } if key == "width" => {
                        width = positive_int(Some(value), key, errors)
                    }
                    Arg::Keyed { key, .. } | Arg::Flag(key) => errors.at(
                        key.span(),
                        format!("unknown option `{key}` for `custom`; accepted: width"),
                    ),
                    Arg::Positional(v) => errors.at(v.span(), "`custom` takes one block type"),
                }
            }
            if ty.is_none() {
                errors.at(
                    *span,
                    "`custom` needs your block's type first: `custom(Block, width = N)`",
                );
            }
            if width.is_none() && ty.is_some() {
                errors.at(
                    *span,
                    "`custom` needs the block's output width: `custom(Block, width = N)`",
                );
            }
            Some(Body::Custom {
                ty: ty?,
                width: width?,
            })
        }
        kind @ ("mmoe" | "moe" | "cgc" | "ple") => {
            let kind = MOE_KINDS
                .iter()
                .map(|(k, _)| *k)
                .find(|k| *k == kind)
                .unwrap_or("mmoe");
            moe(call, kind, errors).map(Body::Moe)
        }
        other => {
            errors.at(call.name.span(), format!("unknown body `{other}`; expected `mlp[..]`, `identity`, `custom(Block, width = N)`, `mmoe(..)`, `moe(..)`, `cgc(..)` or `ple(..)`"));
            None
        }
    }
}

/// The mixture-of-experts body kinds and the options each accepts.
const MOE_KINDS: [(&str, &[&str]); 4] = [
    ("mmoe", &["experts", "expert", "gate", "temperature"]),
    ("moe", &["experts", "expert", "gate", "temperature"]),
    (
        "cgc",
        &[
            "task_experts",
            "shared_experts",
            "expert",
            "gate",
            "temperature",
            "shared_gate",
        ],
    ),
    (
        "ple",
        &[
            "levels",
            "task_experts",
            "shared_experts",
            "expert",
            "gate",
            "temperature",
            "gate_input",
        ],
    ),
];

/// A count of experts (`task_experts`/`shared_experts`), 0 allowed; Merlin's default is 1.
fn expert_count(opts: &mut Options, key: &str, errors: &mut Errors) -> Option<usize> {
    match opts.take(key) {
        Some((
            k,
            Some(Value::Int {
                lit,
                negative: false,
                ..
            }),
        )) => match lit.base10_parse::<usize>() {
            Ok(v) => Some(v),
            Err(e) => {
                errors.at(k.span(), e);
                None
            }
        },
        Some((k, v)) => {
            errors.at(
                v.map_or(k.span(), Value::span),
                format!("`{key}` is a number of experts, e.g. `{key} = 2`"),
            );
            None
        }
        None => Some(1),
    }
}

fn moe(call: &Call, kind: &'static str, errors: &mut Errors) -> Option<Moe> {
    let what = format!("the `{kind}` body");
    let per_task = matches!(kind, "cgc" | "ple");
    let example = match kind {
        "cgc" => "task_experts = 2, shared_experts = 1, expert = mlp[16]",
        "ple" => "levels = 2, task_experts = 2, shared_experts = 1, expert = mlp[16]",
        _ => "experts = 4, expert = mlp[16]",
    };
    if let Some((span, _)) = &call.brackets {
        errors.at(
            *span,
            format!("`{kind}` takes options in parentheses: `{kind}({example})`"),
        );
    }
    let mut opts = Options::new(call, &what, errors);
    let levels = if kind == "ple" {
        match opts.take("levels") {
            Some((k, v)) => positive_int(v, k, errors),
            None => {
                errors.at(
                    call.name.span(),
                    "`ple` needs the number of levels: `levels = 2`",
                );
                None
            }
        }
    } else {
        Some(1)
    };
    let (experts, task_experts) = if per_task {
        let task = expert_count(&mut opts, "task_experts", errors);
        let shared = expert_count(&mut opts, "shared_experts", errors);
        if task == Some(0) && shared == Some(0) {
            errors.at(call.name.span(), format!("`{kind}` needs at least one expert: `task_experts` and `shared_experts` cannot both be 0"));
        }
        (shared, task.unwrap_or(0))
    } else {
        let experts = match opts.take("experts") {
            Some((k, v)) => positive_int(v, k, errors),
            None => {
                errors.at(
                    call.name.span(),
                    format!("`{kind}` needs the number of experts: `experts = 4`"),
                );
                None
            }
        };
        (experts, 0)
    };
    let expert = match opts.take("expert") {
        Some((_, Some(v))) => mlp_value(v, "`expert`", errors).and_then(|m| {
            if m.widths.len() > 1 {
                errors.at(v.span(), "experts have one layer here (`expert = mlp[16]`): the experts of a level run as one batched layer");
                None
            } else {
                Some(m)
            }
        }),
        Some((k, None)) => {
            errors.at(k.span(), "`expert` needs a value: `expert = mlp[16]`");
            None
        }
        None => {
            errors.at(call.name.span(), format!("`{kind}` needs the expert block: `expert = mlp[16]`"));
            None
        }
    };
    let gate = match opts.take("gate") {
        Some((_, Some(v))) if v.as_ident().is_some_and(|i| i == "none") => None,
        Some((_, Some(v))) => mlp_value(v, "`gate`", errors),
        Some((k, None)) => {
            errors.at(
                k.span(),
                "`gate` needs a value: `gate = mlp[16]` or `gate = none`",
            );
            None
        }
        None => None,
    };
    let temperature = match opts.take("temperature") {
        Some((k, v)) => match v.and_then(Value::as_f64) {
            Some(t) if t > 0.0 && t.is_finite() && t <= 65.0 => {
                let permille = (t * 1000.0).round();
                if (permille - t * 1000.0).abs() > 1e-9 || permille < 1.0 {
                    errors.at(
                        v.map_or(k.span(), Value::span),
                        "the temperature is a multiple of 0.001",
                    );
                }
                permille as u16
            }
            _ => {
                errors.at(v.map_or(k.span(), Value::span), "`temperature` must be a number above 0 (and at most 65), e.g. `temperature = 1.0`");
                1000
            }
        },
        None => 1000,
    };
    // Options of one kind only are taken for that kind; for the others `finish_hinted` names
    // the kind they belong to.
    let shared_gate = match opts.take_if(kind == "cgc", "shared_gate") {
        Some((k, v)) => flag(v, k, errors),
        None => false,
    };
    let gate_input = match opts.take_if(kind == "ple", "gate_input") {
        Some((k, v)) => match v
            .and_then(Value::as_ident)
            .map(|i| i.to_string())
            .as_deref()
        {
            Some("original") => GateInput::Original,
            Some("level") => GateInput::Level,
            _ => {
                errors.at(
                    v.map_or(k.span(), Value::span),
                    "`gate_input` is `original` (every gate reads the body input, as in Merlin) or `level` (gates read their level's input, as in the PLE paper)",
                );
                GateInput::Original
            }
        },
        None => GateInput::Original,
    };
    let accepted = MOE_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[][..], |(_, a)| a);
    opts.finish_hinted(
        accepted,
        |key| {
            let owners: Vec<String> = MOE_KINDS
                .iter()
                .filter(|(k, a)| *k != kind && a.contains(&key))
                .map(|(k, _)| format!("`{k}`"))
                .collect();
            (!owners.is_empty()).then(|| {
                format!(
                    "`{key}` is an option of {}, not of `{kind}`; `{kind}` accepts: {}",
                    owners.join(" and "),
                    accepted.join(", ")
                )
            })
        },
        errors,
    );
    let experts = experts?;
    if experts + task_experts == 0 {
        return None;
    }
    Some(Moe {
        kind,
        experts,
        task_experts,
        expert: expert?,
        gate,
        temperature,
        levels: levels?,
        shared_gate,
        gate_input,
    })
}

fn metric_list(
    value: Option<&Value>,
    key: &Ident,
    kind: TaskKind,
    task: &str,
    errors: &mut Errors,
) -> Vec<&'static str> {
    let items: Vec<&Value> = match value {
        Some(Value::List { items, .. }) => items.iter().collect(),
        Some(v) if v.as_ident().is_some() => vec![v],
        Some(v) => {
            errors.at(
                v.span(),
                format!("`{key}` is a list of metric names: `{key} = [auc, precision]`"),
            );
            return Vec::new();
        }
        None => {
            errors.at(
                key.span(),
                format!("`{key}` needs a value: `{key} = [auc]`"),
            );
            return Vec::new();
        }
    };
    let accepted = kind.runtime().accepted_metrics();
    let mut out = Vec::new();
    for item in items {
        let Some(ident) = item.as_ident() else {
            errors.at(item.span(), "expected a metric name");
            continue;
        };
        match canonical_metric(&ident.to_string()) {
            Some(m) if accepted.contains(&m) => {
                if out.contains(&m) {
                    errors.at(ident.span(), format!("metric `{ident}` is listed twice"));
                } else {
                    out.push(m);
                }
            }
            Some(m) => errors.at(
                ident.span(),
                format!(
                    "metric `{m}` does not fit {} task `{task}`; it accepts: {}",
                    kind_name(kind),
                    accepted.join(", ")
                ),
            ),
            None => errors.at(
                ident.span(),
                format!(
                    "unknown metric `{ident}`; {} tasks accept: {}",
                    kind_name(kind),
                    accepted.join(", ")
                ),
            ),
        }
    }
    out
}

fn kind_name(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Binary => "binary",
        TaskKind::Regression => "regression",
        TaskKind::Multiclass(_) => "multiclass",
    }
}

fn explicit_tasks(
    value: &Value,
    schema: Option<&(Span, Schema)>,
    inputs: &HashSet<String>,
    default_tower: &Option<Mlp>,
    errors: &mut Errors,
) -> Vec<Task> {
    let Value::Map { entries, .. } = value else {
        errors.at(
            value.span(),
            "`tasks` is a block: `tasks: { click: binary, watching_times: regression }`",
        );
        return Vec::new();
    };
    let task_names: HashSet<String> = entries.iter().map(|e| e.key.to_string()).collect();
    let mut tasks: Vec<Task> = Vec::new();
    for entry in entries {
        let name = entry.key.to_string();
        if tasks.iter().any(|t| t.name == name) {
            errors.at(entry.key.span(), format!("task `{name}` is declared twice"));
            continue;
        }
        let Some(call) = kind_call(
            &entry.value,
            "expected a task kind: `binary`, `regression` or `multiclass(classes = N)`",
            errors,
        ) else {
            continue;
        };
        let what = format!("task `{name}`");
        let mut opts = Options::new(call, &what, errors);
        let kind = match call.name.to_string().as_str() {
            "binary" => TaskKind::Binary,
            "regression" => TaskKind::Regression,
            "multiclass" => match opts.take("classes") {
                Some((k, v)) => match positive_int(v, k, errors) {
                    Some(n) => TaskKind::Multiclass(n),
                    None => TaskKind::Multiclass(2),
                },
                None => {
                    errors.at(call.name.span(), format!("multiclass task `{name}` needs its number of classes: `multiclass(classes = N)`"));
                    TaskKind::Multiclass(2)
                }
            },
            other => {
                errors.at(call.name.span(), format!("unknown task kind `{other}`; expected `binary`, `regression` or `multiclass(classes = N)`"));
                continue;
            }
        };
        if let Some((_, s)) = schema {
            match s.get(&name) {
                None => errors.at(entry.key.span(), format!("task `{name}` has no target column `{name}` in the schema; targets: {}", s.select_by_tag(&[Tag::Target]).column_names().join(", "))),
                Some(c) if !c.has_tag(&Tag::Target) => errors.at(entry.key.span(), format!("column `{name}` is not tagged `target` in the schema, so it cannot be a task")),
                _ => {}
            }
        }
        let loss_weight = opts
            .take("loss_weight")
            .and_then(|(k, v)| weight(v, k, errors))
            .unwrap_or(1.0);
        let class_weights = opts.take("class_weights").and_then(|(k, v)| {
            if kind != TaskKind::Binary {
                errors.at(
                    k.span(),
                    format!(
                        "`class_weights` applies to binary tasks only; `{name}` is a {} task",
                        kind_name(kind)
                    ),
                );
                return None;
            }
            match v {
                Some(Value::Tuple { items, .. }) if items.len() == 2 => {
                    let neg = weight(Some(&items[0]), k, errors)?;
                    let pos = weight(Some(&items[1]), k, errors)?;
                    Some((neg, pos))
                }
                other => {
                    errors.at(
                        other.map_or(k.span(), Value::span),
                        "`class_weights` is `(negative, positive)`, e.g. `(1.0, 5.0)`",
                    );
                    None
                }
            }
        });
        let sample_weights = opts.take("sample_weight").map(|(k, v)| {
            let items: Vec<&Value> = match v {
                Some(Value::List { items, .. }) => items.iter().collect(),
                Some(v) => vec![v],
                None => {
                    errors.at(k.span(), "`sample_weight` names a column: `sample_weight = click`");
                    Vec::new()
                }
            };
            let mut cols = Vec::new();
            for item in items {
                let Some(col) = item.as_ident() else {
                    errors.at(item.span(), "expected a column name");
                    continue;
                };
                let c = col.to_string();
                let known = task_names.contains(&c)
                    || inputs.contains(&c)
                    || schema.is_some_and(|(_, s)| s.contains(&c));
                if known {
                    cols.push(c);
                } else {
                    errors.at(col.span(), format!("sample weight column `{c}` is neither a feature nor a target of this model"));
                }
            }
            // Merlin looks a weight column up among targets first, then features.
            cols.sort_by_key(|c| !(task_names.contains(c) || schema.is_some_and(|(_, s)| is_target(s, c))));
            cols
        }).unwrap_or_default();
        let metrics = match opts.take("metrics") {
            Some((k, v)) => metric_list(v, k, kind, &name, errors),
            None => kind.runtime().default_metrics().to_vec(),
        };
        let weighted_metrics = match opts.take("weighted_metrics") {
            Some((k, v)) => metric_list(v, k, kind, &name, errors),
            None => Vec::new(),
        };
        let tower = match opts.take("tower") {
            Some((_, Some(v))) => {
                if v.as_ident().is_some_and(|i| i == "none") {
                    None
                } else {
                    mlp_value(v, &format!("the tower of `{name}`"), errors)
                }
            }
            Some((k, None)) => {
                errors.at(k.span(), "`tower` needs a value: `tower = mlp[64]`");
                None
            }
            None => default_tower.clone(),
        };
        let mut accepted = vec![
            "loss_weight",
            "class_weights",
            "sample_weight",
            "metrics",
            "weighted_metrics",
            "tower",
        ];
        if matches!(kind, TaskKind::Multiclass(_)) {
            accepted.push("classes");
        }
        opts.finish(&accepted, errors);
        tasks.push(Task {
            target: name.clone(),
            name,
            span: entry.key.span(),
            kind,
            loss_weight,
            class_weights,
            sample_weights,
            metrics,
            weighted_metrics,
            tower,
        });
    }
    tasks.sort_by(|a, b| a.name.cmp(&b.name));
    tasks
}

/// Merlin's OutputBlock: every TARGET column, its kind from its tags.
fn schema_tasks(
    s: &Schema,
    span: Span,
    excluded: &HashSet<String>,
    default_tower: &Option<Mlp>,
    errors: &mut Errors,
) -> Vec<Task> {
    let mut tasks = Vec::new();
    for c in s.select_by_tag(&[Tag::Target]).columns() {
        if excluded.contains(&c.name) {
            continue;
        }
        let kind = if c.has_tag(&Tag::Continuous) || c.has_tag(&Tag::Regression) {
            TaskKind::Regression
        } else if c.has_tag(&Tag::BinaryClassification) || c.has_tag(&Tag::Binary) {
            TaskKind::Binary
        } else if c.has_tag(&Tag::Categorical) || c.has_tag(&Tag::MultiClassClassification) {
            match c.int_domain() {
                Some((_, 1)) => TaskKind::Binary,
                Some((_, max)) if max > 1 => TaskKind::Multiclass(max as usize + 1),
                _ => {
                    errors.at(span, format!("target `{}` is categorical but has no int domain, so its number of classes is unknown; declare the task in `tasks`", c.name));
                    continue;
                }
            }
        } else {
            errors.at(span, format!("target `{}` has no task-kind tag (regression, binary_classification, binary, multi_class_classification or categorical); declare the task in `tasks`", c.name));
            continue;
        };
        if syn::parse_str::<Ident>(&c.name).is_err() {
            errors.at(span, format!("target `{}` is not a valid Rust identifier, so it cannot name a task field; `exclude` it or declare tasks explicitly", c.name));
            continue;
        }
        tasks.push(Task {
            name: c.name.clone(),
            span,
            target: c.name.clone(),
            kind,
            loss_weight: 1.0,
            class_weights: None,
            sample_weights: Vec::new(),
            metrics: kind.runtime().default_metrics().to_vec(),
            weighted_metrics: Vec::new(),
            tower: default_tower.clone(),
        });
    }
    if tasks.is_empty() && errors.0.is_empty() {
        errors.at(span, "the schema has no target columns (tag `target`), so no tasks can be inferred; declare `tasks`");
    }
    tasks.sort_by(|a, b| a.name.cmp(&b.name));
    tasks
}
