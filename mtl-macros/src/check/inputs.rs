//! The `inputs` section, or the inputs inferred from the schema as Merlin's `InputBlockV2`.

use std::collections::HashSet;

use mtl_runtime::schema::{Schema, Tag};
use mtl_runtime::spec::{infer_embedding_dim, Combiner};
use proc_macro2::Span;
use syn::ext::IdentExt;

use super::options::{kind_call, positive_int, Options};
use super::Errors;
use crate::keywords::{MAX_CARDINALITY, MAX_LIST_LEN, MAX_WIDTH};
use crate::model::{Feature, FeatureKind, ListInput};
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
    let mut shared: Vec<SharedTable> = Vec::new();
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
                        // `table = other` takes `other`'s rows (set when the tables are shared).
                        None if opts.peek("table") => Some(0),
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
                let dim_written = opts.peek("dim");
                let dim = match opts.take("dim") {
                    Some((k, v)) => positive_int(v, k, MAX_WIDTH, errors),
                    None => cardinality.map(infer_embedding_dim),
                };
                let list = list_input(&name, entry.key.span(), column, &mut opts, errors);
                if let Some((k, v)) = opts.take("table") {
                    match v.and_then(Value::as_ident) {
                        Some(other) => shared.push(SharedTable {
                            feature: name.clone(),
                            other: other.unraw().to_string(),
                            span: other.span(),
                            dim_written,
                        }),
                        None => errors.at(v.map_or(k.span(), Value::span), "`table` names another categorical input whose embedding table this one reads, e.g. `table = item_id`"),
                    }
                }
                opts.finish(
                    &["cardinality", "dim", "max_len", "combiner", "table"],
                    errors,
                );
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
                            list,
                        },
                        span: entry.key.span(),
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
                        span: entry.key.span(),
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
    // A table is named by the input that owns it: `a: table = b` where `b` reads another's
    // table itself would depend on the order the two are resolved in.
    let readers: Vec<String> = shared.iter().map(|s| s.feature.clone()).collect();
    for s in shared {
        if readers.contains(&s.other) {
            errors.at(s.span, format!("`{}` reads another input's table itself (`table = ..`); point `{}` at the table's owner directly", s.other, s.feature));
            continue;
        }
        share_table(&mut features, s, errors);
    }
    features.sort_by(|a, b| a.name.cmp(&b.name));
    features
}

/// `table = other` on a categorical input: it reads `other`'s embedding table.
struct SharedTable {
    feature: String,
    other: String,
    /// The span of `other`.
    span: Span,
    /// Whether the feature wrote its own `dim` (which must then agree).
    dim_written: bool,
}

/// Points `s.feature` at `s.other`'s table: the table's rows must hold the feature's ids and
/// one table has one dim (taken from `other` unless written, then checked).
fn share_table(features: &mut [Feature], s: SharedTable, errors: &mut Errors) {
    let Some(target) = features.iter().find(|f| f.name == s.other) else {
        let categorical: Vec<&str> = features
            .iter()
            .filter(|f| matches!(f.kind, FeatureKind::Categorical { .. }) && f.name != s.feature)
            .map(|f| f.name.as_str())
            .collect();
        errors.at(
            s.span,
            format!(
                "`table = {}`: the model has no categorical input `{}`; its categorical inputs: {}",
                s.other,
                s.other,
                categorical.join(", ")
            ),
        );
        return;
    };
    let FeatureKind::Categorical {
        cardinality: rows,
        dim: table_dim,
        table,
        ..
    } = &target.kind
    else {
        errors.at(
            s.span,
            format!(
                "`table = {}`: `{}` is a continuous input and has no embedding table",
                s.other, s.other
            ),
        );
        return;
    };
    if s.other == s.feature {
        errors.at(
            s.span,
            format!(
                "`{}` reads its own table already; remove `table`",
                s.feature
            ),
        );
        return;
    }
    let (rows, table_dim, table) = (*rows, *table_dim, table.clone());
    let Some(f) = features.iter_mut().find(|f| f.name == s.feature) else {
        return;
    };
    if let FeatureKind::Categorical {
        cardinality,
        dim,
        table: own,
        ..
    } = &mut f.kind
    {
        if *cardinality > rows {
            errors.at(s.span, format!("`{}` has ids up to {} but `{}`'s table has {rows} rows; a shared table must hold every id of the features reading it (raise `{}`'s cardinality)", s.feature, *cardinality - 1, s.other, s.other));
            return;
        }
        if s.dim_written && *dim != table_dim {
            errors.at(s.span, format!("`{}` declares dim {} but `{}`'s table is {table_dim} wide; features sharing a table share its dim: remove `dim` or make them equal", s.feature, *dim, s.other));
            return;
        }
        *cardinality = rows;
        *dim = table_dim;
        *own = table;
    }
}

