//! Merlin-compatible schemas: [`ColumnSchema`], [`Tag`]s and the ordered [`Schema`].
//!
//! A schema says which columns a dataset has and what they mean (categorical id with a domain,
//! continuous value, target of which kind). It is read from and written to the two formats Merlin
//! and NVTabular produce:
//! - `schema.json`: the TensorFlow Metadata `Schema` protobuf in protobuf-JSON form ([`json`]);
//! - `schema.pbtxt`: the same protobuf in text format, with `extra_metadata` as an escaped binary
//!   `google.protobuf.Struct` ([`pbtxt`], read only).
//!
//! This module depends on serde/serde_json only, so that the `mtl_model!` macro can read schema
//! files at compile time without building arrow, parquet or dfdx.

mod column;
pub mod json;
pub mod pbtxt;
mod proto;
mod protobuf_struct;
mod tags;
mod text_format;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use column::{ColumnSchema, DType, Dim, Domain};
pub use tags::{Tag, TagCollision, TagSet};

use crate::error::{Error, Result};

/// An insertion-ordered collection of column schemas, keyed by unique name.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    columns: Vec<ColumnSchema>,
    index: HashMap<String, usize>,
}

impl PartialEq for Schema {
    fn eq(&self, other: &Self) -> bool {
        self.columns == other.columns
    }
}

impl Schema {
    /// Builds a schema; a repeated column name is an error.
    pub fn new(columns: impl IntoIterator<Item = ColumnSchema>) -> Result<Schema> {
        let mut schema = Schema::default();
        for column in columns {
            if schema.index.contains_key(&column.name) {
                return Err(Error::schema(
                    format!("column `{}`", column.name),
                    "the column name appears twice; column names must be unique",
                ));
            }
            schema.push_unchecked(column);
        }
        Ok(schema)
    }

    fn push_unchecked(&mut self, column: ColumnSchema) {
        self.index.insert(column.name.clone(), self.columns.len());
        self.columns.push(column);
    }

    /// Reads `schema.json` or `schema.pbtxt`, chosen by the file extension (`.json` is JSON,
    /// anything else is tried as protobuf text format).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Schema> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let origin = path.display().to_string();
        if path.extension().is_some_and(|e| e == "json") {
            json::from_str(&text, &origin)
        } else {
            pbtxt::from_str(&text, &origin)
        }
    }

    /// Finds the schema file of a dataset directory the way Merlin does: `schema.json`, then
    /// `schema.pbtxt`, then Merlin's `.merlin/schema.json`.
    pub fn find_in_dir(dir: impl AsRef<Path>) -> Option<PathBuf> {
        let dir = dir.as_ref();
        ["schema.json", "schema.pbtxt", ".merlin/schema.json"]
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file())
    }

    /// Reads the schema of a dataset directory (see [`Schema::find_in_dir`]).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Schema> {
        let dir = dir.as_ref();
        let path = Schema::find_in_dir(dir).ok_or_else(|| {
            Error::schema(
                dir.display().to_string(),
                "no schema.json, schema.pbtxt or .merlin/schema.json in this directory; \
                 pass the schema explicitly or write one with Schema::write_json",
            )
        })?;
        Schema::from_file(path)
    }

    /// Writes `schema.json` (protobuf-JSON form, as Merlin writes it).
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, json::to_string(self)).map_err(|e| Error::io(path, e))
    }

    pub fn columns(&self) -> &[ColumnSchema] {
        &self.columns
    }

    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&ColumnSchema> {
        self.index.get(name).map(|&i| &self.columns[i])
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The first column; an error on an empty schema.
    pub fn first(&self) -> Result<&ColumnSchema> {
        self.columns
            .first()
            .ok_or_else(|| Error::invalid("the schema is empty: it has no first column"))
    }

    fn filtered(&self, keep: impl Fn(&ColumnSchema) -> bool) -> Schema {
        let mut out = Schema::default();
        for c in self.columns.iter().filter(|c| keep(c)) {
            out.push_unchecked(c.clone());
        }
        out
    }

    /// Merlin's `select_by_tag`: columns carrying ANY of `tags`, except that a single compound
    /// tag (e.g. [`Tag::UserId`]) means ALL of its atoms.
    pub fn select_by_tag(&self, tags: &[Tag]) -> Schema {
        self.filtered(|c| matches_tags(c, tags))
    }

    /// Columns carrying ALL of `tags`.
    pub fn select_by_all_tags(&self, tags: &[Tag]) -> Schema {
        self.filtered(|c| tags.iter().all(|t| c.tags.contains(t)))
    }

    /// The complement of [`Schema::select_by_tag`] (Merlin's `excluding_by_tag`).
    pub fn excluding_by_tag(&self, tags: &[Tag]) -> Schema {
        self.filtered(|c| !matches_tags(c, tags))
    }

    /// The named columns in the given order; unknown names are skipped, as in Merlin.
    pub fn select_by_name<S: AsRef<str>>(&self, names: &[S]) -> Schema {
        let mut out = Schema::default();
        for name in names {
            if let Some(c) = self.get(name.as_ref()) {
                if !out.contains(&c.name) {
                    out.push_unchecked(c.clone());
                }
            }
        }
        out
    }

    /// Drops the named columns (Merlin's `without` / `excluding_by_name`).
    pub fn without<S: AsRef<str>>(&self, names: &[S]) -> Schema {
        self.filtered(|c| !names.iter().any(|n| n.as_ref() == c.name))
    }

    /// Merlin's `+`: columns of both, in order; a column in both is merged with `other`'s
    /// fields applied on top.
    pub fn union(&self, other: &Schema) -> Schema {
        let mut out = self.clone();
        for c in &other.columns {
            match out.index.get(&c.name) {
                Some(&i) => out.columns[i] = out.columns[i].merged_with(c),
                None => out.push_unchecked(c.clone()),
            }
        }
        out
    }
}

