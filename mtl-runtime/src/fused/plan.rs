//! The fused engine's program for one model, built from its [`ModelSpec`]: activation buffers,
//! operations in forward order and the flat parameter layout.
//!
//! Every operation writes a buffer of its own (`[C, W]` row-major for a chunk of C rows) and
//! reads column ranges ([`Cols`]) of earlier buffers, so a concatenation never copies: the K
//! experts of a level, or the experts and the first gate layers that read the same input, are
//! adjacent columns of one buffer written by one matrix product. Layers that read the same
//! input are fused into one [`DenseOp`] (one `[C, I] × [I, ΣO]` product forward, one each way
//! backward); their weights are laid out contiguously in the flat parameter vector for that.
//!
//! Parameters keep the dfdx network's names (`experts.0.weight`, `gates.click.hidden.0.bias`,
//! `level_2.experts.shared.0.weight`, `towers.like.0.weight`, `heads.like.bias`, ...): the
//! engine copies them from and to the network by name, and a plan whose names or shapes do not
//! match the network is refused.

use std::collections::HashMap;

use crate::spec::{
    Activation, BodySpec, FeatureKind, MlpSpec, ModelSpec, MoeKind, MoeSpec, TaskSpec,
};

/// Columns `start..start + width` of activation buffer `buf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Cols {
    pub buf: usize,
    pub start: usize,
    pub width: usize,
}

impl Cols {
    pub fn sub(self, start: usize, width: usize) -> Cols {
        debug_assert!(start + width <= self.width);
        Cols {
            buf: self.buf,
            start: self.start + start,
            width,
        }
    }
}

/// A column range of a dense op's output with its bias, activation and dropout.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// Output columns covered (relative to the op's output buffer).
    pub start: usize,
    pub width: usize,
    /// Parameter offset of the segment's bias (`width` values), if it has one.
    pub bias: Option<usize>,
    pub activation: Activation,
    /// Dropout rate (training only).
    pub dropout: f32,
}

/// `y = act(x·Wᵀ + b)` (+ dropout) for one or more fused layers reading the same input.
#[derive(Debug, Clone)]
pub(crate) struct DenseOp {
    pub input: Cols,
    /// The op's own output buffer, `out_width` columns.
    pub output: usize,
    pub out_width: usize,
    /// Parameter offset of the `[out_width, input.width]` row-major weight.
    pub weight: usize,
    pub segments: Vec<Segment>,
    /// Pre-activation buffer (saved for activations whose derivative needs it, and dropout).
    pub pre: Option<usize>,
    /// Dropout-mask buffer.
    pub mask: Option<usize>,
    /// The input's gradient: `None` when nothing needs it, else whether this op writes it first
    /// (overwrite) or adds to what later ops wrote.
    pub input_grad: Option<bool>,
}

/// `y = softmax(z · inv_temperature)` row by row.
#[derive(Debug, Clone)]
pub(crate) struct SoftmaxOp {
    pub input: Cols,
    pub output: usize,
    pub inv_temperature: f32,
    pub input_grad_overwrite: bool,
}

/// One gate of a [`MixOp`]: its `[C, K_g]` weights and which experts they weigh.
#[derive(Debug, Clone)]
pub(crate) struct MixGate {
    pub weights: Cols,
    /// Indices into the op's experts, in weight order.
    pub columns: Vec<usize>,
    pub weights_grad_overwrite: bool,
}

/// The expert mixing of all gates of a level: `out_g = Σ_i w_g[i]·E[columns_g[i]]`; gate g's
/// output is columns `g·H..(g+1)·H` of the op's buffer.
#[derive(Debug, Clone)]
pub(crate) struct MixOp {
    /// Each expert's `[C, H]` output.
    pub experts: Vec<Cols>,
    pub h: usize,
    pub gates: Vec<MixGate>,
    pub output: usize,
    /// For each expert, the `(gate, position)` pairs that weigh it.
    pub users: Vec<Vec<(usize, usize)>>,
    pub expert_grad_overwrite: Vec<bool>,
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Dense(DenseOp),
    Softmax(SoftmaxOp),
    Mix(MixOp),
}

