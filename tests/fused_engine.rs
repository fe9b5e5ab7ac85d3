//! The fused CPU engine against the generic dfdx path: the same losses and gradients (every
//! dense parameter, the input) for every body kind, activation and task kind; reproducible
//! results whatever the thread count; no weight changed by a failed step.

use mtl::data::{ColumnValues, Dataset};
use mtl::embedding::RowOptimizerConfig;
use mtl::prelude::*;
use mtl::schema::{ColumnSchema, DType, Schema};
use mtl::train::StepGradients;

mtl_model! {
    /// MLP body (gelu), a tanh tower on one task, all three task kinds, class and column weights.
    pub struct MlpModel {
        inputs: {
            item: categorical(cardinality = 12, dim = 3),
            price: continuous,
            user: categorical(cardinality = 10, dim = 4),
        },
        body: mlp[8, 6](activation = gelu),
        tasks: {
            click: binary(class_weights = (1.0, 3.0), loss_weight = 2.0),
            kind: multiclass(classes = 3, tower = mlp[5](activation = tanh)),
            watch: regression(sample_weight = click),
        },
    }
}

mtl_model! {
    /// Identity body; selu towers whose last layer is linear.
    pub struct IdentityModel {
        inputs: { price: continuous, user: categorical(cardinality = 10, dim = 4) },
        body: identity,
        towers: mlp[4, 3](activation = selu, no_activation_last_layer),
        tasks: { click: binary, watch: regression },
    }
}

mtl_model! {
    /// MMoE with a two-layer gate and sigmoid towers.
    pub struct MmoeModel {
        inputs: { item: categorical(cardinality = 12, dim = 3), user: categorical(cardinality = 10, dim = 4) },
        body: mmoe(experts = 3, expert = mlp[4], gate = mlp[5, 3]),
        towers: mlp[4](activation = sigmoid),
        tasks: { click: binary, kind: multiclass(classes = 3), watch: regression },
    }
}

mtl_model! {
    /// One-gate MoE without a gate block (the gate reads the input), temperature 0.5.
    pub struct MoeModel {
        inputs: { price: continuous, user: categorical(cardinality = 10, dim = 4) },
        body: moe(experts = 3, expert = mlp[4], temperature = 0.5),
        tasks: { click: binary, watch: regression },
    }
}

mtl_model! {
    /// CGC with tanh experts and the metrics-only shared gate.
    pub struct CgcModel {
        inputs: { item: categorical(cardinality = 12, dim = 3), user: categorical(cardinality = 10, dim = 4) },
        body: cgc(task_experts = 2, shared_experts = 1, expert = mlp[4](activation = tanh),
                  gate = mlp[3], shared_gate = true),
        towers: mlp[3],
        tasks: { click: binary, watch: regression },
    }
}

mtl_model! {
    /// Three PLE levels, every gate reading the body input (Merlin's wiring).
    pub struct PleOriginal {
        inputs: { item: categorical(cardinality = 12, dim = 3), user: categorical(cardinality = 10, dim = 4) },
        body: ple(levels = 3, task_experts = 1, shared_experts = 2, expert = mlp[4], gate = mlp[3]),
        towers: mlp[3],
        tasks: { click: binary, kind: multiclass(classes = 3), watch: regression },
    }
}

mtl_model! {
    /// PLE with the paper's wiring and no gate block, temperature 2.
    pub struct PleLevel {
        inputs: { item: categorical(cardinality = 12, dim = 3), user: categorical(cardinality = 10, dim = 4) },
        body: ple(levels = 2, task_experts = 2, shared_experts = 1, expert = mlp[4],
                  gate_input = level, temperature = 2.0),
        tasks: { click: binary, watch: regression },
    }
}

