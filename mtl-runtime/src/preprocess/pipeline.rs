//! The preprocessing pipeline: column roles ([`PreprocessConfig`]), fitting on the training
//! rows ([`Fitted`]), and encoding every split into Parquet parts + `schema.json`.
//!
//! Two streaming passes over the raw table: the first fits vocabularies and statistics on the
//! training rows only; the second encodes every row and appends it to its split's Parquet
//! writer (row groups of [`PreprocessConfig::row_group_rows`]). Nothing but the fitted state
//! and one row group per split is held in memory.
//!
//! Output layout (what [`crate::data::Dataset::open`] and the DSL's `schema:` read):
//! ```text
//! out/train/part_0.parquet  out/train/schema.json      (likewise valid/, test/)
//! out/categories/unique.<column>.parquet                (vocabularies, NVTabular's names)
//! out/stats.json                                        (normalisation statistics)
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::json;

use super::categorify::{VocabCounter, Vocabulary};
use super::normalize::{Normalizer, StatsCounter};
use super::rows::{list_elements, Row, RowReader};
use super::source::Input;
use super::split::Split;
use super::staging::write_staged;
use super::targets::Target;
use crate::data::{ColumnValues, Dataset};
use crate::error::{Error, Result};
use crate::schema::{ColumnSchema, DType, Schema};

/// What a raw column becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// Categorify: an int32 id with domain `[0, vocabulary size]`, tag `categorical`.
    Categorical,
    /// Normalize: a float32, tag `continuous`.
    Continuous,
    /// Kept as a float32 without feature tags: loaded with the data (usable as a
    /// `sample_weight`) but never a model input.
    Weight,
    /// Not written.
    Drop,
}

/// Which raw columns become what, and how they are fitted.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessConfig {
    /// Roles of named raw columns.
    pub roles: Vec<(String, Role)>,
    /// Role of every column not named in `roles` or as a target; `None`: such a column is an
    /// error (so that a new column in the data is never silently fed to a model).
    pub others: Option<Role>,
    pub targets: Vec<Target>,
    /// Categorify: values seen fewer times than this in the training rows map to 0.
    pub min_frequency: u64,
    /// Per-column overrides of `min_frequency`.
    pub min_frequency_for: Vec<(String, u64)>,
    /// Continuous columns normalised after `log1p` (heavy-tailed amounts, counts).
    pub log1p: Vec<String>,
    /// Raw values nulls of these continuous columns are filled with (default: the mean).
    pub fill: Vec<(String, f64)>,
    /// How a single input table is split ([`PreprocessConfig::run`]).
    pub split: Split,
    /// List columns (categorical, several values per cell) and the separator of their text
    /// cells (`"3|17|42"` with `'|'`); Parquet list cells are lists whatever it is.
    pub lists: Vec<(String, char)>,
    /// Per list column, the most values kept per row (the first ones); by default the longest
    /// list of the training rows. Longer lists are cut and counted in the reports.
    pub max_list_len: Vec<(String, usize)>,
    /// Categorical columns hashed into a fixed number of buckets instead of a vocabulary.
    pub hash_buckets: Vec<(String, u64)>,
    /// The seed of the hashing.
    pub hash_seed: u64,
    /// Groups of categorical columns encoded with one vocabulary (fitted on all of them), so
    /// that their ids mean the same values and a model can share one table between them.
    pub shared_vocabularies: Vec<Vec<String>>,
    /// Rows per Parquet row group of the output.
    pub row_group_rows: usize,
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        PreprocessConfig {
            roles: Vec::new(),
            others: None,
            targets: Vec::new(),
            min_frequency: 1,
            min_frequency_for: Vec::new(),
            log1p: Vec::new(),
            fill: Vec::new(),
            split: Split::train_only(),
            row_group_rows: 64 * 1024,
            lists: Vec::new(),
            max_list_len: Vec::new(),
            hash_buckets: Vec::new(),
            hash_seed: 0,
            shared_vocabularies: Vec::new(),
        }
    }
}

fn names<S: AsRef<str>>(columns: &[S]) -> impl Iterator<Item = String> + '_ {
    columns.iter().map(|c| c.as_ref().to_string())
}

