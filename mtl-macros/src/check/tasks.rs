//! The `tasks` section, or the tasks inferred from the schema's targets as Merlin's
//! `OutputBlock`.

use std::collections::HashSet;

use mtl_runtime::schema::{Schema, Tag};
use mtl_runtime::spec::canonical_metric;
use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::Ident;

use super::body::mlp_value;
use super::inputs::is_target;
use super::options::{kind_call, positive_int, weight, Options};
use super::Errors;
use crate::keywords::MAX_CLASSES;
use crate::model::{Mlp, Task, TaskKind};
use crate::parse::Value;

/// A weight column: `col`, or `as_number(col)` (with the span of `as_number`).
fn weight_column(item: &Value) -> Option<(&Ident, Option<Span>)> {
    if let Some(col) = item.as_ident() {
        return Some((col, None));
    }
    let Value::Call(call) = item else {
        return None;
    };
    let (None, Some((_, args))) = (&call.brackets, &call.args) else {
        return None;
    };
    match (call.name == "as_number", args.as_slice()) {
        (true, [crate::parse::Arg::Flag(col)]) => Some((col, Some(call.name.span()))),
        (true, [crate::parse::Arg::Positional(v)]) => {
            v.as_ident().map(|c| (c, Some(call.name.span())))
        }
        _ => None,
    }
}

