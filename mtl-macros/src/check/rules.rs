//! Checks across sections, one function each, run once every section has been read.

use mtl_runtime::spec::MoeKind;
use syn::ext::IdentExt;

use super::Errors;
use crate::model::{Body, Task};
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
    if balancing != mtl_runtime::spec::LossBalancing::Uncertainty {
        return;
    }
    for task in tasks {
        if let Some(span) = task.loss_weight_span {
            errors.at(span, format!("`loss_weight` of `{}` has no effect under `loss_balancing: uncertainty`, which learns each task's weight; remove it (or use `loss_balancing: fixed`)", task.name));
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
