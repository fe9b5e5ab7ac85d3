//! Sparse embedding tables owned by the runtime, and their row-wise optimizers.
//!
//! A `user_id` table can have millions of rows while a batch touches a few thousand. dfdx's
//! `Embedding` would build a dense gradient of the whole table and its Adam would update every
//! row every step. Here a step instead:
//! 1. gathers the batch's rows (and continuous values) into the `[B, INPUT_WIDTH]` input,
//! 2. lets the dense network compute the gradient of that input,
//! 3. sums the gradient rows per distinct id (an id seen twice in a batch gets one update with
//!    the summed gradient), and
//! 4. updates only those rows with a row-wise optimizer ([`RowOptimizerConfig::LazyAdam`] or
//!    [`RowOptimizerConfig::Adagrad`]).
//!
//! The cost of a step therefore depends on the batch, not on the table size. Tables are
//! initialised like Keras' `uniform` initialiser, U(-0.05, 0.05), from a seed. Features that name
//! the same table (Merlin's shared domain name) share its rows.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{Batch, ColumnKind, Layout, NO_ID};
use crate::error::{Error, Result};
use crate::spec::{Combiner, FeatureKind, ModelSpec};

/// One table: `rows × dim` weights, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingTable {
    pub name: String,
    pub rows: usize,
    pub dim: usize,
    pub weights: Vec<f32>,
}

impl EmbeddingTable {
    pub fn row(&self, id: usize) -> &[f32] {
        &self.weights[id * self.dim..(id + 1) * self.dim]
    }
}

/// Where one feature comes from and where it goes in the input.
#[derive(Debug, Clone)]
pub(crate) struct FeatureSlot {
    pub name: &'static str,
    pub kind: FeatureKind,
    /// Table index for categorical features.
    pub table: usize,
    pub offset: usize,
    pub dim: usize,
    /// Id positions read per row: 1 for a scalar feature, the list positions for a list
    /// feature (its id slots are `slot..slot + positions`, [`NO_ID`] where a row's list ends).
    pub positions: usize,
    /// Whether the positions are pooled (a list feature), and how.
    pub pooling: Option<Combiner>,
}

impl FeatureSlot {
    /// The pooling factor of row `r`'s ids `ids(k)` (`k < positions`): 1 for a scalar feature,
    /// the combiner's for the number of ids present in a list.
    #[inline(always)]
    pub(crate) fn scale(&self, ids: impl Fn(usize) -> u32) -> f32 {
        match self.pooling {
            None => 1.0,
            // Lists are packed: the length is the first empty position.
            Some(c) => c.scale(
                (0..self.positions)
                    .position(|k| ids(k) == NO_ID)
                    .unwrap_or(self.positions),
            ),
        }
    }
}

/// The embedding tables of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub tables: Vec<EmbeddingTable>,
    #[doc(hidden)]
    pub input_width: usize,
}

/// A model's features resolved against one dataset layout (column slots), built once per
/// dataset by [`Embeddings::bind`].
#[derive(Debug, Clone)]
pub struct InputBinding {
    /// Each feature and the layout slot of its column.
    pub(crate) features: Vec<(FeatureSlot, usize)>,
    input_width: usize,
}

impl InputBinding {
    pub fn input_width(&self) -> usize {
        self.input_width
    }
}

/// The error for an id beyond its table (possible when the dataset's schema states no domain).
pub(crate) fn id_beyond_table(id: u32, feature: &str, table: &EmbeddingTable) -> Error {
    Error::invalid(format!(
        "id {id} of input `{feature}` is beyond its embedding table `{}` ({} rows); \
         raise the feature's cardinality or give the column a domain in the schema",
        table.name, table.rows
    ))
}