impl PreprocessConfig {
    pub fn new() -> Self {
        Self::default()
    }
    fn with_role<S: AsRef<str>>(mut self, columns: &[S], role: Role) -> Self {
        self.roles.extend(names(columns).map(|c| (c, role)));
        self
    }
    pub fn categorical<S: AsRef<str>>(self, columns: &[S]) -> Self {
        self.with_role(columns, Role::Categorical)
    }
    pub fn continuous<S: AsRef<str>>(self, columns: &[S]) -> Self {
        self.with_role(columns, Role::Continuous)
    }
    pub fn weight<S: AsRef<str>>(self, columns: &[S]) -> Self {
        self.with_role(columns, Role::Weight)
    }
    pub fn drop<S: AsRef<str>>(self, columns: &[S]) -> Self {
        self.with_role(columns, Role::Drop)
    }
    /// The role of every column not named otherwise.
    pub fn others(mut self, role: Role) -> Self {
        self.others = Some(role);
        self
    }
    pub fn target(mut self, target: Target) -> Self {
        self.targets.push(target);
        self
    }
    pub fn min_frequency(mut self, n: u64) -> Self {
        self.min_frequency = n;
        self
    }
    pub fn min_frequency_for(mut self, column: &str, n: u64) -> Self {
        self.min_frequency_for.push((column.to_string(), n));
        self
    }
    /// Categorical list columns whose text cells hold values separated by `separator`
    /// (`"3|17|42"`); Parquet list columns are read as lists. Each value is encoded with the
    /// column's vocabulary, and the column becomes a list of ids (`is_list`, `value_count`).
    pub fn categorical_list<S: AsRef<str>>(mut self, columns: &[S], separator: char) -> Self {
        self.lists.extend(names(columns).map(|c| (c, separator)));
        self.with_role(columns, Role::Categorical)
    }
    /// Keeps at most the first `n` values of each row of list column `column`.
    pub fn max_list_len(mut self, column: &str, n: usize) -> Self {
        self.max_list_len.push((column.to_string(), n));
        self
    }
    /// Categorical columns whose values (ids or strings, an open vocabulary) are hashed into
    /// `buckets` ids: `1 + xxh64(value, seed) mod buckets` (0 stays the null id), so new
    /// values at inference get an id too. Distinct values may share an id (about
    /// `values²/(2·buckets)` collisions); no vocabulary is fitted or saved.
    pub fn hash_buckets<S: AsRef<str>>(mut self, columns: &[S], buckets: u64) -> Self {
        self.hash_buckets
            .extend(names(columns).map(|c| (c, buckets)));
        self.with_role(columns, Role::Categorical)
    }
    /// The seed of [`PreprocessConfig::hash_buckets`] (0 by default).
    pub fn hash_seed(mut self, seed: u64) -> Self {
        self.hash_seed = seed;
        self
    }
    /// Encodes `columns` (categorical, scalar or list) with one vocabulary fitted on all of
    /// them, named after the first: the same value gets the same id in each, and their schema
    /// domains share that name, so a model's inputs over them share one embedding table.
    pub fn shared_vocabulary<S: AsRef<str>>(mut self, columns: &[S]) -> Self {
        self.shared_vocabularies.push(names(columns).collect());
        self
    }
    pub fn log1p<S: AsRef<str>>(mut self, columns: &[S]) -> Self {
        self.log1p.extend(names(columns));
        self
    }
    pub fn fill(mut self, column: &str, value: f64) -> Self {
        self.fill.push((column.to_string(), value));
        self
    }
    pub fn split(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// Preprocesses one table: split it by [`PreprocessConfig::split`], fit on the first
    /// split, write every split under `out_dir/<split name>/`.
    /// A run that fails leaves a previous output in `out_dir` as it was.
    pub fn run(&self, input: &Input, out_dir: impl AsRef<Path>) -> Result<PreprocessReport> {
        self.split.check()?;
        let fitted = self.fit_rows(input, Some(&self.split))?;
        let names = self.split.names();
        let out = out_dir.as_ref();
        let mut report = write_staged(out, |stage| {
            let splits = fitted.write_rows(input, &names, Some(&self.split), stage)?;
            fitted.report(stage, splits)
        })?;
        report.relocate(out);
        Ok(report)
    }

    /// [`PreprocessConfig::run`] on `input` (split, fitted on its first split), and also
    /// encodes each of `others` (e.g. `("test", test_file)`: a separate test file) with the
    /// same fitted vocabularies and statistics, into `out_dir/<name>/`. A name may not repeat
    /// a split's.
    pub fn run_with_files(
        &self,
        input: &Input,
        others: &[(&str, &Input)],
        out_dir: impl AsRef<Path>,
    ) -> Result<PreprocessReport> {
        self.split.check()?;
        let names = self.split.names();
        let mut seen: std::collections::HashSet<&str> = names.iter().copied().collect();
        if let Some((dup, _)) = others.iter().find(|(n, _)| !seen.insert(n)) {
            return Err(Error::invalid(format!(
                "output `{dup}` is named twice (the splits are {}); give each input its own name",
                names.join(", ")
            )));
        }
        let fitted = self.fit_rows(input, Some(&self.split))?;
        let out = out_dir.as_ref();
        let mut report = write_staged(out, |stage| {
            let mut splits = fitted.write_rows(input, &names, Some(&self.split), stage)?;
            for (name, other) in others {
                splits.extend(fitted.write_rows(other, &[name], None, stage)?);
            }
            fitted.report(stage, splits)
        })?;
        report.relocate(out);
        Ok(report)
    }

    /// Preprocesses tables that are already split: fit on `train` (all of it), then write
    /// `out_dir/train/` and `out_dir/<name>/` for each of `others` (e.g. `("valid", input)`).
    pub fn run_files(
        &self,
        train: &Input,
        others: &[(&str, &Input)],
        out_dir: impl AsRef<Path>,
    ) -> Result<PreprocessReport> {
        let out = out_dir.as_ref();
        let fitted = self.fit(train)?;
        let mut report = write_staged(out, |stage| {
            let mut splits = fitted.write_rows(train, &["train"], None, stage)?;
            for (name, input) in others {
                splits.extend(fitted.write_rows(input, &[name], None, stage)?);
            }
            fitted.report(stage, splits)
        })?;
        report.relocate(out);
        Ok(report)
    }

    /// Fits vocabularies and statistics on every row of `input`.
    pub fn fit(&self, input: &Input) -> Result<Fitted> {
        self.fit_rows(input, None)
    }

    fn fit_rows(&self, input: &Input, split: Option<&Split>) -> Result<Fitted> {
        if self.row_group_rows == 0 {
            return Err(Error::invalid("row_group_rows must be at least 1"));
        }
        let mut reader = input.open()?;
        let plan = Plan::new(self, reader.columns(), input.path())?;
        let mut plan = plan;
        // One counter per vocabulary: a shared one counts every column of its group.
        let counter_of: Vec<Option<usize>> = plan
            .columns
            .iter()
            .map(|c| {
                let owner = plan
                    .columns
                    .iter()
                    .position(|o| o.name == c.vocabulary_name());
                (c.role == Role::Categorical && c.hash_buckets.is_none())
                    .then_some(owner)
                    .flatten()
            })
            .collect();
        let mut vocab: Vec<Option<VocabCounter>> = plan
            .columns
            .iter()
            .enumerate()
            .map(|(i, _)| (counter_of[i] == Some(i)).then(VocabCounter::default))
            .collect();
        let mut longest = vec![0usize; plan.columns.len()];
        let mut stats: Vec<StatsCounter> = vec![StatsCounter::default(); plan.columns.len()];
        let mut assign = split.map(Split::assigner);
        let mut row = Row::default();
        while reader.next_row(&mut row)? {
            if assign.as_mut().is_some_and(|a| a.next_split() != 0) {
                continue; // not a training row: never seen by the fit
            }
            for (i, col) in plan.columns.iter().enumerate() {
                match col.role {
                    Role::Categorical => {
                        let cell = row.get(col.index);
                        not_a_list(&*reader, col, cell)?;
                        // A null list is empty.
                        let elements = match (col.list, cell) {
                            (Some(sep), Some(cell)) => list_elements(cell, sep),
                            (Some(_), None) => Vec::new(),
                            (None, value) => vec![value],
                        };
                        longest[i] = longest[i].max(elements.len());
                        // Hashed columns have no vocabulary to count.
                        if let Some(v) = counter_of[i].and_then(|c| vocab[c].as_mut()) {
                            elements.into_iter().for_each(|e| v.add(e));
                        }
                    }
                    Role::Continuous => {
                        let raw = number(&*reader, &row, col)?;
                        let x = match raw {
                            Some(x) => Some(log1p_or_err(&*reader, col, x)?),
                            None => None,
                        };
                        stats[i].add(x);
                        if !stats[i].is_finite() {
                            let (file, line) = reader.position();
                            return Err(Error::record(
                                file,
                                line,
                                Some(&col.name),
                                format!(
                                    "`{}` is too large to standardise with the other values (the \
                                     column's variance overflows a double); rescale the column \
                                     or give it `log1p`",
                                    raw.map_or("null".into(), crate::error::number)
                                ),
                            ));
                        }
                    }
                    Role::Weight | Role::Drop => {}
                }
            }
        }
        for (col, &n) in plan.columns.iter_mut().zip(&longest) {
            if col.list.is_some() && col.max_len == 0 {
                // The longest training list (at least 1: a schema list has a length), within
                // what a dataset holds.
                col.max_len = n.clamp(1, crate::data::MAX_LIST_WIDTH as usize);
            }
        }
        let mut vocabularies = Vec::new();
        let mut normalizers = Vec::new();
        for (i, col) in plan.columns.iter().enumerate() {
            // Each column of a shared vocabulary gets the same vocabulary under its own name,
            // with its group's first column's frequency threshold (one domain, one size).
            vocabularies.push(counter_of[i].and_then(|c| {
                let threshold = plan.columns[c].min_frequency;
                vocab[c]
                    .as_ref()
                    .map(|v| v.clone().finish(&col.name, threshold))
            }));
            normalizers
                .push((col.role == Role::Continuous).then(|| stats[i].finish(col.log1p, col.fill)));
        }
        let schema = plan.schema(&vocabularies)?;
        Ok(Fitted {
            plan,
            vocabularies,
            normalizers,
            schema,
            row_group_rows: self.row_group_rows,
        })
    }
}

/// A raw column's resolved role.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct PlannedColumn {
    name: String,
    /// Index in the input the plan was made from (re-resolved by name for other inputs).
    index: usize,
    role: Role,
    min_frequency: u64,
    log1p: bool,
    fill: Option<f64>,
    /// A list column: the separator of its text cells.
    #[serde(default)]
    list: Option<char>,
    /// A list column: the most values kept per row (set by the fit).
    #[serde(default)]
    max_len: usize,
    /// A hashed column: its number of buckets.
    #[serde(default)]
    hash_buckets: Option<u64>,
    /// The column whose vocabulary this one uses (itself unless shared).
    #[serde(default)]
    vocabulary_of: Option<String>,
}