mtl_model! {
    /// PLE with only shared experts and level-input task gates: a task gate reads a previous
    /// output that no expert group reads.
    pub struct PleSharedOnly {
        inputs: { user: categorical(cardinality = 10, dim = 4) },
        body: ple(levels = 2, task_experts = 0, shared_experts = 2, expert = mlp[4], gate = mlp[3],
                  gate_input = level),
        tasks: { click: binary, watch: regression },
    }
}

mtl_model! {
    /// Dropout in the body and the towers.
    pub struct DropoutModel {
        inputs: { item: categorical(cardinality = 12, dim = 3), user: categorical(cardinality = 10, dim = 4) },
        body: mlp[16, 8](dropout = 0.3),
        towers: mlp[4](dropout = 0.2),
        tasks: { click: binary, watch: regression },
    }
}

mtl_model! {
    /// Batch normalisation: the fused engine does not run it.
    pub struct NormModel {
        inputs: { user: categorical(cardinality = 10, dim = 4) },
        body: mlp[8](batch_norm),
        tasks: { click: binary },
    }
}

/// `n` rows with every column the models read, from a fixed pseudo-random sequence.
fn dataset(n: usize, seed: u64) -> Dataset {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut cols: [Vec<f32>; 4] = Default::default();
    let (mut user, mut item) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let u = (next() % 10) as u32;
        let i = (next() % 12) as u32;
        let price = (next() % 1000) as f32 / 250.0 - 2.0;
        // Learnable from the user and the item, with 10% of labels flipped.
        let click = f32::from((u < 4 || i.is_multiple_of(4)) != (next() % 10 == 0));
        cols[0].push(price);
        cols[1].push(click);
        cols[2].push(((u * 7 + i) % 3) as f32);
        cols[3].push(click * (1.0 + price.abs()) + (next() % 3) as f32 * 0.5);
        user.push(u);
        item.push(i);
    }
    let cat = |name: &str, max: i64| {
        ColumnSchema::new(name)
            .with_tags(["categorical"])
            .unwrap()
            .with_dtype(DType::Int32)
            .with_int_domain(0, max, None)
    };
    let target = |name: &str, tag: &str| {
        ColumnSchema::new(name)
            .with_tags([tag, "target"])
            .unwrap()
            .with_dtype(DType::Float32)
    };
    let schema = Schema::new([
        cat("user", 9),
        cat("item", 11),
        ColumnSchema::new("price")
            .with_tags(["continuous"])
            .unwrap()
            .with_dtype(DType::Float32),
        target("click", "binary_classification"),
        target("kind", "multi_class_classification"),
        target("watch", "regression"),
    ])
    .unwrap();
    let [price, click, kind, watch] = cols;
    Dataset::from_columns(
        schema,
        vec![
            ("user".into(), ColumnValues::Ids(user)),
            ("item".into(), ColumnValues::Ids(item)),
            ("price".into(), ColumnValues::Floats(price)),
            ("click".into(), ColumnValues::Floats(click)),
            ("kind".into(), ColumnValues::Floats(kind)),
            ("watch".into(), ColumnValues::Floats(watch)),
        ],
    )
    .unwrap()
}

fn config(fused: bool, batch: usize) -> TrainConfig {
    TrainConfig::default()
        .with_batch_size(batch)
        .with_seed(3)
        .with_fused_cpu(fused)
}

/// `a` and `b` agree to float32 rounding, relative to the larger magnitudes of the tensor.
fn assert_close(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = a
        .iter()
        .chain(b)
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(1e-6);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * scale + 1e-7,
            "{what}[{i}]: fused {x} vs generic {y} (scale {scale})"
        );
    }
}

