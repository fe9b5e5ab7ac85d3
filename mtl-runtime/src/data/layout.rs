//! Which schema columns a dataset decodes, and into what.
//!
//! Training needs three kinds of column: categorical ids (indices into embedding tables, `u32`),
//! lists of ids (multi-hot features: a user's recent categories, an item's tags) and numbers
//! (continuous features, targets, weights, anything else numeric, `f32`). The [`Layout`] fixes,
//! once per dataset, the kind and storage slot of every loaded column so that batches can hand
//! out `&[u32]` / `&[f32]` slices without per-row work.
//!
//! A list column is held at a fixed width W, its schema's `value_count.max`: W consecutive id
//! slots, position k of every row in slot `slot + k`, positions past a row's length holding
//! [`NO_ID`]. Every row operation (batching, shuffling, splitting) then treats it as W plain id
//! columns, and a batch of it is a `[B, W]` padded matrix.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::schema::{ColumnSchema, DType, Schema, Tag};

/// How a column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Categorical ids (`CATEGORICAL` tag), checked against `[0, domain.max]`.
    Ids,
    /// A categorical list column (Merlin's `is_list`): up to `width` ids per row, each checked
    /// like a scalar id, held in `width` consecutive id slots (see the module docs).
    IdLists,
    /// Any other numeric column: continuous features, targets, weights.
    Floats,
}

/// An empty position of a list column (past the row's length).
pub const NO_ID: u32 = u32::MAX;

/// The widest list column a dataset holds (positions per row).
pub const MAX_LIST_WIDTH: u64 = 4096;

/// One decoded column: its schema, kind and the index of its buffer among columns of that kind.
#[derive(Debug, Clone)]
pub struct ColumnSlot {
    pub schema: ColumnSchema,
    pub kind: ColumnKind,
    /// The first buffer index among columns of its kind (`Ids` and `IdLists` share the id
    /// buffers).
    pub slot: usize,
    /// Buffers the column takes: 1, or a list column's width W (slots `slot..slot + W`).
    pub width: usize,
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
            let (kind, width) = Self::decoded_as(c)?;
            let slot = match kind {
                ColumnKind::Ids | ColumnKind::IdLists => &mut layout.n_ids,
                ColumnKind::Floats => &mut layout.n_floats,
            };
            layout.by_name.insert(c.name.clone(), layout.columns.len());
            layout.columns.push(ColumnSlot {
                schema: c.clone(),
                kind,
                slot: *slot,
                width,
            });
            *slot += width;
        }
        Ok(layout)
    }

    /// How column `c` is decoded and how many buffers it takes.
    fn decoded_as(c: &ColumnSchema) -> Result<(ColumnKind, usize)> {
        let categorical = c.tags.contains(&Tag::Categorical);
        if categorical && (c.dtype.is_float() || c.dtype == DType::String) {
            return Err(Error::invalid(format!(
                "column `{}` is tagged categorical but its dtype is {}: categorical \
                 columns must hold integer ids (encode it first, e.g. with Categorify)",
                c.name, c.dtype
            )));
        }
        if c.is_list() {
            if !categorical {
                return Err(Error::invalid(format!(
                    "column `{}` is a list column that is not categorical: lists of ids are \
                     supported (tag it `categorical`), lists of numbers not yet; drop it with \
                     schema.without(&[\"{}\"])",
                    c.name, c.name
                )));
            }
            let width = match c.value_count().and_then(|d| d.max) {
                Some(w) if (1..=MAX_LIST_WIDTH).contains(&w) => w as usize,
                Some(0) | None => {
                    return Err(Error::invalid(format!(
                        "list column `{}` has no maximum length in the schema: set \
                         `value_count {{ min: 0 max: N }}` (properties.value_count in \
                         schema.json) to the longest list, N ≥ 1; datasets hold lists at that \
                         fixed width",
                        c.name
                    )))
                }
                Some(w) => {
                    return Err(Error::invalid(format!(
                        "list column `{}` allows lists of {w} ids (value_count.max), more than \
                         the {MAX_LIST_WIDTH} a dataset holds per row; truncate the lists when \
                         preprocessing",
                        c.name
                    )))
                }
            };
            return Ok((ColumnKind::IdLists, width));
        }
        if categorical {
            Ok((ColumnKind::Ids, 1))
        } else if c.dtype == DType::String {
            Err(Error::invalid(format!(
                "column `{}` holds strings, which cannot be trained on directly: encode it \
                 into integer ids first, or drop it with schema.without(&[\"{}\"])",
                c.name, c.name
            )))
        } else {
            Ok((ColumnKind::Floats, 1))
        }
    }

    pub fn columns(&self) -> &[ColumnSlot] {
        &self.columns
    }

    pub fn get(&self, name: &str) -> Option<&ColumnSlot> {
        self.by_name.get(name).map(|&i| &self.columns[i])
    }

    /// Id buffers (a list column counts its width).
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
