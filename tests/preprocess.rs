//! Preprocessing raw tables: CSV edge cases, vocabularies fitted on train only, OOV counts,
//! normalisation statistics, derived targets without leaks, the output schema, and the
//! DeepCTR Census-Income sample end to end (preprocess → load → train → evaluate).

use std::path::{Path, PathBuf};

use mtl::data::Dataset;
use mtl::prelude::*;
use mtl::preprocess::{
    check_schema_matches, presets, CsvOptions, Input, PreprocessConfig, Role, Split, Target,
    Vocabulary,
};
use mtl::schema::{DType, Schema, Tag};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A small table: `city` categorical, `price` continuous, `outcome` a label source.
const RAW: &str = "\
city,price,outcome,segment
\"Paris, FR\",10,buy,a
 Berlin ,20,skip,b
Paris,?,buy,a
\"He said \"\"hi\"\"\",40 ,skip,?
Berlin,50,buy,b
";

fn config() -> PreprocessConfig {
    PreprocessConfig::new()
        .categorical(&["city", "segment"])
        .continuous(&["price"])
        .target(Target::equals("bought", "outcome", "buy"))
}

fn csv() -> CsvOptions {
    CsvOptions::default().with_null_markers(&["", "?"])
}

#[test]
fn csv_quotes_question_mark_nulls_and_trailing_spaces() {
    let dir = tempfile::tempdir().unwrap();
    let input = Input::csv(write(dir.path(), "raw.csv", RAW), csv());
    let fitted = config().fit(&input).unwrap();
    let city = fitted.vocabulary("city").unwrap();
    // Quoted delimiter and escaped quotes survive; " Berlin " is trimmed to "Berlin".
    assert_eq!(
        city.values,
        ["Berlin", "He said \"hi\"", "Paris", "Paris, FR"]
    );
    assert_eq!(city.counts, [2, 1, 1, 1]);
    let segment = fitted.vocabulary("segment").unwrap();
    assert_eq!(segment.values, ["a", "b"], "`?` is a null, not a category");
    assert_eq!(segment.zero_count, 1);
    // `?` in a continuous column is a null too, "40 " a number after trimming.
    let price = fitted.normalizer("price").unwrap();
    assert_eq!((price.count, price.nulls), (4, 1));
    assert_eq!(price.mean, 30.0);

    // Without trimming, " Berlin " and "40 " are kept as they are: "40 " is not a number.
    let untrimmed = Input::csv(dir.path().join("raw.csv"), csv().with_trim(false));
    let err = config().fit(&untrimmed).unwrap_err().to_string();
    assert!(
        err.contains("raw.csv:5: column `price`: `40 ` is not a finite number"),
        "{err}"
    );
}

#[test]
fn ragged_rows_and_bad_numbers_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let ragged = "city,price,outcome,segment\nParis,1,buy,a\nBerlin,2,buy\n";
    let input = Input::csv(write(dir.path(), "ragged.csv", ragged), csv());
    let err = config().fit(&input).unwrap_err().to_string();
    assert!(
        err.contains("ragged.csv:3: expected 4 fields (as many as the header), found 3"),
        "{err}"
    );

    // A quoted field spanning lines: the error gives the line the bad record starts on.
    let multiline = "city,price,outcome,segment\n\"Par\nis\",1,buy,a\nBerlin,lots,buy,b\n";
    let input = Input::csv(write(dir.path(), "bad.csv", multiline), csv());
    let err = config().fit(&input).unwrap_err().to_string();
    assert!(
        err.contains("bad.csv:4: column `price`: `lots` is not a finite number"),
        "{err}"
    );

    // Given names (no header) that do not match the field count.
    let input = Input::csv(
        write(dir.path(), "noheader.csv", "Paris,1,buy,a\n"),
        csv().with_names(&["city", "price", "outcome"]),
    );
    let err = PreprocessConfig::new()
        .categorical(&["city"])
        .continuous(&["price"])
        .target(Target::equals("bought", "outcome", "buy"))
        .fit(&input)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "noheader.csv:1: expected 3 fields (as many as the column names given), found 4"
        ),
        "{err}"
    );

    // A target that cannot be read, and a column without a role.
    let input = Input::csv(write(dir.path(), "ok.csv", RAW), csv());
    let err = config()
        .target(Target::binary("price"))
        .run(&input, dir.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ok.csv:2: column `price`: `10` is not 0 or 1"),
        "{err}"
    );
    let err = PreprocessConfig::new()
        .categorical(&["city"])
        .target(Target::equals("bought", "outcome", "buy"))
        .fit(&input)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("columns without a role: price, segment"),
        "{err}"
    );
}