/// The fused engine's losses and gradients equal the generic path's on the first batch.
fn gradients_agree<M>(batch: usize, threads: usize)
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    let data = dataset(batch, 7);
    let grads = |fused: bool| -> (String, StepGradients) {
        // The same device seed and config seed: identical initial weights on both paths.
        let mut t = Trainer::<M>::new(
            Cpu::seed_from_u64(11),
            config(fused, batch).with_threads(threads),
        )
        .unwrap();
        (t.engine_name(), t.step_gradients(&data).unwrap())
    };
    let ((fused_name, fused), (generic_name, generic)) = (grads(true), grads(false));
    assert_eq!(fused_name, "fused-cpu");
    assert_eq!(generic_name, "generic");
    let name = M::SPEC.name;
    assert_close(&format!("{name} losses"), &fused.losses, &generic.losses);
    assert_eq!(
        fused.dense.keys().collect::<Vec<_>>(),
        generic.dense.keys().collect::<Vec<_>>(),
        "{name}: the same parameters"
    );
    let mut nonzero = 0;
    for (param, g) in &generic.dense {
        assert_close(&format!("{name} {param}"), &fused.dense[param], g);
        nonzero += usize::from(g.iter().any(|v| *v != 0.0));
    }
    assert!(
        nonzero * 2 > generic.dense.len(),
        "{name}: most gradients are non-zero"
    );
    assert_close(&format!("{name} input"), &fused.input, &generic.input);
}

#[test]
fn mlp_bodies_with_every_task_kind_match_the_generic_path() {
    // 300 rows on 2 threads: two chunks; 2500 rows: three chunks of up to 1024 rows.
    gradients_agree::<MlpModel>(300, 2);
    gradients_agree::<MlpModel>(2500, 1);
    gradients_agree::<IdentityModel>(300, 2);
}

#[test]
fn mixture_of_experts_bodies_match_the_generic_path() {
    gradients_agree::<MmoeModel>(300, 2);
    gradients_agree::<MoeModel>(300, 3);
    gradients_agree::<CgcModel>(300, 2);
}

#[test]
fn ple_bodies_match_the_generic_path() {
    gradients_agree::<PleOriginal>(300, 2);
    gradients_agree::<PleLevel>(300, 2);
    gradients_agree::<PleSharedOnly>(300, 2);
}

/// Every weight of a trainer: the network's tensors in visiting order, then the tables.
fn weights<M>(t: &Trainer<M>) -> Vec<f32>
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    struct Collect(Vec<f32>);
    impl TensorVisitor<f32, Cpu> for Collect {
        type Viewer = ViewTensorRef;
        type Err = CpuError;
        type E2 = f32;
        type D2 = Cpu;
        fn visit<S: Shape>(
            &mut self,
            _: TensorOptions<S, f32, Cpu>,
            t: &Tensor<S, f32, Cpu>,
        ) -> Result<Option<Tensor<S, f32, Cpu>>, CpuError> {
            self.0.extend(t.as_vec());
            Ok(None)
        }
    }
    let mut c = Collect(Vec::new());
    <M::Built as TensorCollection<f32, Cpu>>::iter_tensors(&mut RecursiveWalker {
        m: &t.network,
        f: &mut c,
    })
    .unwrap();
    c.0.extend(
        t.embeddings
            .tables
            .iter()
            .flat_map(|tb| tb.weights.iter().copied()),
    );
    c.0
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let data = dataset(5000, 9);
    let train = |threads: usize| {
        let mut t = Trainer::<MmoeModel>::new(
            Cpu::seed_from_u64(5),
            config(true, 2048).with_epochs(2).with_threads(threads),
        )
        .unwrap();
        let h = t.fit(&data, None).unwrap();
        (h.epochs[1].train.get("loss").unwrap(), weights(&t))
    };
    let (one, two) = (train(1), train(2));
    assert_eq!(one.0, two.0, "the same loss, bit for bit");
    assert!(one.1 == two.1, "the same weights, bit for bit");
}

