//! Checks across sections, one function each, run once every section has been read.

use super::Errors;
use crate::model::{Body, Task};
use mtl_runtime::spec::MoeKind;

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
