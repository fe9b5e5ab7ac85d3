//! Which schema columns a dataset decodes, and into what.
//!
//! Training needs two kinds of column: categorical ids (indices into embedding tables, `u32`)
//! and numbers (continuous features, targets, weights, anything else numeric, `f32`). The
//! [`Layout`] fixes, once per dataset, the kind and storage slot of every loaded column so that
//! batches can hand out `&[u32]` / `&[f32]` slices without per-row work.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::schema::{ColumnSchema, DType, Schema, Tag};

/// How a column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Categorical ids (`CATEGORICAL` tag), checked against `[0, domain.max]`.
    Ids,
    /// Any other numeric column: continuous features, targets, weights.
    Floats,
}

/// One decoded column: its schema, kind and the index of its buffer among columns of that kind.
#[derive(Debug, Clone)]
pub struct ColumnSlot {
    pub schema: ColumnSchema,
    pub kind: ColumnKind,
    pub slot: usize,
}

impl ColumnSlot {
    /// The largest valid id of an id column (`domain.max`), if the schema states one.
    pub fn max_id(&self) -> Option<i64> {
        self.schema.int_domain().map(|(_, max)| max)
    }

    /// Whether values must lie in `[0, 1]` (binary targets; soft labels allowed).
    pub(crate) fn is_binary_target(&self) -> bool {
        let t = &self.schema.tags;
        t.contains(&Tag::Target)
            && (t.contains(&Tag::Binary) || t.contains(&Tag::BinaryClassification))
    }

    pub(crate) fn is_target(&self) -> bool {
        self.schema.tags.contains(&Tag::Target)
    }
}

/// The loaded columns of a dataset, in schema order.
#[derive(Debug, Clone)]
pub struct Layout {
    columns: Vec<ColumnSlot>,
    by_name: HashMap<String, usize>,
    n_ids: usize,
    n_floats: usize,
}

impl Layout {
    /// Decides the kind of every column of `schema`; columns that cannot be trained on as they
    /// are (strings, lists) are errors that say what to do.
    pub fn new(schema: &Schema) -> Result<Layout> {
        let mut layout = Layout {
            columns: Vec::new(),
            by_name: HashMap::new(),
            n_ids: 0,
            n_floats: 0,
        };
        for c in schema {
            if c.is_list() {
                return Err(Error::invalid(format!(
                    "column `{}` is a list column; list features are not supported yet: \
                     drop it with schema.without(&[\"{}\"])",
                    c.name, c.name
                )));
            }
            let kind = if c.tags.contains(&Tag::Categorical) {
                if c.dtype.is_float() || c.dtype == DType::String {
                    return Err(Error::invalid(format!(
                        "column `{}` is tagged categorical but its dtype is {}: categorical \
                         columns must hold integer ids (encode it first, e.g. with Categorify)",
                        c.name, c.dtype
                    )));
                }
                ColumnKind::Ids
            } else if c.dtype == DType::String {
                return Err(Error::invalid(format!(
                    "column `{}` holds strings, which cannot be trained on directly: encode it \
                     into integer ids first, or drop it with schema.without(&[\"{}\"])",
                    c.name, c.name
                )));
            } else {
                ColumnKind::Floats
            };
            let slot = match kind {
                ColumnKind::Ids => &mut layout.n_ids,
                ColumnKind::Floats => &mut layout.n_floats,
            };
            layout.by_name.insert(c.name.clone(), layout.columns.len());
            layout.columns.push(ColumnSlot {
                schema: c.clone(),
                kind,
                slot: *slot,
            });
            *slot += 1;
        }
        Ok(layout)
    }

    pub fn columns(&self) -> &[ColumnSlot] {
        &self.columns
    }

    pub fn get(&self, name: &str) -> Option<&ColumnSlot> {
        self.by_name.get(name).map(|&i| &self.columns[i])
    }

    pub fn num_id_columns(&self) -> usize {
        self.n_ids
    }

    pub fn num_float_columns(&self) -> usize {
        self.n_floats
    }

    pub(crate) fn names(&self) -> Vec<&str> {
        self.columns
            .iter()
            .map(|c| c.schema.name.as_str())
            .collect()
    }
}
