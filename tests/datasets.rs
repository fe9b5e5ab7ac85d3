//! Loading datasets: Merlin-written directories, Parquet/IPC files, validation errors, batches.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float32Array, Float64Array, Int64Array, Int8Array, RecordBatch, StringArray,
};
use mtl::data::{
    BatchOptions, BatchSource, ColumnValues, Dataset, IdPolicy, LoadOptions, NullPolicy,
    StreamingDataset, WriteOptions,
};
use mtl::schema::{ColumnSchema, DType, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

const MERLIN_VALID: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/merlin-tenrec-video/valid"
);

fn sum_ids(ds: &Dataset, c: &str) -> u64 {
    ds.ids(c).unwrap().iter().map(|&v| u64::from(v)).sum()
}

fn sum_floats(ds: &Dataset, c: &str) -> f64 {
    ds.floats(c).unwrap().iter().map(|&v| f64::from(v)).sum()
}

#[test]
fn merlin_written_directory_loads_with_its_schema() {
    // _metadata, _metadata.json, _file_list.txt, schema.pbtxt and .merlin/ sit beside the part.
    let ds = Dataset::open(MERLIN_VALID).unwrap();
    assert_eq!(ds.num_rows(), 20_000);
    assert_eq!(ds.schema().len(), 10);
    assert!(ds.report().is_clean());
    // Checked against pyarrow on the same file.
    assert_eq!(&ds.ids("user_id").unwrap()[..3], &[39, 14, 18]);
    assert_eq!(&ds.floats("watching_times").unwrap()[..3], &[4.0, 3.0, 1.0]);
    assert_eq!(sum_ids(&ds, "user_id"), 654_417);
    assert_eq!(sum_ids(&ds, "item_id"), 645_880);
    assert_eq!(sum_ids(&ds, "age"), 20_277);
    assert_eq!(sum_floats(&ds, "click"), 9_942.0);
    assert_eq!(sum_floats(&ds, "share"), 9_918.0);
    assert_eq!(sum_floats(&ds, "watching_times"), 39_952.0);
    let head = ds.head(2).to_string();
    assert!(
        head.contains("user_id") && head.lines().count() == 4,
        "{head}"
    );
}

#[test]
fn a_single_file_and_a_column_selection_load() {
    let file = Path::new(MERLIN_VALID).join("part_0.parquet");
    let ds = Dataset::open_with(
        &file,
        &LoadOptions::default().with_columns(["click", "user_id"]),
    )
    .unwrap();
    assert_eq!(ds.schema().column_names(), ["click", "user_id"]);
    assert_eq!(sum_ids(&ds, "user_id"), 654_417);
    let err =
        Dataset::open_with(&file, &LoadOptions::default().with_columns(["clik"])).unwrap_err();
    assert!(err.to_string().contains("`clik`"), "{err}");
}

fn small_schema() -> Schema {
    Schema::new([
        ColumnSchema::new("user_id")
            .with_tags(["categorical", "user_id"])
            .unwrap()
            .with_dtype(DType::Int64)
            .with_int_domain(0, 9, Some("user_id")),
        ColumnSchema::new("price")
            .with_tags(["continuous"])
            .unwrap()
            .with_dtype(DType::Float32),
        ColumnSchema::new("click")
            .with_tags(["binary_classification", "target"])
            .unwrap()
            .with_dtype(DType::Int8),
    ])
    .unwrap()
}

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, row_group: usize) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group))
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn good_columns(offset: i64, n: usize) -> Vec<(&'static str, ArrayRef)> {
    vec![
        (
            "user_id",
            Arc::new(Int64Array::from_iter_values(
                (0..n as i64).map(|i| (i + offset) % 10),
            )) as ArrayRef,
        ),
        (
            "price",
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| i as f64 * 0.5),
            )),
        ),
        (
            "click",
            Arc::new(Int8Array::from_iter_values((0..n).map(|i| (i % 2) as i8))),
        ),
    ]
}

/// A directory in the layout Spark / Dask / NVTabular write, schema.json beside the parts.
fn spark_like_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write_parquet(&p.join("part_10.parquet"), good_columns(3, 5), 2);
    write_parquet(&p.join("part_2.parquet"), good_columns(1, 7), 3);
    std::fs::create_dir(p.join("nested")).unwrap();
    write_parquet(
        &p.join("nested/part-0000.snappy.parquet"),
        good_columns(5, 4),
        4,
    );
    std::fs::write(p.join("_SUCCESS"), "").unwrap();
    std::fs::write(p.join("_metadata"), "not parquet, ignored").unwrap();
    std::fs::write(p.join(".part_2.parquet.crc"), "ignored").unwrap();
    std::fs::write(p.join("README.txt"), "not data, ignored").unwrap();
    small_schema().write_json(p.join("schema.json")).unwrap();
    dir
}

