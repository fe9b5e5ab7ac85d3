//! [`Dataset`]: a whole dataset decoded into memory once, then batched any number of times.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::batch::{BatchOptions, Batches};
use super::buffers::ColumnBuffers;
use super::decode::{Decoder, RowOrigin};
use super::files::Source;
use super::layout::{ColumnKind, Layout, NO_ID};
use super::policy::{LoadOptions, LoadReport};
use crate::error::{Error, Result};
use crate::schema::Schema;

/// A dataset held in memory: one `u32` vector per categorical column, one `f32` vector per
/// other column, in schema order.
#[derive(Debug, Clone)]
pub struct Dataset {
    schema: Schema,
    layout: Arc<Layout>,
    data: ColumnBuffers,
    report: LoadReport,
    /// The files it was read from (none when built in memory).
    files: Vec<std::path::PathBuf>,
}

/// Opens the files, settles the schema and column selection, and checks column types.
pub(crate) fn resolve(path: &Path, options: &LoadOptions) -> Result<(Source, Schema, Layout)> {
    let source = Source::open(path)?;
    let schema = match &options.schema {
        Some(s) => s.clone(),
        None => Schema::from_dir(&source.schema_dir)?,
    };
    if schema.is_empty() {
        return Err(Error::schema(
            source.schema_dir.display().to_string(),
            "the schema lists no columns; a dataset needs at least one (check that the right \
             schema file was found next to the data, or give one in LoadOptions)",
        ));
    }
    let schema = match &options.columns {
        Some(names) => {
            if let Some(missing) = names.iter().find(|n| !schema.contains(n)) {
                return Err(Error::invalid(format!(
                    "column `{missing}` was asked for but is not in the schema (it has: {})",
                    schema.column_names().join(", ")
                )));
            }
            schema.select_by_name(names)
        }
        None => schema,
    };
    let layout = Layout::new(&schema)?;
    source.check_types(&layout)?;
    Ok((source, schema, layout))
}

impl Dataset {
    /// Loads a Parquet file, Arrow IPC file or directory of parts, with the schema found next to
    /// the data and the default (strict) policies.
    pub fn open(path: impl AsRef<Path>) -> Result<Dataset> {
        Dataset::open_with(path, &LoadOptions::default())
    }

    /// Loads with an explicit schema, column selection or repair policies.
    pub fn open_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Dataset> {
        let (source, schema, layout) = resolve(path.as_ref(), options)?;
        let mine = |part: usize| {
            options
                .part_share
                .is_none_or(|(index, count)| part % count.max(1) == index)
        };
        if let Some((index, count)) = options.part_share {
            if index >= count || source.parts.len() < count {
                return Err(Error::file(
                    path.as_ref(),
                    format!(
                        "share {index} of {count} asked for, but the dataset has {} part(s): \
                         write it in at least {count} parts (WriteOptions::rows_per_file), one or \
                         more per process",
                        source.parts.len()
                    ),
                ));
            }
        }
        // Capacity for this share's rows only, when the metadata says how many.
        let rows = source
            .chunks
            .iter()
            .filter(|c| mine(c.part))
            .map(|c| c.rows.unwrap_or(0))
            .sum();
        let mut data =
            ColumnBuffers::with_capacity(layout.num_id_columns(), layout.num_float_columns(), rows);
        let mut report = LoadReport::default();
        let names = layout.names();
        for chunk in source.chunks.iter().filter(|c| mine(c.part)) {
            let file = &source.parts[chunk.part].path;
            let decoder = Decoder {
                layout: &layout,
                ids: options.ids,
                nulls: options.nulls,
                file,
            };
            let mut offset = 0;
            for batch in source.read_chunk(chunk, &names)? {
                let origin = RowOrigin {
                    first_row: chunk.first_row,
                    chunk: chunk.index,
                    offset_in_chunk: offset,
                };
                decoder.append(&batch, origin, &mut data, &mut report)?;
                offset += batch.num_rows();
            }
        }
        Ok(Dataset {
            schema,
            layout: Arc::new(layout),
            data,
            report,
            files: source
                .parts
                .iter()
                .enumerate()
                .filter(|&(i, _)| mine(i))
                .map(|(_, p)| p.path.clone())
                .collect(),
        })
    }