/// Whether column `c` holds ids rather than numbers: declared `categorical` by the model, or
/// tagged `categorical` in the schema — unless it is a 0/1 column (a binary target, or an int
/// domain within 0..=1), which weighs as a mask.
fn holds_ids(c: &str, schema: Option<&Schema>, id_inputs: &HashSet<String>) -> bool {
    let column = schema.and_then(|s| s.get(c));
    let mask = column.is_some_and(|col| {
        col.has_tag(&Tag::Binary)
            || col.has_tag(&Tag::BinaryClassification)
            || col
                .int_domain()
                .is_some_and(|(min, max)| min >= 0 && max <= 1)
    });
    !mask && (id_inputs.contains(c) || column.is_some_and(|col| col.has_tag(&Tag::Categorical)))
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

pub fn explicit_tasks(
    value: &Value,
    schema: Option<&(Span, Schema)>,
    inputs: &HashSet<String>,
    id_inputs: &HashSet<String>,
    excluded: &HashSet<String>,
    default_tower: &Option<Mlp>,
    errors: &mut Errors,
) -> Vec<Task> {
    let Value::Map {
        entries,
        span,
        rest,
    } = value
    else {
        errors.at(
            value.span(),
            "`tasks` is a block: `tasks: { click: binary, watching_times: regression }`",
        );
        return Vec::new();
    };
    if entries.is_empty() && rest.is_none() {
        errors.at(
            *span,
            "`tasks` is empty: a model needs at least one task, e.g. `tasks: { click: binary }`",
        );
    }
    // The target column of every task (its `target = ..`, or its name).
    let target_columns: HashSet<String> = entries
        .iter()
        .map(|e| {
            let given = match &e.value {
                Value::Call(c) => c.args.as_ref().and_then(|(_, args)| {
                    args.iter().find_map(|a| match a {
                        crate::parse::Arg::Keyed { key, value } if key == "target" => {
                            value.as_ident().map(|i| i.unraw().to_string())
                        }
                        _ => None,
                    })
                }),
                _ => None,
            };
            given.unwrap_or_else(|| e.key.unraw().to_string())
        })
        .collect();
    let mut tasks: Vec<Task> = Vec::new();
    for entry in entries {
        let name = entry.key.unraw().to_string();
        if tasks.iter().any(|t| t.name == name) {
            errors.at(entry.key.span(), format!("task `{name}` is declared twice"));
            continue;
        }
        if !crate::codegen::is_field_name(&name) {
            errors.at(entry.key.span(), format!("`{name}` cannot name a task: it becomes a field of the outputs struct, and `self`, `Self`, `super` and `crate` cannot be fields; give the task another name"));
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
        // `target = column`: another head on a column (two heads may share one target).
        let target = match opts.take("target") {
            Some((k, v)) => match v.and_then(Value::as_ident) {
                Some(col) => (col.unraw().to_string(), col.span()),
                None => {
                    errors.at(
                        v.map_or(k.span(), Value::span),
                        "`target` names the target column: `target = click`",
                    );
                    (name.clone(), entry.key.span())
                }
            },
            None => (name.clone(), entry.key.span()),
        };
        let (target, target_span) = target;
        let column = schema.and_then(|(_, s)| s.get(&target));
        if let Some((_, s)) = schema {
            match column {
                None => errors.at(target_span, format!("task `{name}` has no target column `{target}` in the schema; targets: {}", s.select_by_tag(&[Tag::Target]).column_names().join(", "))),
                Some(c) if !c.has_tag(&Tag::Target) => errors.at(target_span, format!("column `{target}` is not tagged `target` in the schema, so it cannot be a task")),
                _ => {}
            }
        }
        if column.is_some_and(|c| c.is_list()) {
            errors.at(target_span, format!("target `{target}` is a list column in the schema: it holds several values per row, and a task's target is one value per row"));
            continue;
        }
        // What the schema says the target holds: its tags and its int domain.
        let regression_column =
            column.is_some_and(|c| c.has_tag(&Tag::Regression) || c.has_tag(&Tag::Continuous));
        let domain_classes = column
            .and_then(|c| c.int_domain())
            .filter(|(min, _)| *min >= 0)
            .map(|(_, max)| max as u64 + 1);
        let kind = match call.name.to_string().as_str() {
            "binary" => {
                if regression_column {
                    errors.at(call.name.span(), format!("target `{target}` is a regression target in the schema (tagged `regression`/`continuous`), so its values are not 0/1 labels; declare `{name}: regression`, or derive a binary target when preprocessing"));
                } else if domain_classes.is_some_and(|n| n > 2) {
                    errors.at(call.name.span(), format!("target `{target}` has {} classes in the schema (domain 0..={}); declare `{name}: multiclass`", domain_classes.unwrap_or(0), domain_classes.unwrap_or(1) - 1));
                }
                TaskKind::Binary
            }
            "regression" => TaskKind::Regression,
            "multiclass" => match (opts.take("classes"), domain_classes) {
                (Some((k, v)), domain) => match positive_int(v, k, MAX_CLASSES, errors) {
                    Some(n) if domain.is_some_and(|d| d != n as u64) => {
                        errors.at(v.map_or(k.span(), Value::span), format!("target `{target}` has {} classes in the schema (domain 0..={}), not {n}; write `classes = {}` or leave `classes` out to take it from the schema", domain.unwrap_or(0), domain.unwrap_or(1) - 1, domain.unwrap_or(0)));
                        TaskKind::Multiclass(n)
                    }
                    Some(n) => TaskKind::Multiclass(n),
                    None => TaskKind::Multiclass(2),
                },
                // Like Merlin: the classes of a target with an int domain are `domain.max + 1`.
                (None, Some(n)) if n > MAX_CLASSES as u64 => {
                    errors.at(call.name.span(), format!("target `{target}` has {n} classes in the schema, more than {MAX_CLASSES}"));
                    TaskKind::Multiclass(2)
                }
                (None, Some(n)) if n >= 2 => TaskKind::Multiclass(n as usize),
                (None, _) => {
                    errors.at(call.name.span(), format!("multiclass task `{name}` needs its number of classes: `multiclass(classes = N)` (its target has no int domain in a schema to take it from)"));
                    TaskKind::Multiclass(2)
                }
            },
            other => {
                errors.at(call.name.span(), format!("unknown task kind `{other}`; expected `binary`, `regression` or `multiclass(classes = N)`"));
                continue;
            }
        };
        let mut loss_weight_span = None;
        let loss_weight = opts
            .take("loss_weight")
            .and_then(|(k, v)| {
                loss_weight_span = Some(k.span());
                weight(v, k, errors)
            })
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
                let Some((col, as_number)) = weight_column(item) else {
                    errors.at(item.span(), "expected a column name, or `as_number(column)`");
                    continue;
                };
                let c = col.unraw().to_string();
                let known = target_columns.contains(&c)
                    || inputs.contains(&c)
                    || schema.is_some_and(|(_, s)| s.contains(&c));
                if !known {
                    errors.at(col.span(), format!("sample weight column `{c}` is neither a feature nor a target of this model"));
                    continue;
                }
                if schema.is_some_and(|(_, s)| s.get(&c).is_some_and(|col| col.is_list())) {
                    errors.at(col.span(), format!("`{c}` is a list column: it holds several values per row, and a sample weight is one number per row"));
                    continue;
                }
                // Ids as weights is ambiguous (codes, not amounts): it takes an explicit opt-in.
                let ids = holds_ids(&c, schema.map(|(_, s)| s), id_inputs);
                match (ids, as_number) {
                    (true, None) => errors.at(col.span(), format!("`{c}` is a categorical column: its values are ids (codes), not amounts, and its rows with id 0 would get no loss; to weight by the id values anyway, write `sample_weight = as_number({c})`")),
                    (false, Some(span)) => errors.at(span, format!("`{c}` holds numbers already, not ids: write `sample_weight = {c}`")),
                    _ => cols.push(c),
                }
            }
            // Merlin looks a weight column up among targets first, then features.
            cols.sort_by_key(|c| !(target_columns.contains(c) || schema.is_some_and(|(_, s)| is_target(s, c))));
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
        let given_key = opts.take("given");
        let given_written = given_key.is_some();
        let given = match given_key {
            Some((k, Some(v))) => match v.as_ident() {
                Some(parent) => Some(crate::model::Given {
                    parent: parent.unraw().to_string(),
                    key: k.span(),
                    value: v.span(),
                }),
                None => {
                    errors.at(
                        v.span(),
                        "`given` names a binary task of this model, e.g. `given = click`",
                    );
                    None
                }
            },
            Some((k, None)) => {
                errors.at(
                    k.span(),
                    "`given` needs the task it is conditional on: `given = click`",
                );
                None
            }
            None => None,
        };
        // A `transfer` reported as wrong: its `calibration` then makes no second error.
        let mut transfer_failed = true;
        let transfer = match opts.take("transfer") {
            Some((k, v)) => {
                let kind = v.and_then(Value::as_ident).map(|i| i.unraw().to_string());
                match kind.as_deref() {
                    // A wrong `given` was reported already.
                    Some("aitm" | "esmm") if given.is_none() && given_written => None,
                    Some("aitm") if given.is_none() => {
                        errors.at(k.span(), format!("`transfer = aitm` passes information from a parent task's tower into this one's: name the parent with `given`, e.g. `{name}: binary(given = click, transfer = aitm)`"));
                        None
                    }
                    Some("aitm") => {
                        transfer_failed = false;
                        Some(crate::model::Transfer {
                            calibration: crate::model::DEFAULT_CALIBRATION,
                        })
                    }
                    Some("esmm") if given.is_none() => {
                        errors.at(k.span(), format!("`transfer = esmm` multiplies this task's probability by its parent's: name the parent with `given`, e.g. `{name}: binary(given = click)`"));
                        None
                    }
                    Some("esmm") => {
                        transfer_failed = false;
                        None
                    }
                    _ => {
                        errors.at(v.map_or(k.span(), Value::span), "`transfer` is `esmm` (the default with `given`: P(task and parent) = P(parent)·P(task | parent)) or `aitm` (attention over the parent's tower output, with a calibration loss)");
                        None
                    }
                }
            }
            None => {
                transfer_failed = false;
                None
            }
        };
        let transfer = match (transfer, opts.take("calibration")) {
            (Some(_), Some((k, v))) => {
                weight(v, k, errors).map(|calibration| crate::model::Transfer { calibration })
            }
            // A wrong `transfer` was reported already.
            (None, Some(_)) if transfer_failed => None,
            (None, Some((k, _))) => {
                errors.at(k.span(), "`calibration` weighs AITM's calibration loss; it needs `transfer = aitm` (and `given = parent`)");
                None
            }
            (transfer, None) => transfer,
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
            "given",
            "transfer",
            "calibration",
            "target",
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
            target,
            name,
            span: entry.key.span(),
            kind,
            loss_weight,
            loss_weight_span,
            given,
            transfer,
            class_weights,
            sample_weights,
            metrics,
            weighted_metrics,
            tower,
        });
    }
    // `..`: a task for every other target of the schema, as inferred without `tasks`.
    if let Some(dots) = rest {
        match schema {
            Some((_, s)) => {
                let mut skip = excluded.clone();
                skip.extend(target_columns.iter().cloned());
                let inferred = schema_targets(s, *dots, &skip, default_tower, false, errors);
                tasks.extend(inferred.into_iter().filter(|t| {
                    !tasks_named(entries, &t.name)
                }));
            }
            None => errors.at(
                *dots,
                "`..` takes the other tasks from the schema's targets, but the model has no `schema`",
            ),
        }
    }
    tasks.sort_by(|a, b| a.name.cmp(&b.name));
    tasks
}

