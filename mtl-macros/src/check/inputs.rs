//! The `inputs` section, or the inputs inferred from the schema as Merlin's `InputBlockV2`.

use std::collections::HashSet;

use mtl_runtime::schema::{Schema, Tag};
use mtl_runtime::spec::infer_embedding_dim;
use proc_macro2::Span;
use syn::ext::IdentExt;

use super::options::{kind_call, positive_int, Options};
use super::Errors;
use crate::keywords::{MAX_CARDINALITY, MAX_WIDTH};
use crate::model::{Feature, FeatureKind};
use crate::parse::{ModelDef, Value};

pub fn is_target(s: &Schema, name: &str) -> bool {
    s.get(name).is_some_and(|c| c.has_tag(&Tag::Target))
}

pub fn explicit_inputs(
    value: &Value,
    schema: Option<&(Span, Schema)>,
    excluded: &HashSet<String>,
    def: &ModelDef,
    errors: &mut Errors,
) -> Vec<Feature> {
    let Value::Map {
        entries,
        span,
        rest,
    } = value
    else {
        errors.at(
            value.span(),
            "`inputs` is a block: `inputs: { user_id: categorical(dim = 32), price: continuous }`",
        );
        return Vec::new();
    };
    if entries.is_empty() && rest.is_none() {
        errors.at(
            *span,
            "`inputs` is empty: a model needs at least one input, e.g. `inputs: { price: continuous }`",
        );
    }
    let mut features: Vec<Feature> = Vec::new();
    for entry in entries {
        let name = entry.key.unraw().to_string();
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
                // Datasets decode a column by its schema tags: only a categorical column gives
                // ids to look up.
                if let Some(c) = column {
                    if c.dtype.is_float() {
                        errors.at(call.name.span(), format!("`{name}` holds floats ({}) in the schema, so it cannot index an embedding table; declare it `continuous`, or encode it into ids first (Categorify)", c.dtype));
                        continue;
                    }
                    if !c.has_tag(&Tag::Categorical) {
                        errors.at(call.name.span(), format!("`{name}` is not tagged `categorical` in the schema, so datasets decode it as numbers, not ids; tag it `categorical` in the schema or declare it `continuous`"));
                        continue;
                    }
                }
                let mut opts = Options::new(call, &format!("categorical input `{name}`"), errors);
                let cardinality = match opts.take("cardinality") {
                    Some((k, v)) => {
                        let given = positive_int(v, k, MAX_CARDINALITY, errors).map(|c| c as u64);
                        // A table smaller than the schema's domain cannot hold every id.
                        match (given, column.and_then(|c| c.cardinality())) {
                            (Some(g), Some(needed)) if g < needed => {
                                errors.at(v.map_or(k.span(), Value::span), format!("`{name}` needs at least {needed} rows: the schema's domain goes up to id {}; raise `cardinality` (or leave it out to take it from the schema)", needed - 1));
                                None
                            }
                            (g, _) => g,
                        }
                    }
                    None => match column.and_then(|c| c.cardinality()) {
                        Some(c) if c > MAX_CARDINALITY as u64 => {
                            errors.at(entry.key.span(), format!("the schema gives `{name}` {c} ids, more than the {MAX_CARDINALITY} a table can index (ids are 32-bit); hash or bucket the ids"));
                            None
                        }
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
                    Some((k, v)) => positive_int(v, k, MAX_WIDTH, errors),
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
                if column.is_some_and(|c| c.has_tag(&Tag::Categorical)) {
                    errors.at(call.name.span(), format!("`{name}` is tagged `categorical` in the schema, so datasets decode it as ids to embed; declare it `categorical`, or drop the tag in the schema to use its values as numbers"));
                    continue;
                }
                let mut opts = Options::new(call, &format!("continuous input `{name}`"), errors);
                let width = match opts.take("width") {
                    Some((k, v)) => {
                        let w = positive_int(v, k, MAX_WIDTH, errors);
                        // Datasets hold one number per row and column.
                        if w.is_some_and(|w| w > 1) && column.is_some() {
                            errors.at(v.map_or(k.span(), Value::span), format!("schema column `{name}` holds one number per row, so it fills a width-1 input; remove `width`"));
                            None
                        } else {
                            w
                        }
                    }
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
    // `..`: every other input the schema has, as inferred without an `inputs` section.
    if let Some(dots) = rest {
        match schema {
            Some((_, s)) => {
                let mut skip = excluded.clone();
                skip.extend(entries.iter().map(|e| e.key.unraw().to_string()));
                features.extend(schema_inputs(s, &skip, def, errors));
            }
            None => errors.at(
                *dots,
                "`..` takes the other inputs from the schema, but the model has no `schema`",
            ),
        }
    }
    features.sort_by(|a, b| a.name.cmp(&b.name));
    features
}

/// Merlin's InputBlockV2: every non-target categorical or continuous column.
pub fn schema_inputs(
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
                Some(cardinality) if cardinality > MAX_CARDINALITY as u64 => errors.at(def.name.span(), format!("schema column `{}` has {cardinality} ids, more than the {MAX_CARDINALITY} a table can index (ids are 32-bit); hash or bucket the ids, or `exclude` it", c.name)),
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