/// One named parameter tensor in the flat parameter vector (`rows × cols`, row-major).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParamEntry {
    pub name: String,
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
}

impl ParamEntry {
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }
}

/// The program: buffers, ops in forward order, each task's output columns and the parameters.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Widths of the activation buffers; buffer 0 is the `[C, INPUT_WIDTH]` input.
    pub widths: Vec<usize>,
    /// Widths of the pre-activation and dropout-mask buffers.
    pub pre_widths: Vec<usize>,
    pub mask_widths: Vec<usize>,
    pub ops: Vec<Op>,
    /// Each task's output columns (logits or values), in task order.
    pub heads: Vec<Cols>,
    pub params: Vec<ParamEntry>,
    pub num_params: usize,
    /// Gradient columns no backward op writes but one reads: zeroed before the backward pass.
    pub zero_grads: Vec<Cols>,
    /// Whether the input needs its gradient (it has embedded features).
    pub input_grad: bool,
}

/// One layer of a fused group.
#[derive(Debug, Clone)]
struct Member {
    weight: String,
    bias: Option<String>,
    width: usize,
    activation: Activation,
    dropout: u16,
}

impl Member {
    /// Layer `i` of `mlp`, named `<prefix>.<path of i>.weight|bias`.
    fn of_mlp(prefix: &str, mlp: &MlpSpec, i: usize) -> Member {
        let path = mlp.layer_path(i);
        Member {
            weight: format!("{prefix}.{path}.weight"),
            bias: Some(format!("{prefix}.{path}.bias")),
            width: mlp.widths[i],
            activation: mlp.layer_activation(i),
            dropout: mlp.layer_dropout(i),
        }
    }

    /// A bias-free linear projection (a gate's `weight`).
    fn projection(name: String, width: usize) -> Member {
        Member {
            weight: name,
            bias: None,
            width,
            activation: Activation::Linear,
            dropout: 0,
        }
    }
}

/// Why a model cannot run on the fused engine (it then trains on the generic dfdx path).
pub(crate) fn unsupported(spec: &ModelSpec) -> Option<String> {
    let mut mlps: Vec<MlpSpec> = spec.tasks.iter().filter_map(|t| t.tower).collect();
    match spec.body_spec {
        BodySpec::Custom => return Some("the body is a custom dfdx block".into()),
        BodySpec::Mlp(m) => mlps.push(m),
        BodySpec::Identity => {}
        BodySpec::Moe(moe) => {
            mlps.push(moe.expert);
            mlps.extend(moe.gate);
        }
    }
    if mlps.iter().any(|m| m.batch_norm) {
        return Some("a layer uses batch normalisation".into());
    }
    if let Some(t) = spec.tasks.iter().find(|t| t.aitm.is_some()) {
        return Some(format!("task `{}` uses an AITM transfer", t.name));
    }
    None
}

struct Builder {
    plan: Plan,
}

impl Builder {
    fn buffer(&mut self, width: usize) -> usize {
        self.plan.widths.push(width);
        self.plan.widths.len() - 1
    }

    fn param(&mut self, name: String, rows: usize, cols: usize) -> usize {
        let offset = self.plan.num_params;
        self.plan.params.push(ParamEntry {
            name,
            offset,
            rows,
            cols,
        });
        self.plan.num_params += rows * cols;
        offset
    }

    /// Layers reading the same `input`, as one op: each member's output columns.
    fn fused(&mut self, input: Cols, members: Vec<Member>) -> Vec<Cols> {
        // Weights first, contiguous in member order (one [ΣO, I] matrix), then the biases.
        let weight = self.plan.num_params;
        for m in &members {
            self.param(m.weight.clone(), m.width, input.width);
        }
        let mut segments = Vec::with_capacity(members.len());
        let mut start = 0;
        for m in &members {
            let bias = m.bias.clone().map(|b| self.param(b, m.width, 1));
            segments.push(Segment {
                start,
                width: m.width,
                bias,
                activation: m.activation,
                dropout: f32::from(m.dropout) / 1000.0,
            });
            start += m.width;
        }
        let output = self.dense(input, weight, segments);
        let mut start = 0;
        members
            .iter()
            .map(|m| {
                let c = Cols {
                    buf: output,
                    start,
                    width: m.width,
                };
                start += m.width;
                c
            })
            .collect()
    }

