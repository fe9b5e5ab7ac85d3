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

    /// `name,value` lines with a header; an undefined value is `NaN`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("name,value\n");
        for (n, v) in &self.entries {
            out.push_str(&format!("{},{v}\n", csv_field(n)));
        }
        out
    }

    /// Whether some value is undefined (NaN), e.g. the AUC of a split with one class.
    pub fn has_undefined(&self) -> bool {
        self.entries.iter().any(|(_, v)| v.is_nan())
    }
}

/// A value for people: 6 decimals, or `undefined` for NaN.
pub(crate) fn format_value(v: f64) -> String {
    if v.is_nan() {
        "undefined".into()
    } else {
        format!("{v:.6}")
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A JSON number, or `null` for a value JSON cannot hold (NaN, ±∞).
fn json_number(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// The note under a table that shows an undefined value.
pub(crate) const UNDEFINED_NOTE: &str =
    "undefined: not computable on this data (an AUC needs both classes among the rows)";

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<[String; 2]> = self
            .entries
            .iter()
            .map(|(n, v)| [n.clone(), format_value(*v)])
            .collect();
        crate::table::write_table(f, &["metric", "value"], &rows)?;
        if self.has_undefined() {
            writeln!(f, "{UNDEFINED_NOTE}")?;
        }
        Ok(())
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
    /// The dense learning rate at the epoch's end (after warm-up, decay and plateau
    /// reductions).
    pub learning_rate: f64,
}

/// Per-epoch records of a `fit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
    /// Set when early stopping ended training: the best epoch (0-based).
    pub stopped_early_at_best: Option<usize>,
    /// With early stopping: the epoch whose weights the trainer holds after `fit` (the best
    /// one); `None` when no epoch had a defined monitored value.
    pub best_epoch: Option<usize>,
    /// What happened besides the epochs: undefined monitored values, early stopping,
    /// learning-rate reductions.
    pub notes: Vec<String>,
}

impl History {
    /// The column names of [`History::to_csv`]: `epoch`, `seconds`, `rows_per_second`,
    /// `learning_rate`, then every training value as `<name>` and every validation value as
    /// `val_<name>`, in the order they first appear.
    pub fn columns(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut add = |n: String| {
            if !names.contains(&n) {
                names.push(n);
            }
        };
        for e in &self.epochs {
            e.train.names().for_each(|n| add(n.to_string()));
        }
        for e in &self.epochs {
            if let Some(v) = &e.validation {
                v.names().for_each(|n| add(format!("val_{n}")));
            }
        }
        ["epoch", "seconds", "rows_per_second", "learning_rate"]
            .into_iter()
            .map(String::from)
            .chain(names)
            .collect()
    }

    /// One row per epoch (1-based epoch numbers, as printed), with a header; an undefined or
    /// absent value is `NaN`.
    pub fn to_csv(&self) -> String {
        let columns = self.columns();
        let mut out = columns
            .iter()
            .map(|c| csv_field(c))
            .collect::<Vec<_>>()
            .join(",");
        out.push('\n');
        for e in &self.epochs {
            let row: Vec<String> = columns.iter().map(|c| format!("{}", e.value(c))).collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
        out
    }

    /// `{"epochs": [{"epoch": 1, "seconds": .., "rows_per_second": .., "learning_rate": ..,
    /// "train": {..}, "validation": {..} or null}, ..], "best_epoch": 1-based or null,
    /// "stopped_early": bool, "notes": [..]}`. JSON has no NaN: an undefined value is `null`.
    pub fn to_json(&self) -> String {
        let report = |r: &Report| {
            serde_json::Value::Object(
                r.iter()
                    .map(|(n, v)| (n.to_string(), json_number(v)))
                    .collect(),
            )
        };
        let epochs: Vec<serde_json::Value> = self
            .epochs
            .iter()
            .map(|e| {
                serde_json::json!({
                    "epoch": e.epoch + 1,
                    "seconds": json_number(e.seconds),
                    "rows_per_second": json_number(e.rows_per_second),
                    "learning_rate": json_number(e.learning_rate),
                    "train": report(&e.train),
                    "validation": e.validation.as_ref().map(report),
                })
            })
            .collect();
        serde_json::json!({
            "epochs": epochs,
            "best_epoch": self.best_epoch.map(|e| e + 1),
            "stopped_early": self.stopped_early_at_best.is_some(),
            "notes": self.notes,
        })
        .to_string()
    }
}

impl EpochRecord {
    /// The value of a [`History::columns`] column in this epoch (NaN when absent).
    pub fn value(&self, column: &str) -> f64 {
        match column {
            "epoch" => (self.epoch + 1) as f64,
            "seconds" => self.seconds,
            "rows_per_second" => self.rows_per_second,
            "learning_rate" => self.learning_rate,
            c => match c.strip_prefix("val_") {
                Some(v) if self.train.get(c).is_none() => {
                    self.validation.as_ref().and_then(|r| r.get(v))
                }
                _ => self.train.get(c),
            }
            .unwrap_or(f64::NAN),
        }
    }
}

/// Mean expert weights per gate, read back from a report's `<gate>_weight_<k>` entries.
#[derive(Debug, Clone, PartialEq)]
pub struct GateWeights {
    /// `(gate name, mean weight of expert k)` in report order.
    pub gates: Vec<(String, Vec<f64>)>,
}

impl Report {
    /// The gate metrics of this report (see `TrainConfig::gate_metrics`); `None` without any.
    pub fn gate_weights(&self) -> Option<GateWeights> {
        let mut gates: Vec<(String, Vec<f64>)> = Vec::new();
        for (name, value) in &self.entries {
            let Some((gate, k)) = name.rsplit_once("_weight_") else {
                continue;
            };
            let Ok(k) = k.parse::<usize>() else { continue };
            match gates.iter_mut().find(|(g, _)| g == gate) {
                Some((_, w)) if w.len() == k => w.push(*value),
                Some(_) => {}
                None if k == 0 => gates.push((gate.to_string(), vec![*value])),
                None => {}
            }
        }
        (!gates.is_empty()).then_some(GateWeights { gates })
    }
}

impl GateWeights {
    /// An SVG heatmap: one row per gate (task), one column per expert, darker = more weight.
    pub fn to_svg(&self) -> String {
        let experts = self.gates.iter().map(|(_, w)| w.len()).max().unwrap_or(0);
        let (cell, label_w, top) = (56usize, 260usize, 40usize);
        let width = label_w + experts * cell + 20;
        let height = top + self.gates.len() * cell + 20;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n"
        );
        svg.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        for k in 0..experts {
            let x = label_w + k * cell + cell / 2;
            svg.push_str(&format!(
                "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">expert {k}</text>\n",
                top - 12
            ));
        }
        for (r, (gate, weights)) in self.gates.iter().enumerate() {
            let y = top + r * cell;
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
                label_w - 8,
                y + cell / 2 + 4,
                gate.replace('&', "&amp;").replace('<', "&lt;")
            ));
            for (k, w) in weights.iter().enumerate() {
                // White (0) to dark blue (1).
                let shade = (255.0 * (1.0 - w.clamp(0.0, 1.0))) as u8;
                let x = label_w + k * cell;
                svg.push_str(&format!(
                    "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"rgb({shade},{shade},255)\" stroke=\"#888\"/>\n"
                ));
                let color = if *w > 0.5 { "white" } else { "black" };
                svg.push_str(&format!(
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{color}\">{w:.2}</text>\n",
                    x + cell / 2,
                    y + cell / 2 + 4
                ));
            }
        }
        svg.push_str("</svg>\n");
        svg
    }
}

impl fmt::Display for GateWeights {
    /// A table: one row per gate, one column per expert.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let experts = self.gates.iter().map(|(_, w)| w.len()).max().unwrap_or(0);
        let names: Vec<String> = (0..experts).map(|k| format!("expert {k}")).collect();
        let mut header = vec!["gate"];
        header.extend(names.iter().map(String::as_str));
        let rows: Vec<Vec<String>> = self
            .gates
            .iter()
            .map(|(g, w)| {
                std::iter::once(g.clone())
                    .chain(w.iter().map(|v| format!("{v:.3}")))
                    .collect()
            })
            .collect();
        crate::table::write_table(f, &header, &rows)
    }
}
