//! Training curves as SVG: the loss and each task's main metric per epoch, training against
//! validation, and learnt loss weights when the model learns them. Plain SVG (no script, no font files), so it opens anywhere and embeds in the
//! HTML run report.

use super::report::History;

/// Colours of the two series (matplotlib's first two, so the charts look familiar).
pub(crate) const TRAIN_COLOUR: &str = "#1f77b4";
pub(crate) const VALID_COLOUR: &str = "#ff7f0e";

/// The metric a task's curve shows, by preference: AUC, RMSE, accuracy, then whatever comes
/// first.
const MAIN_METRICS: [&str; 5] = [
    "auc",
    "root_mean_squared_error",
    "categorical_accuracy",
    "binary_accuracy",
    "mean_squared_error",
];

/// One panel: a name and its two series (one value per epoch, NaN where absent).
struct Panel {
    title: String,
    train: Vec<f64>,
    valid: Vec<f64>,
}

impl History {
    /// The panels: `loss`, then one per task (its main metric; its loss when no metric was
    /// reported on both sides).
    fn panels(&self) -> Vec<Panel> {
        let series = |name: &str, valid: bool| -> Vec<f64> {
            self.epochs
                .iter()
                .map(|e| {
                    let r = if valid {
                        e.validation.as_ref()
                    } else {
                        Some(&e.train)
                    };
                    r.and_then(|r| r.get(name)).unwrap_or(f64::NAN)
                })
                .collect()
        };
        let mut panels = vec![Panel {
            title: "loss".into(),
            train: series("loss", false),
            valid: series("loss", true),
        }];
        // Tasks: `<output>/<metric>` names of the last validation (or training) report.
        let last = self
            .epochs
            .last()
            .and_then(|e| e.validation.clone().or_else(|| Some(e.train.clone())));
        let Some(last) = last else {
            return panels;
        };
        let mut tasks: Vec<String> = Vec::new();
        for name in last.names().filter(|n| !n.contains("_weight_")) {
            if let Some((task, _)) = name.rsplit_once('/') {
                if !task.is_empty() && !tasks.iter().any(|t| t == task) && task.contains('/') {
                    tasks.push(task.to_string());
                }
            }
        }
        if tasks.is_empty() {
            // One task: names carry no prefix.
            if let Some(m) = MAIN_METRICS.iter().find(|m| last.get(m).is_some()) {
                panels.push(Panel {
                    title: m.to_string(),
                    train: series(m, false),
                    valid: series(m, true),
                });
            }
            return panels;
        }
        for task in &tasks {
            let metric = MAIN_METRICS
                .iter()
                .map(|m| format!("{task}/{m}"))
                .find(|n| last.get(n).is_some());
            let name = metric.unwrap_or_else(|| format!("{task}_loss"));
            panels.push(Panel {
                title: name.clone(),
                train: series(&name, false),
                valid: series(&name, true),
            });
        }
        // Learnt loss weights (`loss_balancing: uncertainty`): training only.
        for task in &tasks {
            let name = format!("{task}/loss_weight");
            if self.epochs.iter().any(|e| e.train.get(&name).is_some()) {
                panels.push(Panel {
                    title: name.clone(),
                    train: series(&name, false),
                    valid: vec![f64::NAN; self.epochs.len()],
                });
            }
        }
        panels
    }

    /// The training curves as one SVG image: a grid of panels (two per row), each epoch on the
    /// x axis, training in blue and validation in orange.
    pub fn curves_svg(&self) -> String {
        let panels = self.panels();
        let (w, h, cols) = (420usize, 260usize, 2usize);
        let rows = panels.len().div_ceil(cols).max(1);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" \
             fill=\"white\"/>\n",
            w * cols,
            h * rows + 30
        );
        // Legend.
        svg.push_str(&format!(
            "<rect x=\"20\" y=\"10\" width=\"14\" height=\"4\" fill=\"{TRAIN_COLOUR}\"/>\
             <text x=\"40\" y=\"16\">training</text>\
             <rect x=\"120\" y=\"10\" width=\"14\" height=\"4\" fill=\"{VALID_COLOUR}\"/>\
             <text x=\"140\" y=\"16\">validation</text>\n"
        ));
        for (i, p) in panels.iter().enumerate() {
            let (x0, y0) = ((i % cols) * w, 30 + (i / cols) * h);
            svg.push_str(&panel_svg(p, x0, y0, w, h, self.epochs.len()));
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// One panel at `(x0, y0)`, `w × h`, over `epochs` epochs.
fn panel_svg(p: &Panel, x0: usize, y0: usize, w: usize, h: usize, epochs: usize) -> String {
    let (left, right, top, bottom) = (60.0, 15.0, 28.0, 35.0);
    let (pw, ph) = (w as f64 - left - right, h as f64 - top - bottom);
    let values: Vec<f64> = p
        .train
        .iter()
        .chain(&p.valid)
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let mut out = format!(
        "<g transform=\"translate({x0},{y0})\">\n<text x=\"{}\" y=\"18\" text-anchor=\"middle\" \
         font-weight=\"bold\">{}</text>\n",
        w / 2,
        escape(&p.title)
    );
    out.push_str(&format!(
        "<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#999\"/>\n"
    ));
    if values.is_empty() || epochs == 0 {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#777\">no values</text>\n</g>\n",
            left + pw / 2.0,
            top + ph / 2.0
        ));
        return out;
    }
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if hi - lo < 1e-12 {
        (lo, hi) = (lo - 0.5 * lo.abs().max(1e-3), hi + 0.5 * hi.abs().max(1e-3));
    }
    let x = |epoch: usize| {
        if epochs == 1 {
            left + pw / 2.0
        } else {
            left + pw * epoch as f64 / (epochs - 1) as f64
        }
    };
    let y = |v: f64| top + ph * (1.0 - (v - lo) / (hi - lo));
    // Axis labels: the value range and the epochs.
    for (v, anchor_y) in [(hi, top + 4.0), (lo, top + ph)] {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{anchor_y}\" text-anchor=\"end\">{}</text>\n",
            left - 5.0,
            tick(v)
        ));
    }
    out.push_str(&format!(
        "<text x=\"{left}\" y=\"{}\" text-anchor=\"middle\">1</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{epochs}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">epoch</text>\n",
        top + ph + 15.0,
        left + pw,
        top + ph + 15.0,
        left + pw / 2.0,
        top + ph + 30.0
    ));
    for (series, colour) in [(&p.train, TRAIN_COLOUR), (&p.valid, VALID_COLOUR)] {
        let points: Vec<(f64, f64)> = series
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(e, v)| (x(e), y(*v)))
            .collect();
        if points.len() > 1 {
            let path: Vec<String> = points
                .iter()
                .map(|(a, b)| format!("{a:.1},{b:.1}"))
                .collect();
            out.push_str(&format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.5\"/>\n",
                path.join(" ")
            ));
        }
        for (a, b) in &points {
            out.push_str(&format!(
                "<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"3.5\" fill=\"{colour}\"/>\n"
            ));
        }
    }
    out.push_str("</g>\n");
    out
}

/// A short axis label.
fn tick(v: f64) -> String {
    if v.abs() >= 1000.0 || (v != 0.0 && v.abs() < 0.01) {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

/// Text for SVG/HTML.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
