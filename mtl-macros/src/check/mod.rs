//! Semantic checks: syntax tree → [`Model`], every problem a `syn::Error` on the token at fault.
//!
//! Errors are collected, not returned early ([`Errors`]), so a model with several mistakes
//! reports them all in one compile. Each check that fails leaves a harmless default behind (a
//! zero-width input is skipped, an unknown option ignored, ...) so that later checks do not
//! repeat the complaint.
//!
//! Modules: `options` (option lists and value kinds), `schema` (the schema file, `exclude`),
//! `inputs`, `body` (MLPs, bodies, mixture-of-experts), `tasks`, `rules` (checks across
//! sections, one function each).

mod body;
mod errors;
mod inputs;
mod options;
mod rules;
mod schema;
mod tasks;

use std::collections::{BTreeMap, HashSet};

pub use errors::Errors;

use crate::keywords::SECTIONS;
use crate::model::{Model, SchemaFile};
use crate::parse::{Entry, ModelDef, Value};

/// The known sections among `entries`, each once: an unknown section or one given twice is
/// reported and left out.
fn sections<'a>(entries: &'a [Entry], errors: &mut Errors) -> BTreeMap<String, &'a Entry> {
    let mut sections: BTreeMap<String, &Entry> = BTreeMap::new();
    for entry in entries {
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
    sections
}

/// The sections written before the models, which every model gets unless it gives the same
/// section itself. Their own mistakes (unknown, given twice) are reported here, once.
pub fn shared_sections<'a>(entries: &'a [Entry], errors: &mut Errors) -> Vec<&'a Entry> {
    sections(entries, errors).into_values().collect()
}

