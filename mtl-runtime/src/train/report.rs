//! Evaluation reports and the training history, named as Merlin names them.
//!
//! With several tasks: `loss`, `<output>_loss` per task (e.g. `click/binary_output_loss`), then
//! per task in name order its metrics `<output>/<metric>` and weighted metrics
//! `<output>/weighted_<metric>`, then `regularization_loss` and `loss_batch`. A single-task model
//! drops the prefixes and the per-task loss, as Keras does.

use std::fmt;

/// An ordered list of named values with map-like access.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    entries: Vec<(String, f64)>,
}

impl Report {
    pub(crate) fn push(&mut self, name: impl Into<String>, value: f64) {
        self.entries.push((name.into(), value));
    }

    /// The value of `name`, if reported.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// Names in report order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), *v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `{"loss": 1.03, "click/binary_output/auc": 0.71, ...}` in report order.
    pub fn to_json(&self) -> String {
        let items: Vec<String> = self
            .entries
            .iter()
            .map(|(n, v)| {
                let value = if v.is_finite() {
                    format!("{v}")
                } else {
                    "null".into()
                };
                format!("{}: {value}", serde_json::Value::String(n.clone()))
            })
            .collect();
        format!("{{{}}}", items.join(", "))
    }

    /// `name,value` lines with a header.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("name,value\n");
        for (n, v) in &self.entries {
            out.push_str(&format!("{n},{v}\n"));
        }
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<[String; 2]> = self
            .entries
            .iter()
            .map(|(n, v)| [n.clone(), format!("{v:.6}")])
            .collect();
        crate::table::write_table(f, &["metric", "value"], &rows)
    }
}

/// One epoch of training.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Mean training loss (`loss`) and per-task losses over the epoch.
    pub train: Report,
    /// The validation report, when validation data was given.
    pub validation: Option<Report>,
    pub seconds: f64,
    pub rows_per_second: f64,
}

/// Per-epoch records of a `fit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
    /// Set when early stopping ended training: the best epoch (0-based).
    pub stopped_early_at_best: Option<usize>,
}