    /// Builds a dataset from decoded columns (used by the generators). Every column of
    /// `schema` must be given once, with the kind the schema implies and the same length.
    pub fn from_columns(schema: Schema, columns: Vec<(String, ColumnValues)>) -> Result<Dataset> {
        let layout = Layout::new(&schema)?;
        let mut data = ColumnBuffers::new(layout.num_id_columns(), layout.num_float_columns());
        let mut seen = vec![false; layout.columns().len()];
        let mut rows = None;
        for (name, values) in columns {
            let col = layout
                .get(&name)
                .ok_or_else(|| Error::invalid(format!("column `{name}` is not in the schema")))?;
            let idx = layout
                .columns()
                .iter()
                .position(|c| c.schema.name == name)
                .unwrap_or(0);
            if std::mem::replace(&mut seen[idx], true) {
                return Err(Error::invalid(format!("column `{name}` is given twice")));
            }
            let len = match (col.kind, values) {
                (ColumnKind::Ids, ColumnValues::Ids(v)) => {
                    let len = v.len();
                    data.ids[col.slot] = v;
                    len
                }
                (ColumnKind::Floats, ColumnValues::Floats(v)) => {
                    let len = v.len();
                    data.floats[col.slot] = v;
                    len
                }
                (ColumnKind::IdLists, ColumnValues::IdLists(lists)) => {
                    let len = lists.len();
                    for k in 0..col.width {
                        data.ids[col.slot + k] = Vec::with_capacity(len);
                    }
                    for (r, list) in lists.iter().enumerate() {
                        if list.len() > col.width {
                            return Err(Error::invalid(format!(
                                "column `{name}`: row {r} holds {} ids, more than the schema's \
                                 value_count.max {}",
                                list.len(),
                                col.width
                            )));
                        }
                        if let Some(&bad) = list.iter().find(|&&id| id == NO_ID) {
                            return Err(Error::invalid(format!(
                                "column `{name}`: row {r} holds id {bad}, which marks an empty \
                                 list position"
                            )));
                        }
                        for k in 0..col.width {
                            data.ids[col.slot + k].push(list.get(k).copied().unwrap_or(NO_ID));
                        }
                    }
                    len
                }
                (kind, _) => {
                    return Err(Error::invalid(format!(
                        "column `{name}` must be given as {kind:?} (its schema tags decide)"
                    )))
                }
            };
            if *rows.get_or_insert(len) != len {
                return Err(Error::invalid(format!(
                    "column `{name}` has {len} rows, others have {}",
                    rows.unwrap_or(0)
                )));
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(Error::invalid(format!(
                "column `{}` of the schema was not given",
                layout.columns()[i].schema.name
            )));
        }
        Ok(Dataset {
            schema,
            layout: Arc::new(layout),
            data,
            report: LoadReport::default(),
            files: Vec::new(),
        })
    }

    /// The ids of list column `column` in row `row` (`None`: not a list column, or no such
    /// row).
    pub fn id_list(&self, column: &str, row: usize) -> Option<Vec<u32>> {
        let c = self.layout.get(column)?;
        if c.kind != ColumnKind::IdLists || row >= self.num_rows() {
            return None;
        }
        Some(
            (0..c.width)
                .map(|k| self.data.ids[c.slot + k][row])
                .take_while(|&id| id != NO_ID)
                .collect(),
        )
    }

    /// The data files it was read from (empty for a dataset built in memory).
    pub fn files(&self) -> &[std::path::PathBuf] {
        &self.files
    }

    pub fn num_rows(&self) -> usize {
        self.data.len()
    }

    /// The schema of the loaded columns.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn layout_arc(&self) -> Arc<Layout> {
        Arc::clone(&self.layout)
    }