#[test]
fn vocabulary_is_fitted_on_train_only_and_unseen_values_count_as_oov() {
    let dir = tempfile::tempdir().unwrap();
    let train = write(
        dir.path(),
        "train.csv",
        "city,price,outcome,segment\nParis,1,buy,a\nParis,2,skip,a\nBerlin,3,buy,b\nRome,4,buy,a\n",
    );
    let valid = write(
        dir.path(),
        "valid.csv",
        // Another column order, an unseen city twice, a null segment.
        "segment,outcome,price,city\na,buy,1,Oslo\n,skip,2,Paris\nb,buy,3,Oslo\n",
    );
    let out = dir.path().join("out");
    let report = config()
        .min_frequency_for("city", 2)
        .run_files(
            &Input::csv(&train, csv()),
            &[("valid", &Input::csv(&valid, csv()))],
            &out,
        )
        .unwrap();
    // Only Paris reaches the threshold in train; Berlin and Rome (once each) map to 0.
    let city =
        Vocabulary::read_parquet(&out.join("categories/unique.city.parquet"), "city").unwrap();
    assert_eq!(city.values, ["Paris"]);
    assert_eq!(city.zero_count, 2);
    assert_eq!(report.split("train").unwrap().oov["city"], 2);
    let v = report.split("valid").unwrap();
    assert_eq!(v.oov["city"], 2, "Oslo, unseen in train");
    assert_eq!(v.nulls["segment"], 1);
    assert!(!v.oov.contains_key("segment"));
    let valid_ds = Dataset::open(out.join("valid")).unwrap();
    assert_eq!(valid_ds.ids("city").unwrap(), [0, 1, 0]);
    assert_eq!(valid_ds.ids("segment").unwrap(), [1, 0, 2]);

    // A single table with a seeded split: the vocabulary counts exactly the train rows.
    let rows: String = (0..400)
        .map(|i| {
            format!(
                "c{},{},{},s{}\n",
                i % 37,
                i,
                if i % 3 == 0 { "buy" } else { "x" },
                i % 5
            )
        })
        .collect();
    let table = write(
        dir.path(),
        "table.csv",
        &format!("city,price,outcome,segment\n{rows}"),
    );
    let split = Split::train_valid_test(0.6, 0.2, 0.2, 11);
    let cfg = config().split(split.clone());
    let report = cfg
        .run(&Input::csv(&table, csv()), dir.path().join("split"))
        .unwrap();
    let train_rows = report.split("train").unwrap().rows;
    assert!(train_rows > 200 && train_rows < 280, "{train_rows}");
    let total: u64 = report.splits.iter().map(|s| s.rows).sum();
    assert_eq!(total, 400);
    let city = Vocabulary::read_parquet(
        &dir.path().join("split/categories/unique.city.parquet"),
        "city",
    )
    .unwrap();
    assert_eq!(
        city.counts.iter().sum::<u64>() + city.zero_count,
        train_rows
    );
    // Same seed, same split; another seed, another split.
    let again = cfg
        .run(&Input::csv(&table, csv()), dir.path().join("again"))
        .unwrap();
    assert_eq!(
        again.split("valid").unwrap().rows,
        report.split("valid").unwrap().rows
    );
    let other = config()
        .split(Split { seed: 12, ..split })
        .run(&Input::csv(&table, csv()), dir.path().join("other"))
        .unwrap();
    let price = |dir: &str| {
        Dataset::open(dir)
            .unwrap()
            .floats("price")
            .unwrap()
            .to_vec()
    };
    let base = dir.path().join("split/train");
    assert_ne!(
        price(other.split("train").unwrap().dir.to_str().unwrap()),
        price(base.to_str().unwrap())
    );
}