fn matches_tags(column: &ColumnSchema, tags: &[Tag]) -> bool {
    if let [single] = tags {
        // A lone compound tag asks for all of its atoms (TagSet::contains does that).
        return column.tags.contains(single);
    }
    tags.iter()
        .flat_map(Tag::atoms)
        .any(|atom| column.tags.contains(&atom))
}

impl<'a> IntoIterator for &'a Schema {
    type Item = &'a ColumnSchema;
    type IntoIter = std::slice::Iter<'a, ColumnSchema>;
    fn into_iter(self) -> Self::IntoIter {
        self.columns.iter()
    }
}

/// A table like the one Merlin's notebook shows for `schema`: one row per column with its
/// tags, dtype, shape and the properties models use.
impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = [
            "name",
            "tags",
            "dtype",
            "is_list",
            "is_ragged",
            "domain.min",
            "domain.max",
            "domain.name",
            "embedding_sizes",
            "start_index",
        ];
        let rows: Vec<[String; 10]> = self
            .columns
            .iter()
            .map(|c| {
                let (dmin, dmax) = match &c.domain {
                    Some(Domain::Int { min, max, .. }) => (min.to_string(), max.to_string()),
                    Some(Domain::Float { min, max, .. }) => (min.to_string(), max.to_string()),
                    None => (String::new(), String::new()),
                };
                [
                    c.name.clone(),
                    c.tags.to_string(),
                    c.dtype.to_string(),
                    c.is_list().to_string(),
                    c.is_ragged().to_string(),
                    dmin,
                    dmax,
                    c.domain
                        .as_ref()
                        .and_then(Domain::name)
                        .unwrap_or("")
                        .to_string(),
                    c.embedding_sizes()
                        .map(|(card, dim)| format!("{card}x{dim}"))
                        .unwrap_or_default(),
                    c.start_index().map(|s| s.to_string()).unwrap_or_default(),
                ]
            })
            .collect();
        crate::table::write_table(f, &header, &rows)
    }
}