/// Checks one model whose own sections are completed by the `shared` ones.
pub fn resolve(def: &ModelDef, shared: &[&Entry]) -> (Option<Model>, Errors) {
    let mut errors = Errors::default();
    let mut sections = sections(&def.sections, &mut errors);
    for entry in shared {
        sections.entry(entry.key.to_string()).or_insert(entry);
    }

    let schema = sections
        .get("schema")
        .and_then(|e| schema::load_schema(&e.value, &mut errors));
    // A schema that failed to load was already reported; do not also complain about what it
    // would have provided (inputs, tasks).
    let schema_failed = sections.contains_key("schema") && schema.is_none();
    let excluded = sections
        .get("exclude")
        .map(|e| schema::exclude(&e.value, schema.as_ref(), &mut errors))
        .unwrap_or_default();
    let features = match sections.get("inputs") {
        Some(e) => inputs::explicit_inputs(&e.value, schema.as_ref(), &excluded, def, &mut errors),
        None => match &schema {
            Some((lit, s)) => {
                let before = errors.is_empty();
                let features = inputs::schema_inputs(s, &excluded, def, &mut errors);
                if features.is_empty() && before && errors.is_empty() {
                    match sections.get("exclude") {
                        Some(e) => errors.at(e.value.span(), "`exclude` removes every input the schema has; keep at least one"),
                        None => errors.at(*lit, "the schema has no categorical or continuous column to use as an input; declare `inputs`"),
                    }
                }
                features
            }
            None if schema_failed => Vec::new(),
            None => {
                errors.at(def.name.span(), "the model has no inputs: add an `inputs: { .. }` section or a `schema: \"..\"` to infer them from");
                Vec::new()
            }
        },
    };
    rules::shared_tables_agree(&features, &mut errors);
    let body = match sections.get("body") {
        Some(e) => body::body(&e.value, &mut errors),
        None => {
            errors.at(
                def.name.span(),
                "missing `body:` section, e.g. `body: mlp[32, 16]` or `body: identity`",
            );
            None
        }
    };
    // `towers: none` opts a model out of shared towers.
    let default_tower = sections.get("towers").and_then(|e| match &e.value {
        v if v.as_ident().is_some_and(|i| i == "none") => None,
        Value::Call(call) if call.name == "mlp" => body::mlp(call, "`towers`", &mut errors),
        other => {
            errors.at(
                other.span(),
                "`towers` must be an MLP, e.g. `mlp[32, 16]`, or `none`",
            );
            None
        }
    });
    let inputs: HashSet<String> = features.iter().map(|f| f.name.clone()).collect();
    let id_inputs: HashSet<String> = features
        .iter()
        .filter(|f| matches!(f.kind, crate::model::FeatureKind::Categorical { .. }))
        .map(|f| f.name.clone())
        .collect();
    let tasks = match sections.get("tasks") {
        Some(e) => tasks::explicit_tasks(
            &e.value,
            schema.as_ref(),
            &inputs,
            &id_inputs,
            &excluded,
            &default_tower,
            &mut errors,
        ),
        None => match &schema {
            Some((lit_span, s)) => {
                tasks::schema_tasks(s, *lit_span, &excluded, &default_tower, &mut errors)
            }
            None if schema_failed => Vec::new(),
            None => {
                errors.at(def.name.span(), "the model has no tasks: add a `tasks: { .. }` section or a `schema: \"..\"` to infer them from its targets");
                Vec::new()
            }
        },
    };
    let loss_balancing = sections
        .get("loss_balancing")
        .map(|e| loss_balancing(&e.value, &mut errors))
        .unwrap_or_default();
    // Whatever path produced them (explicit, inferred, `..`), a model needs inputs and tasks;
    // the paths above report the cases they can explain, this one whatever is left.
    if errors.is_empty() {
        let span = |key: &str| {
            sections
                .get(key)
                .map_or(def.name.span(), |e| e.value.span())
        };
        if features.is_empty() {
            errors.at(
                span("inputs"),
                "the model ends up with no inputs (after `exclude` and `..`); declare at least one",
            );
        }
        if tasks.is_empty() {
            errors.at(
                span("tasks"),
                "the model ends up with no tasks (after `exclude` and `..`); declare at least one",
            );
        }
    }
    let (Some(body), false) = (body, features.is_empty() || tasks.is_empty()) else {
        return (None, errors);
    };
    rules::no_loss_weight_when_learnt(loss_balancing, &tasks, &mut errors);
    rules::given_chains(&tasks, &mut errors);
    rules::no_task_named_shared(&body, &tasks, &mut errors);
    rules::some_loss_counts(&tasks, &mut errors);
    rules::inputs_not_excluded(
        sections.get("inputs").copied(),
        sections.get("exclude").copied(),
        &mut errors,
    );
    if !errors.is_empty() {
        return (None, errors);
    }
    let schema = sections.get("schema").and_then(|e| match &e.value {
        Value::Str(s) => schema::resolve_schema_path(s).ok().map(|abs| SchemaFile {
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
        loss_balancing,
    };
    (Some(model), errors)
}

/// `loss_balancing: fixed | uncertainty | gradnorm(alpha = α)`.
fn loss_balancing(value: &Value, errors: &mut Errors) -> mtl_runtime::spec::LossBalancing {
    use mtl_runtime::spec::LossBalancing;
    if let Value::Call(call) = value {
        if call.name == "gradnorm" && call.brackets.is_none() {
            let mut opts = options::Options::new(call, "`gradnorm`", errors);
            let alpha = match opts.take("alpha") {
                Some((k, v)) => match v.and_then(Value::as_f64) {
                    Some(a) if a.is_finite() && (0.0..=10.0).contains(&a) => {
                        (a * 1000.0).round() as u16
                    }
                    _ => {
                        errors.at(v.map_or(k.span(), Value::span), "`alpha` is GradNorm's asymmetry, a number in [0, 10] (the paper uses 0.12 to 3), e.g. `alpha = 1.5`");
                        1500
                    }
                },
                None => 1500,
            };
            opts.finish(&["alpha"], errors);
            return LossBalancing::GradNorm { alpha_milli: alpha };
        }
    }
    match value.as_ident().map(|i| i.to_string()).as_deref() {
        Some("fixed") => LossBalancing::Fixed,
        Some("uncertainty") => LossBalancing::Uncertainty,
        Some("gradnorm") => LossBalancing::GradNorm { alpha_milli: 1500 },
        _ => {
            errors.at(
                value.span(),
                format!(
                    "`loss_balancing` is one of: {} (`fixed`: the declared loss weights; \
                     `uncertainty`: learnt per-task weights, Kendall et al. 2018; `gradnorm`: \
                     weights that balance gradient norms, Chen et al. 2018)",
                    crate::keywords::LOSS_BALANCING.join(", ")
                ),
            );
            LossBalancing::Fixed
        }
    }
}
