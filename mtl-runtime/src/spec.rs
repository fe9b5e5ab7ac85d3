//! The static description of a model that `mtl_model!` generates and the runtime reads.
//!
//! Everything here is `'static` data built at compile time: which features feed the network
//! (and where each sits in the `[B, INPUT_WIDTH]` input), which tasks it predicts with which
//! loss settings and metrics, and the schema it was built from. The trainer binds data columns,
//! losses and metric names through it, always by name.

/// How a feature enters the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// An id looked up in an embedding table of `cardinality` rows and `dim` columns.
    Categorical,
    /// A number (or `dim` numbers) copied into the input as is.
    Continuous,
}

/// One input feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureSpec {
    /// Feature name (also the data column it is read from).
    pub name: &'static str,
    pub kind: FeatureKind,
    /// Embedding-table rows (`domain.max + 1`); 0 for continuous features.
    pub cardinality: usize,
    /// Embedding dimension, or the width of a continuous feature.
    pub dim: usize,
    /// Column offset of this feature in the `[B, INPUT_WIDTH]` input (features are
    /// concatenated in alphabetical order, as Merlin does).
    pub offset: usize,
    /// Embedding-table name: features with the same table share it (Merlin's domain name).
    pub table: &'static str,
    /// A list (multi-hot) feature: the list positions read per row (0 for a scalar feature).
    /// Its embedding is the pooled `combiner` of the looked-up rows, `dim` wide.
    pub max_len: usize,
    /// How a list feature pools its rows (ignored for scalar features).
    pub combiner: Combiner,
}

impl FeatureSpec {
    /// Whether this is a list (multi-hot) feature.
    pub fn is_list(&self) -> bool {
        self.max_len > 0
    }
}

/// How a list feature pools the embeddings of its n ids (Merlin's `sequence_combiner`): over
/// the ids present in the row, so an empty list gives zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Combiner {
    /// `Σ e_i`.
    Sum,
    /// `Σ e_i / n` (Merlin's default).
    #[default]
    Mean,
    /// `Σ e_i / √n`.
    Sqrtn,
}

impl Combiner {
    /// The factor on `Σ e_i` for a list of `n` ids (0 for an empty list).
    #[inline(always)]
    pub fn scale(self, n: usize) -> f32 {
        match (self, n) {
            (_, 0) => 0.0,
            (Combiner::Sum, _) => 1.0,
            (Combiner::Mean, n) => 1.0 / n as f32,
            (Combiner::Sqrtn, n) => 1.0 / (n as f32).sqrt(),
        }
    }

    /// The DSL keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Combiner::Sum => "sum",
            Combiner::Mean => "mean",
            Combiner::Sqrtn => "sqrtn",
        }
    }
}

/// What a task predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Binary classification: one logit, binary cross-entropy.
    Binary,
    /// Regression: one value, mean squared error.
    Regression,
    /// Multi-class classification: `classes` logits, categorical cross-entropy.
    Multiclass { classes: usize },
}

impl TaskKind {
    /// Merlin's output-class suffix: `binary_output`, `regression_output`, `categorical_output`.
    pub fn output_suffix(self) -> &'static str {
        match self {
            TaskKind::Binary => "binary_output",
            TaskKind::Regression => "regression_output",
            TaskKind::Multiclass { .. } => "categorical_output",
        }
    }

    /// Width of the head's output.
    pub fn output_width(self) -> usize {
        match self {
            TaskKind::Binary | TaskKind::Regression => 1,
            TaskKind::Multiclass { classes } => classes,
        }
    }

    /// Metrics a task of this kind reports when none are given (Merlin's defaults).
    pub fn default_metrics(self) -> &'static [&'static str] {
        match self {
            TaskKind::Binary => &["precision", "recall", "binary_accuracy", "auc"],
            TaskKind::Regression => &["root_mean_squared_error"],
            TaskKind::Multiclass { .. } => &["categorical_accuracy"],
        }
    }

    /// Metric names accepted for this kind (canonical names; see [`canonical_metric`]).
    pub fn accepted_metrics(self) -> &'static [&'static str] {
        match self {
            TaskKind::Binary => &["precision", "recall", "binary_accuracy", "auc", "logloss"],
            TaskKind::Regression => &[
                "root_mean_squared_error",
                "mean_squared_error",
                "mean_absolute_error",
            ],
            TaskKind::Multiclass { .. } => &["categorical_accuracy", "top_k_accuracy"],
        }
    }
}

