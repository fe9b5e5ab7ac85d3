//! The printed summary of a built model (what the notebook shows when it prints `model`).

use std::fmt;

use crate::spec::{FeatureKind, ModelSpec};

/// One block of a built network, as the generated `Display` impl reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Parameter-name prefix (`body`, `towers.click`, `heads.click`).
    pub name: &'static str,
    /// What it is (`mlp[32, 16] relu`, `click/binary_output`).
    pub kind: &'static str,
    pub input: usize,
    pub output: usize,
    pub params: usize,
}

/// Writes embeddings (from the spec), then `blocks`, then totals.
pub fn write_summary(
    f: &mut fmt::Formatter<'_>,
    spec: &ModelSpec,
    blocks: &[Block],
) -> fmt::Result {
    writeln!(
        f,
        "{} (input [B, {}], {} tasks)",
        spec.name,
        spec.input_width,
        spec.tasks.len()
    )?;
    writeln!(f)?;
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut embedding_params = 0usize;
    for feature in spec.features {
        let (kind, params) = match feature.kind {
            FeatureKind::Categorical => {
                // A shared table counts once, at its first feature.
                let first = spec
                    .features
                    .iter()
                    .find(|f| f.kind == FeatureKind::Categorical && f.table == feature.table)
                    .is_some_and(|f| f.name == feature.name);
                let p = if first {
                    feature.cardinality * feature.dim
                } else {
                    0
                };
                let pooled = if feature.is_list() {
                    format!(
                        ", {} of up to {} ids",
                        feature.combiner.keyword(),
                        feature.max_len
                    )
                } else {
                    String::new()
                };
                (
                    format!(
                        "embedding {} x {} (table `{}`{pooled})",
                        feature.cardinality, feature.dim, feature.table
                    ),
                    p,
                )
            }
            FeatureKind::Continuous => ("continuous".to_string(), 0),
        };
        embedding_params += params;
        rows.push([
            format!("inputs.{}", feature.name),
            kind,
            if feature.is_list() {
                format!(
                    "[B, {}] -> [B, {}] at column {}",
                    feature.max_len, feature.dim, feature.offset
                )
            } else {
                format!("[B] -> [B, {}] at column {}", feature.dim, feature.offset)
            },
            params.to_string(),
        ]);
    }
    let mut dense_params = 0usize;
    for b in blocks {
        dense_params += b.params;
        rows.push([
            b.name.to_string(),
            b.kind.to_string(),
            format!("[B, {}] -> [B, {}]", b.input, b.output),
            b.params.to_string(),
        ]);
    }
    crate::table::write_table(f, &["block", "kind", "shape", "params"], &rows)?;
    writeln!(f)?;
    writeln!(f, "embedding parameters: {embedding_params}")?;
    writeln!(f, "dense parameters:     {dense_params}")?;
    writeln!(
        f,
        "total parameters:     {}",
        embedding_params + dense_params
    )?;
    // Task relations and learnt loss weights change what is trained: say so.
    for t in spec.chained_tasks() {
        let chain: Vec<&str> = spec.chain(t).iter().map(|&i| spec.tasks[i].name).collect();
        writeln!(
            f,
            "chained task (ESMM): {} given {}; trained through {}/joint_output = P({})",
            chain[0],
            chain[1],
            chain[0],
            chain.join(" and ")
        )?;
    }
    match spec.loss_balancing {
        crate::spec::LossBalancing::Fixed => Ok(()),
        crate::spec::LossBalancing::Uncertainty => writeln!(
            f,
            "loss balancing: uncertainty (learnt per-task weights, Kendall et al. 2018)"
        ),
        crate::spec::LossBalancing::GradNorm { alpha_milli } => writeln!(
            f,
            "loss balancing: gradnorm, alpha {} (learnt per-task weights, Chen et al. 2018)",
            f64::from(alpha_milli) / 1000.0
        ),
    }
}
