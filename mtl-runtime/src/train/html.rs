//! The run report: one self-contained HTML page (inline CSS and SVG, no script, nothing
//! fetched) with the model summary, the training settings, the evaluation metrics, the
//! per-epoch table, the training curves, the gate heatmaps of mixture-of-experts bodies and
//! the notes of the run.

use std::fmt::Write as _;
use std::path::Path;

use super::config::TrainConfig;
use super::curves::escape;
use super::report::{format_value, History, Report, UNDEFINED_NOTE};
use crate::error::{Error, Result};

/// What a run report shows. Build it with [`RunReport::new`] (or
/// `Trainer::run_report`), then [`RunReport::to_html`] or [`RunReport::write`].
#[derive(Debug, Clone)]
pub struct RunReport {
    pub title: String,
    /// The printed model (`println!("{net}")`).
    pub summary: String,
    /// `(setting, value)` rows.
    pub settings: Vec<(String, String)>,
    pub history: History,
    /// Final evaluations, e.g. `("test", report)`; a report with gate metrics adds its heatmap.
    pub evaluations: Vec<(String, Report)>,
}

impl RunReport {
    /// A report of `history` for a model printed as `summary`, trained with `config`.
    pub fn new(title: &str, summary: String, config: &TrainConfig, history: &History) -> Self {
        RunReport {
            title: title.to_string(),
            summary,
            settings: settings(config),
            history: history.clone(),
            evaluations: Vec::new(),
        }
    }

    /// Adds a final evaluation (`"test"`, `"valid"`, ...).
    pub fn with_evaluation(mut self, name: &str, report: &Report) -> Self {
        self.evaluations.push((name.to_string(), report.clone()));
        self
    }

    /// Adds a setting row (the engine, the data, ...).
    pub fn with_setting(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.settings.push((name.to_string(), value.to_string()));
        self
    }

    /// The page.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let title = escape(&self.title);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
        );
        // Metrics first: what a reader looks for.
        for (name, report) in &self.evaluations {
            let _ = write!(
                h,
                "<h2>Evaluation: {}</h2>\n{}",
                escape(name),
                report_table(report)
            );
        }
        if !self.history.epochs.is_empty() {
            let _ = write!(
                h,
                "<h2>Training curves</h2>\n<div class=\"figure\">{}</div>\n",
                self.history.curves_svg()
            );
        }
        for (name, report) in &self.evaluations {
            if let Some(gates) = report.gate_weights() {
                let _ = write!(
                    h,
                    "<h2>Gates ({})</h2>\n<p>Mean weight each gate gives each expert.</p>\n\
                     <div class=\"figure\">{}</div>\n",
                    escape(name),
                    gates.to_svg()
                );
            }
        }
        if !self.history.epochs.is_empty() {
            let _ = write!(h, "<h2>Epochs</h2>\n{}", epochs_table(&self.history));
        }
        if !self.history.notes.is_empty() {
            h.push_str("<h2>Notes</h2>\n<ul>\n");
            for n in &self.history.notes {
                let _ = writeln!(h, "<li>{}</li>", escape(n));
            }
            h.push_str("</ul>\n");
        }
        h.push_str("<h2>Settings</h2>\n<table>\n");
        for (k, v) in &self.settings {
            let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
        }
        h.push_str("</table>\n");
        let _ = write!(
            h,
            "<h2>Model</h2>\n<pre>{}</pre>\n</body>\n</html>\n",
            escape(&self.summary)
        );
        h
    }

    /// Writes the page to `path` (whole or not at all).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let tmp = super::checkpoint::temporary_path(path);
        let written = std::fs::write(&tmp, self.to_html())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| Error::io(path, e));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

const CSS: &str =
    "body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.undefined { color: #a00; font-style: italic; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.85em; }
.figure { overflow-x: auto; } p.note { color: #a00; }
";

/// A cell for a value: right-aligned, `undefined` in red for NaN.
fn value_cell(v: f64) -> String {
    if v.is_nan() {
        "<td class=\"undefined\">undefined</td>".into()
    } else {
        format!("<td class=\"num\">{}</td>", format_value(v))
    }
}

fn report_table(report: &Report) -> String {
    let mut h = String::from("<table>\n<tr><th>metric</th><th>value</th></tr>\n");
    for (name, v) in report.iter().filter(|(n, _)| !n.contains("_weight_")) {
        let _ = writeln!(h, "<tr><td>{}</td>{}</tr>", escape(name), value_cell(v));
    }
    h.push_str("</table>\n");
    if report.has_undefined() {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(UNDEFINED_NOTE));
    }
    h
}

fn epochs_table(history: &History) -> String {
    let columns: Vec<String> = history
        .columns()
        .into_iter()
        .filter(|c| !c.contains("_weight_"))
        .collect();
    let mut h = String::from("<table>\n<tr>");
    for c in &columns {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr>\n");
    for e in &history.epochs {
        h.push_str("<tr>");
        for c in &columns {
            let v = e.value(c);
            match c.as_str() {
                "epoch" => {
                    let _ = write!(h, "<td class=\"num\">{}</td>", e.epoch + 1);
                }
                "seconds" => {
                    let _ = write!(h, "<td class=\"num\">{v:.2}</td>");
                }
                "rows_per_second" => {
                    let _ = write!(h, "<td class=\"num\">{v:.0}</td>");
                }
                "learning_rate" => {
                    let _ = write!(h, "<td class=\"num\">{v:.3e}</td>");
                }
                _ => h.push_str(&value_cell(v)),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    if let Some(best) = history.best_epoch {
        let _ = writeln!(
            h,
            "<p>Best epoch: {} (its weights are the model's).</p>",
            best + 1
        );
    }
    h
}

/// The settings a reader needs to reproduce the run.
fn settings(c: &TrainConfig) -> Vec<(String, String)> {
    let mut s = vec![
        ("epochs".to_string(), c.epochs.to_string()),
        ("batch size".into(), c.batch_size.to_string()),
        ("seed".into(), c.seed.to_string()),
        ("shuffle".into(), c.shuffle.to_string()),
        (
            "dense optimizer".into(),
            format!(
                "Adam lr {:e}, betas ({}, {}), eps {:e}, weight decay {}",
                c.dense_lr, c.dense_betas[0], c.dense_betas[1], c.dense_eps, c.dense_weight_decay
            ),
        ),
        ("embedding optimizer".into(), format!("{:?}", c.embeddings)),
        ("schedule".into(), format!("{:?}", c.schedule)),
        ("warm-up steps".into(), c.warmup_steps.to_string()),
        ("dense L2".into(), c.dense_l2.to_string()),
        ("embeddings L2".into(), c.embeddings_l2.to_string()),
    ];
    if let Some(p) = &c.reduce_on_plateau {
        s.push(("reduce on plateau".into(), format!("{p:?}")));
    }
    if let Some(n) = c.clip_global_norm {
        s.push(("clip global norm".into(), n.to_string()));
    }
    if let Some(e) = &c.early_stopping {
        s.push((
            "early stopping".into(),
            format!(
                "{} ({}), patience {}, min_delta {}",
                e.monitor.name,
                if e.monitor.maximize { "max" } else { "min" },
                e.patience,
                e.monitor.min_delta
            ),
        ));
    }
    for (task, w) in &c.loss_weights {
        s.push((format!("loss weight {task}"), w.to_string()));
    }
    for (task, (n, p)) in &c.class_weights {
        s.push((format!("class weights {task}"), format!("({n}, {p})")));
    }
    s
}
