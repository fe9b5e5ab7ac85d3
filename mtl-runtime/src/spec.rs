//! The static description of a model that `mtl_model!` generates and the runtime reads.
//!
//! Everything here is `'static` data built at compile time: which features feed the network
//! (and where each sits in the `[B, INPUT_WIDTH]` input), which tasks it predicts with which
//! loss settings and metrics, and the schema it was built from. The trainer binds data columns,
//! losses and metric names through it, always by name.

/// How a feature enters the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// An id looked up in an embedding table of `cardinality` rows and `dim` columns.
    Categorical,
    /// A number (or `dim` numbers) copied into the input as is.
    Continuous,
}

/// One input feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureSpec {
    /// Feature name (also the data column it is read from).
    pub name: &'static str,
    pub kind: FeatureKind,
    /// Embedding-table rows (`domain.max + 1`); 0 for continuous features.
    pub cardinality: usize,
    /// Embedding dimension, or the width of a continuous feature.
    pub dim: usize,
    /// Column offset of this feature in the `[B, INPUT_WIDTH]` input (features are
    /// concatenated in alphabetical order, as Merlin does).
    pub offset: usize,
    /// Embedding-table name: features with the same table share it (Merlin's domain name).
    pub table: &'static str,
}

/// What a task predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Binary classification: one logit, binary cross-entropy.
    Binary,
    /// Regression: one value, mean squared error.
    Regression,
    /// Multi-class classification: `classes` logits, categorical cross-entropy.
    Multiclass { classes: usize },
}

impl TaskKind {
    /// Merlin's output-class suffix: `binary_output`, `regression_output`, `categorical_output`.
    pub fn output_suffix(self) -> &'static str {
        match self {
            TaskKind::Binary => "binary_output",
            TaskKind::Regression => "regression_output",
            TaskKind::Multiclass { .. } => "categorical_output",
        }
    }

    /// Width of the head's output.
    pub fn output_width(self) -> usize {
        match self {
            TaskKind::Binary | TaskKind::Regression => 1,
            TaskKind::Multiclass { classes } => classes,
        }
    }

    /// Metrics a task of this kind reports when none are given (Merlin's defaults).
    pub fn default_metrics(self) -> &'static [&'static str] {
        match self {
            TaskKind::Binary => &["precision", "recall", "binary_accuracy", "auc"],
            TaskKind::Regression => &["root_mean_squared_error"],
            TaskKind::Multiclass { .. } => &["categorical_accuracy"],
        }
    }

    /// Metric names accepted for this kind (canonical names; see [`canonical_metric`]).
    pub fn accepted_metrics(self) -> &'static [&'static str] {
        match self {
            TaskKind::Binary => &["precision", "recall", "binary_accuracy", "auc", "logloss"],
            TaskKind::Regression => &[
                "root_mean_squared_error",
                "mean_squared_error",
                "mean_absolute_error",
            ],
            TaskKind::Multiclass { .. } => &["categorical_accuracy", "top_k_accuracy"],
        }
    }
}

/// Maps metric aliases to their canonical (Merlin/Keras) names: `rmse` →
/// `root_mean_squared_error`, `mse`, `mae`, `accuracy` → `categorical_accuracy`, ...
pub fn canonical_metric(name: &str) -> Option<&'static str> {
    Some(match name {
        "auc" => "auc",
        "precision" => "precision",
        "recall" => "recall",
        "binary_accuracy" => "binary_accuracy",
        "logloss" | "binary_crossentropy" => "logloss",
        "rmse" | "root_mean_squared_error" => "root_mean_squared_error",
        "mse" | "mean_squared_error" => "mean_squared_error",
        "mae" | "mean_absolute_error" => "mean_absolute_error",
        "accuracy" | "categorical_accuracy" => "categorical_accuracy",
        "top_k_accuracy" | "top_5_accuracy" => "top_k_accuracy",
        _ => return None,
    })
}

/// One task: a target column, its head and how its loss is weighted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskSpec {
    /// Task name (the DSL key; the target column unless `target = ..` says otherwise).
    pub name: &'static str,
    /// Merlin's output name, e.g. `click/binary_output`; metric names start with it.
    pub output_name: &'static str,
    /// The target column.
    pub target: &'static str,
    pub kind: TaskKind,
    /// λ in `loss = Σ λ_t L_t`.
    pub loss_weight: f32,
    /// `(negative, positive)` class weights on the task's own target (binary tasks).
    pub class_weights: Option<(f32, f32)>,
    /// Columns whose values multiply the per-row loss weight (targets first, then features).
    pub sample_weights: &'static [&'static str],
    /// Canonical metric names reported unweighted.
    pub metrics: &'static [&'static str],
    /// Canonical metric names reported with the task's sample weights (`weighted_<name>`).
    pub weighted_metrics: &'static [&'static str],
    /// Widths of the task's tower layers (empty: no tower).
    pub tower: &'static [usize],
}

/// The whole model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSpec {
    /// The model's type name.
    pub name: &'static str,
    /// Input features in input order (alphabetical).
    pub features: &'static [FeatureSpec],
    /// Width of the `[B, INPUT_WIDTH]` input: Σ embedding dims + continuous widths.
    pub input_width: usize,
    /// A short description of the body (`mlp[32, 16] relu`, `identity`, ...).
    pub body: &'static str,
    /// Width of the body's output (the towers' input).
    pub body_width: usize,
    /// Tasks in task-name order.
    pub tasks: &'static [TaskSpec],
    /// The schema file the model was built from (as written in the DSL), if any.
    pub schema_path: Option<&'static str>,
    /// That file's text, embedded at compile time.
    pub schema_text: Option<&'static str>,
}

impl ModelSpec {
    pub fn feature(&self, name: &str) -> Option<&FeatureSpec> {
        self.features.iter().find(|f| f.name == name)
    }

    pub fn task(&self, name: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// The schema the model was built from, parsed from the embedded text.
    pub fn schema(&self) -> Option<crate::Result<crate::Schema>> {
        let (path, text) = (self.schema_path?, self.schema_text?);
        Some(if path.ends_with(".json") {
            crate::schema::json::from_str(text, path)
        } else {
            crate::schema::pbtxt::from_str(text, path)
        })
    }
}

/// Merlin's inferred embedding dimension: `roundup8(ceil(2 · cardinality^0.25))`.
pub fn infer_embedding_dim(cardinality: u64) -> usize {
    let d0 = (2.0 * (cardinality as f64).powf(0.25)).ceil() as usize;
    d0.div_ceil(8) * 8
}

#[cfg(test)]
mod tests {
    use super::infer_embedding_dim;

    #[test]
    fn inferred_dims_match_merlin_for_tenrec() {
        assert_eq!(infer_embedding_dim(100_001), 40);
        assert_eq!(infer_embedding_dim(179_281), 48);
        assert_eq!(infer_embedding_dim(6), 8);
        assert_eq!(infer_embedding_dim(11), 8);
    }
}