    pub(crate) fn buffers(&self) -> &ColumnBuffers {
        &self.data
    }

    /// Repairs made while loading (see [`IdPolicy`](super::IdPolicy), [`NullPolicy`](super::NullPolicy)).
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// All ids of a categorical column.
    pub fn ids(&self, column: &str) -> Option<&[u32]> {
        self.data.ids_named(&self.layout, column)
    }

    /// All values of a non-categorical column.
    pub fn floats(&self, column: &str) -> Option<&[f32]> {
        self.data.floats_named(&self.layout, column)
    }

    /// Rows `range` as a new dataset.
    pub fn slice(&self, range: Range<usize>) -> Dataset {
        let mut data = ColumnBuffers::new(
            self.layout.num_id_columns(),
            self.layout.num_float_columns(),
        );
        let end = range.end.min(self.num_rows());
        data.extend_range(&self.data, range.start.min(end)..end);
        Dataset {
            schema: self.schema.clone(),
            layout: Arc::clone(&self.layout),
            data,
            report: LoadReport::default(),
            files: self.files.clone(),
        }
    }

    /// Merlin's `set_sizes` split: contiguous slices of `int(N * fraction)` rows, in order,
    /// with rounding leftovers dropped. Fractions must be positive and sum to at most 1.
    pub fn split(&self, fractions: &[f64]) -> Result<Vec<Dataset>> {
        check_fractions(fractions)?;
        let n = self.num_rows();
        let mut start = 0;
        Ok(fractions
            .iter()
            .map(|f| {
                let len = (n as f64 * f) as usize;
                let part = self.slice(start..start + len);
                start += len;
                part
            })
            .collect())
    }

    /// The rows `rows` (indices, in the order given) as a new dataset.
    pub fn take(&self, rows: &[u32]) -> Result<Dataset> {
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= self.num_rows()) {
            return Err(Error::invalid(format!(
                "row {bad} is beyond the dataset's {} rows",
                self.num_rows()
            )));
        }
        let mut data = ColumnBuffers::with_capacity(
            self.layout.num_id_columns(),
            self.layout.num_float_columns(),
            rows.len(),
        );
        data.push_rows(&self.data, rows);
        Ok(Dataset {
            schema: self.schema.clone(),
            layout: Arc::clone(&self.layout),
            data,
            report: LoadReport::default(),
            files: self.files.clone(),
        })
    }

    /// A seeded random split: the rows are shuffled by `seed` (ChaCha8, the same on every
    /// platform), then cut at the cumulative fractions (part i gets rows
    /// `round(c_{i-1}·N)..round(c_i·N)` of the shuffled order, so fractions that sum to 1 use
    /// every row). Each part keeps the file order of its rows. Use it when the file's order
    /// means something (sorted by time or by label), where [`Dataset::split`]'s contiguous
    /// slices would not be samples of the same data.
    pub fn split_shuffled(&self, fractions: &[f64], seed: u64) -> Result<Vec<Dataset>> {
        check_fractions(fractions)?;
        let mut order: Vec<u32> = (0..self.num_rows() as u32).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        self.cut(&[order], fractions)
    }

    /// A seeded split stratified by `column` (typically a binary target): the rows of each
    /// distinct value of `column` are shuffled and cut at the fractions on their own, so every
    /// part has (to a row per value) the same share of each value, e.g. the same click rate.
    /// Otherwise like [`Dataset::split_shuffled`].
    pub fn split_stratified(
        &self,
        fractions: &[f64],
        column: &str,
        seed: u64,
    ) -> Result<Vec<Dataset>> {
        check_fractions(fractions)?;
        let keys: Vec<u64> = if let Some(ids) = self.ids(column) {
            ids.iter().map(|&v| u64::from(v)).collect()
        } else if let Some(values) = self.floats(column) {
            values.iter().map(|v| u64::from(v.to_bits())).collect()
        } else {
            return Err(Error::invalid(format!(
                "cannot stratify by `{column}`: the dataset has no such column (columns: {})",
                self.schema.column_names().join(", ")
            )));
        };
        let mut strata: std::collections::BTreeMap<u64, Vec<u32>> = Default::default();
        for (row, key) in keys.iter().enumerate() {
            strata.entry(*key).or_default().push(row as u32);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let groups: Vec<Vec<u32>> = strata
            .into_values()
            .map(|mut rows| {
                rows.shuffle(&mut rng);
                rows
            })
            .collect();
        self.cut(&groups, fractions)
    }

    /// Cuts every group at the cumulative fractions; part i joins the groups' i-th pieces, in
    /// row order.
    fn cut(&self, groups: &[Vec<u32>], fractions: &[f64]) -> Result<Vec<Dataset>> {
        let mut parts: Vec<Vec<u32>> = vec![Vec::new(); fractions.len()];
        for rows in groups {
            let n = rows.len() as f64;
            let mut cumulative = 0.0;
            let mut start = 0usize;
            for (part, f) in parts.iter_mut().zip(fractions) {
                cumulative += f;
                let end = ((cumulative * n).round() as usize).min(rows.len());
                part.extend_from_slice(&rows[start..end.max(start)]);
                start = end.max(start);
            }
        }
        parts
            .into_iter()
            .map(|mut rows| {
                rows.sort_unstable();
                self.take(&rows)
            })
            .collect()
    }

    /// One epoch of batches.
    pub fn batches(&self, options: BatchOptions, epoch: u64) -> Result<Batches<'_>> {
        Batches::new(self, options, epoch)
    }

    /// The first `n` rows, printable as a table (the notebook's `head()`).
    pub fn head(&self, n: usize) -> Head<'_> {
        Head {
            dataset: self,
            rows: n.min(self.num_rows()),
        }
    }
}

