//! Real-world column layouts: the Ali-CCP and AliExpress samples (torch-rechub's, in
//! `data/`) preprocess from their CSVs and train for one epoch. The samples are tiny; the point
//! is that numeric column names (`101`, `109_14`), already-split files and many continuous
//! columns work end to end.

use std::path::Path;

use mtl::data::Dataset;
use mtl::prelude::*;
use mtl::preprocess::{check_schema_matches, CsvOptions, Input, PreprocessConfig, Role, Target};
use mtl::schema::{Schema, Tag};

mtl_model! {
    /// ESMM's data with an MMoE body: click and purchase.
    pub struct AliCcp {
        schema: "tests/fixtures/ali-ccp/schema.json",
        body: mmoe(experts = 2, expert = mlp[8]),
        tasks: { click: binary(metrics = [auc, logloss]), purchase: binary(metrics = [auc, logloss]) },
    }
}

mtl_model! {
    /// AliExpress: click and conversion, shared bottom.
    pub struct AliExpress {
        schema: "tests/fixtures/aliexpress/schema.json",
        body: mlp[16],
        tasks: { click: binary(metrics = [auc, logloss]), conversion: binary(metrics = [auc, logloss]) },
    }
}

fn csv(dir: &str, file: &str) -> Input {
    Input::csv(
        Path::new("data").join(dir).join(file),
        CsvOptions::default(),
    )
}

/// Trains one epoch and returns the test report.
fn one_epoch<M>(out: &Path) -> Report
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    let train = Dataset::open(out.join("train")).unwrap();
    let test = Dataset::open(out.join("test")).unwrap();
    let config = TrainConfig::default()
        .with_epochs(1)
        .with_batch_size(16)
        .with_seed(3);
    let mut trainer = Trainer::<M>::new(Cpu::default(), config).unwrap();
    let history = trainer.fit(&train, None).unwrap();
    assert_eq!(history.epochs.len(), 1);
    assert!(history.epochs[0].train.get("loss").unwrap().is_finite());
    trainer.evaluate(&test).unwrap()
}

#[test]
fn ali_ccp_sample_preprocesses_and_trains() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ali-ccp");
    let dense = [
        "D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853",
    ];
    let report = PreprocessConfig::new()
        .continuous(&dense)
        .others(Role::Categorical)
        .target(Target::binary("click"))
        .target(Target::binary("purchase"))
        .run_files(
            &csv("ali-ccp", "ali_ccp_train_sample.csv"),
            &[
                ("valid", &csv("ali-ccp", "ali_ccp_val_sample.csv")),
                ("test", &csv("ali-ccp", "ali_ccp_test_sample.csv")),
            ],
            &out,
        )
        .unwrap();
    let rows: Vec<u64> = report.splits.iter().map(|s| s.rows).collect();
    assert_eq!(rows, [100, 50, 50]);
    assert_eq!(report.split("train").unwrap().target_sums["click"], 7.0);
    assert_eq!(report.split("train").unwrap().target_sums["purchase"], 1.0);
    // 23 sparse fields named by number, 8 dense, 2 targets.
    assert_eq!(report.schema.select_by_tag(&[Tag::Categorical]).len(), 23);
    assert_eq!(report.schema.select_by_tag(&[Tag::Continuous]).len(), 8);
    assert!(report
        .schema
        .get("109_14")
        .unwrap()
        .has_tag(&Tag::Categorical));
    // Item ids of the validation/test files were mostly unseen in the 100 training rows.
    assert!(report.split("test").unwrap().oov["205"] > 0);
    let fixture = Schema::from_file("tests/fixtures/ali-ccp/schema.json").unwrap();
    check_schema_matches(&fixture, &report.schema, "fixture").unwrap();

    let test = one_epoch::<AliCcp>(&out);
    for name in ["click/binary_output/auc", "purchase/binary_output/logloss"] {
        let v = test.get(name).unwrap();
        assert!(v.is_finite(), "{name}: {v}");
    }
}

#[test]
fn aliexpress_sample_preprocesses_and_trains() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("aliexpress");
    let numerical: Vec<String> = (1..=63).map(|i| format!("numerical_{i}")).collect();
    let report = PreprocessConfig::new()
        .drop(&["search_id"])
        .continuous(&numerical)
        .others(Role::Categorical)
        .target(Target::binary("click"))
        .target(Target::binary("conversion"))
        .run_files(
            &csv("aliexpress", "aliexpress_train_sample.csv"),
            &[("test", &csv("aliexpress", "aliexpress_test_sample.csv"))],
            &out,
        )
        .unwrap();
    let rows: Vec<u64> = report.splits.iter().map(|s| s.rows).collect();
    assert_eq!(rows, [100, 20]);
    assert_eq!(report.split("train").unwrap().target_sums["click"], 60.0);
    assert_eq!(report.schema.select_by_tag(&[Tag::Categorical]).len(), 16);
    assert_eq!(report.schema.select_by_tag(&[Tag::Continuous]).len(), 63);
    assert!(!report.schema.contains("search_id"));
    let fixture = Schema::from_file("tests/fixtures/aliexpress/schema.json").unwrap();
    check_schema_matches(&fixture, &report.schema, "fixture").unwrap();
    assert_eq!(AliExpress::INPUT_WIDTH, 16 * 8 + 63);

    let test = one_epoch::<AliExpress>(&out);
    for name in ["click/binary_output/auc", "conversion/binary_output/auc"] {
        let v = test.get(name).unwrap();
        assert!(v.is_finite() && (0.0..=1.0).contains(&v), "{name}: {v}");
    }
}
