//! Decoding Arrow record batches into column buffers, applying the value policies.
//!
//! Ids become `u32` (checked against `[0, domain.max]`), everything else `f32` (checked for
//! nulls and non-finite values; binary targets also for `[0, 1]`). Errors count every offending
//! row of the chunk and name the first one, so a user sees the size of the problem at once.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrowPrimitiveType, PrimitiveArray, RecordBatch};
use arrow_schema::DataType;

use super::buffers::ColumnBuffers;
use super::layout::{ColumnKind, ColumnSlot, Layout, NO_ID};
use super::policy::{IdPolicy, LoadReport, NullPolicy};
use crate::error::{Error, Result};

/// Where the rows being decoded sit in their file, for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowOrigin {
    /// Index in the file of the batch's first row, when known.
    pub first_row: Option<u64>,
    /// The chunk (row group / record batch) index.
    pub chunk: usize,
    /// Offset of this record batch within its chunk.
    pub offset_in_chunk: usize,
}

impl RowOrigin {
    fn describe(&self, row: usize) -> String {
        match self.first_row {
            Some(first) => format!(
                "row {} (0-based)",
                first + (self.offset_in_chunk + row) as u64
            ),
            None => format!(
                "record batch {}, row {}",
                self.chunk,
                self.offset_in_chunk + row
            ),
        }
    }
}

pub(crate) struct Decoder<'a> {
    pub layout: &'a Layout,
    pub ids: IdPolicy,
    pub nulls: NullPolicy,
    pub file: &'a Path,
}

/// Offending rows of one column in one batch.
#[derive(Default)]
struct Offenders {
    count: u64,
    first: Option<(usize, String)>,
}

impl Offenders {
    fn note(&mut self, row: usize, value: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((row, value()));
        }
    }
}