    /// A dense op over parameters already laid out (weight `[ΣO, I]` at `weight`); its output
    /// buffer.
    fn dense(&mut self, input: Cols, weight: usize, segments: Vec<Segment>) -> usize {
        let out_width: usize = segments.iter().map(|s| s.width).sum();
        let output = self.buffer(out_width);
        let needs_pre = segments.iter().any(|s| {
            !matches!(s.activation, Activation::Relu | Activation::Linear) || s.dropout > 0.0
        });
        let pre = needs_pre.then(|| {
            self.plan.pre_widths.push(out_width);
            self.plan.pre_widths.len() - 1
        });
        let mask = segments.iter().any(|s| s.dropout > 0.0).then(|| {
            self.plan.mask_widths.push(out_width);
            self.plan.mask_widths.len() - 1
        });
        self.plan.ops.push(Op::Dense(DenseOp {
            input,
            output,
            out_width,
            weight,
            segments,
            pre,
            mask,
            input_grad: None,
        }));
        output
    }

    /// `count` experts `mlp` side by side, from their first layer's output `first`
    /// (`count·W₀` columns): each expert's `[C, H]` output. Layer i ≥ 1 is one parameter pair
    /// `<prefix>.<path of i>.weight` `[count·Wᵢ, Wᵢ₋₁]` / `.bias` (as `nn::GroupedDense` holds
    /// it) and one op per expert over its own rows, reading its own columns.
    fn expert_layers(
        &mut self,
        first: Cols,
        prefix: &str,
        mlp: &MlpSpec,
        count: usize,
    ) -> Vec<Cols> {
        let w0 = mlp.widths[0];
        let mut outs: Vec<Cols> = (0..count).map(|e| first.sub(e * w0, w0)).collect();
        for i in 1..mlp.widths.len() {
            let (w_in, w) = (mlp.widths[i - 1], mlp.widths[i]);
            let path = mlp.layer_path(i);
            let weight = self.param(format!("{prefix}.{path}.weight"), count * w, w_in);
            let bias = self.param(format!("{prefix}.{path}.bias"), count * w, 1);
            outs = outs
                .into_iter()
                .enumerate()
                .map(|(e, input)| {
                    let segment = Segment {
                        start: 0,
                        width: w,
                        bias: Some(bias + e * w),
                        activation: mlp.layer_activation(i),
                        dropout: f32::from(mlp.layer_dropout(i)) / 1000.0,
                    };
                    let output = self.dense(input, weight + e * w * w_in, vec![segment]);
                    Cols {
                        buf: output,
                        start: 0,
                        width: w,
                    }
                })
                .collect();
        }
        outs
    }

    fn layer(&mut self, input: Cols, member: Member) -> Cols {
        self.fused(input, vec![member])[0]
    }

    /// Requests `(input, layer)`, fused per distinct input; outputs in request order.
    fn grouped(&mut self, requests: Vec<(Cols, Member)>) -> Vec<Cols> {
        let mut order: Vec<Cols> = Vec::new();
        let mut groups: HashMap<Cols, Vec<usize>> = HashMap::new();
        for (i, (input, _)) in requests.iter().enumerate() {
            groups
                .entry(*input)
                .or_insert_with(|| {
                    order.push(*input);
                    Vec::new()
                })
                .push(i);
        }
        let mut out = vec![None; requests.len()];
        for input in order {
            let idx = &groups[&input];
            let members = idx.iter().map(|&i| requests[i].1.clone()).collect();
            for (&i, c) in idx.iter().zip(self.fused(input, members)) {
                out[i] = Some(c);
            }
        }
        out.into_iter().flatten().collect()
    }

    /// Layers `from..` of `mlp` (named `<prefix>.<i>`), chained from `input`.
    fn mlp_from(&mut self, mut input: Cols, prefix: &str, mlp: &MlpSpec, from: usize) -> Cols {
        for i in from..mlp.widths.len() {
            input = self.layer(input, Member::of_mlp(prefix, mlp, i));
        }
        input
    }

