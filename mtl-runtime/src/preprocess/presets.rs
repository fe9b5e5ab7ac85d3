//! Ready-made configurations for public datasets whose raw layout is fixed.
//!
//! [`census_income_kdd`]: the UCI Census-Income (KDD) files (`census-income.data/.test`, 42
//! unnamed comma-separated columns with a leading space, `?` for missing) as the MMoE paper's
//! group-1 benchmark uses them: tasks `income` (> 50K) and `marital` (never married).

use super::csv_reader::CsvOptions;
use super::pipeline::{PreprocessConfig, Role};
use super::split::Split;
use super::targets::Target;

/// The 42 columns of the raw UCI Census-Income (KDD) files, in order (the names keras-mmoe
/// and DeepCTR use).
pub const CENSUS_INCOME_COLUMNS: [&str; 42] = [
    "age",
    "class_worker",
    "det_ind_code",
    "det_occ_code",
    "education",
    "wage_per_hour",
    "hs_college",
    "marital_stat",
    "major_ind_code",
    "major_occ_code",
    "race",
    "hisp_origin",
    "sex",
    "union_member",
    "unemp_reason",
    "full_or_part_emp",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
    "tax_filer_stat",
    "region_prev_res",
    "state_prev_res",
    "det_hh_fam_stat",
    "det_hh_summ",
    "instance_weight",
    "mig_chg_msa",
    "mig_chg_reg",
    "mig_move_reg",
    "mig_same",
    "mig_prev_sunbelt",
    "num_emp",
    "fam_under_18",
    "country_father",
    "country_mother",
    "country_self",
    "citizenship",
    "own_or_self",
    "vet_question",
    "vet_benefits",
    "weeks_worked",
    "year",
    "income_50k",
];

/// The numeric columns read as continuous features (the other 33 inputs are categorical,
/// including the numeric industry/occupation codes, `year` and `own_or_self`).
pub const CENSUS_INCOME_CONTINUOUS: [&str; 7] = [
    "age",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
    "num_emp",
    "weeks_worked",
];

/// The heavy-tailed amounts among them, normalised after `log1p`.
pub const CENSUS_INCOME_LOG1P: [&str; 4] = [
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
];

/// Reading options and roles for a raw Census-Income file.
///
/// - targets `income` = (`income_50k` == `50000+.`) and `marital` = (`marital_stat` ==
///   `Never married`); `marital_stat` is thereby dropped from the inputs;
/// - `instance_weight` is kept as an untagged weight column, never a feature (the UCI notes
///   say it "should not be used in classifiers");
/// - `?` is null (so it maps to id 0 with the out-of-vocabulary values); "Not in universe" is a
///   real category;
/// - split train/valid/test 0.70/0.15/0.15 with `seed`.
pub fn census_income_kdd(min_frequency: u64, seed: u64) -> (CsvOptions, PreprocessConfig) {
    let csv = CsvOptions::default()
        .with_names(&CENSUS_INCOME_COLUMNS)
        .with_null_markers(&["", "?"]);
    let config = PreprocessConfig::new()
        .continuous(&CENSUS_INCOME_CONTINUOUS)
        .log1p(&CENSUS_INCOME_LOG1P)
        .weight(&["instance_weight"])
        .others(Role::Categorical)
        .target(Target::equals("income", "income_50k", "50000+."))
        .target(Target::equals("marital", "marital_stat", "Never married"))
        .min_frequency(min_frequency)
        .split(Split::train_valid_test(0.70, 0.15, 0.15, seed));
    (csv, config)
}

/// The same for DeepCTR's `census-income.sample`, whose first field is a row index into the
/// UCI train file (dropped).
pub fn census_income_kdd_deepctr_sample(
    min_frequency: u64,
    seed: u64,
) -> (CsvOptions, PreprocessConfig) {
    let (csv, config) = census_income_kdd(min_frequency, seed);
    let mut names = vec!["row_index".to_string()];
    names.extend(CENSUS_INCOME_COLUMNS.iter().map(|c| c.to_string()));
    (csv.with_names(&names), config.drop(&["row_index"]))
}