/// Checks, before anything is allocated, that the tables of `spec` and their optimizer state,
/// and the dense network with its gradients and Adam moments, fit in the memory this process can
/// get: an error names each table with its rows × dim and bytes, largest first (or the dense
/// network), instead of an allocation failure later.
pub fn check_memory(spec: &ModelSpec, optimizer: &RowOptimizerConfig) -> Result<()> {
    let state = RowOptimizer::new(*optimizer);
    let mut tables: Vec<(&str, usize, usize)> = Vec::new();
    for f in spec
        .features
        .iter()
        .filter(|f| f.kind == FeatureKind::Categorical)
    {
        if !tables.iter().any(|t| t.0 == f.table) {
            tables.push((f.table, f.cardinality, f.dim));
        }
    }
    let bytes =
        |rows: usize, dim: usize| (rows as u128) * (dim as u128) * 4 + state.state_bytes(rows, dim);
    // The dense network: weights, gradients and Adam's two moments, 4 bytes each.
    let dense = spec.dense_parameters().unwrap_or(0) * 4 * 4;
    let total: u128 = tables.iter().map(|&(_, r, d)| bytes(r, d)).sum::<u128>() + dense;
    let Some(available) = crate::memory::available_bytes() else {
        return Ok(());
    };
    if total <= available {
        return Ok(());
    }
    if dense > available / 2 {
        return Err(Error::invalid(format!(
            "the dense network has {} parameters, which with their gradients and optimizer \
             state need {} but only {} of memory is available; narrow its widest layers",
            spec.dense_parameters().unwrap_or(0),
            crate::memory::human_bytes(dense),
            crate::memory::human_bytes(available)
        )));
    }
    tables.sort_by_key(|&(_, r, d)| std::cmp::Reverse(bytes(r, d)));
    let list: Vec<String> = tables
        .iter()
        .map(|&(name, r, d)| {
            format!(
                "`{name}` {r} rows x {d} dims: {}",
                crate::memory::human_bytes(bytes(r, d))
            )
        })
        .collect();
    Err(Error::invalid(format!(
        "the embedding tables and their optimizer state need {} but only {} of memory is \
         available; tables (weights + optimizer state): {}. Lower the largest cardinalities \
         (hash or bucket the ids) or dims, or use RowOptimizerConfig::adagrad()",
        crate::memory::human_bytes(total),
        crate::memory::human_bytes(available),
        list.join(", ")
    )))
}

impl Embeddings {
    /// Creates the tables of `spec`, initialised U(-0.05, 0.05) from `seed`.
    pub fn new(spec: &ModelSpec, seed: u64) -> Result<Embeddings> {
        Self::with_weights(spec, Some(seed))
    }

    /// The tables' names and shapes with no weights allocated, for loading weights into
    /// (scoring never pays for a random initialisation it would overwrite).
    pub(crate) fn unfilled(spec: &ModelSpec) -> Result<Embeddings> {
        Self::with_weights(spec, None)
    }

    /// One table per distinct `table` of the categorical features, initialised from `seed`
    /// (uniform in ±0.05) or left empty (`None`).
    fn with_weights(spec: &ModelSpec, seed: Option<u64>) -> Result<Embeddings> {
        let mut tables: Vec<EmbeddingTable> = Vec::new();
        for f in spec
            .features
            .iter()
            .filter(|f| f.kind == FeatureKind::Categorical)
        {
            match tables.iter().find(|t| t.name == f.table) {
                Some(t) if t.rows != f.cardinality || t.dim != f.dim => {
                    return Err(Error::invalid(format!(
                        "feature `{}` shares table `{}` ({} x {}) but declares {} x {}",
                        f.name, f.table, t.rows, t.dim, f.cardinality, f.dim
                    )))
                }
                Some(_) => {}
                None => {
                    let too_large = || {
                        Error::invalid(format!(
                            "embedding table `{}` ({} rows x {} dims, {} bytes) cannot be allocated: \
                             lower the feature's cardinality (hash or bucket its ids) or its dim",
                            f.table,
                            f.cardinality,
                            f.dim,
                            (f.cardinality as u128) * (f.dim as u128) * 4
                        ))
                    };
                    let n = f.cardinality.checked_mul(f.dim).ok_or_else(too_large)?;
                    let weights = match seed {
                        None => Vec::new(),
                        Some(seed) => {
                            let mut rng = ChaCha8Rng::seed_from_u64(seed);
                            rng.set_stream(tables.len() as u64);
                            let mut w: Vec<f32> = crate::memory::zeroed(n).ok_or_else(too_large)?;
                            w.iter_mut()
                                .for_each(|w| *w = rng.gen_range(-0.05f32..0.05));
                            w
                        }
                    };
                    tables.push(EmbeddingTable {
                        name: f.table.to_string(),
                        rows: f.cardinality,
                        dim: f.dim,
                        weights,
                    });
                }
            }
        }
        Ok(Embeddings {
            tables,
            input_width: spec.input_width,
        })
    }

