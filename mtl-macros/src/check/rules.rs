//! Checks across sections, one function each, run once every section has been read.

use mtl_runtime::spec::MoeKind;
use syn::ext::IdentExt;

use super::Errors;
use crate::model::{Body, Feature, FeatureKind, Task};
use crate::parse::{Entry, Value};

/// `shared` names the shared gate and expert group of `moe`, `cgc` and `ple` bodies (fields and
/// parameter names), so a task cannot take it.
pub fn no_task_named_shared(body: &Body, tasks: &[Task], errors: &mut Errors) {
    if let Body::Moe(moe) = body {
        if moe.kind != MoeKind::Mmoe {
            for t in tasks.iter().filter(|t| t.name == "shared") {
                errors.at(t.span, format!("a task cannot be named `shared` in a `{}` body: the name belongs to its shared gate and experts; rename the target column, or use `mmoe`", moe.kind.keyword()));
            }
        }
    }
}

/// A model whose every task has `loss_weight = 0` trains nothing.
pub fn some_loss_counts(tasks: &[Task], errors: &mut Errors) {
    if let (Some(first), true) = (tasks.first(), tasks.iter().all(|t| t.loss_weight == 0.0)) {
        errors.at(first.span, "every task has `loss_weight = 0`, so training would not change the model; give at least one task a positive weight");
    }
}

/// Learnt loss weights replace the declared ones: a `loss_weight` would have no effect (the
/// learnt weight settles at `1/(2 L_t)` whatever it is multiplied by), so it is an error.
pub fn no_loss_weight_when_learnt(
    balancing: mtl_runtime::spec::LossBalancing,
    tasks: &[Task],
    errors: &mut Errors,
) {
    let name = match balancing {
        mtl_runtime::spec::LossBalancing::Fixed => return,
        mtl_runtime::spec::LossBalancing::Uncertainty => "uncertainty",
        mtl_runtime::spec::LossBalancing::GradNorm { .. } => "gradnorm",
    };
    for task in tasks {
        if let Some(span) = task.loss_weight_span {
            errors.at(span, format!("`loss_weight` of `{}` has no effect under `loss_balancing: {name}`, which learns each task's weight; remove it (or use `loss_balancing: fixed`)", task.name));
        }
    }
}

/// `given = parent` (ESMM) chains binary tasks: the parent is another binary task of the model,
/// the child is binary, and following parents never comes back to a task (no cycle).
pub fn given_chains(tasks: &[Task], errors: &mut Errors) {
    use crate::model::TaskKind;
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    for task in tasks {
        let Some(given) = &task.given else { continue };
        if task.kind != TaskKind::Binary {
            errors.at(given.key, format!("`given` chains binary tasks (ESMM: P(child and parent) = P(parent)·P(child | parent)); `{}` is not binary", task.name));
        }
        match tasks.iter().find(|t| t.name == given.parent) {
            None => {
                errors.at(
                    given.value,
                    format!(
                        "`given = {}`: the model has no task `{}`; its tasks are: {}",
                        given.parent,
                        given.parent,
                        names.join(", ")
                    ),
                );
            }
            Some(p) if p.name == task.name => {
                errors.at(
                    given.value,
                    format!("task `{}` cannot be given itself", task.name),
                );
            }
            Some(p) if p.kind != TaskKind::Binary => {
                errors.at(given.value, format!("`given = {}`: `{}` is not a binary task; a task can only be conditional on a binary one", p.name, p.name));
            }
            Some(_) => {}
        }
    }
    // Cycles: follow each task's parents; report a cycle once, on the task of the cycle whose
    // name comes first. A task given itself was reported above.
    for task in tasks {
        if task.given.as_ref().is_some_and(|g| g.parent == task.name) {
            continue;
        }
        let mut seen = vec![task.name.as_str()];
        let mut at = task;
        while let Some(given) = &at.given {
            let Some(parent) = tasks.iter().find(|t| t.name == given.parent) else {
                break;
            };
            if parent.name == task.name {
                let cycle = seen.join(" -> ");
                if seen.iter().min() == Some(&task.name.as_str()) {
                    errors.at(given.value, format!("`given` chains form a cycle ({cycle} -> {}); a chain must end at a task with no `given`", task.name));
                }
                break;
            }
            if seen.contains(&parent.name.as_str()) {
                break;
            }
            seen.push(parent.name.as_str());
            at = parent;
        }
    }
}

/// A column cannot be both declared an input and excluded.
pub fn inputs_not_excluded(inputs: Option<&Entry>, exclude: Option<&Entry>, errors: &mut Errors) {
    let (Some(inputs), Some(exclude)) = (inputs, exclude) else {
        return;
    };
    let (Value::Map { entries, .. }, Value::List { items, .. }) = (&inputs.value, &exclude.value)
    else {
        return;
    };
    for item in items {
        let Some(name) = item.as_ident() else {
            continue;
        };
        if entries.iter().any(|e| e.key.unraw() == name.unraw()) {
            errors.at(
                name.span(),
                format!(
                    "`{}` is declared in `inputs` and also excluded; remove it from one of the two",
                    name.unraw()
                ),
            );
        }
    }
}

/// Features that share an embedding table (the schema's domain name, or `table = ..`) agree on
/// its shape: one table has one row count and one dim. Reported on the later feature.
pub fn shared_tables_agree(features: &[Feature], errors: &mut Errors) {
    for (i, f) in features.iter().enumerate() {
        let FeatureKind::Categorical {
            cardinality,
            dim,
            table,
            ..
        } = &f.kind
        else {
            continue;
        };
        let first = features[..i].iter().find_map(|g| match &g.kind {
            FeatureKind::Categorical {
                cardinality: c,
                dim: d,
                table: t,
                ..
            } if t == table => Some((g, *c, *d)),
            _ => None,
        });
        if let Some((g, c, d)) = first {
            if (c, d) != (*cardinality, *dim) {
                errors.at(f.span, format!("`{}` and `{}` share embedding table `{table}` but declare {} x {} and {c} x {d} (rows x dim); one table has one shape: give both the same cardinality and dim", f.name, g.name, cardinality, dim));
            }
        }
    }
}