impl PlannedColumn {
    /// The name of the vocabulary (and of the schema domain) this column's ids come from.
    fn vocabulary_name(&self) -> &str {
        self.vocabulary_of.as_deref().unwrap_or(&self.name)
    }
}

/// The resolved configuration: the feature columns in file order, the targets, what was
/// dropped and why.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Plan {
    /// Feature and weight columns (roles other than `Drop`), in file order.
    columns: Vec<PlannedColumn>,
    targets: Vec<Target>,
    dropped: Vec<String>,
    leak_dropped: Vec<String>,
    /// The seed of hashed columns.
    #[serde(default)]
    hash_seed: u64,
}

impl Plan {
    fn new(config: &PreprocessConfig, header: &[String], file: &Path) -> Result<Plan> {
        let position: HashMap<&str, usize> = header
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let known = |name: &str, what: &str| -> Result<usize> {
            position.get(name).copied().ok_or_else(|| {
                Error::file(
                    file,
                    format!(
                        "{what} `{name}` is not a column of this table; its columns are: {}",
                        header.join(", ")
                    ),
                )
            })
        };
        let mut roles: HashMap<&str, Role> = HashMap::new();
        for (name, role) in &config.roles {
            known(name, "the column given a role")?;
            if let Some(old) = roles.insert(name, *role) {
                if old != *role {
                    return Err(Error::invalid(format!(
                        "column `{name}` is given two roles ({old:?} and {role:?})"
                    )));
                }
            }
        }
        let optioned = config.min_frequency_for.iter().map(|(c, _)| c);
        let optioned = optioned
            .chain(config.fill.iter().map(|(c, _)| c))
            .chain(config.max_list_len.iter().map(|(c, _)| c))
            .chain(config.shared_vocabularies.iter().flatten());
        for name in optioned {
            known(name, "the column given an option")?;
        }
        for (name, n) in &config.max_list_len {
            if !config.lists.iter().any(|(c, _)| c == name) {
                return Err(Error::invalid(format!(
                    "max_list_len is given for `{name}`, which is not a list column (declare it \
                     with categorical_list)"
                )));
            }
            if *n == 0 || *n as u64 > crate::data::MAX_LIST_WIDTH {
                return Err(Error::invalid(format!(
                    "max_list_len of `{name}` must be between 1 and {}",
                    crate::data::MAX_LIST_WIDTH
                )));
            }
        }
        for (name, n) in &config.hash_buckets {
            if *n == 0 || *n >= u64::from(u32::MAX - 1) {
                return Err(Error::invalid(format!(
                    "hash_buckets of `{name}` must be between 1 and {} (ids are 32-bit)",
                    u32::MAX - 2
                )));
            }
        }
        for group in &config.shared_vocabularies {
            for name in group {
                if roles.get(name.as_str()) != Some(&Role::Categorical) {
                    return Err(Error::invalid(format!(
                        "`{name}` is in a shared vocabulary but is not a categorical column; \
                         give it the categorical (or categorical_list) role"
                    )));
                }
                if config.hash_buckets.iter().any(|(c, _)| c == name) {
                    return Err(Error::invalid(format!(
                        "`{name}` is hashed and cannot also share a vocabulary"
                    )));
                }
                if config
                    .shared_vocabularies
                    .iter()
                    .flatten()
                    .filter(|c| *c == name)
                    .count()
                    > 1
                {
                    return Err(Error::invalid(format!(
                        "`{name}` is in two shared vocabularies; a column has one vocabulary"
                    )));
                }
            }
        }
        let mut target_names = std::collections::HashSet::new();
        let mut sources = std::collections::HashSet::new();
        for t in &config.targets {
            known(&t.source, &format!("the source of target `{}`", t.name))?;
            if !target_names.insert(t.name.as_str()) {
                return Err(Error::invalid(format!(
                    "target `{}` is defined twice",
                    t.name
                )));
            }
            sources.insert(t.source.as_str());
        }
        if config.targets.is_empty() {
            return Err(Error::invalid(
                "no targets: add at least one with PreprocessConfig::target (Target::binary, \
                 Target::equals, Target::above or Target::regression)",
            ));
        }
        let mut plan = Plan {
            columns: Vec::new(),
            targets: config.targets.clone(),
            dropped: Vec::new(),
            leak_dropped: Vec::new(),
            hash_seed: config.hash_seed,
        };
        let mut unassigned = Vec::new();
        for (index, name) in header.iter().enumerate() {
            let role = roles.get(name.as_str()).copied().or(config.others);
            if sources.contains(name.as_str()) {
                // A target's source is never an input: as the target itself (`click`) it is
                // the label; as the source of a derived target it would leak the label.
                let derived = config
                    .targets
                    .iter()
                    .any(|t| t.source == *name && t.is_derived());
                if derived && matches!(role, Some(Role::Categorical | Role::Continuous)) {
                    plan.leak_dropped.push(name.clone());
                }
                continue;
            }
            let Some(role) = role else {
                unassigned.push(name.clone());
                continue;
            };
            if role == Role::Drop {
                plan.dropped.push(name.clone());
                continue;
            }
            if target_names.contains(name.as_str()) {
                return Err(Error::invalid(format!(
                    "target `{name}` has the name of an input column; rename the target or \
                     drop the column"
                )));
            }
            let min_frequency =
                last_for(&config.min_frequency_for, name).unwrap_or(config.min_frequency);
            plan.columns.push(PlannedColumn {
                name: name.clone(),
                index,
                role,
                min_frequency,
                log1p: config.log1p.iter().any(|c| c == name),
                fill: last_for(&config.fill, name),
                list: last_for(&config.lists, name),
                max_len: last_for(&config.max_list_len, name).unwrap_or(0),
                hash_buckets: last_for(&config.hash_buckets, name),
                vocabulary_of: config
                    .shared_vocabularies
                    .iter()
                    .find(|g| g.contains(name))
                    .and_then(|g| g.first().cloned()),
            });
        }
        if !unassigned.is_empty() {
            return Err(Error::file(
                file,
                format!(
                    "columns without a role: {}; give each a role (categorical, continuous, \
                     weight, drop) or set one for all others with PreprocessConfig::others",
                    unassigned.join(", ")
                ),
            ));
        }
        for name in &config.log1p {
            let col = plan.columns.iter().find(|c| c.name == *name);
            if col.is_none_or(|c| c.role != Role::Continuous) {
                return Err(Error::invalid(format!(
                    "log1p is asked for `{name}`, which is not a continuous input column"
                )));
            }
        }
        Ok(plan)
    }

