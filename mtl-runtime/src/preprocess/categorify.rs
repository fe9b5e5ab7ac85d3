//! Categorify: one vocabulary per categorical column, fitted on the training rows only.
//!
//! Follows NVTabular's `Categorify` where it matters to a model: values are ordered by
//! frequency (most frequent first; ties by value, so a refit gives the same ids), values seen
//! fewer than `min_frequency` times are left out, and id 0 is reserved: out-of-vocabulary
//! values and nulls map to 0 (Merlin's `start_index` convention: real values start at 1), so a
//! column's domain is `[0, len]` and its embedding table has `len + 1` rows. Vocabularies are
//! saved as `categories/unique.<column>.parquet` (NVTabular's file names) with the value and
//! its training count, row `i` holding id `i` (row 0: the null/OOV row).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

use crate::error::{Error, Result};

/// Counts the values of one column over the training rows.
#[derive(Debug, Clone, Default)]
pub struct VocabCounter {
    counts: HashMap<String, u64>,
    nulls: u64,
}

impl VocabCounter {
    pub fn add(&mut self, value: Option<&str>) {
        match value {
            Some(v) => match self.counts.get_mut(v) {
                Some(n) => *n += 1,
                None => {
                    self.counts.insert(v.to_string(), 1);
                }
            },
            None => self.nulls += 1,
        }
    }

    /// The vocabulary of the values seen at least `min_frequency` times (0 and 1 keep all).
    pub fn finish(self, column: &str, min_frequency: u64) -> Vocabulary {
        let mut kept: Vec<(String, u64)> = Vec::new();
        let mut dropped = 0;
        for (value, n) in self.counts {
            if n >= min_frequency {
                kept.push((value, n));
            } else {
                dropped += n;
            }
        }
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let (values, counts) = kept.into_iter().unzip();
        Vocabulary::new(column, values, counts, self.nulls + dropped)
    }
}

/// A fitted vocabulary: id `i + 1` is `values[i]`; id 0 is out-of-vocabulary or null.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    pub column: String,
    /// Values in id order (id 1 first).
    pub values: Vec<String>,
    /// Training count of each value.
    pub counts: Vec<u64>,
    /// Training rows that map to id 0 (nulls and values under the frequency threshold).
    pub zero_count: u64,
    index: HashMap<String, u32>,
}

impl Vocabulary {
    pub fn new(column: &str, values: Vec<String>, counts: Vec<u64>, zero_count: u64) -> Self {
        let index = values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), i as u32 + 1))
            .collect();
        Vocabulary {
            column: column.to_string(),
            values,
            counts,
            zero_count,
            index,
        }
    }

    /// Number of known values (ids `1..=len`).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The largest id: the column's `domain.max` (its table has `max_id + 1` rows).
    pub fn max_id(&self) -> u32 {
        self.values.len() as u32
    }

    /// The id of a value: 0 when null or unknown.
    pub fn encode(&self, value: Option<&str>) -> u32 {
        value.and_then(|v| self.index.get(v).copied()).unwrap_or(0)
    }

    /// Writes `unique.<column>.parquet`: columns `<column>` (text; null in row 0, the OOV/null
    /// row) and `<column>_size` (training count), row `i` holding id `i`.
    pub fn write_parquet(&self, path: &Path) -> Result<()> {
        let values: StringArray = std::iter::once(None)
            .chain(self.values.iter().map(|v| Some(v.as_str())))
            .collect();
        let counts = UInt64Array::from_iter_values(
            std::iter::once(self.zero_count).chain(self.counts.iter().copied()),
        );
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            Field::new(&self.column, DataType::Utf8, true),
            Field::new(format!("{}_size", self.column), DataType::UInt64, false),
        ]));
        let io = |e: &dyn std::fmt::Display| Error::file(path, format!("cannot write: {e}"));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(values) as ArrayRef, Arc::new(counts) as ArrayRef],
        )
        .map_err(|e| io(&e))?;
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut writer = ArrowWriter::try_new(file, schema, None).map_err(|e| io(&e))?;
        writer.write(&batch).map_err(|e| io(&e))?;
        writer.close().map_err(|e| io(&e))?;
        Ok(())
    }

    /// Reads a vocabulary written by [`Vocabulary::write_parquet`].
    pub fn read_parquet(path: &Path, column: &str) -> Result<Vocabulary> {
        let bad = |m: String| Error::file(path, m);
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| bad(format!("not a readable Parquet file: {e}")))?;
        let size_name = format!("{column}_size");
        let (mut values, mut counts, mut zero_count, mut first) = (Vec::new(), Vec::new(), 0, true);
        for batch in reader {
            let batch = batch.map_err(|e| bad(format!("cannot decode: {e}")))?;
            let missing = |name: &str| {
                Error::column(
                    path,
                    name,
                    "missing or of the wrong type (a vocabulary file \
                    holds `<column>` as text and `<column>_size` as uint64)",
                )
            };
            let v = batch
                .column_by_name(column)
                .and_then(|a| a.as_string_opt::<i32>())
                .ok_or_else(|| missing(column))?;
            let n = batch
                .column_by_name(&size_name)
                .and_then(|a| a.as_primitive_opt::<UInt64Type>())
                .ok_or_else(|| missing(&size_name))?;
            for i in 0..batch.num_rows() {
                if std::mem::take(&mut first) {
                    zero_count = n.value(i);
                } else {
                    values.push(v.value(i).to_string());
                    counts.push(n.value(i));
                }
            }
        }
        Ok(Vocabulary::new(column, values, counts, zero_count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(values: &[Option<&str>]) -> VocabCounter {
        let mut c = VocabCounter::default();
        values.iter().for_each(|v| c.add(*v));
        c
    }

    #[test]
    fn frequency_order_ties_by_value_threshold_and_zero_for_unknowns() {
        let c = counter(&[
            Some("b"),
            Some("a"),
            Some("c"),
            Some("b"),
            Some("a"),
            Some("d"),
            None,
        ]);
        let v = c.finish("x", 2);
        // a and b twice (tie: by value), c and d once: under the threshold.
        assert_eq!(v.values, ["a", "b"]);
        assert_eq!(v.counts, [2, 2]);
        assert_eq!(v.zero_count, 3, "c, d and the null");
        assert_eq!(v.encode(Some("a")), 1);
        assert_eq!(v.encode(Some("b")), 2);
        assert_eq!(v.encode(Some("c")), 0);
        assert_eq!(v.encode(None), 0);
        assert_eq!(v.max_id(), 2);
    }

    #[test]
    fn parquet_round_trip_keeps_ids() {
        let v = counter(&[Some("x"), Some("y"), Some("y"), None]).finish("col", 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unique.col.parquet");
        v.write_parquet(&path).unwrap();
        let back = Vocabulary::read_parquet(&path, "col").unwrap();
        assert_eq!(back, v);
        assert_eq!(back.encode(Some("y")), 1);
    }
}
