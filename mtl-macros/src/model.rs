//! The validated, resolved model that codegen consumes: every width known, every name bound.

use proc_macro2::Span;
use syn::{Attribute, Ident, Visibility};

pub struct Model {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub schema: Option<SchemaFile>,
    /// Input features in input (alphabetical) order.
    pub features: Vec<Feature>,
    pub body: Body,
    /// Tasks in name order.
    pub tasks: Vec<Task>,
    pub loss_balancing: mtl_runtime::spec::LossBalancing,
}

pub struct SchemaFile {
    /// As written in the DSL (relative to CARGO_MANIFEST_DIR).
    pub path: String,
    pub absolute: String,
}

pub struct Feature {
    pub name: String,
    pub kind: FeatureKind,
    /// Where the feature is declared (its key in `inputs`, or the model's name when inferred
    /// from the schema): errors about the feature as a whole point here.
    pub span: Span,
}

pub enum FeatureKind {
    Categorical {
        cardinality: u64,
        dim: usize,
        table: String,
        /// A list (multi-hot) input: how many positions it reads and how it pools them.
        list: Option<ListInput>,
    },
    Continuous {
        width: usize,
    },
}

/// A categorical input over a list column: `max_len` positions per row, pooled by `combiner`.
#[derive(Clone, Copy)]
pub struct ListInput {
    pub max_len: usize,
    pub combiner: mtl_runtime::spec::Combiner,
}

