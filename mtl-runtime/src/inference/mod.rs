//! Scoring with a trained model, without a trainer or labels: [`Predictor`].
//!
//! A predictor holds the network and the embedding tables read from a model file
//! ([`crate::train::Trainer::save_model`]) or a full checkpoint (its optimizer state is
//! skipped), and optionally the fitted preprocessing ([`crate::preprocess::Fitted::load`]) so
//! that it scores raw rows exactly as the training rows were encoded. Scores come under the
//! Merlin output names the model was trained with (`click/binary_output`, ...): probabilities
//! for binary tasks, values for regression, one column per class for multiclass.
//!
//! ```no_run
//! # use mtl_runtime::inference::Predictor;
//! # use mtl_runtime::preprocess::{CsvOptions, Fitted, Input};
//! # fn score<M>() -> mtl_runtime::Result<()>
//! # where M: mtl_runtime::model::MtlModel + mtl_runtime::dfdx::prelude::BuildOnDevice<mtl_runtime::dfdx::prelude::Cpu, f32>,
//! #       M::Built: mtl_runtime::model::TaskNetwork<f32, mtl_runtime::dfdx::prelude::Cpu> + Clone {
//! let predictor = Predictor::<M>::load("out/model.safetensors")?
//!     .with_preprocessing(Fitted::load("out/encoded")?)?;
//! // Raw rows without labels; `request_id` is copied to the output unchanged.
//! let report = predictor.score_file(
//!     &Input::parquet("requests.parquet"), &["request_id"], "scores.parquet")?;
//! println!("{} rows, {} unseen categories", report.rows, report.total_oov());
//! # Ok(()) }
//! ```
//!
//! Files: `mod.rs` (loading, checks, encoded data), `raw` (raw record batches, rows and files).

mod raw;

use std::path::Path;

use dfdx::prelude::*;

use crate::data::Rows;
use crate::error::{Error, Result};
use crate::export::{OnnxExport, OnnxOptions};
use crate::model::{MtlModel, TaskNetwork};
use crate::preprocess::{Fitted, Role};
use crate::spec::{FeatureKind, TaskKind};
use crate::train::{TrainConfig, Trainer};

/// One output column of a predictor: its name and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    /// `<task output name>`, or `<task output name>/<class>` for a multiclass task.
    pub name: String,
    /// The task (DSL key) it belongs to.
    pub task: &'static str,
    /// `"probability"` (binary, multiclass) or `"value"` (regression).
    pub holds: &'static str,
}

/// A trained model ready to score (see the module docs).
pub struct Predictor<M>
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
{
    trainer: Trainer<M, Cpu>,
    fitted: Option<Fitted>,
}