    /// The output schema: features and weights in file order, then targets.
    fn schema(&self, vocabularies: &[Option<Vocabulary>]) -> Result<Schema> {
        let tags = |c: ColumnSchema, tags: &[&str]| {
            c.with_tags(tags.iter().copied())
                .map_err(|e| Error::invalid(format!("internal tag error: {e}")))
        };
        let mut columns = Vec::new();
        for (col, vocab) in self.columns.iter().zip(vocabularies) {
            let c = ColumnSchema::new(&col.name);
            let c = if col.list.is_some() {
                c.with_list_len(0, Some(col.max_len as u64))
            } else {
                c
            };
            columns.push(match (col.role, vocab, col.hash_buckets) {
                (Role::Categorical, _, Some(n)) => tags(c, &["categorical"])?
                    .with_dtype(DType::Int32)
                    .with_int_domain(0, n as i64, Some(&col.name))
                    .with_property("num_buckets", json!(n as f64)),
                (Role::Categorical, Some(v), None) => tags(c, &["categorical"])?
                    .with_dtype(DType::Int32)
                    .with_int_domain(0, i64::from(v.max_id()), Some(col.vocabulary_name()))
                    .with_property("start_index", json!(1.0))
                    .with_property("freq_threshold", json!(col.min_frequency as f64))
                    .with_property(
                        "cat_path",
                        json!(format!(".//categories/{}", vocab_file_name(&col.name))),
                    ),
                (Role::Continuous, ..) => tags(c, &["continuous"])?.with_dtype(DType::Float32),
                _ => c.with_dtype(DType::Float32),
            });
        }
        for t in &self.targets {
            let c = ColumnSchema::new(&t.name);
            columns.push(if t.is_binary() {
                tags(c, &["binary_classification", "target"])?
                    .with_dtype(DType::Int8)
                    .with_int_domain(0, 1, Some(&t.name))
            } else {
                tags(c, &["regression", "target"])?.with_dtype(DType::Float32)
            });
        }
        Schema::new(columns)
    }
}

/// The value given last for column `name` in a per-column option list (a later call overrides
/// an earlier one).
fn last_for<T: Copy>(options: &[(String, T)], name: &str) -> Option<T> {
    options
        .iter()
        .rev()
        .find(|(c, _)| c == name)
        .map(|(_, v)| *v)
}

fn vocab_file_name(column: &str) -> String {
    // Column names become file names: keep them readable, but never let one leave the folder.
    let safe: String = column
        .chars()
        .map(|c| if matches!(c, '/' | '\\') { '_' } else { c })
        .collect();
    format!("unique.{safe}.parquet")
}

/// The value of a numeric column (`None`: null), or an error naming file, line and column.
fn number(reader: &dyn RowReader, row: &Row, col: &PlannedColumn) -> Result<Option<f64>> {
    let Some(v) = row.get(col.index) else {
        return Ok(None);
    };
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        _ => {
            let (file, line) = reader.position();
            Err(Error::record(
                file,
                line,
                Some(&col.name),
                format!(
                    "`{v}` is not a finite number, but the column is {}; add the marker to \
                     CsvOptions::null_markers if it means missing, or make the column categorical",
                    match col.role {
                        Role::Weight => "a weight",
                        _ => "continuous",
                    }
                ),
            ))
        }
    }
}

/// A Parquet list cell in a column not declared a list column is an error (it would otherwise
/// be encoded as one value per distinct list).
fn not_a_list(reader: &dyn RowReader, col: &PlannedColumn, cell: Option<&str>) -> Result<()> {
    if col.list.is_none() && cell.is_some_and(|c| c.starts_with(super::rows::LIST_MARK)) {
        let (file, line) = reader.position();
        return Err(Error::record(
            file,
            line,
            Some(&col.name),
            format!(
                "`{}` holds lists; declare it with PreprocessConfig::categorical_list",
                col.name
            ),
        ));
    }
    Ok(())
}

fn log1p_or_err(reader: &dyn RowReader, col: &PlannedColumn, x: f64) -> Result<f64> {
    Normalizer::pre(col.log1p, x).ok_or_else(|| {
        let (file, line) = reader.position();
        Error::record(
            file,
            line,
            Some(&col.name),
            format!("log1p needs values above -1, found {x}; do not log1p this column"),
        )
    })
}

/// Vocabularies and statistics fitted on the training rows, and the output schema.
#[derive(Debug, Clone)]
pub struct Fitted {
    plan: Plan,
    vocabularies: Vec<Option<Vocabulary>>,
    normalizers: Vec<Option<Normalizer>>,
    schema: Schema,
    row_group_rows: usize,
}