impl Decoder<'_> {
    /// Appends the rows of `batch` to `out`, recording repairs in `report`.
    pub fn append(
        &self,
        batch: &RecordBatch,
        origin: RowOrigin,
        out: &mut ColumnBuffers,
        report: &mut LoadReport,
    ) -> Result<()> {
        let start = out.len();
        let rows = batch.num_rows();
        let mut keep: Option<Vec<bool>> = None;
        for col in self.layout.columns() {
            let name = &col.schema.name;
            let array = batch.column_by_name(name).ok_or_else(|| {
                Error::column(
                    self.file,
                    name,
                    "is missing from a record batch of this file",
                )
            })?;
            match col.kind {
                ColumnKind::Ids => {
                    let dst = &mut out.ids[col.slot];
                    self.ids_column(col, array.as_ref(), dst, origin, report)?;
                }
                ColumnKind::IdLists => {
                    let dst = &mut out.ids[col.slot..col.slot + col.width];
                    self.id_lists_column(col, array.as_ref(), dst, origin, report)?;
                }
                ColumnKind::Floats => {
                    let dst = &mut out.floats[col.slot];
                    let bad = self.floats_column(col, array.as_ref(), dst, origin)?;
                    if !bad.is_empty() {
                        let keep = keep.get_or_insert_with(|| vec![true; rows]);
                        let newly = bad
                            .iter()
                            .filter(|&&r| std::mem::replace(&mut keep[r], false))
                            .count();
                        report.column(name).dropped_rows += bad.len() as u64;
                        report.dropped_rows += newly as u64;
                    }
                }
            }
        }
        if let Some(keep) = keep {
            out.retain_from(start, &keep);
        }
        Ok(())
    }

    fn ids_column(
        &self,
        col: &ColumnSlot,
        array: &dyn Array,
        dst: &mut Vec<u32>,
        origin: RowOrigin,
        report: &mut LoadReport,
    ) -> Result<()> {
        // Ids stay below `NO_ID` (u32::MAX), which marks an empty list position.
        let (min, max) = col.schema.int_domain().unwrap_or((0, i64::from(NO_ID - 1)));
        let max = i128::from(max.min(i64::from(NO_ID - 1)));
        let min = i128::from(min.max(0));
        let mut out_of_range = Offenders::default();
        let mut nulls = Offenders::default();
        dst.reserve(array.len());
        for_each_int(array, |row, v| match v {
            Some(v) if (min..=max).contains(&v) => dst.push(v as u32),
            Some(v) => {
                out_of_range.note(row, || v.to_string());
                dst.push(0);
            }
            None => {
                nulls.note(row, String::new);
                dst.push(0);
            }
        })
        .map_err(|dt| self.unsupported(col, dt))?;
        self.id_offenders(
            col,
            "rows",
            "",
            (min, max),
            out_of_range,
            nulls,
            origin,
            report,
        )
    }

    /// Decodes a list column into its `width` position buffers (`NO_ID` past each row's
    /// length). A null list is empty; elements are checked like scalar ids (range and nulls,
    /// under the same [`IdPolicy`]); a row longer than the width is an error.
    fn id_lists_column(
        &self,
        col: &ColumnSlot,
        array: &dyn Array,
        dst: &mut [Vec<u32>],
        origin: RowOrigin,
        report: &mut LoadReport,
    ) -> Result<()> {
        let name = &col.schema.name;
        let (offsets, values): (Vec<usize>, &dyn Array) = match array.data_type() {
            DataType::List(_) => {
                let list = array.as_list::<i32>();
                let offsets = list.value_offsets().iter().map(|&o| o as usize).collect();
                (offsets, list.values().as_ref())
            }
            DataType::LargeList(_) => {
                let list = array.as_list::<i64>();
                let offsets = list.value_offsets().iter().map(|&o| o as usize).collect();
                (offsets, list.values().as_ref())
            }
            DataType::FixedSizeList(_, size) => {
                let list = array.as_fixed_size_list();
                // A sliced fixed-size list slices its values too: offsets start at 0.
                let size = (*size).max(0) as usize;
                let offsets = (0..=list.len()).map(|r| r * size).collect();
                (offsets, list.values().as_ref())
            }
            other => return Err(self.unsupported(col, other.clone())),
        };
        let mut elements: Vec<Option<i128>> = Vec::with_capacity(values.len());
        for_each_int(values, |_, v| elements.push(v)).map_err(|dt| self.unsupported(col, dt))?;
        // The largest id a list may hold: its domain's max, below the empty-position marker.
        let (min, max) = col.schema.int_domain().unwrap_or((0, i64::from(NO_ID - 1)));
        let max = i128::from(max.min(i64::from(NO_ID - 1)));
        let min = i128::from(min.max(0));
        let (mut out_of_range, mut nulls) = (Offenders::default(), Offenders::default());
        let width = dst.len();
        for buffer in dst.iter_mut() {
            buffer.reserve(array.len());
        }
        for row in 0..array.len() {
            let (start, end) = if array.is_null(row) {
                (0, 0)
            } else {
                (offsets[row], offsets[row + 1])
            };
            if end - start > width {
                return Err(Error::column(
                    self.file,
                    name,
                    format!(
                        "{} holds {} ids, more than the schema's value_count.max {width}; raise \
                         value_count.max in the schema, or truncate the lists when \
                         preprocessing",
                        origin.describe(row),
                        end - start
                    ),
                ));
            }
            for (k, buffer) in dst.iter_mut().enumerate() {
                let id = match elements.get(start + k).filter(|_| start + k < end) {
                    None => NO_ID,
                    Some(Some(v)) if (min..=max).contains(v) => *v as u32,
                    Some(Some(v)) => {
                        out_of_range.note(row, || v.to_string());
                        0
                    }
                    Some(None) => {
                        nulls.note(row, String::new);
                        0
                    }
                };
                buffer.push(id);
            }
        }
        let note = " (a null list, as opposed to a null element, is read as empty)";
        self.id_offenders(
            col,
            "list elements",
            note,
            (min, max),
            out_of_range,
            nulls,
            origin,
            report,
        )
    }

    /// Under [`IdPolicy::Error`], an error for the first out-of-domain or null id of `col`
    /// (`unit`: what holds the ids, `note`: appended to the null message); otherwise the
    /// repairs go into `report`.
    #[allow(clippy::too_many_arguments)]
    fn id_offenders(
        &self,
        col: &ColumnSlot,
        unit: &str,
        note: &str,
        (min, max): (i128, i128),
        out_of_range: Offenders,
        nulls: Offenders,
        origin: RowOrigin,
        report: &mut LoadReport,
    ) -> Result<()> {
        let name = &col.schema.name;
        if self.ids == IdPolicy::Error {
            if let Some((row, value)) = &out_of_range.first {
                return Err(Error::column(
                    self.file,
                    name,
                    format!(
                        "{} {unit} hold ids outside [{min}, {max}] (the schema's domain); first at {}: {value}. \
                         Fix the data or the schema's domain max, or load with IdPolicy::MapToOov \
                         to map them to the out-of-vocabulary index 0",
                        out_of_range.count,
                        origin.describe(*row)
                    ),
                ));
            }
            if let Some((row, _)) = &nulls.first {
                return Err(Error::column(
                    self.file,
                    name,
                    format!(
                        "{} {unit} hold null ids; first at {}. Fill them in the data, or load with \
                         IdPolicy::MapToOov to map them to the out-of-vocabulary index 0{note}",
                        nulls.count,
                        origin.describe(*row)
                    ),
                ));
            }
        }
        let rep = report.column(name);
        rep.out_of_range_ids += out_of_range.count;
        rep.null_ids += nulls.count;
        Ok(())
    }

    /// Decodes a float column; returns the rows to drop (null / non-finite).
    fn floats_column(
        &self,
        col: &ColumnSlot,
        array: &dyn Array,
        dst: &mut Vec<f32>,
        origin: RowOrigin,
    ) -> Result<Vec<usize>> {
        let binary = col.is_binary_target();
        let mut missing = Offenders::default();
        let mut not_binary = Offenders::default();
        let mut too_large = Offenders::default();
        let mut bad_rows = Vec::new();
        dst.reserve(array.len());
        for_each_f64(array, |row, v| match v {
            // Checked after the conversion: a finite f64 can overflow f32.
            Some(v) if v.is_finite() && !(v as f32).is_finite() => {
                too_large.note(row, || crate::error::number(v));
                bad_rows.push(row);
                dst.push(f32::NAN);
            }
            Some(v) if v.is_finite() => {
                if binary && !(0.0..=1.0).contains(&v) {
                    not_binary.note(row, || v.to_string());
                }
                dst.push(v as f32);
            }
            other => {
                missing.note(row, || {
                    other
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "null".into())
                });
                bad_rows.push(row);
                dst.push(f32::NAN);
            }
        })
        .map_err(|dt| self.unsupported(col, dt))?;
        let name = &col.schema.name;
        if let Some((row, value)) = &too_large.first {
            return Err(Error::column(
                self.file,
                name,
                format!(
                    "{} rows hold values beyond the float32 range (±3.4e38) training computes \
                     in; first at {}: {value}. Rescale the column (e.g. log1p or standardise) \
                     before training",
                    too_large.count,
                    origin.describe(*row)
                ),
            ));
        }
        if let Some((row, value)) = &not_binary.first {
            return Err(Error::column(
                self.file,
                name,
                format!(
                    "{} rows of this binary target lie outside [0, 1]; first at {}: {value}. \
                     Binary targets hold 0/1 labels (or probabilities); tag the column \
                     `regression` or `multi_class` if it is not binary",
                    not_binary.count,
                    origin.describe(*row)
                ),
            ));
        }
        if let (NullPolicy::Error, Some((row, value))) = (self.nulls, &missing.first) {
            let what = if col.is_target() { "target" } else { "value" };
            return Err(Error::column(
                self.file,
                name,
                format!(
                    "{} rows have a null or non-finite {what}; first at {}: {value}. \
                     Fill them in the data, or load with NullPolicy::DropRows to drop those rows",
                    missing.count,
                    origin.describe(*row)
                ),
            ));
        }
        Ok(bad_rows)
    }

    fn unsupported(&self, col: &ColumnSlot, dt: DataType) -> Error {
        Error::column(
            self.file,
            &col.schema.name,
            format!("cannot decode Arrow type {dt}"),
        )
    }
}