impl Feature {
    pub fn width(&self) -> usize {
        match self.kind {
            FeatureKind::Categorical { dim, .. } => dim,
            FeatureKind::Continuous { width } => width,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Activation {
    Relu,
    Selu,
    Gelu,
    Tanh,
    Sigmoid,
    Linear,
}

impl Activation {
    pub const NAMES: [&'static str; 6] = ["relu", "selu", "gelu", "tanh", "sigmoid", "none"];

    pub fn parse(s: &str) -> Option<Activation> {
        Some(match s {
            "relu" => Activation::Relu,
            "selu" => Activation::Selu,
            "gelu" => Activation::Gelu,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "none" | "linear" => Activation::Linear,
            _ => return None,
        })
    }

    pub fn type_name(self) -> &'static str {
        match self {
            Activation::Relu => "Relu",
            Activation::Selu => "Selu",
            Activation::Gelu => "Gelu",
            Activation::Tanh => "Tanh",
            Activation::Sigmoid => "Sigmoid",
            Activation::Linear => "Linear",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Selu => "selu",
            Activation::Gelu => "gelu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Linear => "none",
        }
    }
}

#[derive(Clone)]
pub struct Mlp {
    pub widths: Vec<usize>,
    pub activation: Activation,
    /// Dropout rate in per-mille.
    pub dropout: u16,
    pub batch_norm: bool,
    pub no_activation_last_layer: bool,
}

impl Mlp {
    pub fn out_width(&self) -> usize {
        *self.widths.last().expect("checked non-empty")
    }

    /// `mlp[32, 16] relu, dropout 0.1, batch_norm`.
    pub fn describe(&self) -> String {
        let widths: Vec<String> = self.widths.iter().map(|w| w.to_string()).collect();
        let mut s = format!("mlp[{}] {}", widths.join(", "), self.activation.name());
        if self.dropout > 0 {
            s.push_str(&format!(", dropout {}", f64::from(self.dropout) / 1000.0));
        }
        if self.batch_norm {
            s.push_str(", batch_norm");
        }
        if self.no_activation_last_layer {
            s.push_str(", linear last layer");
        }
        s
    }
}

pub enum Body {
    Mlp(Mlp),
    Identity,
    /// A user's block: `custom(Type, width = N)`; `Type<E, D>` maps `[B, IN]` to `[B, N]`.
    Custom {
        ty: syn::Type,
        width: usize,
    },
    /// `mmoe(..)` (one gate per task) or `moe(..)` (one gate shared by all tasks).
    Moe(Moe),
}

pub use mtl_runtime::spec::GateInput;
use mtl_runtime::spec::{MoeKind, MoeLayout};

/// `mmoe(..)`, `moe(..)`, `cgc(..)` or `ple(..)`: a stack of `levels` expert levels (one unless
/// `ple`). Level l has `T·task_experts + experts` experts, all `expert`-shaped.
pub struct Moe {
    pub kind: MoeKind,
    /// Shared experts (all experts of `mmoe`/`moe`).
    pub experts: usize,
    /// Experts of each task (`cgc`/`ple`; 0 otherwise).
    pub task_experts: usize,
    /// The expert MLP (every expert of the body has this shape).
    pub expert: Mlp,
    /// The gate block before the bias-free projection to the experts (`None`: the input).
    pub gate: Option<Mlp>,
    /// Softmax temperature in per-mille.
    pub temperature: u16,
    /// Stacked levels (`ple`; 1 otherwise).
    pub levels: usize,
    /// `cgc(shared_gate = true)`: a gate over all experts, reported in the gate metrics only
    /// (as in Merlin, a single CGC's shared output feeds no task).
    pub shared_gate: bool,
    /// What gates of levels ≥ 2 read (`ple`).
    pub gate_input: GateInput,
}

impl Moe {
    /// The wiring rules, shared with the runtime's fused engine.
    pub fn layout(&self) -> MoeLayout {
        MoeLayout {
            kind: self.kind,
            experts: self.experts,
            task_experts: self.task_experts,
            levels: self.levels,
            shared_gate: self.shared_gate,
            gate_input: self.gate_input,
        }
    }

    /// Experts of one level over all tasks: `T·task_experts + experts`.
    pub fn total_experts(&self, tasks: usize) -> usize {
        self.layout().total_experts(tasks)
    }

    /// Experts one task's gate weighs: its own and the shared ones.
    pub fn gate_experts(&self) -> usize {
        self.layout().gate_experts()
    }

    /// Whether level `l` (1-based) has one gate per task.
    pub fn has_task_gates(&self, l: usize) -> bool {
        self.layout().has_task_gates(l)
    }

    /// Whether level `l` has a shared gate over all its experts.
    pub fn has_shared_gate(&self, l: usize) -> bool {
        self.layout().has_shared_gate(l)
    }

    /// Width of what level `l`'s gates read.
    pub fn gate_input_width(&self, l: usize, input_width: usize) -> usize {
        if self.layout().gates_read_input(l) {
            input_width
        } else {
            self.expert.out_width()
        }
    }

    pub fn describe(&self) -> String {
        let gate = self.gate.as_ref().map_or("none".to_string(), Mlp::describe);
        let experts = if matches!(self.kind, MoeKind::Cgc | MoeKind::Ple) {
            format!("{} per task + {} shared", self.task_experts, self.experts)
        } else {
            self.experts.to_string()
        };
        let mut extra = String::new();
        if self.kind == MoeKind::Ple {
            extra = format!(
                ", {} levels, gate input {}",
                self.levels,
                match self.gate_input {
                    GateInput::Original => "original",
                    GateInput::Level => "level",
                }
            );
        }
        if self.kind == MoeKind::Cgc && self.shared_gate {
            extra.push_str(", shared gate");
        }
        format!(
            "{}({} experts {}, gate {}, temperature {}{})",
            self.kind.keyword(),
            experts,
            self.expert.describe(),
            gate,
            f64::from(self.temperature) / 1000.0,
            extra
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Binary,
    Regression,
    Multiclass(usize),
}

impl TaskKind {
    pub fn suffix(self) -> &'static str {
        match self {
            TaskKind::Binary => "binary_output",
            TaskKind::Regression => "regression_output",
            TaskKind::Multiclass(_) => "categorical_output",
        }
    }

    pub fn width(self) -> usize {
        match self {
            TaskKind::Multiclass(n) => n,
            _ => 1,
        }
    }

    pub fn runtime(self) -> mtl_runtime::spec::TaskKind {
        match self {
            TaskKind::Binary => mtl_runtime::spec::TaskKind::Binary,
            TaskKind::Regression => mtl_runtime::spec::TaskKind::Regression,
            TaskKind::Multiclass(classes) => mtl_runtime::spec::TaskKind::Multiclass { classes },
        }
    }
}

pub struct Task {
    pub name: String,
    pub span: Span,
    pub target: String,
    pub kind: TaskKind,
    pub loss_weight: f64,
    /// The `loss_weight` key, when the task declares one.
    pub loss_weight_span: Option<Span>,
    /// `given = parent`: the binary task this one is conditional on (ESMM), with the spans of
    /// the `given` key and of the parent's name.
    pub given: Option<Given>,
    /// `transfer = aitm` (with `given`): AITM instead of ESMM's product.
    pub transfer: Option<Transfer>,
    pub class_weights: Option<(f64, f64)>,
    pub sample_weights: Vec<String>,
    pub metrics: Vec<&'static str>,
    pub weighted_metrics: Vec<&'static str>,
    pub tower: Option<Mlp>,
}

/// A task's `given = parent`.
pub struct Given {
    pub parent: String,
    pub key: Span,
    pub value: Span,
}

/// A task's `transfer = aitm`: its tower output attends over the information its `given`
/// parent's tower passes on, and `calibration` weighs the calibration loss.
pub struct Transfer {
    pub calibration: f64,
}

/// AITM's calibration weight when `calibration` is not given (the paper's reference code).
pub const DEFAULT_CALIBRATION: f64 = 0.6;

impl Model {
    pub fn input_width(&self) -> usize {
        self.features.iter().map(Feature::width).sum()
    }

    pub fn body_width(&self) -> usize {
        match &self.body {
            Body::Mlp(m) => m.out_width(),
            Body::Identity => self.input_width(),
            Body::Custom { width, .. } => *width,
            Body::Moe(m) => m.expert.out_width(),
        }
    }

    /// The tasks with an AITM transfer paired with their parent's index, parents before
    /// children (a parent's own transfer, along a chain, comes first). The DSL's checks have
    /// refused unknown parents and cycles before code is generated.
    pub fn aitm_order(&self) -> Vec<(usize, usize)> {
        let parent_of = |t: &Task| {
            let given = t.given.as_ref()?;
            t.transfer.as_ref()?;
            self.tasks.iter().position(|p| p.name == given.parent)
        };
        let mut order: Vec<(usize, usize)> = Vec::new();
        let mut left: Vec<(usize, usize)> = self
            .tasks
            .iter()
            .enumerate()
            .filter_map(|(c, t)| parent_of(t).map(|p| (c, p)))
            .collect();
        while !left.is_empty() {
            let before = left.len();
            let mut i = 0;
            while i < left.len() {
                let (_, p) = left[i];
                if left.iter().any(|&(c, _)| c == p) {
                    i += 1;
                } else {
                    order.push(left.remove(i));
                }
            }
            if left.len() == before {
                order.append(&mut left);
            }
        }
        order
    }

    pub fn body_description(&self) -> String {
        match &self.body {
            Body::Mlp(m) => m.describe(),
            Body::Identity => "identity".into(),
            Body::Moe(m) => m.describe(),
            Body::Custom { ty, width } => {
                format!(
                    "custom({}, width = {width})",
                    quote::quote!(#ty).to_string().replace(' ', "")
                )
            }
        }
    }
}