#[test]
fn the_fused_path_learns_like_the_generic_path() {
    let (train, valid) = (dataset(6000, 1), dataset(2000, 2));
    let run = |fused: bool| {
        // Seed 3 (the other tests') initialises the click tower's three ReLUs dead on both
        // paths: click AUC 0.5. Seeds 0 to 2 learn.
        let mut cfg = config(fused, 256).with_epochs(4).with_seed(1);
        cfg.dense_lr = 1e-2;
        cfg.embeddings = RowOptimizerConfig::LazyAdam {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            weight_decay: 0.0,
        };
        let mut t = Trainer::<CgcModel>::new(Cpu::seed_from_u64(5), cfg).unwrap();
        t.fit(&train, None).unwrap();
        t.evaluate(&valid).unwrap()
    };
    let (fused, generic) = (run(true), run(false));
    for name in ["loss", "click/binary_output/auc"] {
        let (f, g) = (fused.get(name).unwrap(), generic.get(name).unwrap());
        assert!(
            (f - g).abs() < 0.02 * g.abs().max(0.5),
            "{name}: fused {f} vs generic {g}"
        );
    }
    let auc = fused.get("click/binary_output/auc").unwrap();
    assert!(auc > 0.75, "click AUC {auc}");
}

#[test]
fn dropout_is_seeded_and_only_active_in_training() {
    let data = dataset(3000, 4);
    let run = |seed: u64| {
        let mut t = Trainer::<DropoutModel>::new(
            Cpu::seed_from_u64(5),
            config(true, 500).with_epochs(3).with_seed(seed),
        )
        .unwrap();
        let h = t.fit(&data, None).unwrap();
        let loss = |e: usize| h.epochs[e].train.get("loss").unwrap();
        assert!(loss(2) < loss(0), "it learns: {} -> {}", loss(0), loss(2));
        (loss(2), t)
    };
    let ((a, ta), (b, _), (c, _)) = (run(1), run(1), run(2));
    assert_eq!(a, b, "same seed, same masks, same run");
    assert_ne!(a, c, "another seed draws other masks");
    // Evaluation has no dropout: two evaluations agree exactly.
    let (e1, e2) = (ta.evaluate(&data).unwrap(), ta.evaluate(&data).unwrap());
    assert_eq!(e1.get("loss"), e2.get("loss"));
}

#[test]
fn batch_normalisation_trains_on_the_generic_path() {
    let t = Trainer::<NormModel>::new(Cpu::default(), config(true, 64)).unwrap();
    assert_eq!(
        t.engine_name(),
        "generic (a layer uses batch normalisation)"
    );
    let mut t = t;
    let h = t.fit(&dataset(256, 3), None).unwrap();
    assert!(h.epochs[0].train.get("loss").unwrap().is_finite());
}

#[test]
fn a_failed_step_changes_no_weight() {
    // The second batch has a target that overflows the loss.
    let mut data = dataset(200, 6);
    let bad = {
        let mut watch = data.floats("watch").unwrap().to_vec();
        watch[150] = 3e38;
        watch
    };
    let clicked = {
        // The row is in `watch`'s sample space (weight `click` = 1).
        let mut click = data.floats("click").unwrap().to_vec();
        click[150] = 1.0;
        click
    };
    data = Dataset::from_columns(
        data.schema().clone(),
        ["user", "item"]
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    ColumnValues::Ids(data.ids(c).unwrap().to_vec()),
                )
            })
            .chain(["price", "kind"].iter().map(|c| {
                (
                    c.to_string(),
                    ColumnValues::Floats(data.floats(c).unwrap().to_vec()),
                )
            }))
            .chain([
                ("watch".to_string(), ColumnValues::Floats(bad)),
                ("click".to_string(), ColumnValues::Floats(clicked)),
            ])
            .collect(),
    )
    .unwrap();
    for fused in [true, false] {
        let mut cfg = config(fused, 100);
        cfg.shuffle = false;
        let mut failing = Trainer::<MlpModel>::new(Cpu::seed_from_u64(2), cfg.clone()).unwrap();
        let err = failing.fit(&data, None).unwrap_err().to_string();
        assert!(
            err.contains("task `watch`") && err.contains("step 1"),
            "{err}"
        );
        // The reference: one step on the first batch only.
        let mut one = Trainer::<MlpModel>::new(Cpu::seed_from_u64(2), cfg).unwrap();
        one.fit(&data.slice(0..100), None).unwrap();
        assert!(
            weights(&failing) == weights(&one),
            "fused {fused}: the failed step left the weights of step 0"
        );
    }
}

