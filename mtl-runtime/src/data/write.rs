//! Writing datasets: Parquet part files + `schema.json` in the Merlin/NVTabular directory
//! layout, or a single Arrow IPC file.
//!
//! Each column is written with the dtype its schema declares (ids as int32/int64, binary
//! targets as int8, ...), so what Merlin or pandas read back looks like what Merlin writes.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array,
    Int8Array, ListArray, RecordBatch, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow_buffer::{OffsetBuffer, ScalarBuffer};
use arrow_schema::Field;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::layout::{ColumnKind, NO_ID};
use super::Dataset;
use crate::error::{Error, Result};
use crate::schema::DType;

/// How [`Dataset::write_parquet`] lays out files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Rows per part file (`part_0.parquet`, `part_1.parquet`, ...); `None`: one file.
    pub rows_per_file: Option<usize>,
    /// Rows per Parquet row group (the unit streaming reads at once).
    pub row_group_rows: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            rows_per_file: None,
            row_group_rows: 128 * 1024,
        }
    }
}

impl Dataset {
    /// Writes `dir/part_<i>.parquet` (snappy) and `dir/schema.json`, creating `dir`.
    pub fn write_parquet(&self, dir: impl AsRef<Path>, options: &WriteOptions) -> Result<()> {
        let dir = dir.as_ref();
        if options.row_group_rows == 0 || options.rows_per_file == Some(0) {
            return Err(Error::invalid(
                "row_group_rows and rows_per_file must be at least 1",
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let rows = self.num_rows();
        let per_file = options.rows_per_file.unwrap_or(rows.max(1));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(options.row_group_rows))
            .build();
        let mut start = 0;
        let mut index = 0;
        loop {
            let end = (start + per_file).min(rows);
            let path = dir.join(format!("part_{index}.parquet"));
            let batch = self.record_batch(start..end)?;
            let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
            let io = |e: parquet::errors::ParquetError| {
                Error::file(&path, format!("cannot write Parquet: {e}"))
            };
            let mut writer =
                ArrowWriter::try_new(file, batch.schema(), Some(props.clone())).map_err(io)?;
            // Write in row-group-sized slices so that the writer never buffers the whole file.
            let mut off = 0;
            while off < batch.num_rows() || (off == 0 && batch.num_rows() == 0) {
                let len = options.row_group_rows.min(batch.num_rows() - off);
                writer.write(&batch.slice(off, len)).map_err(io)?;
                off += len.max(1);
            }
            writer.close().map_err(io)?;
            index += 1;
            start = end;
            if start >= rows {
                break;
            }
        }
        self.schema().write_json(dir.join("schema.json"))
    }

    /// Writes one Arrow IPC file with record batches of `batch_rows` rows.
    pub fn write_arrow_ipc(&self, path: impl AsRef<Path>, batch_rows: usize) -> Result<()> {
        let path = path.as_ref();
        let batch = self.record_batch(0..self.num_rows())?;
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let io =
            |e: arrow_schema::ArrowError| Error::file(path, format!("cannot write Arrow IPC: {e}"));
        let mut writer =
            arrow_ipc::writer::FileWriter::try_new(file, &batch.schema()).map_err(io)?;
        let step = batch_rows.max(1);
        for off in (0..batch.num_rows()).step_by(step) {
            writer
                .write(&batch.slice(off, step.min(batch.num_rows() - off)))
                .map_err(io)?;
        }
        writer.finish().map_err(io)
    }

    /// Rows `range` as an Arrow record batch, each column in its schema dtype.
    pub fn record_batch(&self, range: std::ops::Range<usize>) -> Result<RecordBatch> {
        let names: Vec<&str> = self
            .layout()
            .columns()
            .iter()
            .map(|c| c.schema.name.as_str())
            .collect();
        columns_record_batch(
            self.layout(),
            &names,
            range.len(),
            |slot| &self.buffers().ids[slot][range.clone()],
            |slot| &self.buffers().floats[slot][range.clone()],
        )
    }
}

impl super::Batch {
    /// Columns `names` of this batch as an Arrow record batch, each in its schema dtype.
    pub fn record_batch(&self, names: &[&str]) -> Result<RecordBatch> {
        columns_record_batch(
            self.layout(),
            names,
            self.len(),
            |slot| self.ids_at(slot),
            |slot| self.floats_at(slot),
        )
    }
}

/// Columns `names` of `layout` as an Arrow record batch of `rows` rows (no columns is fine),
/// their values from the id and float buffers of each slot (`ids(slot)`, `floats(slot)`).
fn columns_record_batch<'a>(
    layout: &super::Layout,
    names: &[&str],
    rows: usize,
    ids: impl Fn(usize) -> &'a [u32],
    floats: impl Fn(usize) -> &'a [f32],
) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for name in names {
        let col = layout
            .get(name)
            .ok_or_else(|| Error::invalid(format!("column `{name}` is not in the dataset")))?;
        // Every decoded value (u32 id or f32) is exact as f64; `typed` narrows it to the
        // schema dtype. Ids default to int64, other columns to float32.
        let id_dtype = if col.schema.dtype.is_integer() {
            col.schema.dtype
        } else {
            DType::Int64
        };
        let array = match col.kind {
            ColumnKind::Ids => typed(id_dtype, ids(col.slot).iter().map(|&x| f64::from(x))),
            ColumnKind::IdLists => {
                // Each row's ids up to its first empty position, as a list<int>.
                let positions: Vec<&[u32]> = (0..col.width).map(|k| ids(col.slot + k)).collect();
                let mut offsets = Vec::with_capacity(rows + 1);
                let mut values = Vec::new();
                offsets.push(0i32);
                for r in 0..rows {
                    values.extend(
                        positions
                            .iter()
                            .map(|p| p[r])
                            .take_while(|&id| id != NO_ID)
                            .map(f64::from),
                    );
                    let end = i32::try_from(values.len()).map_err(|_| {
                        Error::invalid(format!(
                            "column `{name}` holds more than 2^31 list elements in one batch; \
                             write fewer rows per file"
                        ))
                    })?;
                    offsets.push(end);
                }
                let values = typed(id_dtype, values.into_iter());
                let field = Arc::new(Field::new_list_field(values.data_type().clone(), false));
                let list = ListArray::try_new(
                    field,
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    values,
                    None,
                )
                .map_err(|e| Error::invalid(format!("column `{name}`: {e}")))?;
                Arc::new(list)
            }
            ColumnKind::Floats => typed(
                col.schema.dtype,
                floats(col.slot).iter().map(|&x| f64::from(x)),
            ),
        };
        fields.push(Field::new(*name, array.data_type().clone(), false));
        arrays.push(array);
    }
    let schema = Arc::new(arrow_schema::Schema::new(fields));
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema, arrays, &options)
        .map_err(|e| Error::invalid(format!("cannot assemble a record batch: {e}")))
}

