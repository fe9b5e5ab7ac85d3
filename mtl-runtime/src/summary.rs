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
                let p = feature.cardinality * feature.dim;
                (
                    format!(
                        "embedding {} x {} (table `{}`)",
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
            format!("[B] -> [B, {}] at column {}", feature.dim, feature.offset),
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
    )
}