#[test]
fn normalize_uses_train_statistics_and_log1p() {
    let dir = tempfile::tempdir().unwrap();
    let train = write(
        dir.path(),
        "train.csv",
        "x,y,label\n1,0,1\n2,1,0\n3,,1\n6,e,0\n",
    );
    let test = write(dir.path(), "test.csv", "x,y,label\n9,0,1\n");
    let out = dir.path().join("out");
    let cfg = PreprocessConfig::new()
        .continuous(&["x", "y"])
        .log1p(&["x"])
        .fill("y", 10.0)
        .target(Target::binary("label"));
    let bad = cfg
        .clone()
        .run(&Input::csv(&train, csv()), &out)
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("train.csv:5: column `y`: `e` is not a finite number"),
        "{bad}"
    );

    std::fs::write(&train, "x,y,label\n1,0,1\n2,1,0\n3,,1\n6,2,0\n").unwrap();
    cfg.run_files(
        &Input::csv(&train, csv()),
        &[("test", &Input::csv(&test, csv()))],
        &out,
    )
    .unwrap();
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    let logs: Vec<f64> = [1.0f64, 2.0, 3.0, 6.0].iter().map(|x| x.ln_1p()).collect();
    let mean = logs.iter().sum::<f64>() / 4.0;
    let std = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    let x = &stats["normalize"]["x"];
    assert!((x["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((x["std"].as_f64().unwrap() - std).abs() < 1e-12);
    // y: mean 1 and std 1 over 0, 1, 2; the null filled with raw 10 → (10 - 1) / 1.
    assert_eq!(stats["normalize"]["y"]["mean"], 1.0);
    let train_ds = Dataset::open(out.join("train")).unwrap();
    assert_eq!(train_ds.floats("y").unwrap(), [-1.0, 0.0, 9.0, 1.0]);
    let xs = train_ds.floats("x").unwrap();
    let m = xs.iter().map(|&v| f64::from(v)).sum::<f64>() / 4.0;
    assert!(
        m.abs() < 1e-6,
        "train mean of a normalised column is 0, got {m}"
    );
    // The test row is normalised with the train statistics, not its own.
    let test_ds = Dataset::open(out.join("test")).unwrap();
    let want = ((9.0f64.ln_1p() - mean) / std) as f32;
    assert!((test_ds.floats("x").unwrap()[0] - want).abs() < 1e-6);
}

#[test]
fn derived_targets_drop_their_source_from_the_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let input = Input::csv(write(dir.path(), "raw.csv", RAW), csv());
    let out = dir.path().join("out");
    // `outcome` would be categorical through `others`, but `bought` is derived from it.
    let report = PreprocessConfig::new()
        .continuous(&["price"])
        .others(Role::Categorical)
        .target(Target::equals("bought", "outcome", "buy"))
        .run(&input, &out)
        .unwrap();
    assert_eq!(report.leak_dropped, ["outcome"]);
    assert!(!report.schema.contains("outcome"));
    assert_eq!(
        report.schema.column_names(),
        ["city", "price", "segment", "bought"]
    );
    let ds = Dataset::open(out.join("train")).unwrap();
    assert_eq!(ds.floats("bought").unwrap(), [1.0, 0.0, 1.0, 0.0, 1.0]);
    assert_eq!(report.split("train").unwrap().target_sums["bought"], 3.0);

    // A threshold target on an input column: the column is dropped even though it was
    // explicitly asked for as continuous, and the label is `price > 25`.
    let no_null_price = RAW.replace(",?,buy", ",30,buy");
    let input = Input::csv(write(dir.path(), "prices.csv", &no_null_price), csv());
    let report = PreprocessConfig::new()
        .continuous(&["price"])
        .categorical(&["city", "segment"])
        .drop(&["outcome"])
        .target(Target::above("expensive", "price", 25.0))
        .run(&input, dir.path().join("out2"))
        .unwrap();
    assert_eq!(report.leak_dropped, ["price"]);
    assert_eq!(
        report.schema.column_names(),
        ["city", "segment", "expensive"]
    );
    let ds = Dataset::open(dir.path().join("out2/train")).unwrap();
    assert_eq!(ds.floats("expensive").unwrap(), [0.0, 0.0, 1.0, 1.0, 1.0]);

    // A null cannot give a label: an error naming the line, never a silent 0.
    let err = PreprocessConfig::new()
        .categorical(&["city", "segment", "outcome"])
        .target(Target::above("expensive", "price", 25.0))
        .run(
            &Input::csv(dir.path().join("raw.csv"), csv()),
            dir.path().join("out3"),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "raw.csv:4: column `price`: the target `expensive` cannot be read from a null"
        ),
        "{err}"
    );
}