#[test]
fn part_directories_skip_hidden_files_and_read_parts_in_natural_order() {
    let dir = spark_like_dir();
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(ds.num_rows(), 16);
    // nested/ sorts before part_2, part_2 before part_10.
    let users = ds.ids("user_id").unwrap();
    assert_eq!(&users[..4], &[5, 6, 7, 8]);
    assert_eq!(&users[4..11], &[1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(&users[11..], &[3, 4, 5, 6, 7]);
}

#[test]
fn arrow_ipc_files_load_in_memory_and_streaming() {
    let dir = spark_like_dir();
    let ds = Dataset::open(dir.path()).unwrap();
    let ipc = dir.path().join("data.arrow");
    ds.write_arrow_ipc(&ipc, 5).unwrap();
    let back =
        Dataset::open_with(&ipc, &LoadOptions::default().with_schema(small_schema())).unwrap();
    assert_eq!(back.ids("user_id"), ds.ids("user_id"));
    assert_eq!(back.floats("price"), ds.floats("price"));
    let stream =
        StreamingDataset::open_with(&ipc, &LoadOptions::default().with_schema(small_schema()))
            .unwrap();
    let mut batches = stream.batches(BatchOptions::sequential(6), 0).unwrap();
    let mut seen = Vec::new();
    while let Some(b) = batches.next_batch().unwrap() {
        seen.extend_from_slice(b.ids("user_id").unwrap());
    }
    assert_eq!(seen, ds.ids("user_id").unwrap());
}

#[test]
fn written_parquet_round_trips_with_schema_dtypes() {
    let dir = spark_like_dir();
    let ds = Dataset::open(dir.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    ds.write_parquet(
        out.path(),
        &WriteOptions {
            rows_per_file: Some(6),
            row_group_rows: 4,
        },
    )
    .unwrap();
    assert!(
        out.path().join("part_2.parquet").exists() && !out.path().join("part_3.parquet").exists()
    );
    let back = Dataset::open(out.path()).unwrap();
    assert_eq!(back.schema(), ds.schema());
    assert_eq!(back.ids("user_id"), ds.ids("user_id"));
    assert_eq!(back.floats("click"), ds.floats("click"));
    let file = parquet::file::reader::SerializedFileReader::new(
        std::fs::File::open(out.path().join("part_0.parquet")).unwrap(),
    )
    .unwrap();
    use parquet::file::reader::FileReader;
    let schema = file.metadata().file_metadata().schema_descr();
    assert_eq!(schema.column(2).name(), "click");
    assert_eq!(
        file.metadata().num_row_groups(),
        2,
        "6 rows in row groups of 4"
    );
}

// ---------------------------------------------------------------- validation errors

fn one_file(columns: Vec<(&str, ArrayRef)>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.parquet");
    write_parquet(&path, columns, 1024);
    small_schema()
        .write_json(dir.path().join("schema.json"))
        .unwrap();
    (dir, path)
}

fn load_err(path: &Path, options: &LoadOptions) -> String {
    Dataset::open_with(path, options).unwrap_err().to_string()
}

#[test]
fn a_missing_column_names_column_and_file() {
    let mut cols = good_columns(0, 4);
    cols.remove(1);
    let (_d, path) = one_file(cols);
    let e = load_err(&path, &LoadOptions::default());
    assert!(
        e.contains("data.parquet")
            && e.contains("column `price`")
            && e.contains("not in this file"),
        "{e}"
    );
}

#[test]
fn a_wrong_type_names_column_expected_and_found() {
    let mut cols = good_columns(0, 4);
    cols[0].1 = Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0, 4.0]));
    let (_d, path) = one_file(cols);
    let e = load_err(&path, &LoadOptions::default());
    assert!(
        e.contains("data.parquet")
            && e.contains("column `user_id`")
            && e.contains("expected integer ids")
            && e.contains("Float32"),
        "{e}"
    );

    let mut cols = good_columns(0, 4);
    cols[1].1 = Arc::new(StringArray::from(vec!["a", "b", "c", "d"]));
    let (_d, path) = one_file(cols);
    let e = load_err(&path, &LoadOptions::default());
    assert!(
        e.contains("column `price`") && e.contains("expected numbers") && e.contains("Utf8"),
        "{e}"
    );
}