impl Fitted {
    /// The schema every output split carries.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn vocabulary(&self, column: &str) -> Option<&Vocabulary> {
        let i = self.plan.columns.iter().position(|c| c.name == column)?;
        self.vocabularies[i].as_ref()
    }

    pub fn normalizer(&self, column: &str) -> Option<&Normalizer> {
        let i = self.plan.columns.iter().position(|c| c.name == column)?;
        self.normalizers[i].as_ref()
    }

    /// The model-input columns new data must carry (categorical and continuous, in file
    /// order) with their roles; targets and weights are not needed to score.
    pub fn input_columns(&self) -> Vec<(&str, Role)> {
        self.plan
            .columns
            .iter()
            .filter(|c| matches!(c.role, Role::Categorical | Role::Continuous))
            .map(|c| (c.name.as_str(), c.role))
            .collect()
    }

    /// Every raw column the preprocessing was fitted on, whatever became of it (inputs,
    /// weights, target sources, dropped columns): new data may carry any of them, and a
    /// column outside this list is unknown to the model (a typo, another table).
    pub fn raw_columns(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.plan.columns.iter().map(|c| c.name.as_str()).collect();
        names.extend(self.plan.targets.iter().map(|t| t.source.as_str()));
        names.extend(self.plan.dropped.iter().map(String::as_str));
        names.extend(self.plan.leak_dropped.iter().map(String::as_str));
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Source columns of derived targets that were dropped from the inputs.
    pub fn leak_dropped(&self) -> &[String] {
        &self.plan.leak_dropped
    }

    /// Whether input `column` became a list column (of ids).
    pub fn is_list(&self, column: &str) -> bool {
        self.plan
            .columns
            .iter()
            .any(|c| c.name == column && c.list.is_some())
    }

    /// The number of buckets of hashed column `column`.
    pub fn hash_buckets(&self, column: &str) -> Option<u64> {
        let c = self.plan.columns.iter().find(|c| c.name == column)?;
        c.hash_buckets
    }

    /// The id of `value` in categorical column `i`: its vocabulary's, or its hash bucket.
    fn encode_id(&self, i: usize, value: Option<&str>) -> u32 {
        let col = &self.plan.columns[i];
        match (col.hash_buckets, value) {
            (Some(_), None) => 0,
            (Some(n), Some(v)) => hash_id(v, n, self.plan.hash_seed),
            (None, v) => self.vocabularies[i].as_ref().map_or(0, |voc| voc.encode(v)),
        }
    }

    /// Encodes categorical cell `cell` of column `i` into `ids` (one id, or a list's first
    /// `max_len` ids) and counts what the reports show.
    fn encode_cell(&self, i: usize, cell: Option<&str>, ids: &mut Vec<u32>) -> CellCounts {
        let col = &self.plan.columns[i];
        let mut counts = CellCounts::default();
        let mut one = |value: Option<&str>, ids: &mut Vec<u32>| {
            let id = self.encode_id(i, value);
            match value {
                None => counts.nulls += 1,
                Some(_) if id == 0 => counts.oov += 1,
                Some(_) => {}
            }
            ids.push(id);
        };
        match (col.list, cell) {
            (Some(sep), Some(cell)) => {
                let elements = list_elements(cell, sep);
                let truncated = elements.len() > col.max_len;
                for e in elements.into_iter().take(col.max_len) {
                    one(e, ids);
                }
                counts.truncated = truncated;
            }
            (Some(_), None) => counts.nulls += 1,
            (None, value) => one(value, ids),
        }
        counts
    }

    /// Writes `dir/categories/unique.<column>.parquet` and `dir/stats.json`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let cats = dir.join("categories");
        std::fs::create_dir_all(&cats).map_err(|e| Error::io(&cats, e))?;
        for v in self.vocabularies.iter().flatten() {
            v.write_parquet(&cats.join(vocab_file_name(&v.column)))?;
        }
        let stats: BTreeMap<&str, &Normalizer> = self
            .plan
            .columns
            .iter()
            .zip(&self.normalizers)
            .filter_map(|(c, n)| Some((c.name.as_str(), n.as_ref()?)))
            .collect();
        let path = dir.join("stats.json");
        let text = serde_json::to_string_pretty(&json!({ "normalize": stats }))
            .map_err(|e| Error::invalid(format!("cannot serialise statistics: {e}")))?;
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        // Everything `Fitted::load` needs besides the vocabularies.
        let path = dir.join(FITTED_FILE);
        let text = serde_json::to_string_pretty(&json!({
            "format": FITTED_FORMAT,
            "plan": self.plan,
            "normalizers": self.normalizers,
            "row_group_rows": self.row_group_rows,
            "schema": serde_json::from_str::<serde_json::Value>(&crate::schema::json::to_string(&self.schema))
                .map_err(|e| Error::invalid(format!("cannot serialise the schema: {e}")))?,
        }))
        .map_err(|e| Error::invalid(format!("cannot serialise the preprocessing: {e}")))?;
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    }

    /// Reads back what [`Fitted::save`] wrote (every `run`/`run_files` output directory
    /// holds it): the plan, the vocabularies, the statistics and the output schema, so that
    /// new raw data is encoded exactly as the training data was, without fitting again.
    pub fn load(dir: impl AsRef<Path>) -> Result<Fitted> {
        let dir = dir.as_ref();
        let path = dir.join(FITTED_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let bad = |what: String| Error::file(&path, what);
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let format = value.get("format").and_then(|f| f.as_u64());
        if format != Some(FITTED_FORMAT) {
            return Err(bad(format!(
                "format {format:?}, but this version reads format {FITTED_FORMAT}; preprocess \
                 the training data again with this version"
            )));
        }
        let field = |name: &str| {
            value
                .get(name)
                .cloned()
                .ok_or_else(|| bad(format!("`{name}` is missing")))
        };
        let plan: Plan =
            serde_json::from_value(field("plan")?).map_err(|e| bad(format!("`plan`: {e}")))?;
        let normalizers: Vec<Option<Normalizer>> = serde_json::from_value(field("normalizers")?)
            .map_err(|e| bad(format!("`normalizers`: {e}")))?;
        let row_group_rows: usize = serde_json::from_value(field("row_group_rows")?)
            .map_err(|e| bad(format!("`row_group_rows`: {e}")))?;
        let schema = crate::schema::json::from_str(
            &field("schema")?.to_string(),
            &path.display().to_string(),
        )?;
        if normalizers.len() != plan.columns.len() {
            return Err(bad(
                "`normalizers` and the plan's columns differ in number".into()
            ));
        }
        let vocabularies = plan
            .columns
            .iter()
            .map(|c| {
                (c.role == Role::Categorical && c.hash_buckets.is_none())
                    .then(|| {
                        Vocabulary::read_parquet(
                            &dir.join("categories").join(vocab_file_name(&c.name)),
                            &c.name,
                        )
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Fitted {
            plan,
            vocabularies,
            normalizers,
            schema,
            row_group_rows,
        })
    }

    /// An encoder of raw rows whose columns are `header` (any order, extra columns ignored)
    /// into model inputs: categorical and continuous columns only, no targets or weights
    /// needed. For scoring new data.
    pub fn inference_encoder(&self, header: &[String]) -> Result<InferenceEncoder<'_>> {
        let mut missing = Vec::new();
        let mut columns = Vec::new();
        for (i, c) in self.plan.columns.iter().enumerate() {
            if !matches!(c.role, Role::Categorical | Role::Continuous) {
                continue;
            }
            match header.iter().position(|h| h == &c.name) {
                Some(index) => columns.push((i, index)),
                None => missing.push(c.name.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(Error::invalid(format!(
                "the data lacks input column(s) {} that the preprocessing was fitted with; its \
                 columns are: {}",
                missing.join(", "),
                header.join(", ")
            )));
        }
        let names: Vec<&str> = columns
            .iter()
            .map(|&(i, _)| self.plan.columns[i].name.as_str())
            .collect();
        let schema = self.schema.select_by_name(&names);
        let n = columns.len();
        Ok(InferenceEncoder {
            fitted: self,
            columns,
            schema,
            ids: vec![Vec::new(); n],
            floats: vec![Vec::new(); n],
            lists: vec![Vec::new(); n],
            report: EncodeReport::default(),
        })
    }

    /// Encodes the model inputs of every row of `input` into `out_dir` (Parquet +
    /// `schema.json` of the input columns only): for new data without labels, which
    /// [`Fitted::transform`] would refuse for lacking its target columns. Unseen categories
    /// take the out-of-vocabulary id 0 and are counted in the report. The encoded rows are
    /// held in memory (4 bytes per value) before writing; a failed run leaves a previous
    /// output in `out_dir` as it was. To score a file larger than memory, use
    /// `Predictor::score_file`, which streams.
    pub fn transform_inputs(&self, input: &Input, out_dir: &Path) -> Result<EncodeReport> {
        let mut reader = input.open()?;
        let header = reader.columns().to_vec();
        let mut encoder = self
            .inference_encoder(&header)
            .map_err(|e| Error::file(input.path(), e.to_string()))?;
        let mut row = Row::default();
        while reader.next_row(&mut row)? {
            let (file, line) = reader.position();
            encoder.push(|i| row.get(i), || format!("{}:{line}", file.display()))?;
        }
        let report = encoder.report().clone();
        let data = encoder.take_dataset()?;
        write_staged(out_dir, |stage| {
            data.write_parquet(
                stage,
                &crate::data::WriteOptions {
                    row_group_rows: self.row_group_rows,
                    ..Default::default()
                },
            )
        })?;
        Ok(report)
    }

    /// Encodes every row of `input` into `out_dir` (Parquet + `schema.json`).
    /// A run that fails leaves a previous output in `out_dir` as it was.
    pub fn transform(&self, input: &Input, out_dir: &Path) -> Result<SplitReport> {
        let mut reports = write_staged(out_dir, |stage| {
            self.write_rows_to(input, &[stage.to_path_buf()], None)
        })?;
        let mut report = reports.remove(0);
        report.dir = out_dir.to_path_buf();
        report.name = out_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(report)
    }

    fn write_rows(
        &self,
        input: &Input,
        names: &[&str],
        split: Option<&Split>,
        out: &Path,
    ) -> Result<Vec<SplitReport>> {
        let dirs: Vec<PathBuf> = names.iter().map(|n| out.join(n)).collect();
        let mut reports = self.write_rows_to(input, &dirs, split)?;
        for (r, n) in reports.iter_mut().zip(names) {
            r.name = n.to_string();
        }
        Ok(reports)
    }

    /// The second pass: every row encoded and appended to the writer of its split.
    fn write_rows_to(
        &self,
        input: &Input,
        dirs: &[PathBuf],
        split: Option<&Split>,
    ) -> Result<Vec<SplitReport>> {
        let mut reader = input.open()?;
        // Another file (valid/test) may order its columns differently: resolve by name.
        let index: Vec<usize> = {
            let header = reader.columns();
            let find = |name: &str| {
                header.iter().position(|c| c == name).ok_or_else(|| {
                    Error::file(
                        input.path(),
                        format!(
                            "column `{name}`, which the preprocessing was fitted with, is \
                             missing; its columns are: {}",
                            header.join(", ")
                        ),
                    )
                })
            };
            let mut index = Vec::new();
            for c in &self.plan.columns {
                index.push(find(&c.name)?);
            }
            for t in &self.plan.targets {
                index.push(find(&t.source)?);
            }
            index
        };
        let columns: Vec<PlannedColumn> = self
            .plan
            .columns
            .iter()
            .zip(&index)
            .map(|(c, &i)| PlannedColumn {
                index: i,
                ..c.clone()
            })
            .collect();
        let target_index = &index[columns.len()..];
        let mut writers = dirs
            .iter()
            .map(|d| SplitWriter::create(d, &self.schema, self.row_group_rows))
            .collect::<Result<Vec<_>>>()?;
        let mut assign = split.map(Split::assigner);
        let mut row = Row::default();
        while reader.next_row(&mut row)? {
            let s = assign.as_mut().map_or(0, |a| a.next_split());
            let w = &mut writers[s];
            for (i, col) in columns.iter().enumerate() {
                match col.role {
                    Role::Categorical if col.list.is_some() => {
                        let mut list = Vec::new();
                        let counts = self.encode_cell(i, row.get(col.index), &mut list);
                        let r = &mut w.report;
                        counts.record(&col.name, &mut r.nulls, &mut r.oov, &mut r.truncated_lists);
                        w.lists[i].push(list);
                    }
                    Role::Categorical => {
                        not_a_list(&*reader, col, row.get(col.index))?;
                        let counts = self.encode_cell(i, row.get(col.index), &mut w.ids[i]);
                        let r = &mut w.report;
                        counts.record(&col.name, &mut r.nulls, &mut r.oov, &mut r.truncated_lists);
                    }
                    Role::Continuous => {
                        let raw = number(&*reader, &row, col)?;
                        if raw.is_none() {
                            *w.report.nulls.entry(col.name.clone()).or_default() += 1;
                        }
                        let n = self.normalizers[i].as_ref();
                        let x = match n.and_then(|n| n.apply(raw)) {
                            Some(x) => x,
                            // Only `log1p` of a value at or below -1 (read or filled) fails.
                            None => {
                                log1p_or_err(&*reader, col, raw.or(col.fill).unwrap_or(f64::NAN))?
                                    as f32
                            }
                        };
                        if !x.is_finite() {
                            let (file, line) = reader.position();
                            return Err(Error::record(
                                file,
                                line,
                                Some(&col.name),
                                format!(
                                    "the standardised value of `{}` is beyond the float32 range \
                                     (±3.4e38) the data is written in; rescale the column or give \
                                     it `log1p`",
                                    raw.map_or("null".into(), crate::error::number)
                                ),
                            ));
                        }
                        w.floats[i].push(x);
                    }
                    Role::Weight => match number(&*reader, &row, col)? {
                        Some(x) if (x as f32).is_finite() => w.floats[i].push(x as f32),
                        Some(x) => {
                            let (file, line) = reader.position();
                            return Err(Error::record(
                                file,
                                line,
                                Some(&col.name),
                                format!(
                                    "the weight {} is beyond the float32 range (±3.4e38)",
                                    crate::error::number(x)
                                ),
                            ));
                        }
                        None => {
                            let (file, line) = reader.position();
                            return Err(Error::record(
                                file,
                                line,
                                Some(&col.name),
                                "a weight cannot be null; fix the data or drop the column",
                            ));
                        }
                    },
                    Role::Drop => {}
                }
            }
            for (t, (target, &ti)) in self.plan.targets.iter().zip(target_index).enumerate() {
                let label = target.label(row.get(ti)).map_err(|m| {
                    let (file, line) = reader.position();
                    Error::record(file, line, Some(&target.source), m)
                })?;
                *w.report.target_sums.entry(target.name.clone()).or_default() += f64::from(label);
                w.floats[columns.len() + t].push(label);
            }
            w.report.rows += 1;
            if w.buffered() >= self.row_group_rows {
                w.flush(&self.schema)?;
            }
        }
        writers
            .into_iter()
            .map(|w| w.finish(&self.schema))
            .collect()
    }

    fn report(&self, out: &Path, splits: Vec<SplitReport>) -> Result<PreprocessReport> {
        self.save(out)?;
        Ok(PreprocessReport {
            out_dir: out.to_path_buf(),
            schema: self.schema.clone(),
            splits,
            vocab_sizes: self
                .vocabularies
                .iter()
                .flatten()
                .map(|v| (v.column.clone(), v.len()))
                .collect(),
            leak_dropped: self.plan.leak_dropped.clone(),
            dropped: self.plan.dropped.clone(),
        })
    }
}

/// The file `Fitted::save` writes beside `stats.json` and the vocabularies.
const FITTED_FILE: &str = "preprocessing.json";
/// Its format version (bumped when the plan's serialised form changes).
const FITTED_FORMAT: u64 = 1;

/// What an [`InferenceEncoder`] saw: rows, and per column the nulls and out-of-vocabulary
/// values (unseen categories, encoded as id 0 like the rare ones in training).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncodeReport {
    pub rows: u64,
    pub nulls: BTreeMap<String, u64>,
    pub oov: BTreeMap<String, u64>,
    /// Per list column: rows longer than its `max_len`, whose first `max_len` values were kept.
    pub truncated_lists: BTreeMap<String, u64>,
}

impl EncodeReport {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &EncodeReport) {
        self.rows += other.rows;
        for (mine, theirs) in [
            (&mut self.nulls, &other.nulls),
            (&mut self.oov, &other.oov),
            (&mut self.truncated_lists, &other.truncated_lists),
        ] {
            for (column, n) in theirs {
                *mine.entry(column.clone()).or_default() += n;
            }
        }
    }

    /// Out-of-vocabulary values over every column.
    pub fn total_oov(&self) -> u64 {
        self.oov.values().sum()
    }
}

/// `1 + xxh64(value, seed) mod buckets`: a hashed column's id of `value` (0 is the null id).
pub fn hash_id(value: &str, buckets: u64, seed: u64) -> u32 {
    use std::hash::Hasher;
    let mut h = twox_hash::XxHash64::with_seed(seed);
    h.write(value.as_bytes());
    (1 + h.finish() % buckets.max(1)) as u32
}

/// What encoding one categorical cell counted.
#[derive(Debug, Default)]
struct CellCounts {
    /// Null cells or elements.
    nulls: u64,
    /// Values outside the vocabulary (id 0).
    oov: u64,
    /// A list longer than the column's `max_len`, cut.
    truncated: bool,
}

impl CellCounts {
    /// Adds these counts to a report's maps for `column`.
    fn record(
        &self,
        column: &str,
        nulls: &mut BTreeMap<String, u64>,
        oov: &mut BTreeMap<String, u64>,
        truncated: &mut BTreeMap<String, u64>,
    ) {
        for (map, n) in [
            (nulls, self.nulls),
            (oov, self.oov),
            (truncated, u64::from(self.truncated)),
        ] {
            if n > 0 {
                *map.entry(column.to_string()).or_default() += n;
            }
        }
    }
}

/// Encodes raw rows into model inputs with a [`Fitted`] preprocessing (see
/// [`Fitted::inference_encoder`]): categorical values through their vocabulary (unseen or
/// null → 0), continuous values standardised with the training statistics (null → the fill).
pub struct InferenceEncoder<'a> {
    fitted: &'a Fitted,
    /// `(plan column, index in the header)` of every input column.
    columns: Vec<(usize, usize)>,
    schema: Schema,
    ids: Vec<Vec<u32>>,
    floats: Vec<Vec<f32>>,
    lists: Vec<Vec<Vec<u32>>>,
    report: EncodeReport,
}

impl InferenceEncoder<'_> {
    /// Encodes one row, `value(i)` giving the text of header column `i` (`None`: null).
    /// `at` names the row in errors (file and line, or request row).
    pub fn push<'v>(
        &mut self,
        value: impl Fn(usize) -> Option<&'v str>,
        at: impl Fn() -> String,
    ) -> Result<()> {
        for (k, &(i, index)) in self.columns.iter().enumerate() {
            let col = &self.fitted.plan.columns[i];
            let raw = value(index);
            let r = &mut self.report;
            if col.list.is_none() && raw.is_some_and(|c| c.starts_with(super::rows::LIST_MARK)) {
                return Err(Error::invalid(format!(
                    "{}: column `{}` holds a list, but the preprocessing made it a scalar column",
                    at(),
                    col.name
                )));
            }
            match col.role {
                Role::Categorical if col.list.is_some() => {
                    let mut list = Vec::new();
                    let counts = self.fitted.encode_cell(i, raw, &mut list);
                    counts.record(&col.name, &mut r.nulls, &mut r.oov, &mut r.truncated_lists);
                    self.lists[k].push(list);
                }
                Role::Categorical => {
                    let counts = self.fitted.encode_cell(i, raw, &mut self.ids[k]);
                    counts.record(&col.name, &mut r.nulls, &mut r.oov, &mut r.truncated_lists);
                }
                _ => {
                    if raw.is_none() {
                        *r.nulls.entry(col.name.clone()).or_default() += 1;
                    }
                    let x = match raw {
                        None => None,
                        Some(v) => match v.trim().parse::<f64>() {
                            Ok(x) if x.is_finite() => Some(x),
                            _ => {
                                return Err(Error::invalid(format!(
                                    "{}: column `{}`: `{v}` is not a finite number, but the \
                                     column is continuous",
                                    at(),
                                    col.name
                                )))
                            }
                        },
                    };
                    let n = self.fitted.normalizers[i].as_ref();
                    match n.and_then(|n| n.apply(x)).filter(|x| x.is_finite()) {
                        Some(x) => self.floats[k].push(x),
                        None => {
                            return Err(Error::invalid(format!(
                                "{}: column `{}`: the value {} cannot be standardised (log1p \
                                 needs values above -1; the result must fit a float32)",
                                at(),
                                col.name,
                                x.map_or("null".into(), crate::error::number)
                            )))
                        }
                    }
                }
            }
        }
        self.report.rows += 1;
        Ok(())
    }

    /// The rows encoded since the last call, as a dataset of the model's input columns.
    pub fn take_dataset(&mut self) -> Result<Dataset> {
        let mut values = Vec::with_capacity(self.columns.len());
        for (k, &(i, _)) in self.columns.iter().enumerate() {
            let col = &self.fitted.plan.columns[i];
            let v = match col.role {
                Role::Categorical if col.list.is_some() => {
                    ColumnValues::IdLists(std::mem::take(&mut self.lists[k]))
                }
                Role::Categorical => ColumnValues::Ids(std::mem::take(&mut self.ids[k])),
                _ => ColumnValues::Floats(std::mem::take(&mut self.floats[k])),
            };
            values.push((col.name.clone(), v));
        }
        Dataset::from_columns(self.schema.clone(), values)
    }

    /// Counts since the encoder was made.
    pub fn report(&self) -> &EncodeReport {
        &self.report
    }
}

