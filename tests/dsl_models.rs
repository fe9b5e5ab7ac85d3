//! Models written in the DSL, built on the CPU: shapes, gradients, parameter counts, modes,
//! schema inference, save/load. `deny(warnings)`: generated code must be warning-free.
#![deny(warnings)]

use mtl::prelude::*;
use mtl::spec::{FeatureKind, TaskKind};

mtl_model! {
    /// A small hand-written model.
    pub struct Small {
        inputs: {
            user_id: categorical(cardinality = 100, dim = 8),
            price: continuous,
        },
        body: mlp[16, 8],
        towers: mlp[4],
        tasks: {
            click: binary(loss_weight = 2.0, class_weights = (1.0, 5.0)),
            watch: regression(sample_weight = click, tower = mlp[6, 3]),
        },
    }
}

mtl_model! {
    /// The notebook's first model: everything inferred from Merlin's tenrec-video schema.
    pub struct FromSchema {
        schema: "tests/fixtures/merlin-tenrec-video/schema.json",
        body: mlp[32, 16],
    }
}

mtl_model! {
    /// The same model written out by hand (dims as Merlin infers them).
    pub struct ByHand {
        inputs: {
            user_id: categorical(cardinality = 100001, dim = 40),
            item_id: categorical(cardinality = 179281, dim = 48),
            video_category: categorical(cardinality = 6, dim = 8),
            gender: categorical(cardinality = 6, dim = 8),
            age: categorical(cardinality = 11, dim = 8),
        },
        body: mlp[32, 16],
        tasks: {
            click: binary,
            follow: binary,
            like: binary,
            share: binary,
            watching_times: regression,
        },
    }
}

mtl_model! {
    /// Every MLP option, a multiclass task and a task without a tower.
    pub(crate) struct Options {
        inputs: { a: continuous(width = 3), b: categorical(cardinality = 10, dim = 2) },
        body: mlp[8, 6](activation = selu, dropout = 0.5, batch_norm, no_activation_last_layer = true),
        towers: mlp[4](activation = gelu),
        tasks: {
            genre: multiclass(classes = 5, tower = mlp[5](activation = tanh)),
            rating: regression(tower = none, metrics = [mae, rmse]),
            buy: binary(metrics = [auc], weighted_metrics = [auc, logloss], tower = mlp[3](activation = sigmoid)),
        },
    }
}

mtl_model! {
    /// The identity body: towers read the input directly.
    struct Flat {
        inputs: { x: continuous(width = 4) },
        body: identity,
        tasks: { y: regression(tower = mlp[2]) },
    }
}

/// A user's own block: a residual dense layer, written against dfdx.
#[derive(Debug, Clone)]
pub struct Residual<E: Dtype, D: Device<E>> {
    pub dense: mtl::nn::Dense<5, 5, mtl::nn::Relu, 0, mtl::nn::NoNorm, E, D>,
}

impl<E: mtl::nn::Float, D: Device<E>> TensorCollection<E, D> for Residual<E, D> {
    type To<E2: Dtype, D2: Device<E2>> = Residual<E2, D2>;
    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            Self::module("dense", |s| &s.dense, |s| &mut s.dense),
            |dense| Residual { dense },
        )
    }
}

impl<E: mtl::nn::Float, D: Device<E>> Module<Tensor<(usize, Const<5>), E, D, NoneTape>>
    for Residual<E, D>
{
    type Output = Tensor<(usize, Const<5>), E, D, NoneTape>;
    type Error = D::Err;
    fn try_forward(
        &self,
        x: Tensor<(usize, Const<5>), E, D, NoneTape>,
    ) -> Result<Self::Output, D::Err> {
        self.dense.try_forward(x.clone())?.try_add(x)
    }
}

impl<E: mtl::nn::Float, D: Device<E>> ModuleMut<Tensor<(usize, Const<5>), E, D, OwnedTape<E, D>>>
    for Residual<E, D>
{
    type Output = Tensor<(usize, Const<5>), E, D, OwnedTape<E, D>>;
    type Error = D::Err;
    fn try_forward_mut(
        &mut self,
        x: Tensor<(usize, Const<5>), E, D, OwnedTape<E, D>>,
    ) -> Result<Self::Output, D::Err> {
        let (x, tape) = x.split_tape();
        let y = self.dense.try_forward_mut(x.clone().put_tape(tape))?;
        y.try_add(x)
    }
}