fn visit<T: ArrowPrimitiveType, V>(
    array: &PrimitiveArray<T>,
    conv: impl Fn(T::Native) -> V,
    mut f: impl FnMut(usize, Option<V>),
) {
    let values = array.values();
    match array.nulls().filter(|n| n.null_count() > 0) {
        None => values
            .iter()
            .enumerate()
            .for_each(|(i, v)| f(i, Some(conv(*v)))),
        Some(nulls) => values
            .iter()
            .enumerate()
            .for_each(|(i, v)| f(i, nulls.is_valid(i).then(|| conv(*v)))),
    }
}

/// Calls `f(row, value)` for every element of an integer array; `Err` with the type otherwise.
/// Every value of an integer column, widened without loss (u64 ids beyond i64 included).
fn for_each_int(array: &dyn Array, f: impl FnMut(usize, Option<i128>)) -> Result<(), DataType> {
    match array.data_type() {
        DataType::Int8 => visit(array.as_primitive::<Int8Type>(), i128::from, f),
        DataType::Int16 => visit(array.as_primitive::<Int16Type>(), i128::from, f),
        DataType::Int32 => visit(array.as_primitive::<Int32Type>(), i128::from, f),
        DataType::Int64 => visit(array.as_primitive::<Int64Type>(), i128::from, f),
        DataType::UInt8 => visit(array.as_primitive::<UInt8Type>(), i128::from, f),
        DataType::UInt16 => visit(array.as_primitive::<UInt16Type>(), i128::from, f),
        DataType::UInt32 => visit(array.as_primitive::<UInt32Type>(), i128::from, f),
        DataType::UInt64 => visit(array.as_primitive::<UInt64Type>(), i128::from, f),
        other => return Err(other.clone()),
    }
    Ok(())
}

/// Calls `f(row, value)` for every element of a numeric or boolean array.
fn for_each_f64(array: &dyn Array, mut f: impl FnMut(usize, Option<f64>)) -> Result<(), DataType> {
    match array.data_type() {
        DataType::Float32 => visit(array.as_primitive::<Float32Type>(), f64::from, f),
        DataType::Float64 => visit(array.as_primitive::<Float64Type>(), |v| v, f),
        DataType::Float16 => visit(array.as_primitive::<Float16Type>(), |v| v.to_f64(), f),
        DataType::Boolean => {
            let b = array.as_boolean();
            (0..b.len())
                .for_each(|i| f(i, b.is_valid(i).then(|| if b.value(i) { 1.0 } else { 0.0 })))
        }
        _ => for_each_int(array, |i, v| f(i, v.map(|v| v as f64)))?,
    }
    Ok(())
}