/// An Arrow array of `dtype` from exact values (float32 for dtypes without an Arrow writer here).
fn typed(dtype: DType, v: impl Iterator<Item = f64>) -> ArrayRef {
    match dtype {
        DType::Int8 => Arc::new(Int8Array::from_iter_values(v.map(|x| x as i8))),
        DType::Int16 => Arc::new(Int16Array::from_iter_values(v.map(|x| x as i16))),
        DType::Int32 => Arc::new(Int32Array::from_iter_values(v.map(|x| x as i32))),
        DType::Int64 => Arc::new(Int64Array::from_iter_values(v.map(|x| x as i64))),
        DType::UInt8 => Arc::new(UInt8Array::from_iter_values(v.map(|x| x as u8))),
        DType::UInt16 => Arc::new(UInt16Array::from_iter_values(v.map(|x| x as u16))),
        DType::UInt32 => Arc::new(UInt32Array::from_iter_values(v.map(|x| x as u32))),
        DType::UInt64 => Arc::new(UInt64Array::from_iter_values(v.map(|x| x as u64))),
        DType::Bool => Arc::new(BooleanArray::from(v.map(|x| x != 0.0).collect::<Vec<_>>())),
        DType::Float64 => Arc::new(Float64Array::from_iter_values(v)),
        _ => Arc::new(Float32Array::from_iter_values(v.map(|x| x as f32))),
    }
}
