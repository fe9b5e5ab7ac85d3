//! Preprocessing raw tables into training data: what NVTabular's `Categorify` + `Normalize`
//! workflow does for Merlin users, for CSV (plain or gzipped) and Parquet input.
//!
//! Raw CSV or Parquet goes in; an encoded Parquet dataset per split with a Merlin-compatible
//! `schema.json` comes out, which [`crate::data::Dataset::open`] loads and the `mtl_model!`
//! DSL's `schema:` reads:
//!
//! - categorical columns get a vocabulary fitted on the training rows only (frequency order,
//!   minimum frequency, id 0 for out-of-vocabulary and null; [`categorify`]), or are hashed
//!   into a fixed number of buckets (`hash_buckets`, [`pipeline::hash_id`]); columns may share
//!   one vocabulary (`shared_vocabulary`);
//! - list columns (`categorical_list`: CSV cells split on a separator, Parquet lists as lists)
//!   encode every value and become Merlin list columns with a `value_count`;
//! - continuous columns are standardised with training statistics, optionally after `log1p`,
//!   nulls filled ([`normalize`]);
//! - targets are taken as they are or derived from raw columns, and a column a target is
//!   derived from is dropped from the inputs so it cannot leak the label ([`targets`]);
//! - one table is split by seeded per-row draws ([`split`]), or already-split files are fitted
//!   on `train` and encoded with the same vocabularies.
//!
//! ```no_run
//! use mtl_runtime::preprocess::{CsvOptions, Input, PreprocessConfig, Role, Split, Target};
//! let input = Input::csv("raw.csv", CsvOptions::default().with_null_markers(&["", "?"]));
//! let report = PreprocessConfig::new()
//!     .continuous(&["age", "price"])
//!     .log1p(&["price"])
//!     .others(Role::Categorical)
//!     .target(Target::equals("bought", "outcome", "purchase"))
//!     .min_frequency(10)
//!     .split(Split::train_valid_test(0.7, 0.15, 0.15, 42))
//!     .run(&input, "data/encoded")?;       // data/encoded/{train,valid,test}/
//! println!("{report}");
//! # Ok::<(), mtl_runtime::Error>(())
//! ```
//!
//! Modules: [`source`] (inputs), `rows` (the row reader every input format implements),
//! [`csv_reader`] (CSV options and parsing), `parquet_reader` (raw Parquet), [`categorify`],
//! [`normalize`], [`targets`], [`split`], [`pipeline`] (roles, fitting, writing, reports),
//! [`presets`] (the Census-Income layout), `staging` (a failed run leaves the previous output
//! whole).

pub mod categorify;
pub mod csv_reader;
pub mod normalize;
pub(crate) mod parquet_reader;
pub mod pipeline;
pub mod presets;
pub(crate) mod rows;
pub mod source;
pub mod split;
mod staging;
pub mod targets;

pub use categorify::{VocabCounter, Vocabulary};
pub use csv_reader::CsvOptions;
pub use normalize::{Normalizer, StatsCounter};
pub use pipeline::{
    hash_id, EncodeReport, Fitted, InferenceEncoder, PreprocessConfig, PreprocessReport, Role,
    SplitReport,
};
pub use source::Input;
pub use split::Split;
pub use targets::{Target, TargetRule};

use crate::error::{Error, Result};
use crate::schema::Schema;

/// Checks that a freshly written schema is the one a model was compiled against: same
/// columns in the same order, with the same tags, dtypes and domains (properties such as
/// `cat_path` may differ). The error names the first difference and how to fix it.
pub fn check_schema_matches(compiled: &Schema, fresh: &Schema, origin: &str) -> Result<()> {
    let fix = "re-generate the committed schema from this preprocessing (and rebuild), or \
               preprocess with the settings the model was compiled with";
    let (a, b) = (compiled.column_names(), fresh.column_names());
    if a != b {
        let first = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        return Err(Error::schema(
            origin,
            format!(
                "the columns differ from the compiled model's at position {first} \
                 (compiled: {:?}, preprocessed: {:?}); {fix}",
                a.get(first),
                b.get(first)
            ),
        ));
    }
    for (x, y) in compiled.columns().iter().zip(fresh.columns()) {
        if x.tags != y.tags || x.dtype != y.dtype || x.domain != y.domain {
            return Err(Error::schema(
                origin,
                format!(
                    "column `{}` differs from the compiled model's (compiled: tags {}, {}, \
                     domain {:?}; preprocessed: tags {}, {}, domain {:?}); {fix}",
                    x.name, x.tags, x.dtype, x.domain, y.tags, y.dtype, y.domain
                ),
            ));
        }
    }
    Ok(())
}