/// Maps metric aliases to their canonical (Merlin/Keras) names: `rmse` →
/// `root_mean_squared_error`, `mse`, `mae`, `accuracy` → `categorical_accuracy`, ...
pub fn canonical_metric(name: &str) -> Option<&'static str> {
    Some(match name {
        "auc" => "auc",
        "precision" => "precision",
        "recall" => "recall",
        "binary_accuracy" => "binary_accuracy",
        "logloss" | "binary_crossentropy" => "logloss",
        "rmse" | "root_mean_squared_error" => "root_mean_squared_error",
        "mse" | "mean_squared_error" => "mean_squared_error",
        "mae" | "mean_absolute_error" => "mean_absolute_error",
        "accuracy" | "categorical_accuracy" => "categorical_accuracy",
        "top_k_accuracy" | "top_5_accuracy" => "top_k_accuracy",
        _ => return None,
    })
}

/// One task: a target column, its head and how its loss is weighted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskSpec {
    /// Task name (the DSL key; the target column unless `target = ..` says otherwise).
    pub name: &'static str,
    /// Merlin's output name, e.g. `click/binary_output`; metric names start with it.
    pub output_name: &'static str,
    /// The target column.
    pub target: &'static str,
    pub kind: TaskKind,
    /// λ in `loss = Σ λ_t L_t`.
    pub loss_weight: f32,
    /// `(negative, positive)` class weights on the task's own target (binary tasks).
    pub class_weights: Option<(f32, f32)>,
    /// Columns whose values multiply the per-row loss weight (targets first, then features).
    pub sample_weights: &'static [&'static str],
    /// Canonical metric names reported unweighted.
    pub metrics: &'static [&'static str],
    /// Canonical metric names reported with the task's sample weights (`weighted_<name>`).
    pub weighted_metrics: &'static [&'static str],
    /// The task's tower (`None`: the head reads the body's output directly).
    pub tower: Option<MlpSpec>,
    /// `given = parent` (ESMM): this binary task's head predicts P(task | parent), and the
    /// model trains and outputs P(task and parent) = P(parent)·P(task | parent) (multiplied
    /// along the whole chain of parents) on every row. See [`crate::loss::chain_row_loss_and_grads`].
    pub given: Option<&'static str>,
    /// `given = parent, transfer = aitm` (AITM): the task's tower output attends over itself and
    /// the information its parent's tower passes on ([`crate::nn::Aitm`]), its head predicts
    /// the end-to-end probability on every row against its own target, and a calibration term
    /// pushes its probability below the parent's. Such a task has `given: None`: nothing is
    /// multiplied.
    pub aitm: Option<AitmSpec>,
}

/// A task's AITM transfer (Xi et al., KDD 2021): which task passes information on, and the
/// weight κ of the behavioural-expectation calibrator `κ·mean_rows max(p_task − p_parent, 0)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AitmSpec {
    /// The parent task (binary), whose tower output (or its own transferred representation,
    /// along a chain) the info layer reads.
    pub parent: &'static str,
    /// κ, the calibration weight (the DSL's `calibration = ..`, 0.6 by default as in the
    /// paper's code).
    pub calibration: f32,
}

/// The whole model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSpec {
    /// The model's type name.
    pub name: &'static str,
    /// Input features in input order (alphabetical).
    pub features: &'static [FeatureSpec],
    /// Width of the `[B, INPUT_WIDTH]` input: Σ embedding dims + continuous widths.
    pub input_width: usize,
    /// A short description of the body (`mlp[32, 16] relu`, `identity`, ...).
    pub body: &'static str,
    /// The body's structure: what the fused CPU engine executes (see [`BodySpec`]).
    pub body_spec: BodySpec,
    /// Width of the body's output (the towers' input).
    pub body_width: usize,
    /// Tasks in task-name order.
    pub tasks: &'static [TaskSpec],
    /// The schema file the model was built from (as written in the DSL), if any.
    pub schema_path: Option<&'static str>,
    /// That file's text, embedded at compile time.
    pub schema_text: Option<&'static str>,
    /// How the task losses are weighted against each other (`loss_balancing:` in the DSL).
    pub loss_balancing: LossBalancing,
}