    fn softmax(&mut self, input: Cols, inv_temperature: f32) -> Cols {
        let output = self.buffer(input.width);
        self.plan.ops.push(Op::Softmax(SoftmaxOp {
            input,
            output,
            inv_temperature,
            input_grad_overwrite: false,
        }));
        Cols {
            buf: output,
            start: 0,
            width: input.width,
        }
    }

    /// Mixes `experts` for `gates` (weights, columns); each gate's `[C, H]` output.
    fn mix(&mut self, experts: Vec<Cols>, h: usize, gates: Vec<(Cols, Vec<usize>)>) -> Vec<Cols> {
        let output = self.buffer(gates.len() * h);
        let mut users = vec![Vec::new(); experts.len()];
        for (g, (_, columns)) in gates.iter().enumerate() {
            for (i, &k) in columns.iter().enumerate() {
                users[k].push((g, i));
            }
        }
        let n = gates.len();
        self.plan.ops.push(Op::Mix(MixOp {
            expert_grad_overwrite: vec![false; experts.len()],
            experts,
            h,
            gates: gates
                .into_iter()
                .map(|(weights, columns)| MixGate {
                    weights,
                    columns,
                    weights_grad_overwrite: false,
                })
                .collect(),
            output,
            users,
        }));
        (0..n)
            .map(|g| Cols {
                buf: output,
                start: g * h,
                width: h,
            })
            .collect()
    }

