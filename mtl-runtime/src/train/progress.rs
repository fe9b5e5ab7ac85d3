//! What `fit` shows while it runs (with `TrainConfig::progress`), on standard error so that a
//! program's own output stays clean: on a terminal a progress bar per epoch, then the epoch's
//! line; anywhere else (a log file, a pipe) only the lines, one per epoch, like Keras'
//! `verbose=2`. Early-stopping and schedule decisions are printed as they are taken.

use std::io::IsTerminal;
use std::time::Duration;

use super::report::{format_value, EpochRecord};

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    /// A terminal: bars and lines.
    Bar,
    /// Not a terminal: lines only.
    Lines,
}

pub(crate) struct Progress {
    mode: Mode,
    epochs: usize,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(enabled: bool, epochs: usize) -> Progress {
        let mode = match (enabled, std::io::stderr().is_terminal()) {
            (false, _) => Mode::Off,
            (true, true) => Mode::Bar,
            (true, false) => Mode::Lines,
        };
        Progress {
            mode,
            epochs,
            bar: None,
        }
    }

    /// Starts epoch `epoch` (0-based) of `batches` batches (if known).
    pub fn start_epoch(&mut self, epoch: usize, batches: Option<usize>) {
        if self.mode != Mode::Bar {
            return;
        }
        let bar = match batches {
            Some(n) => indicatif::ProgressBar::new(n as u64),
            None => indicatif::ProgressBar::new_spinner(),
        };
        let template = if batches.is_some() {
            "{prefix} [{bar:30}] {pos}/{len} {msg}"
        } else {
            "{prefix} {spinner} {pos} batches {msg}"
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(format!("epoch {}/{}", epoch + 1, self.epochs));
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    /// After a batch: the running loss and rows/s.
    pub fn batch(&self, loss: f64, rows_per_second: f64) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("loss {loss:.4}, {rows_per_second:.0} rows/s"));
        }
    }

    /// The epoch's line.
    pub fn end_epoch(&mut self, record: &EpochRecord, learning_rate: Option<f64>) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.mode != Mode::Off {
            eprintln!("{}", epoch_line(record, self.epochs, learning_rate));
        }
    }

    /// A decision or a warning, on its own line.
    pub fn note(&self, text: &str) {
        if self.mode != Mode::Off {
            match &self.bar {
                Some(bar) => bar.println(text),
                None => eprintln!("{text}"),
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An error mid-epoch: leave the terminal clean.
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `epoch 2/5 - 3.1s - 98000 rows/s - loss 0.3921 - val_loss 0.4012 - val_…/auc 0.7231`: the
/// training report's values, then the validation report's as `val_<name>` (gate weights,
/// `loss_batch` and a zero `regularization_loss` left out), then the learning rate when it
/// changes over the run.
pub(crate) fn epoch_line(
    record: &EpochRecord,
    epochs: usize,
    learning_rate: Option<f64>,
) -> String {
    let mut line = format!(
        "epoch {}/{} - {:.1}s - {:.0} rows/s",
        record.epoch + 1,
        epochs,
        record.seconds,
        record.rows_per_second
    );
    let shown = |name: &str, value: f64| {
        !(name.contains("_weight_")
            || name == "loss_batch"
            || (name == "regularization_loss" && value == 0.0))
    };
    for (name, value) in record.train.iter().filter(|(n, v)| shown(n, *v)) {
        line.push_str(&format!(" - {name} {}", format_value(value)));
    }
    if let Some(valid) = &record.validation {
        for (name, value) in valid.iter().filter(|(n, v)| shown(n, *v)) {
            line.push_str(&format!(" - val_{name} {}", format_value(value)));
        }
    }
    if let Some(lr) = learning_rate {
        line.push_str(&format!(" - lr {lr:.3e}"));
    }
    line
}
