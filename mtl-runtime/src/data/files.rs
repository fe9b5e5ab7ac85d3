//! Finding the data files of a dataset and reading them chunk by chunk.
//!
//! A dataset path is a single Parquet or Arrow IPC file, or a directory of part files as Merlin,
//! NVTabular, Spark, Dask, pyarrow or DataFusion write them. In a directory, names starting with
//! `_` or `.` (`_metadata`, `_SUCCESS`, `.crc` files, `.merlin/`) are skipped, files are
//! recognised by their magic bytes (`PAR1`, `ARROW1`), sub-directories are walked, and parts
//! are read in natural name order (`part_2` before `part_10`). A file named `.parquet` /
//! `.arrow` that is not one is an error, never silently skipped.
//!
//! A *chunk* is the unit read at once: a Parquet row group or an Arrow IPC record batch.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;

use super::layout::{ColumnKind, Layout};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
enum Format {
    Parquet(ArrowReaderMetadata),
    Ipc,
}

/// One data file.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub path: PathBuf,
    format: Format,
    arrow_schema: SchemaRef,
}

/// One unit of reading: a Parquet row group or an IPC record batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk {
    pub part: usize,
    pub index: usize,
    /// Rows in the chunk, when the file's metadata says so (Parquet).
    pub rows: Option<usize>,
    /// Index of the chunk's first row within its file, when known (Parquet).
    pub first_row: Option<u64>,
}

/// The files of a dataset.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// Where the schema file is looked for: the directory given, or a file's parent.
    pub schema_dir: PathBuf,
    pub parts: Vec<Part>,
    pub chunks: Vec<Chunk>,
}

const PARQUET_EXT: [&str; 3] = ["parquet", "parq", "pq"];
const IPC_EXT: [&str; 3] = ["arrow", "ipc", "feather"];