/// How the per-task losses are combined into the training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LossBalancing {
    /// `Σ λ_t L_t` with the declared loss weights λ_t (Merlin's only mode).
    #[default]
    Fixed,
    /// Homoscedastic uncertainty weighting (Kendall, Gal and Cipolla, CVPR 2018): one learnt
    /// log-variance s_t per task, loss `Σ c_t·exp(-s_t)·L_t + s_t/2` with c_t = 1/2 for
    /// regression and 1 for classification tasks. A task's effective weight
    /// `c_t·exp(-s_t)` settles where it equals `1/(2 L_t)`: tasks with large (noisy) losses
    /// weigh less. The s_t start at 0 and follow Adam at the dense learning rate.
    Uncertainty,
    /// GradNorm (Chen et al., ICML 2018): learnt weights w_t (summing to T) moved so that each
    /// task's weighted gradient norm on the shared parameters ([`ModelSpec::shared_part`])
    /// approaches the mean norm times `r_t^α`, r_t being the task's relative inverse training
    /// rate (`L_t/L_t(0)` over its mean). `alpha_milli` is α in thousandths.
    GradNorm { alpha_milli: u16 },
}

impl ModelSpec {
    pub fn feature(&self, name: &str) -> Option<&FeatureSpec> {
        self.features.iter().find(|f| f.name == name)
    }

