//! Reading raw Parquet tables row by row for preprocessing.
//!
//! A raw Parquet table holds strings, integers, floats or booleans in any column. Values are
//! rendered as text (integers without a decimal point, so `7` in Parquet and `7` in a CSV
//! encode to the same category) and Arrow nulls become nulls. One record batch is decoded at a
//! time, so memory stays bounded whatever the file size.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::rows::{Row, RowReader, LIST_MARK};
use crate::error::{Error, Result};

pub(crate) struct ParquetRows {
    files: Vec<PathBuf>,
    file_index: usize,
    reader: Option<ParquetRecordBatchReader>,
    batch: Option<RecordBatch>,
    row_in_batch: usize,
    /// 1-based row within the current file of the row last read.
    row_in_file: u64,
    columns: Vec<String>,
}

impl ParquetRows {
    pub fn open(path: &Path) -> Result<ParquetRows> {
        let files = crate::data::parquet_parts(path)?;
        let mut rows = ParquetRows {
            files,
            file_index: 0,
            reader: None,
            batch: None,
            row_in_batch: 0,
            row_in_file: 0,
            columns: Vec::new(),
        };
        rows.open_file(0)?;
        Ok(rows)
    }

    fn open_file(&mut self, index: usize) -> Result<()> {
        let path = &self.files[index];
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Error::file(path, format!("not a readable Parquet file: {e}")))?;
        let names: Vec<String> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if index == 0 {
            self.columns = names;
        } else if names != self.columns {
            return Err(Error::file(
                path,
                format!(
                    "its columns ({}) differ from those of {} ({}); all parts must share one layout",
                    names.join(", "),
                    self.files[0].display(),
                    self.columns.join(", ")
                ),
            ));
        }
        let reader = builder
            .with_batch_size(8192)
            .build()
            .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        self.file_index = index;
        self.reader = Some(reader);
        self.batch = None;
        self.row_in_file = 0;
        Ok(())
    }
}

impl RowReader for ParquetRows {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self, row: &mut Row) -> Result<bool> {
        loop {
            if let Some(batch) = &self.batch {
                if self.row_in_batch < batch.num_rows() {
                    let r = self.row_in_batch;
                    self.row_in_batch += 1;
                    self.row_in_file += 1;
                    row.resize(self.columns.len());
                    for (c, array) in batch.columns().iter().enumerate() {
                        row.nulls[c] = array.is_null(r);
                        row.values[c].clear();
                        if !row.nulls[c] {
                            if let Err(t) = render(array.as_ref(), r, &mut row.values[c]) {
                                return Err(Error::column(
                                    &self.files[self.file_index],
                                    &self.columns[c],
                                    format!(
                                        "type {t} cannot be preprocessed; convert it to a \
                                         string, integer, float or boolean column, or a \
                                         list of them"
                                    ),
                                ));
                            }
                        }
                    }
                    return Ok(true);
                }
            }
            let path = &self.files[self.file_index];
            match self.reader.as_mut().and_then(Iterator::next) {
                Some(batch) => {
                    self.batch =
                        Some(batch.map_err(|e| Error::file(path, format!("cannot decode: {e}")))?);
                    self.row_in_batch = 0;
                }
                None if self.file_index + 1 < self.files.len() => {
                    self.open_file(self.file_index + 1)?
                }
                None => return Ok(false),
            }
        }
    }

    fn position(&self) -> (&Path, u64) {
        (&self.files[self.file_index], self.row_in_file)
    }
}

/// Writes value `r` of `array` as text; the type's name when it has no text form here.
pub(crate) fn render(
    array: &dyn Array,
    r: usize,
    out: &mut String,
) -> std::result::Result<(), String> {
    use std::fmt::Write;
    let _ = match array.data_type() {
        DataType::Utf8 => write!(out, "{}", array.as_string::<i32>().value(r)),
        DataType::LargeUtf8 => write!(out, "{}", array.as_string::<i64>().value(r)),
        DataType::Boolean => write!(out, "{}", u8::from(array.as_boolean().value(r))),
        DataType::Int8 => write!(out, "{}", array.as_primitive::<Int8Type>().value(r)),
        DataType::Int16 => write!(out, "{}", array.as_primitive::<Int16Type>().value(r)),
        DataType::Int32 => write!(out, "{}", array.as_primitive::<Int32Type>().value(r)),
        DataType::Int64 => write!(out, "{}", array.as_primitive::<Int64Type>().value(r)),
        DataType::UInt8 => write!(out, "{}", array.as_primitive::<UInt8Type>().value(r)),
        DataType::UInt16 => write!(out, "{}", array.as_primitive::<UInt16Type>().value(r)),
        DataType::UInt32 => write!(out, "{}", array.as_primitive::<UInt32Type>().value(r)),
        DataType::UInt64 => write!(out, "{}", array.as_primitive::<UInt64Type>().value(r)),
        DataType::Float32 => write!(out, "{}", array.as_primitive::<Float32Type>().value(r)),
        DataType::Float64 => write!(out, "{}", array.as_primitive::<Float64Type>().value(r)),
        DataType::List(_) => return render_list(&array.as_list::<i32>().value(r), out),
        DataType::LargeList(_) => return render_list(&array.as_list::<i64>().value(r), out),
        DataType::FixedSizeList(..) => {
            return render_list(&array.as_fixed_size_list().value(r), out)
        }
        other => return Err(other.to_string()),
    };
    Ok(())
}

/// A list cell as text: [`LIST_MARK`] before every element (a null element is empty), so the
/// pipeline splits it whatever characters the elements hold.
fn render_list(values: &dyn Array, out: &mut String) -> std::result::Result<(), String> {
    if matches!(
        values.data_type(),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
    ) {
        return Err(format!("list of {}", values.data_type()));
    }
    out.push(LIST_MARK);
    for i in 0..values.len() {
        if i > 0 {
            out.push(LIST_MARK);
        }
        if !values.is_null(i) {
            render(values, i, out)?;
        }
    }
    Ok(())
}
