//! [`ColumnSchema`]: one column's name, tags, dtype, shape and properties.
//!
//! Mirrors merlin-core's ColumnSchema. Properties that Merlin gives a meaning (`domain`,
//! `value_count`) are typed fields; everything else NVTabular or the user stored
//! (`embedding_sizes`, `start_index`, `cat_path`, ...) stays a JSON map, exactly as written,
//! with numbers as doubles the way a protobuf `Struct` holds them.

use std::fmt;

use serde_json::{Map, Value};

use super::tags::{Tag, TagCollision, TagSet};

/// Element type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float16,
    Float32,
    Float64,
    String,
    Bool,
    Unknown,
}

impl DType {
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            DType::Int8
                | DType::Int16
                | DType::Int32
                | DType::Int64
                | DType::UInt8
                | DType::UInt16
                | DType::UInt32
                | DType::UInt64
        )
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::Float16 | DType::Float32 | DType::Float64)
    }

    /// Width in bits of numeric types (Merlin's `dtype_item_size`).
    pub fn bits(self) -> Option<u32> {
        Some(match self {
            DType::Int8 | DType::UInt8 | DType::Bool => 8,
            DType::Int16 | DType::UInt16 | DType::Float16 => 16,
            DType::Int32 | DType::UInt32 | DType::Float32 => 32,
            DType::Int64 | DType::UInt64 | DType::Float64 => 64,
            DType::String | DType::Unknown => return None,
        })
    }

    /// numpy-style name, as Merlin prints it.
    pub fn name(self) -> &'static str {
        match self {
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Float16 => "float16",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::String => "string",
            DType::Bool => "bool",
            DType::Unknown => "unknown",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The value range of a column (`int_domain` / `float_domain`). For a categorical column
/// `max + 1` is the embedding-table size; columns sharing a domain `name` share one table.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    Int {
        min: i64,
        max: i64,
        name: Option<String>,
    },
    Float {
        min: f64,
        max: f64,
        name: Option<String>,
    },
}

impl Domain {
    pub fn name(&self) -> Option<&str> {
        match self {
            Domain::Int { name, .. } | Domain::Float { name, .. } => name.as_deref(),
        }
    }
}

/// One dimension of a list column: `max = None` means unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dim {
    pub min: u64,
    pub max: Option<u64>,
}

impl Dim {
    pub fn is_fixed(&self) -> bool {
        self.max == Some(self.min)
    }
}

/// Schema of one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    pub name: String,
    pub tags: TagSet,
    pub dtype: DType,
    /// Dimensions after the batch dimension: empty for a scalar column, one entry (the list
    /// length range) for a list column.
    pub dims: Vec<Dim>,
    pub domain: Option<Domain>,
    /// All other properties, as stored (`embedding_sizes`, `start_index`, `cat_path`, ...).
    pub properties: Map<String, Value>,
}

impl ColumnSchema {
    /// A scalar column with no tags, unknown dtype and no properties.
    pub fn new(name: impl Into<String>) -> Self {
        ColumnSchema {
            name: name.into(),
            tags: TagSet::empty(),
            dtype: DType::Unknown,
            dims: Vec::new(),
            domain: None,
            properties: Map::new(),
        }
    }

    /// Replaces the tags (normalised; a colliding pair is an error).
    pub fn with_tags<I, T>(mut self, tags: I) -> Result<Self, TagCollision>
    where
        I: IntoIterator<Item = T>,
        T: Into<Tag>,
    {
        self.tags = TagSet::new(tags)?;
        Ok(self)
    }

    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    pub fn with_domain(mut self, domain: Domain) -> Self {
        self.domain = Some(domain);
        self
    }

    /// Sets an integer domain `[min, max]`.
    pub fn with_int_domain(self, min: i64, max: i64, name: Option<&str>) -> Self {
        self.with_domain(Domain::Int {
            min,
            max,
            name: name.map(str::to_string),
        })
    }

    /// Makes this a list column whose lengths lie in `[min, max]` (`max = None`: unbounded).
    pub fn with_list_len(mut self, min: u64, max: Option<u64>) -> Self {
        self.dims = vec![Dim { min, max }];
        self
    }

    pub fn with_property(mut self, key: impl Into<String>, value: Value) -> Self {
        self.properties.insert(key.into(), value);
        self
    }

    pub fn is_list(&self) -> bool {
        !self.dims.is_empty()
    }

    pub fn is_ragged(&self) -> bool {
        self.dims.first().is_some_and(|d| !d.is_fixed())
    }

    /// The list-length range of a list column (Merlin's `value_count`).
    pub fn value_count(&self) -> Option<Dim> {
        self.dims.first().copied()
    }

    /// `(min, max)` of an integer domain.
    pub fn int_domain(&self) -> Option<(i64, i64)> {
        match self.domain {
            Some(Domain::Int { min, max, .. }) => Some((min, max)),
            _ => None,
        }
    }

    /// `(min, max)` of a float domain.
    pub fn float_domain(&self) -> Option<(f64, f64)> {
        match self.domain {
            Some(Domain::Float { min, max, .. }) => Some((min, max)),
            _ => None,
        }
    }

    /// Embedding-table rows for a categorical column: `domain.max + 1` (Merlin's rule).
    pub fn cardinality(&self) -> Option<u64> {
        self.int_domain()
            .and_then(|(_, max)| u64::try_from(max).ok())
            .map(|m| m + 1)
    }

    /// The embedding-table name: the domain name, falling back to the column name.
    pub fn table_name(&self) -> &str {
        self.domain
            .as_ref()
            .and_then(Domain::name)
            .unwrap_or(&self.name)
    }

    /// NVTabular's `embedding_sizes {cardinality, dimension}` (informational; Merlin's models
    /// ignore it and infer dims from the domain).
    pub fn embedding_sizes(&self) -> Option<(f64, f64)> {
        let sizes = self.properties.get("embedding_sizes")?;
        Some((
            sizes.get("cardinality")?.as_f64()?,
            sizes.get("dimension")?.as_f64()?,
        ))
    }

    /// NVTabular's `start_index` (ids below it are reserved for padding / out-of-vocabulary).
    pub fn start_index(&self) -> Option<f64> {
        self.properties.get("start_index")?.as_f64()
    }

    pub fn has_tag(&self, tag: &Tag) -> bool {
        self.tags.contains(tag)
    }

    /// Merlin's merge (used by schema union): `other`'s fields are applied on top of `self`'s.
    pub fn merged_with(&self, other: &ColumnSchema) -> ColumnSchema {
        let mut properties = self.properties.clone();
        properties.extend(other.properties.clone());
        ColumnSchema {
            name: other.name.clone(),
            tags: self.tags.overridden_by(&other.tags),
            dtype: if other.dtype == DType::Unknown {
                self.dtype
            } else {
                other.dtype
            },
            dims: if other.dims.is_empty() {
                self.dims.clone()
            } else {
                other.dims.clone()
            },
            domain: other.domain.clone().or_else(|| self.domain.clone()),
            properties,
        }
    }
}