/// Merlin's OutputBlock: every TARGET column, its kind from its tags.
pub fn schema_tasks(
    s: &Schema,
    span: Span,
    excluded: &HashSet<String>,
    default_tower: &Option<Mlp>,
    errors: &mut Errors,
) -> Vec<Task> {
    schema_targets(s, span, excluded, default_tower, true, errors)
}

/// The tasks of the schema's targets not in `excluded`; `required`: having none is an error.
fn schema_targets(
    s: &Schema,
    span: Span,
    excluded: &HashSet<String>,
    default_tower: &Option<Mlp>,
    required: bool,
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
                Some((_, max)) if max >= MAX_CLASSES as i64 => {
                    errors.at(span, format!("target `{}` has {} classes in the schema, more than {MAX_CLASSES}; declare the task in `tasks` or `exclude` it", c.name, max as i128 + 1));
                    continue;
                }
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
        if !crate::codegen::is_field_name(&c.name) {
            errors.at(span, format!("target `{}` is not a valid Rust identifier, so it cannot name a task field; `exclude` it or declare tasks explicitly", c.name));
            continue;
        }
        tasks.push(Task {
            name: c.name.clone(),
            span,
            target: c.name.clone(),
            kind,
            loss_weight: 1.0,
            loss_weight_span: None,
            given: None,
            transfer: None,
            class_weights: None,
            sample_weights: Vec::new(),
            metrics: kind.runtime().default_metrics().to_vec(),
            weighted_metrics: Vec::new(),
            tower: default_tower.clone(),
        });
    }
    if required && tasks.is_empty() && errors.is_empty() {
        errors.at(span, "the schema has no target columns (tag `target`), so no tasks can be inferred; declare `tasks`");
    }
    tasks.sort_by(|a, b| a.name.cmp(&b.name));
    tasks
}

/// Whether an explicit task is named `name`.
fn tasks_named(entries: &[crate::parse::Entry], name: &str) -> bool {
    entries.iter().any(|e| e.key.unraw() == name)
}
