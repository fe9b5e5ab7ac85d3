//! Reading delimited text: [`CsvOptions`] (header or given names, delimiter, quoting,
//! trimming, null markers) and the streaming reader over a plain or gzipped file.
//!
//! Parsing is the `csv` crate's (RFC 4180 quoting, `""` escapes, quoted newlines). This module
//! adds what raw tables in the wild need and the crate leaves to callers: a fixed number of
//! fields per record (a ragged record is an error with its line, never padded or cut), trimming
//! (the UCI files write `, value`), and null markers such as `?`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::rows::{Row, RowReader};
use crate::error::{Error, Result};

/// How to read a delimited text file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// `None`: the first record is the header. `Some(names)`: the file has no header and these
    /// are its columns, in order.
    pub names: Option<Vec<String>>,
    pub delimiter: u8,
    /// The quote character; `None` turns quoting off (quotes are then ordinary characters).
    pub quote: Option<u8>,
    /// Trim ASCII whitespace around every field and header name (quoted or not).
    pub trim: bool,
    /// Values (compared after trimming) that mean "missing". Default: the empty string.
    pub null_markers: Vec<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            names: None,
            delimiter: b',',
            quote: Some(b'"'),
            trim: true,
            null_markers: vec![String::new()],
        }
    }
}

impl CsvOptions {
    /// The file has no header; `names` are its columns.
    pub fn with_names<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        self.names = Some(names.iter().map(|n| n.as_ref().to_string()).collect());
        self
    }
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }
    pub fn with_quote(mut self, quote: Option<u8>) -> Self {
        self.quote = quote;
        self
    }
    pub fn with_trim(mut self, trim: bool) -> Self {
        self.trim = trim;
        self
    }
    /// Replaces the null markers (`&["", "?"]` for the UCI files).
    pub fn with_null_markers<S: AsRef<str>>(mut self, markers: &[S]) -> Self {
        self.null_markers = markers.iter().map(|m| m.as_ref().to_string()).collect();
        self
    }
}

/// Streaming reader of one CSV file.
pub(crate) struct CsvRows {
    path: PathBuf,
    reader: csv::Reader<Box<dyn Read>>,
    record: csv::StringRecord,
    columns: Vec<String>,
    options: CsvOptions,
    line: u64,
}

impl CsvRows {
    pub fn open(path: &Path, options: &CsvOptions) -> Result<CsvRows> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let gz = path.extension().is_some_and(|e| e == "gz");
        // MultiGzDecoder: gzip files made by concatenation (`cat a.gz b.gz`) are legal.
        let raw: Box<dyn Read> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
        } else {
            Box::new(file)
        };
        let reader = csv::ReaderBuilder::new()
            // Header and record lengths are handled here, so that errors carry our context.
            .has_headers(false)
            .flexible(true)
            .delimiter(options.delimiter)
            .quoting(options.quote.is_some())
            .quote(options.quote.unwrap_or(b'"'))
            .buffer_capacity(1 << 16)
            .from_reader(raw);
        let mut rows = CsvRows {
            path: path.to_path_buf(),
            reader,
            record: csv::StringRecord::new(),
            columns: Vec::new(),
            options: options.clone(),
            line: 0,
        };
        rows.columns = match &options.names {
            Some(names) => names.clone(),
            None => {
                if !rows.read()? {
                    return Err(Error::file(
                        path,
                        "the file is empty: it has no header line; give the column names \
                         with CsvOptions::with_names if the file has no header",
                    ));
                }
                let trim = options.trim;
                rows.record
                    .iter()
                    .map(|h| if trim { h.trim() } else { h }.to_string())
                    .collect()
            }
        };
        if rows.columns.is_empty() {
            return Err(Error::file(
                path,
                "no columns: the header or the names are empty",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = rows.columns.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(Error::file(
                path,
                format!("column `{dup}` appears twice in the header; column names must be unique"),
            ));
        }
        Ok(rows)
    }

    /// Reads one raw record; `false` at the end.
    fn read(&mut self) -> Result<bool> {
        let more = self.reader.read_record(&mut self.record).map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(self.line + 1);
            let message = match e.kind() {
                csv::ErrorKind::Utf8 { err, .. } => format!(
                    "field {} is not valid UTF-8; re-encode the file as UTF-8",
                    err.field() + 1
                ),
                _ => format!("cannot read the record: {e}"),
            };
            Error::record(&self.path, line, None, message)
        })?;
        if more {
            self.line = self.record.position().map_or(self.line + 1, |p| p.line());
        }
        Ok(more)
    }
}

impl RowReader for CsvRows {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self, row: &mut Row) -> Result<bool> {
        if !self.read()? {
            return Ok(false);
        }
        if self.record.len() != self.columns.len() {
            // An unterminated quote swallows the following lines into one field: the record
            // then holds a line break and the wrong number of fields.
            if self.record.iter().any(|f| f.contains('\n')) {
                return Err(Error::record(
                    &self.path,
                    self.line,
                    None,
                    format!(
                        "a quote opened on this line is never closed: its field runs over line \
                         breaks and the record has {} fields instead of {}; close the quote (or \
                         double it, `\"\"`, inside a quoted field)",
                        self.record.len(),
                        self.columns.len()
                    ),
                ));
            }
            let origin = if self.options.names.is_some() {
                "column names given"
            } else {
                "header"
            };
            return Err(Error::record(
                &self.path,
                self.line,
                None,
                format!(
                    "expected {} fields (as many as the {origin}), found {}; check the \
                     delimiter and the quoting of this line",
                    self.columns.len(),
                    self.record.len()
                ),
            ));
        }
        row.resize(self.columns.len());
        for (i, field) in self.record.iter().enumerate() {
            let value = if self.options.trim {
                field.trim()
            } else {
                field
            };
            row.nulls[i] = self.options.null_markers.iter().any(|m| m == value);
            row.values[i].clear();
            row.values[i].push_str(value);
        }
        Ok(true)
    }

    fn position(&self) -> (&Path, u64) {
        (&self.path, self.line)
    }
}