mtl_model! {
    /// A custom body.
    pub struct Custom {
        inputs: { x: continuous(width = 5) },
        body: custom(Residual, width = 5),
        tasks: { y: binary },
    }
}

fn input<const W: usize>(dev: &Cpu, rows: usize) -> Tensor<(usize, Const<W>), f32, Cpu> {
    dev.sample_normal_like(&(rows, Const::<W>))
}

/// Counts trainable tensors and those whose gradient is all zeros.
struct GradCounter<'a> {
    grads: &'a Gradients<f32, Cpu>,
    total: usize,
    zero: usize,
}

impl TensorVisitor<f32, Cpu> for GradCounter<'_> {
    type Viewer = ViewTensorRef;
    type Err = CpuError;
    type E2 = f32;
    type D2 = Cpu;
    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f32, Cpu>,
        t: &Tensor<S, f32, Cpu>,
    ) -> Result<Option<Tensor<S, f32, Cpu>>, CpuError> {
        if opts.do_gradient_update {
            self.total += 1;
            if self.grads.get(t).as_vec().iter().all(|g| *g == 0.0) {
                self.zero += 1;
            }
        }
        Ok(None)
    }
}

fn zero_gradient_tensors<M: TensorCollection<f32, Cpu>>(
    m: &M,
    grads: &Gradients<f32, Cpu>,
) -> (usize, usize) {
    let mut v = GradCounter {
        grads,
        total: 0,
        zero: 0,
    };
    M::iter_tensors(&mut RecursiveWalker { m, f: &mut v }).unwrap();
    (v.zero, v.total)
}

#[test]
fn outputs_have_one_typed_field_per_task_for_a_batch_of_7() {
    let dev = Cpu::default();
    let small = dev.build_module::<Small, f32>();
    let out = small.forward(input::<9>(&dev, 7));
    let click: Tensor<(usize, Const<1>), f32, Cpu> = out.click;
    let watch: Tensor<(usize, Const<1>), f32, Cpu> = out.watch;
    assert_eq!((click.shape().0, watch.shape().0), (7, 7));

    let model = dev.build_module::<FromSchema, f32>();
    let out = model.forward(input::<112>(&dev, 7));
    assert_eq!(out.watching_times.shape().0, 7);
    assert_eq!(out.like.shape().0, 7);

    let opts = dev.build_module::<Options, f32>();
    let out = opts.forward(input::<5>(&dev, 7));
    let genre: Tensor<(usize, Const<5>), f32, Cpu> = out.genre;
    assert_eq!(genre.shape().0, 7);

    let flat = dev.build_module::<Flat, f32>();
    assert_eq!(flat.forward(input::<4>(&dev, 7)).y.shape().0, 7);
    let custom = dev.build_module::<Custom, f32>();
    assert_eq!(custom.forward(input::<5>(&dev, 7)).y.shape().0, 7);
}

#[test]
fn one_backward_through_the_summed_task_losses_reaches_every_parameter() {
    let dev = Cpu::default();

    let mut small = dev.build_module::<Small, f32>();
    let out = small.forward_mut(input::<9>(&dev, 7).traced(small.alloc_grads()));
    let ones: Tensor<(usize, Const<1>), f32, Cpu> = dev.ones_like(&(7, Const::<1>));
    let loss =
        binary_cross_entropy_with_logits_loss(out.click, ones.clone()) + mse_loss(out.watch, ones);
    let grads = loss.backward();
    assert_eq!(
        zero_gradient_tensors(&small, &grads),
        (0, 14),
        "(zero, total) gradient tensors"
    );

    let mut model = dev.build_module::<FromSchema, f32>();
    let out = model.forward_mut(input::<112>(&dev, 64).traced(model.alloc_grads()));
    let t: Tensor<(usize, Const<1>), f32, Cpu> = dev.sample_uniform_like(&(64, Const::<1>));
    let loss = binary_cross_entropy_with_logits_loss(out.click, t.clone())
        + binary_cross_entropy_with_logits_loss(out.follow, t.clone())
        + binary_cross_entropy_with_logits_loss(out.like, t.clone())
        + binary_cross_entropy_with_logits_loss(out.share, t.clone())
        + mse_loss(out.watching_times, t);
    let grads = loss.backward();
    assert_eq!(zero_gradient_tensors(&model, &grads), (0, 14));

    let mut opts = dev.build_module::<Options, f32>();
    let out = opts.forward_mut(input::<5>(&dev, 64).traced(opts.alloc_grads()));
    let loss = out.genre.square().mean() + out.rating.square().mean() + out.buy.square().mean();
    let grads = loss.backward();
    let (zero, total) = zero_gradient_tensors(&opts, &grads);
    assert_eq!(zero, 0, "of {total}");

    let mut custom = dev.build_module::<Custom, f32>();
    let out = custom.forward_mut(input::<5>(&dev, 16).traced(custom.alloc_grads()));
    let grads = out.y.square().mean().backward();
    assert_eq!(zero_gradient_tensors(&custom, &grads), (0, 4));
}