    /// A mixture-of-experts body reading `x`: each task's `[C, H]` representation.
    fn moe(&mut self, x: Cols, moe: &MoeSpec, tasks: &[TaskSpec]) -> Vec<Cols> {
        let lay = moe.layout;
        let t_count = tasks.len();
        let k = lay.total_experts(t_count);
        let h = moe.expert.out_width();
        let (n, s) = (lay.task_experts, lay.experts);
        let ple = lay.kind == MoeKind::Ple;
        let pfx = |l: usize| {
            if ple {
                format!("level_{l}.")
            } else {
                String::new()
            }
        };
        // The gates of level l that the forward pass uses: (field, task, columns).
        let gates = |l: usize| {
            let mut g: Vec<(String, Option<usize>, Vec<usize>)> = Vec::new();
            if lay.has_task_gates(l) {
                for (i, t) in tasks.iter().enumerate() {
                    g.push((
                        t.name.to_string(),
                        Some(i),
                        lay.task_gate_columns(i, t_count),
                    ));
                }
            }
            if lay.shared_gate_in_forward(l) {
                g.push(("shared".to_string(), None, (0..k).collect()));
            }
            g
        };
        let gate_first = |l: usize, field: &str, experts: usize| match &moe.gate {
            Some(gm) => Member::of_mlp(&format!("{}gates.{field}.hidden", pfx(l)), gm, 0),
            None => Member::projection(format!("{}gates.{field}.weight", pfx(l)), experts),
        };
        // The first layer of a group of `count` experts, `count` times as wide.
        let expert_member = |name: &str, count: usize| {
            let mut m = Member::of_mlp(name, &moe.expert, 0);
            m.width *= count;
            m
        };

        // Everything that reads x is one product: level 1's experts and every gate that reads
        // the body input (level 1's, and all levels' with `gate_input = original`).
        let level_1_experts = format!("{}experts", pfx(1));
        let mut x_members = vec![expert_member(&level_1_experts, k)];
        let mut x_gates = Vec::new();
        for l in 1..=lay.levels {
            if lay.gates_read_input(l) {
                for (field, _, cols) in gates(l) {
                    x_members.push(gate_first(l, &field, cols.len()));
                    x_gates.push((l, field));
                }
            }
        }
        let x_out = self.fused(x, x_members);
        let mut first: HashMap<(usize, String), Cols> = x_gates
            .into_iter()
            .zip(x_out[1..].iter().copied())
            .collect();

        let mut prev_task: Vec<Option<Cols>> = vec![None; t_count];
        let mut prev_shared: Option<Cols> = None;
        for l in 1..=lay.levels {
            let level_gates = gates(l);
            let experts: Vec<Cols> = if l == 1 {
                self.expert_layers(x_out[0], &level_1_experts, &moe.expert, k)
            } else {
                // One product per source: a group's experts and the gates of this level that
                // read the same previous output.
                let mut task_groups: Vec<Option<Vec<Cols>>> = vec![None; t_count];
                let mut shared_group: Option<Vec<Cols>> = None;
                let reads_level = !lay.gates_read_input(l);
                let mut sources: Vec<(Option<usize>, Cols)> = Vec::new();
                for (t, prev) in prev_task.iter().enumerate() {
                    if let Some(p) = prev {
                        sources.push((Some(t), *p));
                    }
                }
                if let Some(p) = prev_shared {
                    sources.push((None, p));
                }
                for (task, input) in sources {
                    let mut members = Vec::new();
                    let count = if task.is_some() { n } else { s };
                    let group = task.map_or("shared".to_string(), |t| tasks[t].name.to_string());
                    let group = format!("{}experts.{group}", pfx(l));
                    if count > 0 {
                        members.push(expert_member(&group, count));
                    }
                    let gate = level_gates.iter().find(|g| reads_level && g.1 == task);
                    if let Some((field, _, cols)) = gate {
                        members.push(gate_first(l, field, cols.len()));
                    }
                    if members.is_empty() {
                        continue;
                    }
                    let outs = self.fused(input, members);
                    let mut outs = outs.into_iter();
                    let first_layer = if count > 0 { outs.next() } else { None };
                    if let (Some((field, _, _)), Some(o)) = (gate, outs.next()) {
                        first.insert((l, field.clone()), o);
                    }
                    if let Some(o) = first_layer {
                        let experts = Some(self.expert_layers(o, &group, &moe.expert, count));
                        match task {
                            Some(t) => task_groups[t] = experts,
                            None => shared_group = experts,
                        }
                    }
                }
                (0..k)
                    .filter_map(|e| {
                        if e < t_count * n {
                            task_groups[e / n].as_ref().map(|g| g[e % n])
                        } else {
                            shared_group.as_ref().map(|g| g[e - t_count * n])
                        }
                    })
                    .collect()
            };
            debug_assert_eq!(experts.len(), k, "every expert of level {l} has an output");
            let inv_t = 1000.0 / f32::from(moe.temperature);
            let mut mixed_gates = Vec::new();
            for (field, _, cols) in &level_gates {
                let first_out = first[&(l, field.clone())];
                let logits = match &moe.gate {
                    Some(gm) => {
                        let hidden = self.mlp_from(
                            first_out,
                            &format!("{}gates.{field}.hidden", pfx(l)),
                            gm,
                            1,
                        );
                        self.layer(
                            hidden,
                            Member::projection(
                                format!("{}gates.{field}.weight", pfx(l)),
                                cols.len(),
                            ),
                        )
                    }
                    None => first_out,
                };
                mixed_gates.push((self.softmax(logits, inv_t), cols.clone()));
            }
            let outs = self.mix(experts, h, mixed_gates);
            prev_task = vec![None; t_count];
            prev_shared = None;
            for ((_, task, _), out) in level_gates.iter().zip(outs) {
                match task {
                    Some(t) => prev_task[*t] = Some(out),
                    None => prev_shared = Some(out),
                }
            }
        }
        match lay.kind {
            MoeKind::Moe => vec![prev_shared.unwrap_or(x); t_count],
            _ => prev_task.into_iter().map(|p| p.unwrap_or(x)).collect(),
        }
    }