/// Buffers one row group of a split and writes it to `part_0.parquet`.
struct SplitWriter {
    writer: ArrowWriter<File>,
    path: PathBuf,
    /// One buffer per output column (features then targets); only the kind in use is filled.
    ids: Vec<Vec<u32>>,
    floats: Vec<Vec<f32>>,
    lists: Vec<Vec<Vec<u32>>>,
    report: SplitReport,
}

impl SplitWriter {
    fn create(dir: &Path, schema: &Schema, row_group_rows: usize) -> Result<SplitWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join("part_0.parquet");
        let n = schema.len();
        let mut w = SplitWriter {
            writer: {
                let empty = batch_of(
                    schema,
                    &mut vec![Vec::new(); n],
                    &mut vec![Vec::new(); n],
                    &mut vec![Vec::new(); n],
                )?;
                let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(row_group_rows))
                    .build();
                ArrowWriter::try_new(file, empty.schema(), Some(props))
                    .map_err(|e| Error::file(&path, format!("cannot write Parquet: {e}")))?
            },
            path,
            ids: vec![Vec::new(); n],
            floats: vec![Vec::new(); n],
            lists: vec![Vec::new(); n],
            report: SplitReport {
                dir: dir.to_path_buf(),
                ..SplitReport::default()
            },
        };
        w.ids
            .iter_mut()
            .for_each(|v| v.reserve(row_group_rows.min(1 << 16)));
        Ok(w)
    }

    fn buffered(&self) -> usize {
        let ids = self.ids.iter().map(Vec::len);
        ids.chain(self.floats.iter().map(Vec::len))
            .chain(self.lists.iter().map(Vec::len))
            .max()
            .unwrap_or(0)
    }

    fn flush(&mut self, schema: &Schema) -> Result<()> {
        if self.buffered() == 0 {
            return Ok(());
        }
        let batch = batch_of(schema, &mut self.ids, &mut self.floats, &mut self.lists)?;
        self.writer
            .write(&batch)
            .and_then(|_| self.writer.flush())
            .map_err(|e| Error::file(&self.path, format!("cannot write Parquet: {e}")))
    }

    fn finish(mut self, schema: &Schema) -> Result<SplitReport> {
        self.flush(schema)?;
        self.writer
            .close()
            .map_err(|e| Error::file(&self.path, format!("cannot write Parquet: {e}")))?;
        schema.write_json(self.report.dir.join("schema.json"))?;
        Ok(self.report)
    }
}