mtl_model! {
    /// An MLP deeper than dfdx's six-module tuples, and a deep tower.
    pub struct DeepModel {
        inputs: { item: categorical(cardinality = 12, dim = 3), price: continuous },
        body: mlp[12, 11, 10, 9, 8, 7, 6, 5](activation = tanh),
        towers: mlp[4, 4, 4, 4, 4, 4, 3],
        tasks: { click: binary, watch: regression },
    }
}

#[test]
fn mlps_deeper_than_six_layers_build_and_match_the_generic_path() {
    gradients_agree::<DeepModel>(300, 2);
    let dev = Cpu::default();
    let net = dev.build_module::<DeepModel, f32>();
    assert_eq!(
        net.num_trainable_params(),
        DeepModel::spec().dense_parameters().unwrap() as usize
    );
}

mtl_model! {
    // Deep experts on every kind of mixture-of-experts body, sharing inputs and tasks.
    inputs: { item: categorical(cardinality = 12, dim = 3), user: categorical(cardinality = 10, dim = 4) },
    tasks: { click: binary, kind: multiclass(classes = 3), watch: regression },

    /// MMoE whose experts have two layers (gelu).
    pub struct DeepMmoe {
        body: mmoe(experts = 3, expert = mlp[6, 4](activation = gelu), gate = mlp[5]),
        towers: mlp[3],
    }
    /// CGC whose experts have three layers, the last linear.
    pub struct DeepCgc {
        body: cgc(task_experts = 2, shared_experts = 1,
                  expert = mlp[5, 4, 3](activation = tanh, no_activation_last_layer)),
    }
    /// PLE (paper wiring) whose experts have two layers, at both levels.
    pub struct DeepPle {
        body: ple(levels = 2, task_experts = 1, shared_experts = 2, expert = mlp[6, 4],
                  gate = mlp[3], gate_input = level),
        towers: mlp[3],
    }
    /// One-gate MoE whose experts have seven layers (a tuple of tuples).
    pub struct DeepestMoe {
        body: moe(experts = 2, expert = mlp[4, 4, 4, 4, 4, 4, 3]),
    }
}

#[test]
fn multi_layer_experts_match_the_generic_path() {
    gradients_agree::<DeepMmoe>(300, 2);
    gradients_agree::<DeepCgc>(300, 2);
    gradients_agree::<DeepPle>(300, 2);
    gradients_agree::<DeepestMoe>(300, 2);
    fn params<M: MtlModel + BuildOnDevice<Cpu, f32>>()
    where
        M::Built: NumParams<f32, Cpu>,
    {
        let net = Cpu::default().build_module::<M, f32>();
        let spec = M::SPEC.dense_parameters().unwrap();
        assert_eq!(net.num_trainable_params() as u128, spec, "{}", M::SPEC.name);
    }
    params::<DeepMmoe>();
    params::<DeepCgc>();
    params::<DeepPle>();
    params::<DeepestMoe>();
}

#[test]
fn a_model_with_multi_layer_experts_learns_on_both_paths() {
    let (train, valid) = (dataset(6000, 1), dataset(2000, 2));
    for fused in [true, false] {
        let mut cfg = config(fused, 256).with_epochs(4);
        cfg.dense_lr = 1e-2;
        let mut t = Trainer::<DeepPle>::new(Cpu::seed_from_u64(5), cfg).unwrap();
        assert_eq!(t.engine_name() == "fused-cpu", fused);
        t.fit(&train, None).unwrap();
        let report = t.evaluate(&valid).unwrap();
        let auc = report.get("click/binary_output/auc").unwrap();
        assert!(auc > 0.7, "fused {fused}: click AUC {auc}");
    }
}