    pub fn task(&self, name: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// Task `t` and its `given` parents, nearest first (`[t]` for a task without `given`).
    /// The DSL guarantees parents exist and form no cycle; a broken spec stops at the break.
    pub fn chain(&self, t: usize) -> Vec<usize> {
        let mut chain = vec![t];
        while let Some(parent) = self.tasks[*chain.last().unwrap_or(&t)].given {
            match self.tasks.iter().position(|p| p.name == parent) {
                Some(p) if !chain.contains(&p) => chain.push(p),
                _ => break,
            }
        }
        chain
    }

    /// The part of the dense parameter `name` (a network name such as `body.0.weight`, whose
    /// flat values number `len`) that every task shares, i.e. that GradNorm counts: the MLP body
    /// (`body.*`); for MMoE and one-gate MoE the experts (`experts.*`); for CGC and PLE the
    /// shared experts only — at level 1 every expert is one grouped tensor (`experts.*` or
    /// `level_1.experts.*`, task experts first), whose shared experts are its last rows; at
    /// later levels the `level_<k>.experts.shared.*` tensors. Task experts (only their task's
    /// gate reads them), gates, towers and heads are never shared. A custom or identity body
    /// shares no dense parameter (embedding tables are shared but sparse, and not counted).
    /// `None`: nothing of `name` is shared.
    pub fn shared_part(&self, name: &str, len: usize) -> Option<std::ops::Range<usize>> {
        let all = Some(0..len);
        match self.body_spec {
            BodySpec::Mlp(_) => name.starts_with("body.").then_some(0..len),
            BodySpec::Moe(m) => match m.layout.kind {
                MoeKind::Mmoe | MoeKind::Moe => name.starts_with("experts.").then_some(0..len),
                MoeKind::Cgc | MoeKind::Ple => {
                    let (level, rest) = match name.split_once('.') {
                        Some((level, rest)) if level.starts_with("level_") => (level, rest),
                        _ => ("level_1", name),
                    };
                    let rest = rest.strip_prefix("experts.")?;
                    if rest.starts_with("shared.") {
                        return all;
                    }
                    let grouped = rest.starts_with(|c: char| c.is_ascii_digit());
                    if level != "level_1" || !grouped {
                        return None;
                    }
                    // Level 1: T·task_experts experts, then the shared ones, each a block of
                    // equal rows.
                    let k = m.layout.total_experts(self.tasks.len());
                    let task_experts = self.tasks.len() * m.layout.task_experts;
                    (k > task_experts).then(|| len * task_experts / k..len)
                }
            },
            BodySpec::Identity | BodySpec::Custom => None,
        }
    }

    /// The tasks with an AITM transfer, parents before children: the order the network
    /// computes the transfers in, so that a parent's own transfer (along a chain) is done first.
    pub fn aitm_order(&self) -> Vec<usize> {
        let parent = |t: usize| {
            let name = self.tasks[t].aitm?.parent;
            self.tasks.iter().position(|p| p.name == name)
        };
        let mut left: Vec<usize> = (0..self.tasks.len())
            .filter(|&t| self.tasks[t].aitm.is_some())
            .collect();
        let mut order = Vec::with_capacity(left.len());
        while !left.is_empty() {
            let before = left.len();
            // Place every task whose parent is not itself still waiting.
            let waiting = left.clone();
            left.retain(|&t| {
                let blocked = parent(t).is_some_and(|p| waiting.contains(&p));
                if !blocked {
                    order.push(t);
                }
                blocked
            });
            if left.len() == before {
                // A cycle (the DSL refuses them): keep the declared order.
                order.append(&mut left);
            }
        }
        order
    }

    /// The tasks declared with `given` (ESMM), in task order: each adds a joint output
    /// `<task>/joint_output`.
    pub fn chained_tasks(&self) -> Vec<usize> {
        (0..self.tasks.len())
            .filter(|&t| self.tasks[t].given.is_some())
            .collect()
    }

    /// The number of trainable dense parameters (weights and biases of the body, towers and
    /// heads, batch-norm scales and biases; not the batch-norm running statistics), counted in `u128` so that no size overflows; `None` for
    /// a custom body, whose size only its type knows.
    pub fn dense_parameters(&self) -> Option<u128> {
        fn mlp(m: &MlpSpec, mut input: u128) -> u128 {
            let mut n = 0;
            for &w in m.widths {
                n += input * w as u128 + w as u128;
                if m.batch_norm {
                    n += 2 * w as u128; // scale and bias
                }
                input = w as u128;
            }
            n
        }
        let input = self.input_width as u128;
        let body = match &self.body_spec {
            BodySpec::Custom => return None,
            BodySpec::Identity => 0,
            BodySpec::Mlp(m) => mlp(m, input),
            BodySpec::Moe(moe) => {
                let lay = moe.layout;
                let tasks = self.tasks.len() as u128;
                let h = moe.expert.out_width() as u128;
                let k = lay.total_experts(self.tasks.len()) as u128;
                let mut n = 0;
                for l in 1..=lay.levels {
                    let expert_input = if l == 1 { input } else { h };
                    n += k * mlp(&moe.expert, expert_input);
                    let gate_input = if lay.gates_read_input(l) { input } else { h };
                    let (gate_out, gate_block) = match &moe.gate {
                        Some(g) => (g.out_width() as u128, mlp(g, gate_input)),
                        None => (gate_input, 0),
                    };
                    // A task gate weighs its own and the shared experts, a shared gate all K.
                    if lay.has_task_gates(l) {
                        let weighed = lay.gate_experts() as u128;
                        n += tasks * (gate_block + gate_out * weighed);
                    }
                    if lay.has_shared_gate(l) {
                        n += gate_block + gate_out * k;
                    }
                }
                n
            }
        };
        let towers: u128 = self
            .tasks
            .iter()
            .map(|t| {
                let (tower, out) = match &t.tower {
                    Some(m) => (mlp(m, self.body_width as u128), m.out_width() as u128),
                    None => (0, self.body_width as u128),
                };
                let w = t.kind.output_width() as u128;
                // AITM: the info layer (parent width → this width, with bias) and the bias-free
                // query, key and value projections.
                let transfer = t.aitm.map_or(0, |a| {
                    let parent_width = self.task(a.parent).map_or(0, |p| {
                        p.tower.map_or(self.body_width, |m| m.out_width()) as u128
                    });
                    parent_width * out + out + 3 * out * out
                });
                tower + out * w + w + transfer
            })
            .sum();
        Some(body + towers)
    }

    /// The schema the model was built from, parsed from the embedded text.
    pub fn schema(&self) -> Option<crate::Result<crate::Schema>> {
        let (path, text) = (self.schema_path?, self.schema_text?);
        Some(if path.ends_with(".json") {
            crate::schema::json::from_str(text, path)
        } else {
            crate::schema::pbtxt::from_str(text, path)
        })
    }
}

/// An element-wise activation of an MLP layer (the DSL's `activation = ..`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Selu,
    /// The exact (erf) GELU.
    Gelu,
    Tanh,
    Sigmoid,
    /// No activation.
    Linear,
}

