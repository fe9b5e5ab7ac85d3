//! Scoring raw data through the fitted preprocessing: Arrow record batches, rows of text and
//! CSV / Parquet files. Chosen raw columns are copied to the output unchanged (a 64-bit request
//! id stays an exact int64), followed by the score columns.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema as ArrowSchema};
use dfdx::prelude::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::Predictor;
use crate::data::parquet_parts;
use crate::error::{Error, Result};
use crate::model::{MtlModel, TaskNetwork};
use crate::preprocess::parquet_reader::render;
use crate::preprocess::rows::Row;
use crate::preprocess::{EncodeReport, Input};
use crate::train::{with_predictions, ParquetSink};

impl<M> Predictor<M>
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    /// Scores a record batch of raw rows (any column order; extra columns are ignored, target
    /// columns are not needed). Returns the `keep` columns of `batch` unchanged followed by
    /// the score columns ([`Predictor::outputs`]), and what the encoding saw (rows, nulls,
    /// unseen categories per column: they take the out-of-vocabulary row, as rare categories
    /// did in training).
    pub fn score_batch(
        &self,
        batch: &RecordBatch,
        keep: &[&str],
    ) -> Result<(RecordBatch, EncodeReport)> {
        self.score_record_batch(batch, keep, &|r| format!("row {}", r + 1))
    }

    /// Scores rows of text (`None`: null), `columns` naming their values; like
    /// [`Predictor::score_batch`], the kept columns come back as strings.
    pub fn score_rows<S: AsRef<str>>(
        &self,
        columns: &[S],
        rows: &[Vec<Option<String>>],
        keep: &[&str],
    ) -> Result<(RecordBatch, EncodeReport)> {
        if let Some((r, row)) = rows
            .iter()
            .enumerate()
            .find(|(_, row)| row.len() != columns.len())
        {
            return Err(Error::invalid(format!(
                "row {} has {} values for {} columns",
                r + 1,
                row.len(),
                columns.len()
            )));
        }
        let names: Vec<&str> = columns.iter().map(AsRef::as_ref).collect();
        let batch = text_batch(&names, rows.len(), |r, c| rows[r][c].as_deref())?;
        self.score_batch(&batch, keep)
    }

    /// Scores every row of a raw CSV or Parquet `input` (a file or a directory of Parquet
    /// parts) into the Parquet file `out`, batch by batch in bounded memory: the `keep`
    /// columns (Parquet: in their own type; CSV: as text) and the score columns. The file
    /// appears whole or not at all. Errors name the file and row.
    pub fn score_file(
        &self,
        input: &Input,
        keep: &[&str],
        out: impl AsRef<Path>,
    ) -> Result<EncodeReport> {
        let out = out.as_ref();
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b || b.starts_with(&a),
            _ => false,
        };
        if same(input.path(), out) {
            return Err(Error::file(
                out,
                "is the data being scored; write the scores to another path",
            ));
        }
        self.fitted("scoring a raw file")?;
        let batch_rows = self.trainer.config.batch_size;
        let mut sink = ParquetSink::create(out)?;
        let mut report = EncodeReport::default();
        match input {
            Input::Parquet { path } => {
                for file in parquet_parts(path)? {
                    let reader = File::open(&file).map_err(|e| Error::io(&file, e))?;
                    let reader = ParquetRecordBatchReaderBuilder::try_new(reader)
                        .and_then(|b| b.with_batch_size(batch_rows).build())
                        .map_err(|e| {
                            Error::file(&file, format!("not a readable Parquet file: {e}"))
                        })?;
                    let mut first = 0;
                    for batch in reader {
                        let batch =
                            batch.map_err(|e| Error::file(&file, format!("cannot decode: {e}")))?;
                        let at = |r: usize| format!("{}: row {}", file.display(), first + r + 1);
                        let (scored, seen) = self.score_record_batch(&batch, keep, &at)?;
                        sink.write(&scored)?;
                        report.merge(&seen);
                        first += batch.num_rows();
                    }
                }
            }
            Input::Csv { path, .. } => {
                let mut reader = input.open()?;
                let header = reader.columns().to_vec();
                let names: Vec<&str> = header.iter().map(String::as_str).collect();
                let mut rows: Vec<Row> = Vec::with_capacity(batch_rows);
                let mut first = 0;
                loop {
                    rows.clear();
                    let mut row = Row::default();
                    while rows.len() < batch_rows && reader.next_row(&mut row)? {
                        rows.push(std::mem::take(&mut row));
                    }
                    if rows.is_empty() {
                        break;
                    }
                    let batch = text_batch(&names, rows.len(), |r, c| rows[r].get(c))?;
                    let at = |r: usize| format!("{}: data row {}", path.display(), first + r + 1);
                    let (scored, seen) = self.score_record_batch(&batch, keep, &at)?;
                    sink.write(&scored)?;
                    report.merge(&seen);
                    first += rows.len();
                }
            }
        }
        sink.finish()?;
        Ok(report)
    }

    /// [`Predictor::score_batch`] with `at(r)` naming row `r` in errors.
    fn score_record_batch(
        &self,
        batch: &RecordBatch,
        keep: &[&str],
        at: &dyn Fn(usize) -> String,
    ) -> Result<(RecordBatch, EncodeReport)> {
        let fitted = self.fitted("scoring raw data")?;
        let schema = batch.schema();
        let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut kept = Vec::with_capacity(keep.len());
        for name in keep {
            let i = header.iter().position(|h| h == name).ok_or_else(|| {
                Error::invalid(format!(
                    "column `{name}` to keep is not in the data; its columns are: {}",
                    header.join(", ")
                ))
            })?;
            kept.push(i);
        }
        let mut encoder = fitted.inference_encoder(&header)?;
        let needed: Vec<usize> = fitted
            .input_columns()
            .iter()
            .filter_map(|(name, _)| header.iter().position(|h| h == name))
            .collect();
        let mut cells: Vec<Option<String>> = vec![None; header.len()];
        for r in 0..batch.num_rows() {
            for &c in &needed {
                let array = batch.column(c);
                if array.is_null(r) {
                    cells[c] = None;
                    continue;
                }
                let text = cells[c].get_or_insert_with(String::new);
                text.clear();
                render(array.as_ref(), r, text).map_err(|t| {
                    Error::invalid(format!(
                        "column `{}` has type {t}, which cannot be scored; send it as a \
                         string, integer, float or boolean column",
                        header[c]
                    ))
                })?;
            }
            encoder.push(|i| cells[i].as_deref(), || at(r))?;
        }
        let report = encoder.report().clone();
        let data = encoder.take_dataset()?;
        let predictions = if batch.num_rows() == 0 {
            vec![Vec::new(); M::SPEC.tasks.len()]
        } else {
            self.trainer.predict(&data)?
        };
        let base = batch
            .project(&kept)
            .map_err(|e| Error::invalid(format!("cannot select the kept columns: {e}")))?;
        Ok((with_predictions(M::SPEC, base, predictions)?, report))
    }
}

/// A record batch of nullable string columns `names`, `value(r, c)` giving row `r`'s value
/// of column `c`.
fn text_batch<'a>(
    names: &[&str],
    rows: usize,
    value: impl Fn(usize, usize) -> Option<&'a str>,
) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(names.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(names.len());
    for (c, name) in names.iter().enumerate() {
        let mut builder = StringBuilder::with_capacity(rows, rows * 8);
        for r in 0..rows {
            builder.append_option(value(r, c));
        }
        fields.push(Field::new(*name, DataType::Utf8, true));
        arrays.push(Arc::new(builder.finish()));
    }
    RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), arrays)
        .map_err(|e| Error::invalid(format!("cannot assemble the rows: {e}")))
}