#[test]
fn parameter_counts_equal_the_hand_computed_values() {
    let dev = Cpu::default();
    let dense = |i: usize, o: usize| i * o + o;
    let small = dev.build_module::<Small, f32>();
    assert_eq!(
        small.body.num_trainable_params(),
        dense(9, 16) + dense(16, 8)
    );
    assert_eq!(small.towers.click.num_trainable_params(), dense(8, 4));
    assert_eq!(
        small.towers.watch.num_trainable_params(),
        dense(8, 6) + dense(6, 3)
    );
    assert_eq!(small.heads.click.num_trainable_params(), dense(4, 1));
    assert_eq!(small.heads.watch.num_trainable_params(), dense(3, 1));
    assert_eq!(small.num_trainable_params(), 416);

    // Notebook model: input 8+8+48+40+8 = 112, mlp[32, 16], five Dense(1) heads.
    let model = dev.build_module::<FromSchema, f32>();
    assert_eq!(FromSchema::INPUT_WIDTH, 112);
    assert_eq!(
        model.num_trainable_params(),
        dense(112, 32) + dense(32, 16) + 5 * dense(16, 1)
    );

    // Batch norm adds scale and bias per unit (running statistics are not trainable).
    let opts = dev.build_module::<Options, f32>();
    assert_eq!(
        opts.body.num_trainable_params(),
        dense(5, 8) + 2 * 8 + dense(8, 6) + 2 * 6
    );
    assert_eq!(
        NumParams::<f32, Cpu>::num_trainable_params(&opts.towers.rating),
        0,
        "tower = none"
    );
    assert_eq!(opts.heads.genre.num_trainable_params(), dense(5, 5));
}

#[test]
fn dropout_and_batch_norm_behave_differently_in_training() {
    let dev = Cpu::default();
    let mut opts = dev.build_module::<Options, f32>();
    let x = input::<5>(&dev, 32);
    let a = opts.forward(x.clone()).rating.as_vec();
    let b = opts.forward(x.clone()).rating.as_vec();
    assert_eq!(a, b, "inference is deterministic");
    let c = opts
        .forward_mut(x.clone().traced(opts.alloc_grads()))
        .rating
        .as_vec();
    let d = opts
        .forward_mut(x.clone().traced(opts.alloc_grads()))
        .rating
        .as_vec();
    assert_ne!(c, d, "training draws a new dropout mask each step");
    assert_ne!(a, c);
    // Training updated batch norm's running statistics, so inference changed too.
    let e = opts.forward(x).rating.as_vec();
    assert_ne!(a, e);
}