/// Split fractions must be positive and sum to at most 1.
fn check_fractions(fractions: &[f64]) -> Result<()> {
    let sum: f64 = fractions.iter().sum();
    if fractions.is_empty() || fractions.iter().any(|f| f.is_nan() || *f <= 0.0) || sum > 1.0 + 1e-9
    {
        return Err(Error::invalid(format!(
            "split fractions must be positive and sum to at most 1, got {fractions:?}"
        )));
    }
    Ok(())
}

/// The decoded values of one column, for [`Dataset::from_columns`].
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    Ids(Vec<u32>),
    Floats(Vec<f32>),
    /// One list of ids per row (a list column), at most its `value_count.max` long.
    IdLists(Vec<Vec<u32>>),
}

/// The first rows of a dataset; `Display` prints them as a table.
pub struct Head<'a> {
    dataset: &'a Dataset,
    rows: usize,
}

impl fmt::Display for Head<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layout = &self.dataset.layout;
        let mut header = vec![""];
        header.extend(layout.columns().iter().map(|c| c.schema.name.as_str()));
        let rows: Vec<Vec<String>> = (0..self.rows)
            .map(|r| {
                let mut row = vec![r.to_string()];
                row.extend(layout.columns().iter().map(|c| match c.kind {
                    ColumnKind::Ids => self.dataset.data.ids[c.slot][r].to_string(),
                    ColumnKind::IdLists => {
                        let ids: Vec<String> = (0..c.width)
                            .map(|k| self.dataset.data.ids[c.slot + k][r])
                            .take_while(|&id| id != NO_ID)
                            .map(|id| id.to_string())
                            .collect();
                        format!("[{}]", ids.join(", "))
                    }
                    ColumnKind::Floats => {
                        let v = self.dataset.data.floats[c.slot][r];
                        if c.schema.dtype.is_integer() {
                            format!("{v:.0}")
                        } else {
                            format!("{v:.4}")
                        }
                    }
                }));
                row
            })
            .collect();
        crate::table::write_table(f, &header, &rows)
    }
}