/// The buffered values as an Arrow batch in the schema's dtypes (emptying the buffers).
fn batch_of(
    schema: &Schema,
    ids: &mut [Vec<u32>],
    floats: &mut [Vec<f32>],
    lists: &mut [Vec<Vec<u32>>],
) -> Result<arrow_array::RecordBatch> {
    let columns = schema
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let values = if c.is_list() {
                ColumnValues::IdLists(std::mem::take(&mut lists[i]))
            } else if c.tags.contains(&crate::schema::Tag::Categorical) {
                ColumnValues::Ids(std::mem::take(&mut ids[i]))
            } else {
                ColumnValues::Floats(std::mem::take(&mut floats[i]))
            };
            (c.name.clone(), values)
        })
        .collect();
    // The dataset's writer knows how to narrow values to each schema dtype.
    let data = Dataset::from_columns(schema.clone(), columns)?;
    data.record_batch(0..data.num_rows())
}

/// What one output split holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SplitReport {
    pub name: String,
    pub dir: PathBuf,
    pub rows: u64,
    /// Per categorical column: non-null values not in the vocabulary (mapped to 0).
    pub oov: BTreeMap<String, u64>,
    /// Per column: nulls (categorical: mapped to 0; continuous: filled; a null list is
    /// empty).
    pub nulls: BTreeMap<String, u64>,
    /// Per list column: rows longer than its `max_len`, whose first `max_len` values were kept.
    pub truncated_lists: BTreeMap<String, u64>,
    /// Per target: the sum of its labels (the positives of a binary target).
    pub target_sums: BTreeMap<String, f64>,
}