impl<M> Predictor<M>
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    /// Loads a model file or a checkpoint written for this model (the spec, every tensor's
    /// name, dtype and shape, and the checksum are checked); optimizer state is not kept.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut trainer =
            Trainer::<M, Cpu>::build_unfilled(Cpu::default(), TrainConfig::default())?;
        let staged = trainer.stage_file(path)?;
        trainer.apply_weights(staged)?;
        Ok(Predictor {
            trainer,
            fitted: None,
        })
    }

    /// The weights of a trainer (e.g. right after `fit`), without its optimizer state.
    pub fn from_trainer(trainer: &Trainer<M, Cpu>) -> Result<Self> {
        let mut own = Trainer::<M, Cpu>::build_unfilled(Cpu::default(), TrainConfig::default())?;
        own.network = trainer.network.clone();
        own.embeddings = trainer.embeddings.clone();
        Ok(Predictor {
            trainer: own,
            fitted: None,
        })
    }

    /// Scores raw data through `fitted`, the preprocessing the training data went through.
    /// Every model input must be an input column of it with the same kind, and its
    /// vocabulary must fit the model's embedding table.
    pub fn with_preprocessing(mut self, fitted: Fitted) -> Result<Self> {
        let inputs = fitted.input_columns();
        let mut problems = Vec::new();
        for f in M::SPEC.features {
            let want = match f.kind {
                FeatureKind::Categorical => Role::Categorical,
                FeatureKind::Continuous => Role::Continuous,
            };
            match inputs.iter().find(|(name, _)| *name == f.name) {
                None => problems.push(format!(
                    "model input `{}` is not an input column of the preprocessing",
                    f.name
                )),
                Some((_, role)) if *role != want => problems.push(format!(
                    "model input `{}` is {:?} but the preprocessing made it {role:?}",
                    f.name, f.kind
                )),
                Some(_) => {}
            }
            if inputs.iter().any(|(name, _)| *name == f.name)
                && fitted.is_list(f.name) != f.is_list()
            {
                let is = |list: bool| if list { "a list" } else { "a scalar" };
                problems.push(format!(
                    "model input `{}` is {} input but the preprocessing made it {} column",
                    f.name,
                    is(f.is_list()),
                    is(fitted.is_list(f.name))
                ));
            }
            if let Some(n) = fitted.hash_buckets(f.name) {
                if n as usize >= f.cardinality {
                    problems.push(format!(
                        "model input `{}` has {} embedding rows but its ids are hashed into \
                         buckets 1..={n}",
                        f.name, f.cardinality
                    ));
                }
            }
            if let Some(v) = fitted.vocabulary(f.name) {
                if v.max_id() as usize >= f.cardinality {
                    problems.push(format!(
                        "model input `{}` has {} embedding rows but its vocabulary's ids go up \
                         to {}",
                        f.name,
                        f.cardinality,
                        v.max_id()
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::invalid(format!(
                "the preprocessing does not fit model `{}`: {}; load the preprocessing the \
                 model was trained with",
                M::SPEC.name,
                problems.join("; ")
            )));
        }
        self.fitted = Some(fitted);
        Ok(self)
    }

    /// Rows scored per forward pass (default 4096).
    pub fn with_batch_size(mut self, rows: usize) -> Result<Self> {
        if rows == 0 {
            return Err(Error::invalid("the batch size must be at least 1"));
        }
        self.trainer.config.batch_size = rows;
        Ok(self)
    }

    /// The fitted preprocessing, when one was given.
    pub fn preprocessing(&self) -> Option<&Fitted> {
        self.fitted.as_ref()
    }

    /// The output columns, in task order (the columns `score_*` and `predict_to_parquet` add).
    pub fn outputs(&self) -> Vec<OutputColumn> {
        let mut out = Vec::new();
        for t in M::SPEC.tasks {
            match t.kind {
                TaskKind::Multiclass { classes } => {
                    out.extend((0..classes).map(|c| OutputColumn {
                        name: format!("{}/{c}", t.output_name),
                        task: t.name,
                        holds: "probability",
                    }))
                }
                kind => out.push(OutputColumn {
                    name: t.output_name.to_string(),
                    task: t.name,
                    holds: if kind == TaskKind::Regression {
                        "value"
                    } else {
                        "probability"
                    },
                }),
            }
        }
        for t in M::SPEC.chained_tasks() {
            let task = &M::SPEC.tasks[t];
            out.push(OutputColumn {
                name: crate::train::joint_output_name(task.name),
                task: task.name,
                holds: "joint probability",
            });
        }
        out
    }

    /// The raw columns scoring needs: the preprocessing's input columns with a preprocessing,
    /// the model's feature columns (already encoded) without.
    pub fn required_columns(&self) -> Vec<String> {
        match &self.fitted {
            Some(f) => f
                .input_columns()
                .iter()
                .map(|(n, _)| n.to_string())
                .collect(),
            None => M::SPEC
                .features
                .iter()
                .map(|f| f.name.to_string())
                .collect(),
        }
    }

    /// Per task (in spec order), the scores of every row of already-encoded `data`; a
    /// multiclass task's row holds its class probabilities one after another.
    pub fn predict(&self, data: &(impl Rows + ?Sized)) -> Result<Vec<Vec<f32>>> {
        self.trainer.predict(data)
    }

    /// Scores already-encoded `data` into a Parquet file, `keep` columns first (see
    /// [`Trainer::predict_to_parquet`]).
    pub fn predict_to_parquet(
        &self,
        data: &(impl Rows + ?Sized),
        keep: &[&str],
        path: impl AsRef<Path>,
    ) -> Result<()> {
        self.trainer.predict_to_parquet(data, keep, path)
    }

    /// Writes the model as an ONNX graph (see [`crate::export`]): encoded features in, one
    /// output per task under its Merlin output name, dynamic batch.
    pub fn export_onnx(&self, path: impl AsRef<Path>, options: &OnnxOptions) -> Result<OnnxExport> {
        let params = crate::model::named_parameters(&self.trainer.network)
            .map_err(|e| Error::invalid(format!("cannot read the network: {e:?}")))?;
        crate::export::onnx(
            M::SPEC,
            &params,
            &self.trainer.embeddings.tables,
            path.as_ref(),
            options,
        )
    }

    fn fitted(&self, what: &str) -> Result<&Fitted> {
        self.fitted.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "{what} needs the fitted preprocessing: call `with_preprocessing(Fitted::load(\
                 dir)?)` first (for encoded data use `predict`)"
            ))
        })
    }
}