/// An MLP as the DSL declares it: `mlp[w1, w2, ..](activation, dropout, batch_norm, ..)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MlpSpec {
    /// Output width of each layer.
    pub widths: &'static [usize],
    pub activation: Activation,
    /// Dropout rate after each activation, in per-mille (100 = 0.1); training only.
    pub dropout: u16,
    /// Batch normalisation after each layer.
    pub batch_norm: bool,
    /// The last layer has no activation (and no dropout).
    pub no_activation_last_layer: bool,
}

impl MlpSpec {
    /// Output width of the last layer.
    pub fn out_width(&self) -> usize {
        self.widths.last().copied().unwrap_or(0)
    }

    /// The parameter path of layer `i` inside the MLP: `i` for up to 6 layers; deeper MLPs are
    /// tuples of 6-layer tuples, so `i / 6`.`i % 6`.
    pub fn layer_path(&self, i: usize) -> String {
        if self.widths.len() <= 6 {
            i.to_string()
        } else {
            format!("{}.{}", i / 6, i % 6)
        }
    }

    /// The activation of layer `i`.
    pub fn layer_activation(&self, i: usize) -> Activation {
        if self.no_activation_last_layer && i + 1 == self.widths.len() {
            Activation::Linear
        } else {
            self.activation
        }
    }

    /// The dropout rate (per-mille) of layer `i`.
    pub fn layer_dropout(&self, i: usize) -> u16 {
        if self.no_activation_last_layer && i + 1 == self.widths.len() {
            0
        } else {
            self.dropout
        }
    }
}

/// Which mixture-of-experts body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoeKind {
    /// One gate per task over all experts.
    Mmoe,
    /// One gate shared by all tasks.
    Moe,
    /// Task-private + shared experts, one gate per task (one level).
    Cgc,
    /// Stacked CGC levels with shared gates between them.
    Ple,
}

impl MoeKind {
    /// The DSL keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            MoeKind::Mmoe => "mmoe",
            MoeKind::Moe => "moe",
            MoeKind::Cgc => "cgc",
            MoeKind::Ple => "ple",
        }
    }
}

/// What the gates of PLE levels ≥ 2 read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateInput {
    /// The body input x at every level (Merlin's PLEBlock).
    Original,
    /// The level's own input: a task gate reads its task's previous output, the shared gate the
    /// previous shared output (the PLE paper).
    Level,
}

/// The wiring of a mixture-of-experts body: which experts and gates each level has and what
/// each gate weighs. One definition shared by the macro (which generates the dfdx network) and
/// the fused CPU engine (which executes it), so the two cannot disagree.
///
/// Level l has `K = T·task_experts + experts` experts: task t's block first (tasks in order),
/// then the shared ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoeLayout {
    pub kind: MoeKind,
    /// Shared experts (all experts of `mmoe`/`moe`).
    pub experts: usize,
    /// Experts of each task (`cgc`/`ple`; 0 otherwise).
    pub task_experts: usize,
    /// Stacked levels (`ple`; 1 otherwise).
    pub levels: usize,
    /// `cgc(shared_gate = true)`: a gate over all experts, for the gate metrics only.
    pub shared_gate: bool,
    /// What gates of levels ≥ 2 read (`ple`).
    pub gate_input: GateInput,
}

impl MoeLayout {
    /// Experts of one level over `tasks` tasks: `T·task_experts + experts`.
    pub fn total_experts(&self, tasks: usize) -> usize {
        tasks * self.task_experts + self.experts
    }

    /// Experts one task's gate weighs: its own and the shared ones.
    pub fn gate_experts(&self) -> usize {
        self.task_experts + self.experts
    }