#[test]
fn a_schema_inferred_model_equals_the_same_model_written_by_hand() {
    let (a, b) = (FromSchema::spec(), ByHand::spec());
    assert_eq!(a.features.len(), b.features.len());
    for (fa, fb) in a.features.iter().zip(b.features) {
        assert_eq!(
            (fa.name, fa.kind, fa.cardinality, fa.dim, fa.offset),
            (fb.name, fb.kind, fb.cardinality, fb.dim, fb.offset)
        );
    }
    assert_eq!(
        a.features
            .iter()
            .map(|f| (f.name, f.dim))
            .collect::<Vec<_>>(),
        [
            ("age", 8),
            ("gender", 8),
            ("item_id", 48),
            ("user_id", 40),
            ("video_category", 8)
        ]
    );
    assert!(a
        .features
        .iter()
        .all(|f| f.kind == FeatureKind::Categorical));
    assert_eq!(a.tasks, b.tasks);
    assert_eq!(
        a.tasks.iter().map(|t| t.output_name).collect::<Vec<_>>(),
        [
            "click/binary_output",
            "follow/binary_output",
            "like/binary_output",
            "share/binary_output",
            "watching_times/regression_output",
        ]
    );
    assert_eq!(a.tasks[4].kind, TaskKind::Regression);
    assert_eq!(a.input_width, b.input_width);
    assert!(a.schema().unwrap().is_ok() && b.schema().is_none());

    // Same parameter names and shapes: one's weights load into the other, giving equal outputs.
    let dev = Cpu::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let inferred = dev.build_module::<FromSchema, f32>();
    inferred.save_safetensors(&path).unwrap();
    let mut by_hand = dev.build_module::<ByHand, f32>();
    by_hand.load_safetensors(&path).unwrap();
    let x = input::<112>(&dev, 7);
    assert_eq!(
        inferred.forward(x.clone()).like.as_vec(),
        by_hand.forward(x).like.as_vec()
    );
}

#[test]
fn save_then_load_gives_identical_outputs_and_dsl_parameter_names() {
    let dev = Cpu::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.safetensors");
    let small = dev.build_module::<Small, f32>();
    small.save_safetensors(&path).unwrap();
    let mut fresh = dev.build_module::<Small, f32>();
    let x = input::<9>(&dev, 7);
    assert_ne!(
        small.forward(x.clone()).click.as_vec(),
        fresh.forward(x.clone()).click.as_vec()
    );
    fresh.load_safetensors(&path).unwrap();
    let (a, b) = (small.forward(x.clone()), fresh.forward(x));
    assert_eq!(a.click.as_vec(), b.click.as_vec());
    assert_eq!(a.watch.as_vec(), b.watch.as_vec());

    let bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let mut names: Vec<&str> = header
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "__metadata__")
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "body.0.bias",
            "body.0.weight",
            "body.1.bias",
            "body.1.weight",
            "heads.click.bias",
            "heads.click.weight",
            "heads.watch.bias",
            "heads.watch.weight",
            "towers.click.0.bias",
            "towers.click.0.weight",
            "towers.watch.0.bias",
            "towers.watch.0.weight",
            "towers.watch.1.bias",
            "towers.watch.1.weight",
        ]
    );
}

#[test]
fn the_spec_carries_loss_settings_and_metrics() {
    let spec = Small::spec();
    let click = spec.task("click").unwrap();
    assert_eq!(
        (click.loss_weight, click.class_weights),
        (2.0, Some((1.0, 5.0)))
    );
    assert_eq!(
        click.metrics,
        ["precision", "recall", "binary_accuracy", "auc"]
    );
    assert_eq!(spec.task("watch").unwrap().sample_weights, ["click"]);
    assert_eq!(spec.task("watch").unwrap().tower.unwrap().widths, [6, 3]);
    let opts = Options::spec();
    assert_eq!(
        opts.task("rating").unwrap().metrics,
        ["mean_absolute_error", "root_mean_squared_error"]
    );
    assert_eq!(
        opts.task("buy").unwrap().weighted_metrics,
        ["auc", "logloss"]
    );
    assert_eq!(
        opts.task("genre").unwrap().kind,
        TaskKind::Multiclass { classes: 5 }
    );
    assert_eq!(
        opts.tasks.iter().map(|t| t.name).collect::<Vec<_>>(),
        ["buy", "genre", "rating"],
        "ordered by name"
    );
    assert_eq!(opts.features[0].offset, 0);
    assert_eq!(opts.features[1].offset, 3, "a (width 3) then b");
}