#[test]
fn out_of_range_ids_are_an_error_with_count_first_row_and_value() {
    let mut cols = good_columns(0, 6);
    cols[0].1 = Arc::new(Int64Array::from(vec![1, 2, 12, 3, -1, 10]));
    let (_d, path) = one_file(cols);
    let e = load_err(&path, &LoadOptions::default());
    assert!(
        e.contains("data.parquet") && e.contains("column `user_id`"),
        "{e}"
    );
    assert!(
        e.contains("3 rows hold ids outside [0, 9]") && e.contains("row 2 (0-based): 12"),
        "{e}"
    );

    let ds = Dataset::open_with(
        &path,
        &LoadOptions::default().with_id_policy(IdPolicy::MapToOov),
    )
    .unwrap();
    assert_eq!(ds.ids("user_id").unwrap(), &[1, 2, 0, 3, 0, 0]);
    assert_eq!(ds.report().columns["user_id"].out_of_range_ids, 3);
    assert!(ds
        .report()
        .to_string()
        .contains("3 out-of-range ids mapped to 0"));
}

#[test]
fn null_ids_follow_the_id_policy() {
    let mut cols = good_columns(0, 4);
    cols[0].1 = Arc::new(Int64Array::from(vec![Some(1), None, Some(2), None]));
    let (_d, path) = one_file(cols);
    let e = load_err(&path, &LoadOptions::default());
    assert!(
        e.contains("column `user_id`") && e.contains("2 rows hold null ids") && e.contains("row 1"),
        "{e}"
    );
    let ds = Dataset::open_with(
        &path,
        &LoadOptions::default().with_id_policy(IdPolicy::MapToOov),
    )
    .unwrap();
    assert_eq!(ds.ids("user_id").unwrap(), &[1, 0, 2, 0]);
    assert_eq!(ds.report().columns["user_id"].null_ids, 2);
}

#[test]
fn null_targets_and_values_are_never_turned_into_numbers() {
    let mut cols = good_columns(0, 5);
    cols[2].1 = Arc::new(Int8Array::from(vec![Some(1), Some(0), None, Some(1), None]));
    cols[1].1 = Arc::new(Float64Array::from(vec![1.0, f64::NAN, 2.0, 3.0, 4.0]));
    let (_d, path) = one_file(cols);
    let e = load_err(&path, &LoadOptions::default());
    assert!(
        e.contains("column `price`")
            && e.contains("1 rows have a null or non-finite value")
            && e.contains("row 1 (0-based): NaN"),
        "{e}"
    );

    let ds = Dataset::open_with(
        &path,
        &LoadOptions::default().with_null_policy(NullPolicy::DropRows),
    )
    .unwrap();
    assert_eq!(ds.num_rows(), 2, "rows 1, 2 and 4 dropped");
    assert_eq!(ds.floats("price").unwrap(), &[1.0, 3.0]);
    assert_eq!(ds.ids("user_id").unwrap(), &[0, 3]);
    assert_eq!(ds.report().dropped_rows, 3);
    assert_eq!(ds.report().columns["click"].dropped_rows, 2);
    assert_eq!(ds.report().columns["price"].dropped_rows, 1);

    let mut cols = good_columns(0, 3);
    cols[2].1 = Arc::new(Int8Array::from(vec![Some(1), None, Some(0)]));
    let (_d, path) = one_file(cols);
    let e = load_err(&path, &LoadOptions::default());
    assert!(
        e.contains("column `click`") && e.contains("null or non-finite target"),
        "{e}"
    );
}

#[test]
fn binary_targets_outside_zero_one_are_an_error() {
    let mut cols = good_columns(0, 3);
    cols[2].1 = Arc::new(Int8Array::from(vec![1, 2, 0]));
    let (_d, path) = one_file(cols);
    let e = load_err(&path, &LoadOptions::default());
    assert!(
        e.contains("column `click`")
            && e.contains("outside [0, 1]")
            && e.contains("row 1 (0-based): 2"),
        "{e}"
    );
}