/// The list settings of categorical input `name` (its `max_len` and `combiner` options, and
/// its schema column): `Some` for a list input.
fn list_input(
    name: &str,
    key: Span,
    column: Option<&mtl_runtime::schema::ColumnSchema>,
    opts: &mut Options,
    errors: &mut Errors,
) -> Option<ListInput> {
    let combiner_key = opts.take("combiner");
    let combiner = combiner_key.and_then(|(k, v)| {
        let word = v.and_then(Value::as_ident).map(|i| i.to_string());
        match word.as_deref() {
            Some("sum") => Some(Combiner::Sum),
            Some("mean") => Some(Combiner::Mean),
            Some("sqrtn") => Some(Combiner::Sqrtn),
            _ => {
                errors.at(v.map_or(k.span(), Value::span), "`combiner` is `sum`, `mean` (the default, as Merlin's sequence_combiner) or `sqrtn`");
                None
            }
        }
    });
    let max_len = opts.take("max_len").map(|(k, v)| {
        (
            k.span(),
            v.map_or(k.span(), Value::span),
            positive_int(v, k, MAX_LIST_LEN, errors),
        )
    });
    let list_column = column.filter(|c| c.is_list());
    let length = match (column, list_column, max_len) {
        (_, Some(c), max_len) => {
            let schema_max = c.value_count().and_then(|d| d.max).filter(|&m| m > 0);
            match (max_len, schema_max) {
                (Some((_, value, Some(n))), Some(m)) if n as u64 > m => {
                    errors.at(value, format!("`max_len = {n}` is more than the {m} ids the schema allows in a row of `{name}` (value_count.max); lower it or leave it out to read whole lists"));
                    None
                }
                (Some((_, _, n)), _) => n,
                (None, Some(m)) if m <= MAX_LIST_LEN as u64 => Some(m as usize),
                (None, Some(m)) => {
                    errors.at(key, format!("lists of `{name}` hold up to {m} ids (value_count.max), more than the {MAX_LIST_LEN} an input reads: write `max_len = N` to read the first N"));
                    None
                }
                (None, None) => {
                    errors.at(key, format!("`{name}` is a list column without a maximum length in the schema: set its `value_count.max` (datasets hold lists at that width; `max_len` can then read fewer)"));
                    None
                }
            }
        }
        (Some(_), None, Some((k, _, _))) => {
            errors.at(k, format!("`{name}` is not a list column in the schema (it has no value_count), so there is nothing for `max_len` to cut; remove it, or mark the column as a list in the schema"));
            return None;
        }
        (None, None, Some((_, _, n))) => n,
        (_, None, None) => {
            if let Some((k, _)) = combiner_key {
                let why = if column.is_some() {
                    format!("`{name}` is not a list column in the schema (it has no value_count)")
                } else {
                    format!("without a schema, a list input needs its length: `{name}: categorical(.., max_len = N, combiner = ..)`")
                };
                errors.at(
                    k.span(),
                    format!("`combiner` pools the ids of a list input; {why}"),
                );
            }
            return None;
        }
    };
    length.map(|max_len| ListInput {
        max_len,
        combiner: combiner.unwrap_or_default(),
    })
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
            // A list column pools its whole rows, as Merlin's default (mean) combiner does.
            let list = match c.value_count().and_then(|d| d.max) {
                _ if !c.is_list() => None,
                Some(m) if (1..=MAX_LIST_LEN as u64).contains(&m) => Some(ListInput {
                    max_len: m as usize,
                    combiner: Combiner::Mean,
                }),
                _ => {
                    errors.at(def.name.span(), format!("schema column `{}` is a list without a maximum length of at most {MAX_LIST_LEN} (value_count.max): set it in the schema, or `exclude` the column", c.name));
                    continue;
                }
            };
            match c.cardinality() {
                Some(cardinality) if cardinality > MAX_CARDINALITY as u64 => errors.at(def.name.span(), format!("schema column `{}` has {cardinality} ids, more than the {MAX_CARDINALITY} a table can index (ids are 32-bit); hash or bucket the ids, or `exclude` it", c.name)),
                Some(cardinality) => features.push(Feature {
                    name: c.name.clone(),
                    kind: FeatureKind::Categorical { cardinality, dim: infer_embedding_dim(cardinality), table: c.table_name().to_string(), list },
                    span: def.name.span(),
                }),
                None => errors.at(def.name.span(), format!("schema column `{}` is categorical but has no int domain, so its cardinality is unknown; declare it in `inputs` with `cardinality = N` or `exclude` it", c.name)),
            }
        } else if c.has_tag(&Tag::Continuous) {
            features.push(Feature {
                name: c.name.clone(),
                kind: FeatureKind::Continuous { width: 1 },
                span: def.name.span(),
            });
        }
    }
    features.sort_by(|a, b| a.name.cmp(&b.name));
    features
}
