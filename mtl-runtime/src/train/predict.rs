//! Writing predictions to Parquet next to the rows' id columns: the prediction columns'
//! names and layout ([`with_predictions`], shared with `crate::inference`) and the atomically
//! renamed output file ([`ParquetSink`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch};
use arrow_schema::{Field, Schema as ArrowSchema};
use dfdx::prelude::*;
use parquet::arrow::ArrowWriter;

use super::Trainer;
use crate::data::Rows;
use crate::error::{Error, Result};
use crate::model::{MtlModel, TaskNetwork};
use crate::spec::{ModelSpec, TaskKind};

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
        let mut sink = ParquetSink::create(path)?;
        self.for_each_prediction(data, |batch, predictions| {
            let base = batch.record_batch(keep)?;
            sink.write(&with_predictions(M::SPEC, base, predictions)?)
        })?;
        sink.finish()
    }
}

/// `base` (columns kept from the input, unchanged) followed by one float column per task
/// output: `<output>` for binary (probabilities) and regression tasks, `<output>/<class>` per
/// class for multiclass ones. A kept column named like an output is an error, not a shadow.
pub(crate) fn with_predictions(
    spec: &ModelSpec,
    base: RecordBatch,
    predictions: Vec<Vec<f32>>,
) -> Result<RecordBatch> {
    let mut fields: Vec<Field> = base
        .schema()
        .fields()
        .iter()
        .map(|f| (**f).clone())
        .collect();
    let mut arrays: Vec<ArrayRef> = base.columns().to_vec();
    let mut push = |name: String, values: Vec<f32>| -> Result<()> {
        if fields.iter().any(|f| f.name() == &name) {
            return Err(Error::invalid(format!(
                "the kept column `{name}` has the name of a prediction column; keep it under \
                 another name"
            )));
        }
        fields.push(Field::new(name, arrow_schema::DataType::Float32, false));
        arrays.push(Arc::new(Float32Array::from(values)));
        Ok(())
    };
    let mut predictions = predictions.into_iter();
    for (task, values) in spec.tasks.iter().zip(predictions.by_ref()) {
        match task.kind {
            TaskKind::Multiclass { classes } => {
                for c in 0..classes {
                    let col: Vec<f32> = values.iter().skip(c).step_by(classes).copied().collect();
                    push(format!("{}/{c}", task.output_name), col)?;
                }
            }
            _ => push(task.output_name.to_string(), values)?,
        }
    }
    // Chained tasks' joint probabilities (ESMM's pCTCVR), after the tasks.
    for (t, values) in spec.chained_tasks().into_iter().zip(predictions) {
        push(
            super::evaluate::joint_output_name(spec.tasks[t].name),
            values,
        )?;
    }
    RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), arrays)
        .map_err(|e| Error::invalid(format!("cannot assemble predictions: {e}")))
}

/// A Parquet file written batch by batch next to its final path and renamed over it by
/// [`ParquetSink::finish`]: a failure (or a sink dropped unfinished) leaves an existing file
/// at `path` whole and no partial file behind.
pub(crate) struct ParquetSink {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<std::fs::File>,
    writer: Option<ArrowWriter<std::fs::File>>,
    finished: bool,
}

impl ParquetSink {
    pub fn create(path: &Path) -> Result<ParquetSink> {
        let tmp = super::checkpoint::temporary_path(path);
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(ParquetSink {
            path: path.to_path_buf(),
            tmp,
            file: Some(file),
            writer: None,
            finished: false,
        })
    }

    fn io(&self, e: parquet::errors::ParquetError) -> Error {
        Error::file(&self.path, format!("cannot write predictions: {e}"))
    }

    /// Appends `batch` (the first batch fixes the file's schema).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.writer.is_none() {
            let file = self
                .file
                .take()
                .ok_or_else(|| Error::invalid("sink closed"))?;
            let writer =
                ArrowWriter::try_new(file, batch.schema(), None).map_err(|e| self.io(e))?;
            self.writer = Some(writer);
        }
        let result = match self.writer.as_mut() {
            Some(w) => w.write(batch),
            None => Ok(()),
        };
        result.map_err(|e| self.io(e))
    }

    /// Closes the file and renames it over `path`; an error when nothing was written.
    pub fn finish(mut self) -> Result<()> {
        let writer = self
            .writer
            .take()
            .ok_or_else(|| Error::invalid("the data to predict has no rows: nothing to write"))?;
        writer.close().map_err(|e| self.io(e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for ParquetSink {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