#[test]
fn a_corrupt_part_is_an_error_not_skipped() {
    let dir = spark_like_dir();
    std::fs::write(dir.path().join("part_3.parquet"), "garbage").unwrap();
    let e = Dataset::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("part_3.parquet") && e.contains("corrupt"), "{e}");
    let e = Dataset::open(dir.path().join("README.txt"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("README.txt") && e.contains("not a Parquet file"),
        "{e}"
    );
    let empty = tempfile::tempdir().unwrap();
    let e = Dataset::open(empty.path()).unwrap_err().to_string();
    assert!(e.contains("no Parquet or Arrow IPC files"), "{e}");
}

#[test]
fn without_a_schema_file_loading_says_how_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&dir.path().join("x.parquet"), good_columns(0, 2), 8);
    let e = Dataset::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("no schema.json"), "{e}");
}

#[test]
fn string_and_list_schema_columns_are_rejected_with_a_fix() {
    let schema = small_schema()
        .union(&Schema::new([ColumnSchema::new("title").with_dtype(DType::String)]).unwrap());
    let e = Dataset::open_with(MERLIN_VALID, &LoadOptions::default().with_schema(schema))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`title`") && e.contains("strings"), "{e}");
}

// ---------------------------------------------------------------- batches

fn numbered(n: usize) -> Dataset {
    let schema = Schema::new([
        ColumnSchema::new("row")
            .with_tags(["categorical"])
            .unwrap()
            .with_dtype(DType::Int32)
            .with_int_domain(0, n as i64, None),
        ColumnSchema::new("twice").with_dtype(DType::Float32),
    ])
    .unwrap();
    Dataset::from_columns(
        schema,
        vec![
            ("row".into(), ColumnValues::Ids((0..n as u32).collect())),
            (
                "twice".into(),
                ColumnValues::Floats((0..n).map(|i| 2.0 * i as f32).collect()),
            ),
        ],
    )
    .unwrap()
}

fn epoch_rows(ds: &Dataset, opts: BatchOptions, epoch: u64) -> Vec<Vec<u32>> {
    let mut it = ds.batches(opts, epoch).unwrap();
    let mut out = Vec::new();
    while let Some(b) = it.next() {
        // Rows stay aligned across columns.
        for (r, t) in b.ids("row").unwrap().iter().zip(b.floats("twice").unwrap()) {
            assert_eq!(2.0 * *r as f32, *t);
        }
        out.push(b.ids("row").unwrap().to_vec());
    }
    out
}

#[test]
fn sequential_batches_keep_order_and_sizes() {
    let ds = numbered(10);
    let batches = epoch_rows(&ds, BatchOptions::sequential(4), 0);
    assert_eq!(
        batches,
        vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]
    );
    let dropped = epoch_rows(&ds, BatchOptions::sequential(4).with_drop_last(true), 0);
    assert_eq!(dropped.len(), 2);
    assert_eq!(
        ds.batches(BatchOptions::sequential(4), 0)
            .unwrap()
            .num_batches(),
        3
    );
    assert!(ds.batches(BatchOptions::sequential(0), 0).is_err());
}

#[test]
fn shuffling_is_a_reproducible_permutation_per_epoch() {
    let ds = numbered(1000);
    let opts = BatchOptions::new(64).with_seed(7);
    let a = epoch_rows(&ds, opts, 0);
    assert_eq!(
        a,
        epoch_rows(&ds, opts, 0),
        "same seed and epoch, same order"
    );
    assert_ne!(a, epoch_rows(&ds, opts, 1), "another epoch, another order");
    assert_ne!(
        a,
        epoch_rows(&ds, opts.with_seed(8), 0),
        "another seed, another order"
    );
    let mut all: Vec<u32> = a.concat();
    assert_ne!(all, (0..1000).collect::<Vec<_>>(), "shuffled");
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<_>>(), "every row exactly once");
    assert_eq!(
        a.iter().map(Vec::len).collect::<HashSet<_>>(),
        HashSet::from([64, 1000 % 64])
    );
}