#[test]
fn output_schema_has_merlin_tags_domains_and_dtypes() {
    let dir = tempfile::tempdir().unwrap();
    let input = Input::csv(write(dir.path(), "raw.csv", RAW), csv());
    let out = dir.path().join("out");
    let report = config().run(&input, &out).unwrap();
    let schema = Schema::from_dir(out.join("train")).unwrap();
    assert_eq!(schema, report.schema, "schema.json reloads identically");
    let city = schema.get("city").unwrap();
    assert!(city.has_tag(&Tag::Categorical));
    assert_eq!(city.dtype, DType::Int32);
    assert_eq!(city.int_domain(), Some((0, 4)));
    assert_eq!(city.table_name(), "city");
    assert_eq!(city.cardinality(), Some(5), "4 values + the OOV/null id 0");
    assert_eq!(city.start_index(), Some(1.0));
    assert_eq!(
        city.properties["cat_path"],
        ".//categories/unique.city.parquet"
    );
    let price = schema.get("price").unwrap();
    assert!(price.has_tag(&Tag::Continuous) && price.dtype == DType::Float32);
    let bought = schema.get("bought").unwrap();
    assert!(bought.has_tag(&Tag::Target) && bought.has_tag(&Tag::BinaryClassification));
    assert_eq!(
        (bought.dtype, bought.int_domain()),
        (DType::Int8, Some((0, 1)))
    );
    let ds = Dataset::open(out.join("train")).unwrap();
    assert_eq!(ds.num_rows(), 5);
    // Frequency order, ties by value: Berlin 1, `He said "hi"` 2, Paris 3, `Paris, FR` 4.
    assert_eq!(ds.ids("city").unwrap(), [4, 1, 3, 2, 1]);
    assert!(out.join("categories/unique.city.parquet").is_file());
    assert!(out.join("categories/unique.segment.parquet").is_file());
    let regression = PreprocessConfig::new()
        .categorical(&["city", "segment", "outcome"])
        .target(Target::regression("price"))
        .run(&Input::csv(input.path(), csv()), dir.path().join("reg"));
    // A null regression target is an error with its line.
    assert!(regression
        .unwrap_err()
        .to_string()
        .contains("raw.csv:4: column `price`"));
}

mtl_model! {
    /// A small shared-bottom model over the schema of the preprocessed DeepCTR sample.
    pub struct CensusSample {
        schema: "tests/fixtures/census-income-sample/schema.json",
        body: mlp[16],
        tasks: { income: binary(metrics = [auc]), marital: binary(metrics = [auc]) },
    }
}

#[test]
fn deepctr_census_sample_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("census");
    // The same settings as `examples/preprocess.rs --preset census-income-sample`, which
    // wrote the fixture schema the model above is compiled against.
    let (csv, config) = presets::census_income_kdd_deepctr_sample(2, 2024);
    let input = Input::csv("data/census-income-kdd/deepctr_census-income.sample", csv);
    let report = config.run(&input, &out).unwrap();
    assert_eq!(report.splits.iter().map(|s| s.rows).sum::<u64>(), 200);
    assert_eq!(report.leak_dropped, ["marital_stat", "income_50k"]);
    assert_eq!(report.dropped, ["row_index"]);
    let compiled = Schema::from_file("tests/fixtures/census-income-sample/schema.json").unwrap();
    check_schema_matches(&compiled, &report.schema, "fixture").unwrap();
    let inst = report.schema.get("instance_weight").unwrap();
    assert!(inst.tags.is_empty(), "the weight column is not a feature");
    assert!(!CensusSample::spec()
        .features
        .iter()
        .any(|f| f.name == "instance_weight"));
    assert!(!CensusSample::spec()
        .features
        .iter()
        .any(|f| f.name == "marital_stat"));

    let train = Dataset::open(out.join("train")).unwrap();
    let valid = Dataset::open(out.join("valid")).unwrap();
    let test = Dataset::open(out.join("test")).unwrap();
    let config = TrainConfig::default()
        .with_epochs(3)
        .with_batch_size(32)
        .with_seed(1)
        .with_early_stopping(EarlyStopping::on("loss", 1));
    let mut trainer = Trainer::<CensusSample>::new(Cpu::default(), config).unwrap();
    let history = trainer.fit(&train, Some(&valid)).unwrap();
    assert!(history
        .epochs
        .iter()
        .all(|e| e.train.get("loss").unwrap().is_finite()));
    let report = trainer.evaluate(&test).unwrap();
    for task in ["income", "marital"] {
        let auc = report.get(&format!("{task}/binary_output/auc")).unwrap();
        assert!(
            auc.is_finite() && (0.0..=1.0).contains(&auc),
            "{task}: {auc}"
        );
    }

    // A schema that does not match (another frequency threshold) is refused with a reason.
    let (csv, config) = presets::census_income_kdd_deepctr_sample(1, 2024);
    let other = config
        .fit(&Input::csv(
            "data/census-income-kdd/deepctr_census-income.sample",
            csv,
        ))
        .unwrap();
    let err = check_schema_matches(&compiled, other.schema(), "fixture")
        .unwrap_err()
        .to_string();
    assert!(err.contains("differs from the compiled model's"), "{err}");
}