/// What a preprocessing run wrote.
#[derive(Debug, Clone)]
pub struct PreprocessReport {
    pub out_dir: PathBuf,
    pub schema: Schema,
    pub splits: Vec<SplitReport>,
    /// Per categorical column: the number of values in its vocabulary (ids 1..=n).
    pub vocab_sizes: Vec<(String, usize)>,
    /// Source columns of derived targets, dropped from the inputs so they cannot leak them.
    pub leak_dropped: Vec<String>,
    /// Columns dropped by role.
    pub dropped: Vec<String>,
}

impl PreprocessReport {
    /// Points the report at `out` (where the staged output was moved).
    fn relocate(&mut self, out: &Path) {
        let stage = self.out_dir.clone();
        for split in &mut self.splits {
            if let Ok(rest) = split.dir.strip_prefix(&stage) {
                split.dir = out.join(rest);
            }
        }
        self.out_dir = out.to_path_buf();
    }

    pub fn split(&self, name: &str) -> Option<&SplitReport> {
        self.splits.iter().find(|s| s.name == name)
    }
}

impl fmt::Display for PreprocessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "preprocessed into {}", self.out_dir.display())?;
        for s in &self.splits {
            let targets: Vec<String> = s
                .target_sums
                .iter()
                .map(|(t, sum)| format!("{t} mean {:.4}", sum / s.rows.max(1) as f64))
                .collect();
            let oov: u64 = s.oov.values().sum();
            writeln!(
                f,
                "  {:<6} {:>9} rows  {}  out-of-vocabulary values: {oov}",
                s.name,
                s.rows,
                targets.join(", ")
            )?;
            for (column, n) in &s.truncated_lists {
                writeln!(f, "         {column}: {n} lists cut to their first values")?;
            }
        }
        let sizes: Vec<String> = self
            .vocab_sizes
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        writeln!(f, "  vocabularies: {}", sizes.join(", "))?;
        if !self.leak_dropped.is_empty() {
            writeln!(
                f,
                "  dropped from the inputs (they derive a target): {}",
                self.leak_dropped.join(", ")
            )?;
        }
        if !self.dropped.is_empty() {
            writeln!(f, "  dropped: {}", self.dropped.join(", "))?;
        }
        Ok(())
    }
}
