//! Writing predictions to Parquet next to the rows' id columns.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch};
use arrow_schema::{Field, Schema as ArrowSchema};
use dfdx::prelude::*;
use parquet::arrow::ArrowWriter;

use super::Trainer;
use crate::data::{Batch, Rows};
use crate::error::{Error, Result};
use crate::model::{MtlModel, TaskNetwork};
use crate::spec::TaskKind;

impl<M, D> Trainer<M, D>
where
    M: MtlModel + BuildOnDevice<D, f32>,
    M::Built: TaskNetwork<f32, D> + Clone,
    D: Device<f32>,
{
    /// Predicts every row of `data` (a `Dataset` or a `StreamingDataset`) and writes one
    /// Parquet file: the `keep` columns of `data` (ids, in their schema dtype) followed by one
    /// float column per task named by its output (`click/binary_output` holds probabilities,
    /// `watching_times/regression_output` values; a multiclass task gets `<output>/<class>`
    /// columns of class probabilities). Rows are written batch by batch, so streamed data
    /// larger than memory works; the file appears whole or not at all.
    pub fn predict_to_parquet(
        &self,
        data: &(impl Rows + ?Sized),
        keep: &[&str],
        path: impl AsRef<Path>,
    ) -> Result<()> {
        let path = path.as_ref();
        // Writing over the data being scored would destroy it: refuse, whatever the spelling.
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if let Some(input) = data.source_files().iter().find(|f| same(f, path)) {
            return Err(Error::file(
                path,
                format!(
                    "is the file the predictions are computed from ({}); write the predictions \
                     to another path",
                    input.display()
                ),
            ));
        }
        for name in keep {
            if data.layout().get(name).is_none() {
                return Err(Error::invalid(format!(
                    "column `{name}` to keep is not in the dataset"
                )));
            }
        }
        // Written next to the target and renamed over it: a failure leaves an existing file
        // whole.
        let tmp = path.with_file_name(format!(
            ".{}.{}.partial",
            path.file_name()
                .map_or("predictions".into(), |n| n.to_string_lossy()),
            std::process::id()
        ));
        let io = |e: parquet::errors::ParquetError| {
            Error::file(path, format!("cannot write predictions: {e}"))
        };
        let written = (|| {
            let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let mut writer: Option<ArrowWriter<std::fs::File>> = None;
            self.for_each_prediction(data, |batch, predictions| {
                let record = Self::prediction_batch(batch, keep, predictions)?;
                if writer.is_none() {
                    let file = file.try_clone().map_err(|e| Error::io(&tmp, e))?;
                    writer = Some(ArrowWriter::try_new(file, record.schema(), None).map_err(io)?);
                }
                if let Some(w) = writer.as_mut() {
                    w.write(&record).map_err(io)?;
                }
                Ok(())
            })?;
            let writer = writer.ok_or_else(|| {
                Error::invalid("the data to predict has no rows: nothing to write")
            })?;
            writer.close().map_err(io)?;
            std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// One batch's `keep` columns and predictions as an Arrow record batch.
    fn prediction_batch(
        batch: &Batch,
        keep: &[&str],
        predictions: Vec<Vec<f32>>,
    ) -> Result<RecordBatch> {
        let base = batch.record_batch(keep)?;
        let mut fields: Vec<Field> = base
            .schema()
            .fields()
            .iter()
            .map(|f| (**f).clone())
            .collect();
        let mut arrays: Vec<ArrayRef> = base.columns().to_vec();
        for (task, values) in M::SPEC.tasks.iter().zip(predictions) {
            match task.kind {
                TaskKind::Multiclass { classes } => {
                    for c in 0..classes {
                        let col: Vec<f32> =
                            values.iter().skip(c).step_by(classes).copied().collect();
                        fields.push(Field::new(
                            format!("{}/{c}", task.output_name),
                            arrow_schema::DataType::Float32,
                            false,
                        ));
                        arrays.push(Arc::new(Float32Array::from(col)));
                    }
                }
                _ => {
                    fields.push(Field::new(
                        task.output_name,
                        arrow_schema::DataType::Float32,
                        false,
                    ));
                    arrays.push(Arc::new(Float32Array::from(values)));
                }
            }
        }
        RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), arrays)
            .map_err(|e| Error::invalid(format!("cannot assemble predictions: {e}")))
    }
}