#[test]
fn raw_parquet_with_strings_nulls_and_booleans() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};

    let dir = tempfile::tempdir().unwrap();
    let city: StringArray = vec![Some("Paris"), None, Some("Berlin"), Some("Paris")].into();
    let code = Int64Array::from(vec![7, 7, 3, 7]);
    let price = Float64Array::from(vec![Some(1.0), Some(3.0), None, Some(5.0)]);
    let click = BooleanArray::from(vec![true, false, false, true]);
    let batch = RecordBatch::try_from_iter([
        ("city", Arc::new(city) as ArrayRef),
        ("code", Arc::new(code) as ArrayRef),
        ("price", Arc::new(price) as ArrayRef),
        ("click", Arc::new(click) as ArrayRef),
    ])
    .unwrap();
    let raw = dir.path().join("raw.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&raw).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let out = dir.path().join("out");
    let report = PreprocessConfig::new()
        .categorical(&["city", "code"])
        .continuous(&["price"])
        .target(Target::binary("click"))
        .run(&Input::from_path(&raw, CsvOptions::default()), &out)
        .unwrap();
    assert_eq!(report.split("train").unwrap().nulls["city"], 1);
    let ds = Dataset::open(out.join("train")).unwrap();
    assert_eq!(ds.ids("city").unwrap(), [1, 0, 2, 1], "Arrow null → id 0");
    assert_eq!(
        ds.ids("code").unwrap(),
        [1, 1, 2, 1],
        "integers are categories too"
    );
    assert_eq!(ds.floats("price").unwrap()[2], 0.0, "null → the mean → 0");
    assert_eq!(ds.floats("click").unwrap(), [1.0, 0.0, 0.0, 1.0]);
}

#[test]
fn one_file_is_split_while_a_separate_test_file_gets_the_same_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..300)
        .map(|i| {
            format!(
                "c{},{},{},s{}\n",
                i % 11,
                i,
                if i % 4 == 0 { "buy" } else { "x" },
                i % 3
            )
        })
        .collect();
    let table = write(
        dir.path(),
        "train.csv",
        &format!("city,price,outcome,segment\n{rows}"),
    );
    // The test file: a city unseen in the training file, in another column order.
    let test = write(
        dir.path(),
        "test.csv",
        "segment,outcome,price,city\ns0,buy,5,c3\ns1,x,7,Atlantis\n",
    );
    let out = dir.path().join("out");
    let cfg = config().split(Split {
        parts: vec![("train".into(), 0.8), ("valid".into(), 0.2)],
        seed: 5,
    });
    let report = cfg
        .run_with_files(
            &Input::csv(&table, csv()),
            &[("test", &Input::csv(&test, csv()))],
            &out,
        )
        .unwrap();
    let names: Vec<&str> = report.splits.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["train", "valid", "test"]);
    assert_eq!(
        report.split("train").unwrap().rows + report.split("valid").unwrap().rows,
        300
    );
    // One vocabulary, fitted on the train split, encodes all three.
    let city =
        Vocabulary::read_parquet(&out.join("categories/unique.city.parquet"), "city").unwrap();
    let test_ds = Dataset::open(out.join("test")).unwrap();
    let c3 = city.values.iter().position(|v| v == "c3").unwrap() as u32 + 1;
    assert_eq!(
        test_ds.ids("city").unwrap(),
        [c3, 0],
        "Atlantis is out of vocabulary"
    );
    assert_eq!(report.split("test").unwrap().oov["city"], 1);
    let schema = |d: &str| Schema::from_dir(out.join(d)).unwrap();
    assert_eq!(schema("train"), schema("test"));
    // A name that repeats a split's is refused before anything is written.
    let err = cfg
        .run_with_files(
            &Input::csv(&table, csv()),
            &[("valid", &Input::csv(&test, csv()))],
            dir.path().join("again"),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("`valid` is named twice"), "{err}");
    assert!(!dir.path().join("again").exists());
}