impl Source {
    pub fn open(path: &Path) -> Result<Source> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let (schema_dir, files) = if meta.is_dir() {
            let mut files = Vec::new();
            collect_files(path, &mut files)?;
            if files.is_empty() {
                return Err(Error::file(
                    path,
                    "the directory holds no Parquet or Arrow IPC files",
                ));
            }
            (path.to_path_buf(), files)
        } else {
            let kind = sniff(path)?.ok_or_else(|| {
                Error::file(
                    path,
                    "not a Parquet file (no PAR1 magic) nor an Arrow IPC file (no ARROW1 magic)",
                )
            })?;
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            (dir, vec![(path.to_path_buf(), kind)])
        };
        let mut parts = Vec::new();
        let mut chunks = Vec::new();
        for (file, kind) in files {
            let part = Part::open(file, kind)?;
            match &part.format {
                Format::Parquet(meta) => {
                    let mut first_row = 0u64;
                    for (index, rg) in meta.metadata().row_groups().iter().enumerate() {
                        let rows = rg.num_rows().max(0) as usize;
                        chunks.push(Chunk {
                            part: parts.len(),
                            index,
                            rows: Some(rows),
                            first_row: Some(first_row),
                        });
                        first_row += rows as u64;
                    }
                }
                Format::Ipc => {
                    let reader = part.ipc_reader(None)?;
                    for index in 0..reader.num_batches() {
                        chunks.push(Chunk {
                            part: parts.len(),
                            index,
                            rows: None,
                            first_row: None,
                        });
                    }
                }
            }
            parts.push(part);
        }
        Ok(Source {
            schema_dir,
            parts,
            chunks,
        })
    }

    /// Total rows, when every file's metadata says so.
    pub fn num_rows(&self) -> Option<u64> {
        self.chunks.iter().map(|c| c.rows.map(|r| r as u64)).sum()
    }

    /// Checks that every column of `layout` is in every file with a type it can decode.
    pub fn check_types(&self, layout: &Layout) -> Result<()> {
        for part in &self.parts {
            // A name twice in one file is ambiguous: which one the schema means is unknowable.
            let fields = part.arrow_schema.fields();
            for (i, f) in fields.iter().enumerate() {
                if fields[..i].iter().any(|g| g.name() == f.name()) {
                    return Err(Error::column(
                        &part.path,
                        f.name(),
                        "appears twice in this file; rename or drop one of the two columns",
                    ));
                }
            }
            for col in layout.columns() {
                let name = &col.schema.name;
                let Ok(field) = part.arrow_schema.field_with_name(name) else {
                    let have: Vec<&str> = part
                        .arrow_schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect();
                    return Err(Error::column(
                        &part.path,
                        name,
                        format!(
                            "is in the schema but not in this file (the file has: {}); \
                             add the column or remove it from the schema",
                            have.join(", ")
                        ),
                    ));
                };
                let dt = field.data_type();
                let ok = match col.kind {
                    ColumnKind::Ids => dt.is_integer(),
                    ColumnKind::IdLists => match dt {
                        DataType::List(f) | DataType::LargeList(f) => f.data_type().is_integer(),
                        DataType::FixedSizeList(f, _) => f.data_type().is_integer(),
                        _ => false,
                    },
                    ColumnKind::Floats => {
                        dt.is_integer() || dt.is_floating() || *dt == DataType::Boolean
                    }
                };
                if !ok {
                    let expected = match col.kind {
                        ColumnKind::Ids => "integer ids (int8/16/32/64 or uint8/16/32/64)",
                        ColumnKind::IdLists => {
                            "lists of integer ids (list, large_list or fixed_size_list of int8/16/32/64 or uint8/16/32/64)"
                        }
                        ColumnKind::Floats => "numbers (int8/16/32/64, float16/32/64 or bool)",
                    };
                    return Err(Error::column(
                        &part.path,
                        name,
                        format!(
                            "expected {expected} as the schema's {} column says, found {dt}",
                            col.schema.dtype
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads one chunk, keeping only `columns`. Parquet may return several record batches.
    pub fn read_chunk(&self, chunk: &Chunk, columns: &[&str]) -> Result<Vec<RecordBatch>> {
        self.chunk_slices(chunk, columns, chunk.rows.unwrap_or(8192).max(1))?
            .collect()
    }

    /// Reads one chunk lazily, `slice_rows` rows at a time (Parquet; an Arrow IPC chunk is one
    /// record batch), keeping only `columns`: a reader never holds more of a huge row group
    /// than one slice.
    pub fn chunk_slices(
        &self,
        chunk: &Chunk,
        columns: &[&str],
        slice_rows: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>> {
        let part = &self.parts[chunk.part];
        let indices: Vec<usize> = columns
            .iter()
            .filter_map(|c| part.arrow_schema.index_of(c).ok())
            .collect();
        let decode_err = |e: &dyn std::fmt::Display| {
            Error::file(
                &part.path,
                format!("cannot decode chunk {} of this file: {e}", chunk.index),
            )
        };
        match &part.format {
            Format::Parquet(meta) => {
                let file = File::open(&part.path).map_err(|e| Error::io(&part.path, e))?;
                let mask =
                    ProjectionMask::roots(meta.metadata().file_metadata().schema_descr(), indices);
                let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
                    .with_row_groups(vec![chunk.index])
                    .with_projection(mask)
                    .with_batch_size(slice_rows.max(1))
                    .build()
                    .map_err(|e| decode_err(&e))?;
                let (path, index) = (part.path.clone(), chunk.index);
                Ok(Box::new(reader.map(move |b| {
                    b.map_err(|e| {
                        Error::file(
                            &path,
                            format!("cannot decode chunk {index} of this file: {e}"),
                        )
                    })
                })))
            }
            Format::Ipc => {
                let mut reader = part.ipc_reader(Some(indices))?;
                reader.set_index(chunk.index).map_err(|e| decode_err(&e))?;
                let batch = match reader.next() {
                    Some(batch) => vec![batch.map_err(|e| decode_err(&e))],
                    None => Vec::new(),
                };
                Ok(Box::new(batch.into_iter()))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Parquet,
    Ipc,
}

impl Part {
    fn open(path: PathBuf, kind: Kind) -> Result<Part> {
        match kind {
            Kind::Parquet => {
                let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                let meta =
                    ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| {
                        Error::file(&path, format!("cannot read the Parquet footer: {e}"))
                    })?;
                let arrow_schema = meta.schema().clone();
                Ok(Part {
                    path,
                    format: Format::Parquet(meta),
                    arrow_schema,
                })
            }
            Kind::Ipc => {
                let mut part = Part {
                    path,
                    format: Format::Ipc,
                    arrow_schema: Arc::new(arrow_schema::Schema::empty()),
                };
                part.arrow_schema = part.ipc_reader(None)?.schema();
                Ok(part)
            }
        }
    }

    fn ipc_reader(
        &self,
        projection: Option<Vec<usize>>,
    ) -> Result<arrow_ipc::reader::FileReader<std::io::BufReader<File>>> {
        let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        arrow_ipc::reader::FileReader::try_new_buffered(file, projection)
            .map_err(|e| Error::file(&self.path, format!("cannot read the Arrow IPC file: {e}")))
    }
}

/// The kind of a file from its magic bytes; `None` for anything else.
fn sniff(path: &Path) -> Result<Option<Kind>> {
    let mut magic = [0u8; 6];
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let n = file.read(&mut magic).map_err(|e| Error::io(path, e))?;
    Ok(if n >= 4 && &magic[..4] == b"PAR1" {
        Some(Kind::Parquet)
    } else if n == 6 && &magic == b"ARROW1" {
        Some(Kind::Ipc)
    } else {
        None
    })
}

/// The Parquet files `path` names: itself, or those under the directory `path` in the order
/// datasets read them (natural name order, `_`/`.` entries skipped, subdirectories
/// included). For readers of raw Parquet (preprocessing, scoring) to agree with `Dataset`.
pub(crate) fn parquet_parts(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    collect_files(path, &mut files)?;
    let parts: Vec<PathBuf> = files
        .into_iter()
        .filter(|(_, kind)| *kind == Kind::Parquet)
        .map(|(p, _)| p)
        .collect();
    if parts.is_empty() {
        return Err(Error::file(path, "the directory holds no Parquet files"));
    }
    Ok(parts)
}

fn collect_files(dir: &Path, out: &mut Vec<(PathBuf, Kind)>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| Error::io(dir, e)))
        .collect::<Result<_>>()?;
    entries.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out)?;
            continue;
        }
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let claimed = if PARQUET_EXT.contains(&ext.as_str()) {
            Some(Kind::Parquet)
        } else if IPC_EXT.contains(&ext.as_str()) {
            Some(Kind::Ipc)
        } else {
            None
        };
        match (claimed, sniff(&path)?) {
            (_, Some(kind)) => out.push((path, kind)),
            (Some(kind), None) => {
                return Err(Error::file(
                    &path,
                    format!(
                        "named like {} file but its first bytes are not the format's magic; \
                         it is corrupt or truncated (remove it or fix the writer)",
                        if kind == Kind::Parquet {
                            "a Parquet"
                        } else {
                            "an Arrow IPC"
                        }
                    ),
                ))
            }
            (None, None) => {} // schema files, _file_list.txt, checksums, ...
        }
    }
    Ok(())
}

/// Compares names so that runs of digits compare by value (`part_2` < `part_10`).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&a[..na], &b[..nb]);
                let strip = |d: &[u8]| {
                    let z = d.iter().take_while(|c| **c == b'0').count();
                    d[z..].to_vec()
                };
                let (sa, sb) = (strip(da), strip(db));
                let ord = sa
                    .len()
                    .cmp(&sb.len())
                    .then_with(|| sa.cmp(&sb))
                    .then(na.cmp(&nb));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;

    #[test]
    fn natural_order_compares_digit_runs_by_value() {
        let mut names = vec![
            "part_10.parquet",
            "part_2.parquet",
            "part_1.parquet",
            "part_02.parquet",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "part_1.parquet",
                "part_2.parquet",
                "part_02.parquet",
                "part_10.parquet"
            ]
        );
    }
}