#[test]
fn splits_are_contiguous_like_merlin() {
    let ds = numbered(11);
    let parts = ds.split(&[0.8, 0.2]).unwrap();
    assert_eq!(parts[0].ids("row").unwrap(), &[0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(
        parts[1].ids("row").unwrap(),
        &[8, 9],
        "int(11*0.2)=2, the leftover row is dropped"
    );
    assert!(ds.split(&[0.8, 0.3]).is_err());
}

// ---------------------------------------------------------------- streaming

fn streamed_dir(rows: usize, row_group: usize) -> (tempfile::TempDir, Dataset) {
    let ds = numbered(rows);
    let dir = tempfile::tempdir().unwrap();
    ds.write_parquet(
        dir.path(),
        &WriteOptions {
            rows_per_file: Some(rows / 3 + 1),
            row_group_rows: row_group,
        },
    )
    .unwrap();
    (dir, ds)
}

#[test]
fn streaming_sequential_matches_in_memory_order() {
    let (dir, ds) = streamed_dir(5_000, 300);
    let stream = StreamingDataset::open(dir.path()).unwrap();
    let mut it = stream.batches(BatchOptions::sequential(512), 0).unwrap();
    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    while let Some(b) = it.next_batch().unwrap() {
        rows.extend_from_slice(b.ids("row").unwrap());
        sizes.push(b.len());
    }
    assert_eq!(rows, ds.ids("row").unwrap());
    assert!(sizes[..sizes.len() - 1].iter().all(|&s| s == 512));
}

#[test]
fn streaming_shuffle_is_reproducible_complete_and_memory_bounded() {
    let rows = 60_000;
    let (dir, _) = streamed_dir(rows, 1_000);
    let buffer = 4_096;
    let stream = StreamingDataset::open(dir.path())
        .unwrap()
        .with_shuffle_buffer_rows(buffer);
    assert_eq!(stream.max_chunk_rows(), Some(1_000));
    let run = |epoch| {
        let mut it = stream
            .batches(BatchOptions::new(512).with_seed(3), epoch)
            .unwrap();
        let mut seen = Vec::new();
        while let Some(b) = it.next_batch().unwrap() {
            seen.extend_from_slice(b.ids("row").unwrap());
        }
        (seen, it.peak_resident_rows())
    };
    let (a, peak) = run(0);
    assert_eq!(a, run(0).0, "reproducible");
    assert_ne!(a, run(1).0, "epochs differ");
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..rows as u32).collect::<Vec<_>>(),
        "every row exactly once"
    );
    // Displacement: rows travel far from their file position (it is a real shuffle).
    let moved = a
        .iter()
        .enumerate()
        .filter(|(i, &r)| (*i as i64 - r as i64).abs() > 1_000)
        .count();
    assert!(moved > rows / 2, "{moved}");
    // The memory bound: never more than the buffer plus one row group decoded at once,
    // for a dataset 15x larger than the buffer.
    assert!(peak <= buffer + 1_000, "peak {peak}");
    assert!(peak >= buffer, "the buffer was used: {peak}");

    let small = StreamingDataset::open(dir.path())
        .unwrap()
        .with_shuffle_buffer_rows(100);
    assert!(
        small.batches(BatchOptions::new(512), 0).is_err(),
        "buffer smaller than a batch"
    );
}

#[test]
fn streaming_reports_bad_values_with_the_file_row() {
    let mut cols = good_columns(0, 6);
    cols[0].1 = Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 99]));
    let (_d, path) = one_file(cols);
    let stream = StreamingDataset::open(&path).unwrap();
    let mut it = stream.batches(BatchOptions::sequential(2), 0).unwrap();
    let e = loop {
        match it.next_batch() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the bad id was not reported"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        e.contains("column `user_id`") && e.contains("row 5 (0-based): 99"),
        "{e}"
    );
}

#[test]
fn part_shares_are_disjoint_and_need_enough_parts() {
    // Three parts (1667 + 1667 + 1666 rows): shares 0 and 1 of 2 are parts {0, 2} and {1}.
    let (dir, ds) = streamed_dir(5_000, 300);
    let share = |i| Dataset::open_with(dir.path(), &LoadOptions::default().with_part_share(i, 2));
    let (a, b) = (share(0).unwrap(), share(1).unwrap());
    assert_eq!(a.files().len(), 2);
    assert_eq!(b.files().len(), 1);
    let mut rows: Vec<u32> = a.ids("row").unwrap().to_vec();
    rows.extend_from_slice(b.ids("row").unwrap());
    rows.sort_unstable();
    let mut all = ds.ids("row").unwrap().to_vec();
    all.sort_unstable();
    assert_eq!(rows, all, "every row once");
    // Four processes for three parts: an error that says what to do.
    let err = Dataset::open_with(dir.path(), &LoadOptions::default().with_part_share(0, 4))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("3 part(s)") && err.contains("rows_per_file"),
        "{err}"
    );
}
