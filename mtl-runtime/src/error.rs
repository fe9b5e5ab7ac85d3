//! The one error type of the runtime.
//!
//! Every variant carries enough context for a user to find and fix the problem without a
//! debugger: the file, the line or field path in it, the column, the row, and what was expected.
//! Library code never panics on bad input; it returns one of these.

use std::path::{Path, PathBuf};

/// Result alias used throughout the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading schemas and data or training a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A schema file or schema value is malformed. `origin` names the file (and line) or the
    /// field path; `message` says what was expected.
    #[error("schema {origin}: {message}")]
    Schema { origin: String, message: String },

    /// A data file does not match the schema, or holds values the schema forbids.
    #[error("{}: column `{column}`: {message}", file.display())]
    Column {
        file: PathBuf,
        column: String,
        message: String,
    },

    /// A data file (Parquet, Arrow IPC) could not be decoded.
    #[error("{}: {message}", file.display())]
    File { file: PathBuf, message: String },

    /// A record of a raw input table (CSV, Parquet) cannot be used: a ragged row, a bad number,
    /// a value a target rule cannot read. `line` is the 1-based line of a CSV file (where the
    /// record starts) or the 1-based row of a Parquet file.
    #[error("{}:{line}: {}{message}", file.display(), column.as_ref().map(|c| format!("column `{c}`: ")).unwrap_or_default())]
    Record {
        file: PathBuf,
        line: u64,
        column: Option<String>,
        message: String,
    },

    /// A caller passed an argument or configuration that cannot work.
    #[error("{0}")]
    Invalid(String),
}

/// A number as a person reads it in a message: `1e300`, not three hundred digits.
#[allow(dead_code)] // used by the `engine` modules only
pub(crate) fn number(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e16).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub(crate) fn schema(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Schema {
            origin: origin.into(),
            message: message.into(),
        }
    }

    #[allow(dead_code)] // used by the `engine` modules only
    pub(crate) fn column(
        file: impl AsRef<Path>,
        column: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Column {
            file: file.as_ref().to_path_buf(),
            column: column.into(),
            message: message.into(),
        }
    }

    #[allow(dead_code)] // used by the `engine` modules only
    pub(crate) fn file(file: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::File {
            file: file.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    #[allow(dead_code)] // used by the `engine` modules only
    pub(crate) fn record(
        file: impl AsRef<Path>,
        line: u64,
        column: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Error::Record {
            file: file.as_ref().to_path_buf(),
            line,
            column: column.map(str::to_string),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }
}

/// The Levenshtein distance between `a` and `b` (in characters), for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate nearest to `name` within `max_distance` edits, for "did you mean" hints.
pub fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    max_distance: usize,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= max_distance)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
