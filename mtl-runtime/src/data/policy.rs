//! What to do with invalid values, and the report of what was done.
//!
//! The defaults never change data silently: an id outside its domain, a null id, a null or
//! non-finite target or feature, or a binary target outside `[0, 1]` is an error that names the
//! file, column, number of offending rows and the first one. Opting in to
//! [`IdPolicy::MapToOov`] or [`NullPolicy::DropRows`] repairs instead, and every repair is
//! counted in the [`LoadReport`].

use std::collections::BTreeMap;
use std::fmt;

/// Ids outside `[0, domain.max]` and null ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdPolicy {
    /// Fail, naming the column, the number of rows and the first offending row and value.
    #[default]
    Error,
    /// Map them to the out-of-vocabulary index 0 (NVTabular's convention) and count them.
    MapToOov,
}

/// Null (or NaN / infinite) values in non-id columns: targets, continuous features, weights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NullPolicy {
    /// Fail, naming the column, the number of rows and the first offending row.
    #[default]
    Error,
    /// Drop the whole row and count it.
    DropRows,
}

/// Repairs made while loading, per column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnRepairs {
    /// Ids outside the domain mapped to 0.
    pub out_of_range_ids: u64,
    /// Null ids mapped to 0.
    pub null_ids: u64,
    /// Rows dropped because this column was null or not finite.
    pub dropped_rows: u64,
}

/// What loading did to the data. Empty when nothing was repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub columns: BTreeMap<String, ColumnRepairs>,
    /// Rows dropped in total (a row with several bad columns counts once).
    pub dropped_rows: u64,
}

impl LoadReport {
    pub fn is_clean(&self) -> bool {
        self.dropped_rows == 0
            && self
                .columns
                .values()
                .all(|c| *c == ColumnRepairs::default())
    }

    pub(crate) fn column(&mut self, name: &str) -> &mut ColumnRepairs {
        self.columns.entry(name.to_string()).or_default()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return writeln!(f, "no values were repaired");
        }
        for (name, c) in &self.columns {
            if c.out_of_range_ids > 0 {
                writeln!(
                    f,
                    "{name}: {} out-of-range ids mapped to 0",
                    c.out_of_range_ids
                )?;
            }
            if c.null_ids > 0 {
                writeln!(f, "{name}: {} null ids mapped to 0", c.null_ids)?;
            }
            if c.dropped_rows > 0 {
                writeln!(
                    f,
                    "{name}: {} rows dropped (null or not finite)",
                    c.dropped_rows
                )?;
            }
        }
        writeln!(f, "{} rows dropped in total", self.dropped_rows)
    }
}

/// How a dataset is loaded: which schema, which columns, and the repair policies.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The schema to validate against; `None` reads the dataset directory's schema file.
    pub schema: Option<crate::schema::Schema>,
    /// Load only these schema columns (in this order); `None` loads every schema column.
    pub columns: Option<Vec<String>>,
    pub ids: IdPolicy,
    pub nulls: NullPolicy,
    /// `(index, count)`: load only the parts `p` (files, in their natural order) with
    /// `p mod count == index`: one process's share of a dataset written in several parts.
    pub part_share: Option<(usize, usize)>,
}

impl LoadOptions {
    /// Loads only the parts `p` with `p mod count == index` (see [`LoadOptions::part_share`]).
    pub fn with_part_share(mut self, index: usize, count: usize) -> Self {
        self.part_share = Some((index, count));
        self
    }

    pub fn with_schema(mut self, schema: crate::schema::Schema) -> Self {
        self.schema = Some(schema);
        self
    }

    pub fn with_columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    pub fn with_id_policy(mut self, ids: IdPolicy) -> Self {
        self.ids = ids;
        self
    }

    pub fn with_null_policy(mut self, nulls: NullPolicy) -> Self {
        self.nulls = nulls;
        self
    }
}