    /// Resolves every feature of `spec` to a column of `layout`; a missing column or one of the
    /// wrong kind is an error naming the feature.
    pub fn bind(&self, spec: &ModelSpec, layout: &Layout) -> Result<InputBinding> {
        let mut features = Vec::with_capacity(spec.features.len());
        for f in spec.features {
            let col = layout.get(f.name).ok_or_else(|| {
                Error::invalid(format!(
                    "model input `{}` is not a column of the dataset (it has: {})",
                    f.name,
                    layout
                        .columns()
                        .iter()
                        .map(|c| c.schema.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            let want = match (f.kind, f.is_list()) {
                (FeatureKind::Categorical, false) => ColumnKind::Ids,
                (FeatureKind::Categorical, true) => ColumnKind::IdLists,
                (FeatureKind::Continuous, _) => ColumnKind::Floats,
            };
            if col.kind != want {
                let what = |k: ColumnKind| match k {
                    ColumnKind::Ids => "a categorical column of one id per row",
                    ColumnKind::IdLists => "a list column (several ids per row)",
                    ColumnKind::Floats => "a numeric column",
                };
                return Err(Error::invalid(format!(
                    "model input `{}` needs {} but the dataset's column is {}; check its tags \
                     and value_count in the schema, or the input's declaration",
                    f.name,
                    what(want),
                    what(col.kind)
                )));
            }
            if f.kind == FeatureKind::Continuous && f.dim != 1 {
                return Err(Error::invalid(format!(
                    "continuous input `{}` has width {}; datasets hold scalar columns, so only width 1 can be read from data",
                    f.name, f.dim
                )));
            }
            if let (FeatureKind::Categorical, Some(max)) = (f.kind, col.max_id()) {
                if max as u64 >= f.cardinality as u64 {
                    return Err(Error::invalid(format!(
                        "model input `{}` has {} embedding rows but the dataset's ids go up to {max}; \
                         raise its cardinality to at least {}",
                        f.name, f.cardinality, max + 1
                    )));
                }
            }
            let table = self
                .tables
                .iter()
                .position(|t| t.name == f.table)
                .unwrap_or(0);
            features.push((
                FeatureSlot {
                    name: f.name,
                    kind: f.kind,
                    table,
                    offset: f.offset,
                    dim: f.dim,
                    // A model reading fewer positions than the data holds reads the first ones.
                    positions: if f.is_list() {
                        f.max_len.min(col.width)
                    } else {
                        1
                    },
                    pooling: f.is_list().then_some(f.combiner),
                },
                col.slot,
            ));
        }
        Ok(InputBinding {
            features,
            input_width: spec.input_width,
        })
    }

    /// Writes the `[B, INPUT_WIDTH]` input of `batch` into `out` (row-major, resized). An id
    /// beyond its table (possible when the dataset's schema states no domain) is an error.
    pub fn gather(&self, batch: &Batch, binding: &InputBinding, out: &mut Vec<f32>) -> Result<()> {
        let b = batch.len();
        let w = binding.input_width;
        out.clear();
        out.resize(b * w, 0.0);
        for (f, slot) in &binding.features {
            match f.kind {
                FeatureKind::Categorical if f.pooling.is_none() => {
                    let table = &self.tables[f.table];
                    for (r, &id) in batch.ids_at(*slot).iter().enumerate() {
                        if id as usize >= table.rows {
                            return Err(id_beyond_table(id, f.name, table));
                        }
                        out[r * w + f.offset..r * w + f.offset + f.dim]
                            .copy_from_slice(table.row(id as usize));
                    }
                }
                FeatureKind::Categorical => {
                    // A list: the pooled rows of the ids present.
                    let table = &self.tables[f.table];
                    let positions: Vec<&[u32]> =
                        (0..f.positions).map(|k| batch.ids_at(slot + k)).collect();
                    for r in 0..b {
                        let scale = f.scale(|k| positions[k][r]);
                        let x = &mut out[r * w + f.offset..r * w + f.offset + f.dim];
                        for p in &positions {
                            let id = p[r];
                            if id == NO_ID {
                                break;
                            }
                            if id as usize >= table.rows {
                                return Err(id_beyond_table(id, f.name, table));
                            }
                            for (x, v) in x.iter_mut().zip(table.row(id as usize)) {
                                *x += scale * v;
                            }
                        }
                    }
                }
                FeatureKind::Continuous => {
                    for (r, &v) in batch.floats_at(*slot).iter().enumerate() {
                        out[r * w + f.offset] = v;
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the input gradient `grad` (`[B, INPUT_WIDTH]`, row-major) to the rows `batch`
    /// touched: gradients of repeated ids are summed, then each distinct row is updated once.
    pub fn apply_gradient(
        &mut self,
        batch: &Batch,
        binding: &InputBinding,
        grad: &[f32],
        optimizer: &mut RowOptimizer,
    ) -> Result<()> {
        self.apply_scaled_gradient(batch, binding, grad, 1.0, optimizer)
    }

    /// The squared L2 norm of the embedding gradient of `batch`: of each touched row's
    /// gradient summed over its lookups (what [`Embeddings::apply_gradient`] applies).
    pub(crate) fn gradient_norm_sq(
        &self,
        batch: &Batch,
        binding: &InputBinding,
        grad: &[f32],
    ) -> f64 {
        let mut total = 0.0f64;
        for_each_row_gradient(&self.shapes(), batch, binding, grad, |_, _, sum| {
            total += sum
                .iter()
                .map(|g| f64::from(*g) * f64::from(*g))
                .sum::<f64>();
        });
        total
    }

    /// [`Embeddings::apply_gradient`] with every row gradient multiplied by `scale` (gradient
    /// clipping).
    pub(crate) fn apply_scaled_gradient(
        &mut self,
        batch: &Batch,
        binding: &InputBinding,
        grad: &[f32],
        scale: f32,
        optimizer: &mut RowOptimizer,
    ) -> Result<()> {
        optimizer.ensure_state(&self.tables)?;
        let shapes = self.shapes();
        let tables = &mut self.tables;
        let mut scaled = Vec::new();
        for_each_row_gradient(&shapes, batch, binding, grad, |t, id, sum| {
            // Each row is updated as soon as its gradient is summed (no per-row copies kept).
            let g = if scale == 1.0 {
                sum
            } else {
                scaled.clear();
                scaled.extend(sum.iter().map(|g| g * scale));
                &scaled
            };
            optimizer.update_row(t, &mut tables[t], id, g);
        });
        Ok(())
    }

    /// `(rows, dim)` of every table.
    fn shapes(&self) -> Vec<(usize, usize)> {
        self.tables.iter().map(|t| (t.rows, t.dim)).collect()
    }
}

/// Calls `f(table, id, gradient)` for every row `batch` touches in tables of `shapes`
/// (`(rows, dim)` each), its gradient summed over the row's lookups, table by table in id
/// order. A free function so that `f` may update the tables.
fn for_each_row_gradient(
    shapes: &[(usize, usize)],
    batch: &Batch,
    binding: &InputBinding,
    grad: &[f32],
    mut f: impl FnMut(usize, usize, &[f32]),
) {
    let w = binding.input_width;
    // (id, batch row, feature index, pooling factor)
    let mut pairs: Vec<(u32, u32, u16, f32)> = Vec::new();
    for (t, &(rows, dim)) in shapes.iter().enumerate() {
        pairs.clear();
        for (fi, (f, slot)) in binding.features.iter().enumerate() {
            if f.kind != FeatureKind::Categorical || f.table != t {
                continue;
            }
            let positions: Vec<&[u32]> = (0..f.positions).map(|k| batch.ids_at(slot + k)).collect();
            for r in 0..batch.len() {
                let scale = f.scale(|k| positions[k][r]);
                // Each id of a list gets its share of the pooled vector's gradient.
                pairs.extend(
                    positions
                        .iter()
                        .map(|p| p[r])
                        .take_while(|&id| id != NO_ID)
                        .map(|id| (id.min(rows as u32 - 1), r as u32, fi as u16, scale)),
                );
            }
        }
        if pairs.is_empty() {
            continue;
        }
        pairs.sort_unstable_by_key(|&(id, r, fi, _)| (id, r, fi));
        let mut sum = vec![0.0f32; dim];
        let mut i = 0;
        while i < pairs.len() {
            let id = pairs[i].0;
            sum.iter_mut().for_each(|s| *s = 0.0);
            while i < pairs.len() && pairs[i].0 == id {
                let (_, r, fi, scale) = pairs[i];
                let off = r as usize * w + binding.features[fi as usize].0.offset;
                for (s, g) in sum.iter_mut().zip(&grad[off..off + dim]) {
                    *s += scale * g;
                }
                i += 1;
            }
            f(t, id as usize, &sum);
        }
    }
}

impl Embeddings {
    /// Total number of embedding parameters.
    pub fn num_params(&self) -> usize {
        self.tables.iter().map(|t| t.weights.len()).sum()
    }
}

/// Merlin's `l2_batch_regularization_factor` over `rows` rows of the network input `x`
/// (`[R, INPUT_WIDTH]`, row-major): adds the penalty's gradient `2λ·v` to `grad` on the columns
/// of every looked-up vector `v` and returns the penalty `λ·Σ‖v‖²` (each lookup counted).
pub(crate) fn embedding_l2(
    binding: &InputBinding,
    x: &[f32],
    grad: &mut [f32],
    rows: usize,
    lambda: f32,
) -> f64 {
    let w = binding.input_width;
    let mut sum = 0.0f64;
    for (f, _) in &binding.features {
        if f.kind != FeatureKind::Categorical {
            continue;
        }
        for r in 0..rows {
            let cols = r * w + f.offset..r * w + f.offset + f.dim;
            for (g, v) in grad[cols.clone()].iter_mut().zip(&x[cols]) {
                *g += 2.0 * lambda * v;
                sum += f64::from(*v) * f64::from(*v);
            }
        }
    }
    f64::from(lambda) * sum
}

/// Settings of the embedding optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RowOptimizerConfig {
    /// Adam whose moments, step count and bias correction are kept per row; rows a batch does not
    /// touch do not move (TensorFlow's LazyAdam, with per-row bias correction).
    LazyAdam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
    /// Adagrad: `acc += g²; w -= lr·g / (√acc + eps)`.
    Adagrad {
        lr: f32,
        initial_accumulator: f32,
        eps: f32,
        weight_decay: f32,
    },
}

impl Default for RowOptimizerConfig {
    /// Lazy Adam with Keras' Adam defaults (lr 0.001, β 0.9/0.999, ε 1e-7).
    fn default() -> Self {
        RowOptimizerConfig::LazyAdam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            weight_decay: 0.0,
        }
    }
}

impl RowOptimizerConfig {
    /// Adagrad with Keras' defaults (lr 0.001, initial accumulator 0.1, ε 1e-7).
    pub fn adagrad() -> Self {
        RowOptimizerConfig::Adagrad {
            lr: 1e-3,
            initial_accumulator: 0.1,
            eps: 1e-7,
            weight_decay: 0.0,
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match self {
            RowOptimizerConfig::LazyAdam { lr, .. } | RowOptimizerConfig::Adagrad { lr, .. } => *lr,
        }
    }

    /// The same optimizer with learning rate `rate`.
    pub fn with_lr(mut self, rate: f32) -> Self {
        match &mut self {
            RowOptimizerConfig::LazyAdam { lr, .. } | RowOptimizerConfig::Adagrad { lr, .. } => {
                *lr = rate
            }
        }
        self
    }
}

/// Per-table optimizer state. Moment buffers are allocated zeroed (the OS maps such pages
/// lazily, so untouched rows of a huge table cost no memory).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowState {
    pub(crate) first: Vec<f32>,
    pub(crate) second: Vec<f32>,
    pub(crate) steps: Vec<u32>,
}

/// The row-wise optimizer of a model's tables.
#[derive(Debug, Clone, PartialEq)]
pub struct RowOptimizer {
    pub config: RowOptimizerConfig,
    pub(crate) state: Vec<RowState>,
}

impl RowOptimizer {
    pub fn new(config: RowOptimizerConfig) -> Self {
        RowOptimizer {
            config,
            state: Vec::new(),
        }
    }

    /// Bytes of optimizer state a table of `rows × dim` needs: moments (two for lazy Adam, one
    /// for Adagrad) and a step count per row.
    pub(crate) fn state_bytes(&self, rows: usize, dim: usize) -> u128 {
        let moments = match self.config {
            RowOptimizerConfig::LazyAdam { .. } => 2,
            RowOptimizerConfig::Adagrad { .. } => 1,
        };
        (rows as u128) * (dim as u128) * 4 * moments + (rows as u128) * 4
    }

    /// Allocates the state of every table that has none yet; an allocation that fails is an
    /// error naming the table and the bytes it needs.
    pub(crate) fn ensure_state(&mut self, tables: &[EmbeddingTable]) -> Result<()> {
        while self.state.len() < tables.len() {
            let t = &tables[self.state.len()];
            let n = t.rows * t.dim;
            let fail = || {
                Error::invalid(format!(
                    "cannot allocate the optimizer state of embedding table `{}` ({} rows x {} \
                     dims, {} bytes): lower the feature's cardinality or dim, or use \
                     RowOptimizerConfig::adagrad() (one moment instead of two)",
                    t.name,
                    t.rows,
                    t.dim,
                    self.state_bytes(t.rows, t.dim)
                ))
            };
            let zeroed = |n| crate::memory::zeroed::<f32>(n).ok_or_else(fail);
            let steps = crate::memory::zeroed::<u32>(t.rows).ok_or_else(fail)?;
            let state = match self.config {
                RowOptimizerConfig::LazyAdam { .. } => RowState {
                    first: zeroed(n)?,
                    second: zeroed(n)?,
                    steps,
                },
                RowOptimizerConfig::Adagrad { .. } => RowState {
                    first: Vec::new(),
                    second: zeroed(n)?,
                    steps,
                },
            };
            self.state.push(state);
        }
        Ok(())
    }

    /// How many times row `id` of table `table` has been updated.
    pub fn row_steps(&self, table: usize, id: usize) -> u32 {
        self.state.get(table).map_or(0, |s| s.steps[id])
    }

    fn update_row(&mut self, t: usize, table: &mut EmbeddingTable, id: usize, grad: &[f32]) {
        let dim = table.dim;
        let range = id * dim..(id + 1) * dim;
        let state = &mut self.state[t];
        let first = if state.first.is_empty() {
            &mut [][..]
        } else {
            &mut state.first[range.clone()]
        };
        update_row(
            &self.config,
            &mut state.steps[id],
            &mut table.weights[range.clone()],
            first,
            &mut state.second[range],
            grad,
        );
    }

    /// Touches every page of the state so that training does not pay the first-touch page
    /// faults of a huge table (the allocation is lazily mapped by the OS).
    pub(crate) fn prefault(&mut self) {
        use rayon::prelude::*;
        fn touch<T: Copy + Send>(v: &mut [T]) {
            // Rewriting one value per 4 KiB page maps the page without changing it (state that
            // is already in use keeps its values); volatile so that it is not optimised away.
            let step = (4096 / std::mem::size_of::<T>()).max(1);
            for i in (0..v.len()).step_by(step) {
                // SAFETY: `i < v.len()`, the pointer is valid and aligned for T.
                unsafe {
                    let p = v.as_mut_ptr().add(i);
                    std::ptr::write_volatile(p, std::ptr::read_volatile(p));
                }
            }
        }
        const SPAN: usize = 1 << 22;
        for s in &mut self.state {
            s.first.par_chunks_mut(SPAN).for_each(touch);
            s.second.par_chunks_mut(SPAN).for_each(touch);
            s.steps.par_chunks_mut(SPAN).for_each(touch);
        }
    }
}

/// One row update with the row optimizer `config`: `step` is the row's update count, `w` its
/// weights, `m`/`v` its first/second moments (`m` empty for Adagrad), `grad` its summed
/// gradient. The one definition both training paths use.
#[inline]
pub(crate) fn update_row(
    config: &RowOptimizerConfig,
    step: &mut u32,
    w: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
) {
    *step += 1;
    let step = *step as i32;
    let dim = w.len();
    match *config {
        RowOptimizerConfig::LazyAdam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let c1 = 1.0 - beta1.powi(step);
            let c2 = 1.0 - beta2.powi(step);
            let (m, v, grad) = (&mut m[..dim], &mut v[..dim], &grad[..dim]);
            for i in 0..dim {
                let g = grad[i];
                m[i] = beta1 * m[i] + (1.0 - beta1) * g;
                v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
                let update = (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
                w[i] -= lr * (update + weight_decay * w[i]);
            }
        }
        RowOptimizerConfig::Adagrad {
            lr,
            initial_accumulator,
            eps,
            weight_decay,
        } => {
            let (acc, grad) = (&mut v[..dim], &grad[..dim]);
            if step == 1 {
                acc.iter_mut().for_each(|a| *a = initial_accumulator);
            }
            for i in 0..dim {
                let g = grad[i] + weight_decay * w[i];
                acc[i] += g * g;
                w[i] -= lr * g / (acc[i].sqrt() + eps);
            }
        }
    }
}