    /// Where task `task`'s gate finds its experts among the level's K, in weight order.
    pub fn task_gate_columns(&self, task: usize, tasks: usize) -> Vec<usize> {
        let n = self.task_experts;
        (0..n)
            .map(|j| task * n + j)
            .chain((0..self.experts).map(|j| tasks * n + j))
            .collect()
    }

    /// [`MoeLayout::task_gate_columns`] as two ranges (what generated code carries).
    pub fn task_gate_ranges(&self, task: usize, tasks: usize) -> GateColumns {
        let n = self.task_experts;
        GateColumns {
            own_start: task * n,
            own_len: n,
            shared_start: tasks * n,
            shared_len: self.experts,
        }
    }

    /// Whether level `l` (1-based) has one gate per task. An intermediate PLE level's task
    /// output is only computed when something reads it: task experts or (level input) a gate.
    pub fn has_task_gates(&self, l: usize) -> bool {
        self.kind != MoeKind::Moe
            && (l == self.levels || self.task_experts > 0 || self.gate_input == GateInput::Level)
    }

    /// Whether level `l` has a shared gate over all its experts: the one gate of `moe`, every
    /// PLE level but the last (when shared experts read its output), `cgc(shared_gate = true)`.
    pub fn has_shared_gate(&self, l: usize) -> bool {
        match self.kind {
            MoeKind::Moe => true,
            MoeKind::Ple => l < self.levels && self.experts > 0,
            MoeKind::Cgc => self.shared_gate,
            MoeKind::Mmoe => false,
        }
    }

    /// Whether the shared gate's output is part of the forward pass (not only of the metrics).
    pub fn shared_gate_in_forward(&self, l: usize) -> bool {
        self.has_shared_gate(l) && self.kind != MoeKind::Cgc
    }

    /// Whether level `l`'s gates read the body input x (else their level's input).
    pub fn gates_read_input(&self, l: usize) -> bool {
        l == 1 || self.gate_input == GateInput::Original
    }
}

/// Which of a level's K experts a gate weighs, in weight order: `own_len` experts from
/// `own_start` (a task's own), then `shared_len` from `shared_start` (the shared ones). Two
/// ranges whatever the expert count, so generated code stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateColumns {
    pub own_start: usize,
    pub own_len: usize,
    pub shared_start: usize,
    pub shared_len: usize,
}

impl GateColumns {
    /// Every expert `0..k` (an MMoE gate, a shared gate).
    pub const fn all(k: usize) -> GateColumns {
        GateColumns {
            own_start: 0,
            own_len: k,
            shared_start: k,
            shared_len: 0,
        }
    }

    /// The expert indices, in weight order.
    pub fn indices(&self) -> Vec<usize> {
        (self.own_start..self.own_start + self.own_len)
            .chain(self.shared_start..self.shared_start + self.shared_len)
            .collect()
    }
}

/// A mixture-of-experts body: its wiring, the expert and gate blocks and the temperature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoeSpec {
    pub layout: MoeLayout,
    /// Every expert's MLP (one layer: the K experts of a level run as one batched layer).
    pub expert: MlpSpec,
    /// The gate block before the bias-free projection to the experts (`None`: the input).
    pub gate: Option<MlpSpec>,
    /// Softmax temperature in per-mille.
    pub temperature: u16,
}

/// The structure of a model's body, as the DSL declared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySpec {
    Mlp(MlpSpec),
    Identity,
    /// A user's dfdx block (`custom(Type, width = N)`): opaque to the runtime.
    Custom,
    Moe(MoeSpec),
}

/// Merlin's inferred embedding dimension: `roundup8(ceil(2 · cardinality^0.25))`.
pub fn infer_embedding_dim(cardinality: u64) -> usize {
    let d0 = (2.0 * (cardinality as f64).powf(0.25)).ceil() as usize;
    d0.div_ceil(8) * 8
}

#[cfg(test)]
mod tests {
    use super::infer_embedding_dim;

    #[test]
    fn inferred_dims_match_merlin_for_tenrec() {
        assert_eq!(infer_embedding_dim(100_001), 40);
        assert_eq!(infer_embedding_dim(179_281), 48);
        assert_eq!(infer_embedding_dim(6), 8);
        assert_eq!(infer_embedding_dim(11), 8);
    }
}