#[test]
fn the_summary_shows_blocks_shapes_and_parameter_counts() {
    let dev = Cpu::default();
    let text = dev.build_module::<FromSchema, f32>().to_string();
    assert!(
        text.contains("FromSchema (input [B, 112], 5 tasks)"),
        "{text}"
    );
    assert!(
        text.contains("inputs.user_id") && text.contains("embedding 100001 x 40"),
        "{text}"
    );
    assert!(
        text.contains("mlp[32, 16] relu")
            && text.contains("[B, 112] -> [B, 16]")
            && text.contains("4144"),
        "{text}"
    );
    assert!(
        text.contains("heads.watching_times") && text.contains("watching_times/regression_output"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "total parameters:     {}",
            100_001 * 40 + 179_281 * 48 + 6 * 8 * 2 + 11 * 8 + 4_144 + 5 * 17
        )),
        "{text}"
    );
}

/// Generated code must not depend on the user's imports: these models live in a module that
/// imports nothing (no prelude, no dfdx traits).
mod no_imports {
    mtl::mtl_model! {
        pub struct PlainMlp {
            inputs: { x: continuous(width = 3) },
            body: mlp[4],
            tasks: { a: binary },
        }
    }
    mtl::mtl_model! {
        pub struct PaperPle {
            inputs: { x: continuous(width = 3) },
            body: ple(levels = 2, task_experts = 1, shared_experts = 1, expert = mlp[4], gate_input = level),
            tasks: { a: binary, b: regression },
        }
    }
    mtl::mtl_model! {
        pub struct SharedGateCgc {
            inputs: { x: continuous(width = 3) },
            body: cgc(task_experts = 1, shared_experts = 1, expert = mlp[4], shared_gate = true),
            tasks: { a: binary, b: binary },
        }
    }
    mtl::mtl_model! {
        pub struct OneGate {
            inputs: { x: continuous(width = 3) },
            body: moe(experts = 2, expert = mlp[4]),
            tasks: { a: binary, b: binary },
        }
    }
}

#[test]
fn models_declared_without_imports_build_and_run() {
    let dev = Cpu::default();
    let x: Tensor<(usize, Const<3>), f32, Cpu> = dev.sample_normal_like(&(4, Const));
    assert_eq!(
        dev.build_module::<no_imports::PlainMlp, f32>()
            .forward(x.clone())
            .a
            .shape()
            .0,
        4
    );
    let ple = dev.build_module::<no_imports::PaperPle, f32>();
    assert_eq!(ple.forward(x.clone()).b.shape().0, 4);
    assert_eq!(ple.try_gate_weights(x.clone().realize()).unwrap().len(), 5);
    let cgc = dev.build_module::<no_imports::SharedGateCgc, f32>();
    assert_eq!(cgc.try_gate_weights(x.clone().realize()).unwrap().len(), 3);
    assert_eq!(
        dev.build_module::<no_imports::OneGate, f32>()
            .forward(x)
            .b
            .shape()
            .0,
        4
    );
}

/// A user type that takes one of a model's generated names (`ClashNetwork`) keeps its name,
/// and the model still builds and runs: the generated items live in a module of
/// their own and see their own names first.
mod clash {
    pub struct ClashNetwork {
        pub mine: u8,
    }
    mtl::mtl_model! {
        pub struct Clash {
            inputs: { x: continuous(width = 2) },
            body: mlp[4],
            tasks: { y: regression },
        }
    }
}

#[test]
fn a_user_type_with_a_generated_name_keeps_it_and_the_model_works() {
    let mine = clash::ClashNetwork { mine: 7 };
    assert_eq!(mine.mine, 7);
    let dev = Cpu::default();
    let net = dev.build_module::<clash::Clash, f32>();
    let out = net.forward(input::<2>(&dev, 3));
    assert_eq!(out.y.shape().0, 3);
    // The model's network type is still reachable through the builder.
    let _: &<clash::Clash as BuildOnDevice<Cpu, f32>>::Built = &net;
}

#[test]
fn a_model_declared_inside_a_function_builds_and_trains() {
    mtl_model! {
        struct Local {
            inputs: { x: continuous(width = 2) },
            body: mlp[4],
            tasks: { y: binary },
        }
    }
    let dev = Cpu::default();
    let mut net: LocalNetwork<f32, Cpu> = dev.build_module::<Local, f32>();
    let mut grads = net.alloc_grads();
    let out = net.forward_mut(input::<2>(&dev, 5).traced(grads));
    grads = out.y.sum().backward();
    let w = &grads.get(&net.heads.y.weight);
    assert!(
        w.as_vec().iter().any(|g| *g != 0.0),
        "gradients reach the head"
    );
    assert_eq!(Local::INPUT_WIDTH, 2);
}