    /// Marks, for every gradient write, whether it is the first one to its columns (backward
    /// order), and lists the columns read but never written (to zero).
    fn settle_gradients(&mut self) {
        let mut written: Vec<Vec<bool>> =
            self.plan.widths.iter().map(|&w| vec![false; w]).collect();
        // The loss writes every head's gradient.
        for h in &self.plan.heads {
            written[h.buf][h.start..h.start + h.width].fill(true);
        }
        let input_grad = self.plan.input_grad;
        // Returns whether a write to `c` overwrites; partially written columns are zeroed first.
        let mut zero = Vec::new();
        let mut first_write = |written: &mut Vec<Vec<bool>>, c: Cols| -> bool {
            let cols = &mut written[c.buf][c.start..c.start + c.width];
            if cols.iter().all(|w| !w) {
                cols.fill(true);
                true
            } else {
                if cols.iter().any(|w| !w) {
                    zero.push(c);
                    cols.fill(true);
                }
                false
            }
        };
        for op in self.plan.ops.iter_mut().rev() {
            match op {
                Op::Dense(d) => {
                    if d.input.buf != 0 || input_grad {
                        d.input_grad = Some(first_write(&mut written, d.input));
                    }
                }
                Op::Softmax(s) => s.input_grad_overwrite = first_write(&mut written, s.input),
                Op::Mix(m) => {
                    for g in &mut m.gates {
                        g.weights_grad_overwrite = first_write(&mut written, g.weights);
                    }
                    for (e, o) in m.experts.iter().zip(&mut m.expert_grad_overwrite) {
                        *o = first_write(&mut written, *e);
                    }
                }
            }
        }
        // An op reads the gradient of its whole output buffer: unwritten columns must be 0.
        for op in &self.plan.ops {
            let (buf, width) = match op {
                Op::Dense(d) => (d.output, d.out_width),
                Op::Softmax(s) => (s.output, s.input.width),
                Op::Mix(m) => (m.output, m.gates.len() * m.h),
            };
            for (c, w) in written[buf][..width].iter().enumerate() {
                if !w {
                    zero.push(Cols {
                        buf,
                        start: c,
                        width: 1,
                    });
                }
            }
        }
        self.plan.zero_grads = zero;
    }
}

/// The plan of `spec`, or why it cannot have one.
pub(crate) fn build(spec: &ModelSpec) -> Result<Plan, String> {
    if let Some(why) = unsupported(spec) {
        return Err(why);
    }
    let input_width = spec.input_width;
    let mut b = Builder {
        plan: Plan {
            widths: Vec::new(),
            pre_widths: Vec::new(),
            mask_widths: Vec::new(),
            ops: Vec::new(),
            heads: Vec::new(),
            params: Vec::new(),
            num_params: 0,
            zero_grads: Vec::new(),
            input_grad: spec
                .features
                .iter()
                .any(|f| f.kind == FeatureKind::Categorical),
        },
    };
    let x = Cols {
        buf: b.buffer(input_width),
        start: 0,
        width: input_width,
    };
    let h: Vec<Cols> = match &spec.body_spec {
        BodySpec::Mlp(m) => vec![b.mlp_from(x, "body", m, 0); spec.tasks.len()],
        BodySpec::Identity => vec![x; spec.tasks.len()],
        BodySpec::Moe(moe) => b.moe(x, moe, spec.tasks),
        BodySpec::Custom => unreachable!("refused above"),
    };
    // Towers: first layers fused per distinct input (every task reads the same body output
    // unless the body is per task), then each tower's remaining layers.
    let mut tower_first = Vec::new();
    for (t, hi) in spec.tasks.iter().zip(&h) {
        if let Some(m) = &t.tower {
            tower_first.push((*hi, Member::of_mlp(&format!("towers.{}", t.name), m, 0)));
        }
    }
    let mut firsts = b.grouped(tower_first).into_iter();
    let mut tower_out = Vec::new();
    for (t, hi) in spec.tasks.iter().zip(&h) {
        tower_out.push(match (&t.tower, t.tower.and_then(|_| firsts.next())) {
            (Some(m), Some(first)) => b.mlp_from(first, &format!("towers.{}", t.name), m, 1),
            _ => *hi,
        });
    }
    let heads = spec
        .tasks
        .iter()
        .zip(&tower_out)
        .map(|(t, input)| {
            (
                *input,
                Member {
                    weight: format!("heads.{}.weight", t.name),
                    bias: Some(format!("heads.{}.bias", t.name)),
                    width: t.kind.output_width(),
                    activation: Activation::Linear,
                    dropout: 0,
                },
            )
        })
        .collect();
    b.plan.heads = b.grouped(heads);
    b.settle_gradients();
    Ok(b.plan)
}
