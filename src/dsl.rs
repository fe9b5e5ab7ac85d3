//! # The `mtl_model!` DSL reference
//!
//! `mtl_model!` turns a declarative model description into a statically shaped dfdx network.
//! Every width is a compile-time constant; every mistake is a compile error on the token at
//! fault.
//!
//! ```
//! use mtl::prelude::*;
//!
//! mtl_model! {
//!     /// Shared-bottom model over Merlin's tenrec-video schema.
//!     pub struct Video {
//!         schema: "tests/fixtures/merlin-tenrec-video/schema.json",
//!         inputs: {
//!             user_id: categorical(dim = 64),
//!             item_id: categorical(dim = 64),
//!             video_category: categorical(dim = 16),
//!             gender: categorical(dim = 16),
//!             age: categorical(dim = 16),
//!         },
//!         body: mlp[32, 16](dropout = 0.1),
//!         towers: mlp[16],
//!         tasks: {
//!             click: binary(loss_weight = 5.0, class_weights = (1.0, 5.0)),
//!             like: binary(sample_weight = click, weighted_metrics = [auc], tower = mlp[32]),
//!             watching_times: regression,
//!         },
//!     }
//! }
//!
//! let dev = Cpu::default();
//! let net = dev.build_module::<Video, f32>();            // VideoNetwork<f32, Cpu>
//! let x: Tensor<(usize, Const<{ Video::INPUT_WIDTH }>), f32, Cpu> =
//!     dev.zeros_like(&(7, Const));                        // [B, 176]: embeddings + continuous
//! let out = net.forward(x);                               // VideoOutputs: one field per task
//! assert_eq!(out.click.shape().0, 7);                     // [B, 1] logits
//! assert_eq!(Video::spec().tasks[0].output_name, "click/binary_output");
//! println!("{net}");                                      // the model summary
//! ```
//!
//! ## Sections
//!
//! A model is `attributes visibility struct Name { section: value, ... }`. Doc comments and
//! attributes go on the generated builder type. Sections may come in any order.
//!
//! | section | value | default |
//! |---|---|---|
//! | `schema` | `"path"` to a Merlin `schema.json` or `schema.pbtxt` | none |
//! | `inputs` | `{ name: categorical(..) \| continuous(..), .. }`; a trailing `..` adds every other input the schema has | every non-target categorical/continuous schema column |
//! | `exclude` | `[column, ..]`: columns dropped before inference (Merlin's `schema.without`) | `[]` |
//! | `body` | `mlp[..]`, `identity`, `custom(Block, width = N)`, `mmoe(..)`, `moe(..)`, `cgc(..)` or `ple(..)` | required |
//! | `towers` | `mlp[..]`: the tower of every task that names none; `none`: no towers | no towers |
//! | `tasks` | `{ name: binary(..) \| regression(..) \| multiclass(..), .. }`; a trailing `..` adds a task for every other schema target | every `target` schema column |
//! | `loss_balancing` | `fixed` (the declared `loss_weight`s), `uncertainty` or `gradnorm(alpha = α)` (learnt per-task weights, see below) | `fixed` |
//!
//! ### Several models, shared sections
//!
//! One `mtl_model!` may declare several models. Sections written before the first model are
//! shared: every model gets them, unless it gives the same section itself, which then replaces
//! the shared one (the whole section: a model's `inputs` is not merged with the shared
//! `inputs`). This is how one set of inputs serves several bodies:
//!
//! ```
//! use mtl::prelude::*;
//!
//! mtl_model! {
//!     schema: "tests/fixtures/merlin-tenrec-video/schema.json",
//!     inputs: { user_id: categorical(dim = 64), item_id: categorical(dim = 64), .. },
//!     towers: mlp[16],
//!
//!     /// Shared bottom, without towers.
//!     pub struct SharedBottom { body: mlp[32, 16], towers: none }
//!     /// MMoE with two-layer experts.
//!     pub struct Mmoe { body: mmoe(experts = 4, expert = mlp[32, 16], gate = mlp[16]) }
//! }
//!
//! assert_eq!(SharedBottom::INPUT_WIDTH, Mmoe::INPUT_WIDTH);
//! ```
//!
//! A mistake in a shared section is reported once, however many models use it. Two models of
//! one name in one `mtl_model!` are an error on the second name.
//!
//! ### `schema`
//! Read at compile time, relative to the crate root (`CARGO_MANIFEST_DIR`), or, if not found
//! there, to the source file that invokes the macro. Editing the file rebuilds the crate. The
//! text is embedded in the model's spec (`Video::spec().schema()`). Absolute paths are rejected.
//!
//! ### `inputs`
//! - `categorical`: an id looked up in an embedding table. Options: `cardinality = N` (table rows;
//!   default `domain.max + 1` from the schema, required without one), `dim = D` (default Merlin's
//!   `roundup8(ceil(2 · cardinality^0.25))`: 40 for tenrec's `user_id`, 48 for `item_id`, 8 for the
//!   small ones).
//! - `continuous`: a number copied into the input. Option: `width = W` (default 1) for vector
//!   features.
//!
//! List (multi-hot) inputs: a `categorical` input over a list column (Merlin's `is_list`, with a
//! `value_count`) pools the embeddings of each row's ids into one `dim`-wide vector:
//! `combiner = mean` (the default, Merlin's `sequence_combiner`), `sum` or `sqrtn`, over the ids
//! present (an empty list gives zeros). `max_len = N` reads the first N ids of each row (default:
//! the schema's `value_count.max`; without a schema, `max_len` makes the input a list). The
//! input's width is `dim`, whatever the list's length; its data is `[B, max_len]`.
//!
//! `table = other` makes a categorical input read `other`'s embedding table (e.g. the recently
//! watched items through `item_id`'s table): it takes `other`'s rows and dim (no `cardinality`
//! needed), and the ids must fit. `other` must own its table (not read another's).
//! Inputs whose schema domains share a name share a table too (NVTabular writes one name for
//! columns encoded with one vocabulary). Features sharing a table must agree on its shape: a
//! compile error on the later feature otherwise.
//!
//! Features are concatenated in alphabetical order, as Merlin does, into the `[B, INPUT_WIDTH]`
//! network input; `Name::spec().features` gives each one's offset. With a schema, every input must
//! be a schema column and may not be a target.
//!
//! `inputs: { user_id: categorical(dim = 64), .. }` overrides one input and keeps schema
//! inference for the others (without `..`, the inputs are exactly those listed). `..` needs a
//! schema; `exclude` applies to what it adds.
//!
//! ### `body`
//! - `mlp[w1, w2, ..]` with options `activation = relu | selu | gelu | tanh | sigmoid | none`
//!   (default `relu`), `dropout = p` (a rate in `[0, 1)`, multiple of 0.001; training only),
//!   `batch_norm` (after each layer), `no_activation_last_layer` (the last layer is linear and
//!   gets no dropout). Layers follow Merlin's MLPBlock: Dense(activation) → Dropout → BatchNorm,
//!   Keras initialisation (glorot-uniform kernel, zero bias). Up to 36 layers (parameter paths
//!   `0` to `5` for up to 6 layers; deeper MLPs are tuples of 6-layer tuples, `i / 6`.`i % 6`).
//! - `identity`: the towers read the input directly.
//! - `custom(Block, width = N)`: your own dfdx module. `Block<E, D>` must implement
//!   `TensorCollection<E, D>`, `Module` (inference, `NoneTape`) and `ModuleMut` (training,
//!   `OwnedTape`) from `[B, INPUT_WIDTH]` to `[B, N]`. A block with another output width does not
//!   compile, and the error underlines `Block` in the DSL. `Block` must be nameable from the
//!   module that holds the `mtl_model!` call (a type declared inside a function body is not:
//!   declare the block, or the model, at module level).
//! - `mmoe(experts = K, expert = mlp[H], gate = mlp[G], temperature = τ)`: Multi-gate
//!   Mixture-of-Experts (Ma et al., KDD 2018; Merlin's MMOEBlock). K experts read the input; each
//!   task has its own gate `g = softmax(W·gate(x) / τ)` (`W` bias-free, `[G] → [K]`) and its own
//!   representation `Σ_k g_k·E_k(x)` (`[B, H]`), which goes to its tower and head. `gate` defaults
//!   to none (the projection reads the input), `temperature` to 1.0. `expert` is any MLP
//!   (`mlp[64, 32]`, with its options); H is its last width. The K experts run side by side:
//!   their first layer is one `[IN] → [K·H₁]` layer, each later layer one
//!   [`GroupedDense`](crate::nn::GroupedDense) (`[K·Hᵢ₋₁] → [K·Hᵢ]`, expert k reading only its
//!   own columns), so `experts.0` / `experts.1` / ... are one field per layer whatever K is. The
//!   network's fields are `experts` and `gates.<task>`, and `gates.<task>.try_weights(x)` returns
//!   the `[B, K]` gate weights.
//! - `moe(..)`: the same with ONE gate shared by all tasks (`gates.shared`), the one-gate MoE
//!   baseline of the MMoE paper.
//! - `cgc(task_experts = n, shared_experts = s, expert = mlp[H], gate = .., temperature = τ)`:
//!   Customized Gate Control (Tang et al., RecSys 2020; Merlin's CGCBlock). Every task has its own
//!   `n` experts and all tasks share `s`; task t's gate weighs exactly its own experts and the
//!   shared ones (exact matching, no name-prefix leaks) and mixes them. All `T·n + s` experts run
//!   side by side as above (task t's experts first, in task order, then the shared ones).
//!   Defaults: `n = 1`, `s = 1`; both 0 is an error. `shared_gate = true` adds Merlin's shared
//!   gate over all experts (`gates.shared`): reported in the gate metrics, read by no task.
//! - `ple(levels = L, task_experts = n, shared_experts = s, expert = mlp[H], gate = ..,
//!   temperature = τ, gate_input = original)`: Progressive Layered Extraction (Tang et al., RecSys
//!   2020; Merlin's PLEBlock): L stacked CGC levels, every level but the last with a shared gate.
//!   From level 2 on, task t's experts read the previous level's task-t output and the shared
//!   experts its shared output. `gate_input = original` (default, Merlin) feeds every gate the
//!   body input; `gate_input = level` (the paper) feeds each gate its level's input. Fields:
//!   `level_<l>.experts` (level ≥ 2: `.experts.<task>` / `.experts.shared`) and
//!   `level_<l>.gates.<task>` / `.gates.shared`; gate metrics carry a `level_<l>/` prefix.
//!   A one-level PLE computes exactly what the same CGC computes.
//!
//! ### `tasks`
//! One entry per task; the key is the target column. Kinds:
//! - `binary`: one logit, binary cross-entropy; default metrics `precision, recall,
//!   binary_accuracy, auc`.
//! - `regression`: one value, mean squared error; default metric `root_mean_squared_error`.
//! - `multiclass(classes = N)`: `N` logits, categorical cross-entropy; default metric
//!   `categorical_accuracy`.
//!
//! Options (all kinds unless noted):
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `target = column` | the target column, when the task's name is not the column's: two heads on one target (`click_value: regression(target = click)`), output named `click_value/regression_output` | the task's name |
//! | `tower = mlp[..]` or `tower = none` | the task's own tower | the `towers:` section |
//! | `loss_weight = λ` | weight of the task's loss in the total (finite, ≥ 0) | 1.0 |
//! | `given = parent` | binary tasks only: the head predicts P(task \| parent) and the model trains P(task and parent) = P(parent)·P(task \| parent) on every row (ESMM, Ma et al. SIGIR 2018), see below | none |
//! | `transfer = esmm \| aitm` | with `given`: `esmm` multiplies (above), `aitm` transfers the parent's tower output into this task's by attention and adds a calibration loss (AITM, Xi et al. KDD 2021), see below | `esmm` |
//! | `calibration = κ` | with `transfer = aitm`: weight of the calibration loss (finite, ≥ 0) | 0.6 |
//! | `class_weights = (neg, pos)` | per-row weight from the task's own target (binary only) | none |
//! | `sample_weight = col` or `[col, ..]` | per-row weights from feature/target columns, multiplied; a binary column restricts the task to that column's sample space (`like` only where `click = 1`); `as_number(col)` weighs by the ids of a categorical column | none |
//! | `metrics = [..]` | metrics reported unweighted | per kind, see above |
//! | `weighted_metrics = [..]` | metrics reported with the sample weights (`weighted_auc`) | none |
//!
//! ### Chained tasks: `given` (ESMM)
//! `conversion: binary(given = click)` makes the `conversion` head predict P(conversion |
//! click) (pCVR) while the loss is the binary cross-entropy of the joint probability
//! pCTCVR = pCTR·pCVR against `click·conversion`, on every row: the entire-space model of ESMM,
//! which avoids training pCVR on clicked rows only. Chains may be longer (`buy: binary(given =
//! cart)`, `cart: binary(given = click)`: the product runs along the chain). The parent keeps its
//! own loss. Evaluation reports `conversion/binary_output/<metric>` on the rows where every
//! parent is positive (pCVR on clicked rows), `conversion/joint_output/<metric>` on every row
//! (pCTCVR), and `conversion/binary_output_loss` is the joint loss; predictions, `Predictor`
//! and ONNX exports add the `conversion/joint_output` column after the tasks. The parent must
//! be another binary task of the model and chains may not form a cycle: compile errors on the
//! `given` value.
//!
//! ### Attention transfer: `given = parent, transfer = aitm` (AITM)
//! `purchase: binary(given = click, transfer = aitm)` builds AITM's adaptive information
//! transfer ([`Aitm`](mtl_runtime::nn::Aitm)): click's tower output `p` passes through an
//! info layer `i = relu(W·p + b)` (to purchase's tower width), purchase's tower output `q` and
//! `i` are scored by `⟨W_Q·u, W_K·u⟩/√C`, and purchase's head reads their softmax-weighted sum of
//! `W_V·u`. The head predicts P(purchase) end to end, on every row, against the `purchase`
//! target itself (which should be the joint label: a purchase without a click is 0), and the
//! loss adds the behavioural-expectation calibrator `κ·mean_rows max(P(purchase) − P(click), 0)`
//! to purchase's loss (it is weighted by purchase's `loss_weight` too; κ is `calibration`, 0.6
//! by default as in the paper's code, which sums over the batch where this takes the mean).
//! Nothing is multiplied: there is no joint output, and metrics are on every row. Chains work
//! (a transfer reads its parent's own transferred representation); the parent's checks are
//! `given`'s. The parameters are `transfers.<task>.{info.weight, info.bias, query.weight,
//! key.weight, value.weight}`. AITM models train on the generic dfdx path (the fused engine
//! has no attention op) and cannot be exported to ONNX yet (a clear error says so);
//! `Predictor` serves them.
//!
//! ### `loss_balancing`
//! `fixed` sums `λ_t·L_t` with the declared `loss_weight`s. `uncertainty` learns one
//! log-variance `s_t` per task (Kendall, Gal and Cipolla, CVPR 2018) and trains
//! `Σ c_t·exp(−s_t)·L_t + s_t/2` (`c_t` = 1/2 for regression, 1 for classification); the weights
//! `c_t·exp(−s_t)` start at `c_t`, follow Adam at the dense learning rate, are reported per epoch
//! as `<output>/loss_weight` (history, CSV/JSON, curves) and saved in checkpoints. A task's
//! weight settles at `1/(2·L_t)`, whatever it would be multiplied by, so a `loss_weight` next to
//! `uncertainty` is a compile error on it, and `TrainConfig::with_loss_weight` a run-time one.
//! Because `loss` then moves with the weights, reports also carry `task_loss_sum` (the plain
//! sum of the task losses): early stopping and plateaus must monitor it or a metric, not `loss`.
//!
//! `gradnorm(alpha = α)` (Chen et al., ICML 2018; `gradnorm` alone takes α = 1.5) learns
//! weights `w_t` (starting at 1, renormalised to sum to the number of tasks after every step)
//! that pull each task's weighted gradient norm on the shared parameters, `w_t·G_t`, towards
//! `mean_t(w_t·G_t)·r_t^α`, `r_t` being the task's `L_t/L_t(0)` over its mean (the slower a
//! task trains, the larger its weight). The shared parameters are exactly those
//! [`ModelSpec::shared_part`](mtl_runtime::spec::ModelSpec::shared_part) names: the MLP body; the
//! experts of MMoE and MoE; the shared experts of CGC and PLE (not the task experts, which only
//! their task's gate reads; at level 1 the shared experts' rows of the grouped expert tensors);
//! never gates, towers or heads. An identity or custom body shares none, which is a run-time
//! error. Each step costs one extra forward and backward pass per task (the `G_t`). The same
//! reporting, checkpoint and monitoring rules as `uncertainty` apply.
//!
//! Metric names: binary `auc`, `precision`, `recall`, `binary_accuracy`, `logloss`; regression
//! `rmse`/`root_mean_squared_error`, `mse`, `mae`; multiclass `accuracy`, `top_k_accuracy`.
//!
//! Without a `tasks` section, every schema column tagged `target` becomes a task by Merlin's
//! OutputBlock rules: `regression`/`continuous` → regression, `binary_classification`/`binary` →
//! binary, `categorical`/`multi_class_classification` → binary if `domain.max == 1`, otherwise
//! multiclass with `domain.max + 1` classes. `tasks: { click: binary(loss_weight = 5.0), .. }`
//! declares one task and infers the others. `multiclass` without `classes` takes
//! `domain.max + 1` from the schema, like Merlin.
//!
//! ## What the schema is checked for
//!
//! With a schema, every fact it states about a column is checked against what the model says,
//! at compile time, on the token at fault. Each case below is either an error (the model would
//! train on something else than it says) or allowed, for the reason given.
//!
//! | the model says | the schema says | decision |
//! |---|---|---|
//! | `binary` | a `regression`/`continuous` target (e.g. `watching_times`, 0..5) | error: the values are not 0/1 labels |
//! | `binary` | an int domain with more than 2 values | error: declare `multiclass` |
//! | `regression` | a binary target | allowed: predicting a 0/1 column by squared error is a common baseline (Merlin's `click/regression_output`) |
//! | `multiclass(classes = N)` | `domain.max + 1 ≠ N` | error; leave `classes` out to take it from the schema |
//! | `multiclass` | no int domain | error: give `classes = N` |
//! | `categorical(cardinality = N)` | `domain.max + 1 > N` | error: ids would fall outside the table |
//! | `categorical(cardinality = N)` | `domain.max + 1 < N` | allowed: spare rows for ids added later (hashing, growing vocabularies) |
//! | `categorical` | a float column | error: floats cannot index a table |
//! | `categorical` | an int column not tagged `categorical` | error: datasets decode it as numbers |
//! | `continuous` | a column tagged `categorical` | error: datasets decode it as ids |
//! | `continuous(width = W)`, W > 1 | a scalar column | error |
//! | an input | a target | error: a target cannot be an input |
//! | `sample_weight = col` | a column of numbers or 0/1 values (a binary target, a continuous feature, a regression target) | allowed: weights are amounts, not only 0/1 masks (the notebook weights `like` by `watching_times`) |
//! | `sample_weight = col` | a categorical column (ids) that is not 0/1 | error: ids are codes, not amounts, and id 0 would drop the row from the loss. Ambiguous rather than wrong (the notebook weights `click` by `age` as a didactic example), so it takes an explicit opt-in: `sample_weight = as_number(age)` |
//! | `sample_weight = as_number(col)` | a column of numbers | error: write `sample_weight = col` |
//! | every `loss_weight = 0` | — | error: training would change nothing; some tasks at 0 are allowed (reported, not trained) |
//! | a column in `inputs` and in `exclude` | — | error: say one or the other |
//! | `categorical` | a list column (`value_count`) | a list input, pooled (`combiner`, `max_len`); no `value_count.max` in the schema: error, give `max_len` |
//! | `max_len = N` | `value_count.max < N` | error: lists never hold more |
//! | `max_len` or `combiner` | a scalar column | error: nothing to pool |
//! | a task, or `sample_weight` | a list column | error: a target or weight is one value per row |
//! | `table = other` | `other`'s rows fewer than the input's ids, or another `dim` | error on `other` |
//! | `exclude` removes every input | — | error |
//!
//! ## Limits
//!
//! Every size has an upper bound, each a compile error on the number at fault (never a panic of
//! the macro, never a rustc that runs out of memory): layer widths, embedding dims and
//! continuous widths at most 2²⁰; cardinalities at most 2³² (ids are 32-bit); multiclass classes
//! at most 2²⁰; experts of one kind at most 1024; PLE levels at most 16; MLPs at most 36 layers.
//! Sizes within the bounds that cannot be allocated (`mlp[100000, 100000]` is 40 GB) fail when the
//! network is built, with an error that says how much memory it needs, before anything is
//! allocated.
//!
//! ## What it generates
//!
//! For `struct Video`:
//! - `Video`: a zero-sized builder. `dev.build_module::<Video, f32>()` (dfdx `BuildOnDevice`)
//!   builds the network; `Video::INPUT_WIDTH` and `Video::spec()` (also through the
//!   [`MtlModel`](crate::MtlModel) trait) describe it.
//! - `VideoNetwork<E, D>` with fields `body`, `towers` (`VideoTowers`, one field per task) and
//!   `heads` (`VideoHeads`). It implements dfdx `TensorCollection` (so `alloc_grads`,
//!   `zero_grads`, optimizers, `to_device`, `save_safetensors`/`load_safetensors` work, with
//!   parameter names such as `body.0.weight`, `towers.click.0.bias`, `heads.like.weight`),
//!   `Module` for inference (`NoneTape`: dropout off, batch norm on running statistics),
//!   `ModuleMut` for training (`OwnedTape`: dropout on, batch statistics) and `Display` (the
//!   summary: every block with its shapes and parameter counts, embeddings, totals).
//! - `VideoOutputs<E, D, T>`: one `Tensor<(usize, Const<W>), E, D, T>` per task (`out.click`), so a
//!   misspelled task is a compile error. In training every output carries part of the gradient
//!   tape; adding the task losses merges them, and one `backward()` reaches every parameter.
//!
//! - For mixture-of-experts bodies, `VideoGates` (the gates of the level); for `ple`,
//!   `VideoLevel<l>` and `VideoLevel<l>Gates` per level and, from level 2, `VideoLevel<l>Experts`.
//!
//! These names belong to the model. They are declared in a hidden module of their own and
//! re-exported beside the `mtl_model!` call, so:
//! - a type of yours named like the model (`Video`), or a second model of the same name, is one
//!   error ("the name `Video` is defined multiple times") on the model's name;
//! - a type of yours named like one of the other names (`VideoNetwork`) keeps its name in your
//!   module and the model keeps working (its network is still `<Video as BuildOnDevice<..>>::Built`);
//! - a model may be declared inside a function.
//!
//! Generated code reaches dfdx and the runtime only through `mtl::__private`; a crate using the
//! DSL needs no dependency but `mtl`, and the expansion is warning-free under
//! `#![deny(warnings)]`.
//!
//! ## Compile errors you will meet
//!
//! Every problem is reported at once, each on its own token, and a model with errors still
//! provides its whole surface (builder, network, outputs, `spec()`), so its uses add no
//! follow-on errors. A few of the 80 checked cases
//! (`tests/ui/`):
//!
//! ```text
//! error: unknown activation `swish`; expected one of: relu, selu, gelu, tanh, sigmoid, none
//!  --> src/model.rs:6:35
//!   |
//! 6 |         body: mlp[8](activation = swish),
//!   |                                   ^^^^^
//!
//! error: task `purchase` has no target column `purchase` in the schema; targets: click, follow, like, share, watching_times
//!  --> src/model.rs:7:33
//!   |
//! 7 |         tasks: { click: binary, purchase: binary },
//!   |                                 ^^^^^^^^
//!
//! error[E0271]: type mismatch resolving `<Keep<f32, Cpu> as Module<Tensor<(usize, Const<4>), f32, Cpu>>>::Output == Tensor<(usize, Const<8>), f32, Cpu>`
//!   --> src/model.rs:28:22
//!    |
//! 28 |         body: custom(Keep, width = 8),
//!    |                      ^^^^ type mismatch resolving ...
//! ```
//!
//! ```compile_fail
//! use mtl::prelude::*;
//! mtl_model! {
//!     struct Broken {
//!         inputs: { x: continuous },
//!         body: mlp[8],
//!         tasks: { y: regression(class_weights = (1.0, 5.0)) }, // binary tasks only
//!     }
//! }
//! # fn main() {}
//! ```