mtl_model! {
    /// Columns named by Rust keywords, written as raw identifiers.
    pub struct Keywords {
        inputs: { r#match: continuous, user: categorical(cardinality = 10, dim = 4) },
        body: mlp[4],
        tasks: { r#type: regression(sample_weight = r#match), click: binary },
    }
}

#[test]
fn raw_identifiers_name_keyword_columns_and_train() {
    use mtl::data::{ColumnValues, Dataset};
    use mtl::schema::{ColumnSchema, DType, Schema};
    let spec = Keywords::spec();
    assert!(spec.feature("match").is_some());
    assert_eq!(spec.task("type").unwrap().target, "type");
    assert_eq!(spec.task("type").unwrap().sample_weights, ["match"]);
    let col = |name: &str, tags: &[&str]| {
        ColumnSchema::new(name)
            .with_tags(tags.iter().copied())
            .unwrap()
            .with_dtype(DType::Float32)
    };
    let schema = Schema::new([
        col("match", &["continuous"]),
        ColumnSchema::new("user")
            .with_tags(["categorical"])
            .unwrap()
            .with_dtype(DType::Int32)
            .with_int_domain(0, 9, None),
        col("type", &["regression", "target"]),
        col("click", &["binary_classification", "target"]),
    ])
    .unwrap();
    let n = 64;
    let data = Dataset::from_columns(
        schema,
        vec![
            (
                "match".into(),
                ColumnValues::Floats((0..n).map(|i| (i % 3) as f32).collect()),
            ),
            (
                "user".into(),
                ColumnValues::Ids((0..n).map(|i| (i % 10) as u32).collect()),
            ),
            (
                "type".into(),
                ColumnValues::Floats((0..n).map(|i| i as f32 / 8.0).collect()),
            ),
            (
                "click".into(),
                ColumnValues::Floats((0..n).map(|i| (i % 2) as f32).collect()),
            ),
        ],
    )
    .unwrap();
    let mut trainer =
        Trainer::<Keywords>::new(Cpu::default(), TrainConfig::default().with_batch_size(16))
            .unwrap();
    trainer.fit(&data, None).unwrap();
    let report = trainer.evaluate(&data).unwrap();
    assert!(report
        .get("type/regression_output/root_mean_squared_error")
        .is_some());
    let dev = Cpu::default();
    let net = dev.build_module::<Keywords, f32>();
    let out = net.forward(input::<{ Keywords::INPUT_WIDTH }>(&dev, 3));
    assert_eq!(out.r#type.shape().0, 3);
}

mtl_model! {
    /// Two heads on one target, and a multiclass task whose classes come from the schema.
    pub struct TwoHeads {
        schema: "tests/ui/fixtures/mixed.json",
        inputs: { user_id: categorical(dim = 4), price: continuous },
        body: mlp[8],
        tasks: {
            click: binary,
            click_value: regression(target = click),
            rating: multiclass,
        },
    }
}

#[test]
fn two_heads_share_a_target_and_classes_come_from_the_schema() {
    use mtl::data::{ColumnValues, Dataset};
    let spec = TwoHeads::spec();
    assert_eq!(spec.task("click_value").unwrap().target, "click");
    assert_eq!(
        spec.task("click_value").unwrap().output_name,
        "click_value/regression_output"
    );
    assert_eq!(
        spec.task("rating").unwrap().kind,
        TaskKind::Multiclass { classes: 5 }
    );
    let schema = spec.schema().unwrap().unwrap();
    let n = 100;
    let data = Dataset::from_columns(
        schema.select_by_name(&["user_id", "price", "click", "rating"]),
        vec![
            (
                "user_id".into(),
                ColumnValues::Ids((0..n).map(|i| (i % 100) as u32).collect()),
            ),
            (
                "price".into(),
                ColumnValues::Floats((0..n).map(|i| i as f32 / 100.0).collect()),
            ),
            (
                "click".into(),
                ColumnValues::Floats((0..n).map(|i| (i % 2) as f32).collect()),
            ),
            (
                "rating".into(),
                ColumnValues::Floats((0..n).map(|i| (i % 5) as f32).collect()),
            ),
        ],
    )
    .unwrap();
    let mut trainer =
        Trainer::<TwoHeads>::new(Cpu::default(), TrainConfig::default().with_batch_size(32))
            .unwrap();
    trainer.fit(&data, None).unwrap();
    let report = trainer.evaluate(&data).unwrap();
    assert!(report.get("click/binary_output/auc").is_some());
    assert!(report
        .get("click_value/regression_output/root_mean_squared_error")
        .is_some());
    assert!(report
        .get("rating/categorical_output/categorical_accuracy")
        .is_some());
}

#[test]
fn the_spec_counts_the_dense_parameters_the_network_has() {
    fn check<M: MtlModel + BuildOnDevice<Cpu, f32>>()
    where
        M::Built: NumParams<f32, Cpu>,
    {
        let dev = Cpu::default();
        let net = dev.build_module::<M, f32>();
        assert_eq!(
            M::SPEC.dense_parameters(),
            Some(net.num_trainable_params() as u128),
            "{}",
            M::SPEC.name
        );
    }
    check::<Small>();
    check::<FromSchema>();
    check::<Keywords>();
    check::<TwoHeads>();
}

mtl_model! {
    /// One input and one task overridden, the rest inferred from the schema (`..`).
    pub struct Overridden {
        schema: "tests/fixtures/merlin-tenrec-video/schema.json",
        inputs: { user_id: categorical(dim = 64), .. },
        body: mlp[8],
        tasks: { click: binary(loss_weight = 5.0), .. },
    }
}

#[test]
fn dots_keep_schema_inference_for_everything_not_declared() {
    let (o, f) = (Overridden::spec(), FromSchema::spec());
    let names = |s: &mtl::spec::ModelSpec| s.features.iter().map(|x| x.name).collect::<Vec<_>>();
    assert_eq!(names(o), names(f), "every schema input, in the same order");
    assert_eq!(o.feature("user_id").unwrap().dim, 64);
    assert_eq!(
        o.feature("item_id").unwrap().dim,
        f.feature("item_id").unwrap().dim
    );
    let tasks = |s: &mtl::spec::ModelSpec| s.tasks.iter().map(|t| t.name).collect::<Vec<_>>();
    assert_eq!(tasks(o), tasks(f));
    assert_eq!(o.task("click").unwrap().loss_weight, 5.0);
    assert_eq!(o.task("like").unwrap().loss_weight, 1.0);
}

mtl_model! {
    // Shared by both models below.
    schema: "tests/fixtures/merlin-tenrec-video/schema.json",
    inputs: { user_id: categorical(dim = 16), item_id: categorical(dim = 16), .. },
    towers: mlp[8],
    tasks: { click: binary, like: binary },

    /// The shared sections, as they are.
    pub struct SharedA {
        body: mlp[16],
    }

    /// The shared sections with `towers` and `tasks` of its own.
    pub struct SharedB {
        body: mmoe(experts = 2, expert = mlp[8]),
        towers: mlp[4],
        tasks: { click: binary(loss_weight = 2.0), watching_times: regression },
    }

    /// Out of the shared towers.
    pub struct SharedC {
        body: mlp[8],
        towers: none,
    }
}

#[test]
fn models_share_sections_and_override_them_and_train() {
    let (a, b) = (SharedA::spec(), SharedB::spec());
    let names = |s: &mtl::spec::ModelSpec| s.features.iter().map(|x| x.name).collect::<Vec<_>>();
    assert_eq!(
        names(a),
        names(FromSchema::spec()),
        "the shared `..` inputs"
    );
    assert_eq!(names(a), names(b));
    assert_eq!(a.feature("user_id").unwrap().dim, 16);
    assert_eq!(a.input_width, b.input_width);
    let tasks = |s: &mtl::spec::ModelSpec| s.tasks.iter().map(|t| t.name).collect::<Vec<_>>();
    assert_eq!(tasks(a), ["click", "like"]);
    assert_eq!(tasks(b), ["click", "watching_times"]);
    assert_eq!(b.task("click").unwrap().loss_weight, 2.0);
    let dev = Cpu::default();
    let (na, nb) = (
        dev.build_module::<SharedA, f32>(),
        dev.build_module::<SharedB, f32>(),
    );
    // [out, in]: the shared `towers: mlp[8]` reads SharedA's body (16); SharedB has mlp[4].
    assert_eq!(na.towers.click.0.weight.shape().concrete(), [8, 16]);
    assert_eq!(nb.towers.click.0.weight.shape().concrete(), [4, 8]);

    let splits =
        mtl::data::synthetic::generate_data("tenrec-video", 1_000, &[0.5, 0.5], 9).unwrap();
    let config = TrainConfig::default().with_batch_size(128);
    let mut ta = Trainer::<SharedA>::new(Cpu::default(), config.clone()).unwrap();
    ta.fit(&splits[0], None).unwrap();
    assert!(ta
        .evaluate(&splits[1])
        .unwrap()
        .get("like/binary_output/auc")
        .is_some());
    let mut tb = Trainer::<SharedB>::new(Cpu::default(), config).unwrap();
    tb.fit(&splits[0], None).unwrap();
    let report = tb.evaluate(&splits[1]).unwrap();
    assert!(report
        .get("watching_times/regression_output/root_mean_squared_error")
        .is_some());
    assert!(report.get("loss").unwrap().is_finite());

    // `towers: none`: the heads read the body's 8 columns directly.
    assert!(SharedC::spec().tasks.iter().all(|t| t.tower.is_none()));
    let nc = dev.build_module::<SharedC, f32>();
    assert_eq!(nc.heads.click.weight.shape().concrete(), [1, 8]);
    let mut tc = Trainer::<SharedC>::new(Cpu::default(), TrainConfig::default()).unwrap();
    tc.fit(&splits[0], None).unwrap();
}

mtl_model! {
    /// The notebook's weight columns: `click` weighted by the ids of `age` (an explicit
    /// opt-in), `like` by the `watching_times` target.
    pub struct WeightedByAge {
        schema: "tests/fixtures/merlin-tenrec-video/schema.json",
        body: mlp[8],
        tasks: {
            click: binary(sample_weight = as_number(age)),
            like: binary(sample_weight = [click, watching_times]),
        },
    }
}

#[test]
fn ids_weigh_a_task_when_asked_to_and_it_trains() {
    let spec = WeightedByAge::spec();
    assert_eq!(spec.task("click").unwrap().sample_weights, ["age"]);
    assert_eq!(
        spec.task("like").unwrap().sample_weights,
        ["click", "watching_times"]
    );
    let splits =
        mtl::data::synthetic::generate_data("tenrec-video", 1_000, &[0.5, 0.5], 11).unwrap();
    let mut trainer =
        Trainer::<WeightedByAge>::new(Cpu::default(), TrainConfig::default().with_batch_size(128))
            .unwrap();
    trainer.fit(&splits[0], None).unwrap();
    let valid = &splits[1];
    let report = trainer.evaluate(valid).unwrap();
    // The click loss is the age-weighted mean of the rows' cross-entropies: each row counts
    // as many times as its `age` id (0 drops it), not once.
    let p = &trainer.predict(valid).unwrap()[0];
    let click = valid.floats("click").unwrap();
    let age = valid.ids("age").unwrap();
    let ce = |p: f32, y: f32| -> f64 {
        let p = f64::from(p).clamp(1e-7, 1.0 - 1e-7);
        -(f64::from(y) * p.ln() + (1.0 - f64::from(y)) * (1.0 - p).ln())
    };
    let n = p.len() as f64;
    let weighted: f64 = (0..p.len())
        .map(|r| f64::from(age[r]) * ce(p[r], click[r]))
        .sum::<f64>()
        / n;
    let plain: f64 = (0..p.len()).map(|r| ce(p[r], click[r])).sum::<f64>() / n;
    let loss = report.get("click/binary_output_loss").unwrap();
    assert!(
        (loss - weighted).abs() < 1e-4 * weighted,
        "{loss} vs {weighted}"
    );
    assert!(
        (loss - plain).abs() > 0.1 * plain,
        "weights must change the loss: {plain}"
    );
}
