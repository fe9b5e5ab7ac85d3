//! Mixture-of-experts bodies: MMoE (a gate per task), MoE (one shared gate), CGC and PLE.
#![deny(warnings)]

use mtl::prelude::*;

mtl_model! {
    /// The notebook's MMoE: 4 experts mlp[16], gates mlp[16], towers mlp[16].
    pub struct Mmoe {
        schema: "tests/fixtures/merlin-tenrec-video/schema.json",
        body: mmoe(experts = 4, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }
}

mtl_model! {
    /// The one-gate baseline, with a temperature and a linear gate.
    pub struct Moe {
        inputs: { x: continuous(width = 6) },
        body: moe(experts = 3, expert = mlp[5](activation = tanh), temperature = 2.5),
        tasks: { a: binary, b: regression },
    }
}

fn input<const W: usize>(dev: &Cpu, rows: usize) -> Tensor<(usize, Const<W>), f32, Cpu> {
    dev.sample_normal_like(&(rows, Const::<W>))
}

#[test]
fn mmoe_builds_with_batched_experts_and_a_gate_per_task() {
    let dev = Cpu::default();
    let net = dev.build_module::<Mmoe, f32>();
    let dense = |i: usize, o: usize| i * o + o;
    // Experts: one batched [112, 4·16] layer; each gate: mlp[16] then a bias-free [16 → 4].
    assert_eq!(net.experts.num_trainable_params(), dense(112, 64));
    assert_eq!(
        net.gates.click.num_trainable_params(),
        dense(112, 16) + 16 * 4
    );
    assert_eq!(Mmoe::spec().body_width, 16);
    let x = input::<112>(&dev, 7);
    let out = net.forward(x.clone());
    assert_eq!(out.watching_times.shape().0, 7);
    // Gate weights are a distribution over the experts for every row.
    for g in [
        net.gates.click.try_weights(x.clone()).unwrap(),
        net.gates.like.try_weights(x).unwrap(),
    ] {
        for row in g.as_vec().chunks(4) {
            assert!(row.iter().all(|&w| w >= 0.0));
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
        }
    }
    let text = net.to_string();
    assert!(
        text.contains("gates.like") && text.contains("4 experts mlp[16] relu (batched)"),
        "{text}"
    );
}

#[test]
fn one_backward_reaches_every_expert_and_gate() {
    let dev = Cpu::default();
    let mut net = dev.build_module::<Mmoe, f32>();
    let out = net.forward_mut(input::<112>(&dev, 32).leaky_traced());
    let loss = out.click.square().mean()
        + out.follow.square().mean()
        + out.like.square().mean()
        + out.share.square().mean()
        + out.watching_times.square().mean();
    let grads = loss.backward();
    let nonzero =
        |t: &Tensor<Rank2<16, 112>, f32, Cpu>| grads.get(t).as_vec().iter().any(|g| *g != 0.0);
    for gate in [
        &net.gates.click,
        &net.gates.follow,
        &net.gates.like,
        &net.gates.share,
        &net.gates.watching_times,
    ] {
        assert!(nonzero(&gate.hidden.0.weight));
        assert!(grads.get(&gate.weight).as_vec().iter().any(|g| *g != 0.0));
    }
    let experts = grads.get(&net.experts.0.weight).as_vec();
    // Every expert's block of the batched layer (rows k·16..(k+1)·16) receives gradient.
    for k in 0..4 {
        assert!(
            experts[k * 16 * 112..(k + 1) * 16 * 112]
                .iter()
                .any(|g| *g != 0.0),
            "expert {k}"
        );
    }
}

#[test]
fn moe_shares_one_gate_and_honours_the_temperature() {
    let dev = Cpu::default();
    let net = dev.build_module::<Moe, f32>();
    assert_eq!(
        mtl::nn::Gate::<6, 3, 2500, mtl::nn::Identity, f32, Cpu>::TEMPERATURE,
        2.5
    );
    let x = input::<6>(&dev, 5);
    let g = net.gates.shared.try_weights(x.clone()).unwrap().as_vec();
    // softmax(z / 2.5) recomputed by hand from the gate's weight.
    let w = net.gates.shared.weight.as_vec();
    let xs = x.as_vec();
    for r in 0..5 {
        let z: Vec<f32> = (0..3)
            .map(|k| (0..6).map(|i| w[k * 6 + i] * xs[r * 6 + i]).sum::<f32>() / 2.5)
            .collect();
        let m = z.iter().copied().fold(f32::MIN, f32::max);
        let s: f32 = z.iter().map(|v| (v - m).exp()).sum();
        for k in 0..3 {
            assert!((g[r * 3 + k] - (z[k] - m).exp() / s).abs() < 1e-5);
        }
    }
    let out = net.forward(x);
    assert_eq!((out.a.shape().0, out.b.shape().0), (5, 5));
}

#[test]
fn mmoe_trains_and_evaluates_with_the_trainer() {
    let splits =
        mtl::data::synthetic::generate_data("tenrec-video", 4_000, &[0.5, 0.5], 3).unwrap();
    let mut trainer =
        Trainer::<Mmoe>::new(Cpu::default(), TrainConfig::default().with_batch_size(256)).unwrap();
    trainer.fit(&splits[0], None).unwrap();
    let report = trainer.evaluate(&splits[1]).unwrap();
    assert!(report.get("click/binary_output/auc").is_some());
    assert!(report.get("loss").unwrap().is_finite());
}

#[test]
fn gate_metrics_are_named_like_merlin_and_give_a_table_and_heatmap() {
    let splits =
        mtl::data::synthetic::generate_data("tenrec-video", 2_000, &[0.5, 0.5], 4).unwrap();
    let config = TrainConfig::default()
        .with_batch_size(256)
        .with_gate_metrics(true);
    let trainer = Trainer::<Mmoe>::new(Cpu::default(), config).unwrap();
    let report = trainer.evaluate(&splits[1]).unwrap();
    let names: Vec<&str> = report.names().filter(|n| n.starts_with("gate_")).collect();
    assert_eq!(names.len(), 5 * 4);
    assert_eq!(names[0], "gate_click/binary_output_weight_0");
    assert_eq!(names[19], "gate_watching_times/regression_output_weight_3");
    let gates = report.gate_weights().unwrap();
    for (_, w) in &gates.gates {
        assert!(
            (w.iter().sum::<f64>() - 1.0).abs() < 1e-4,
            "a gate's mean weights sum to 1: {w:?}"
        );
    }
    let table = gates.to_string();
    assert!(
        table.contains("gate_like/binary_output") && table.contains("expert 3"),
        "{table}"
    );
    let svg = gates.to_svg();
    assert!(
        svg.starts_with("<svg") && svg.matches("<rect").count() == 1 + 20,
        "{svg}"
    );

    let plain =
        Trainer::<Mmoe>::new(Cpu::default(), TrainConfig::default().with_batch_size(256)).unwrap();
    assert!(
        plain.evaluate(&splits[1]).unwrap().gate_weights().is_none(),
        "off by default"
    );
}

mtl_model! {
    /// The notebook's CGC: 2 experts per task + 3 shared, gates mlp[16], towers mlp[16].
    pub struct Cgc {
        schema: "tests/fixtures/merlin-tenrec-video/schema.json",
        body: cgc(task_experts = 2, shared_experts = 3, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }
}

#[test]
fn cgc_tasks_mix_only_their_own_and_the_shared_experts() {
    let dev = Cpu::default();
    let net = dev.build_module::<Cgc, f32>();
    // 5 tasks x 2 + 3 shared = 13 experts in one batched layer; each gate weighs 2 + 3.
    let dense = |i: usize, o: usize| i * o + o;
    assert_eq!(net.experts.num_trainable_params(), dense(112, 13 * 16));
    assert_eq!(
        net.gates.like.num_trainable_params(),
        dense(112, 16) + 16 * 5
    );
    let x = input::<112>(&dev, 6);
    assert_eq!(net.forward(x.clone()).share.shape().0, 6);
    // Exact task matching: the `like` output does not move when another task's experts change.
    let mut other = net.clone();
    let mut w = other.experts.0.weight.as_vec();
    // Experts of `click` (task 0) are rows 0..32 of the batched weight [13·16, 112].
    for v in &mut w[..2 * 16 * 112] {
        *v += 1.0;
    }
    other.experts.0.weight.copy_from(&w);
    assert_eq!(
        net.forward(x.clone()).like.as_vec(),
        other.forward(x.clone()).like.as_vec()
    );
    assert_ne!(
        net.forward(x.clone()).click.as_vec(),
        other.forward(x.clone()).click.as_vec()
    );
    // ... and every gradient still reaches every expert and gate.
    let mut net = net;
    let out = net.forward_mut(x.leaky_traced());
    let loss = out.click.square().mean()
        + out.follow.square().mean()
        + out.like.square().mean()
        + out.share.square().mean()
        + out.watching_times.square().mean();
    let grads = loss.backward();
    let g = grads.get(&net.experts.0.weight).as_vec();
    for k in 0..13 {
        assert!(
            g[k * 16 * 112..(k + 1) * 16 * 112]
                .iter()
                .any(|v| *v != 0.0),
            "expert {k}"
        );
    }
}

mtl_model! {
    /// The notebook's PLE: 2 levels of 2 experts per task + 1 shared, gates mlp[16], towers mlp[16].
    pub struct Ple {
        schema: "tests/fixtures/merlin-tenrec-video/schema.json",
        body: ple(levels = 2, task_experts = 2, shared_experts = 1, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }
}

mtl_model! {
    /// Small CGC and one-level PLE with the same configuration: the same function.
    pub struct SmallCgc {
        inputs: { x: continuous(width = 6) },
        body: cgc(task_experts = 2, shared_experts = 2, expert = mlp[4], gate = mlp[3]),
        towers: mlp[3],
        tasks: { a: binary, b: regression },
    }
}

mtl_model! {
    pub struct OneLevelPle {
        inputs: { x: continuous(width = 6) },
        body: ple(levels = 1, task_experts = 2, shared_experts = 2, expert = mlp[4], gate = mlp[3]),
        towers: mlp[3],
        tasks: { a: binary, b: regression },
    }
}

mtl_model! {
    /// Three levels, gates reading their level's input (the PLE paper). tanh: no dead units, so
    /// every parameter must receive gradient.
    pub struct PaperPle {
        inputs: { x: continuous(width = 6) },
        body: ple(levels = 3, task_experts = 1, shared_experts = 2, expert = mlp[4](activation = tanh), gate = mlp[3](activation = tanh), gate_input = level),
        tasks: { a: binary, b: regression },
    }
}

mtl_model! {
    /// The same with Merlin's gate input (the body input at every level).
    pub struct MerlinPle {
        inputs: { x: continuous(width = 6) },
        body: ple(levels = 3, task_experts = 1, shared_experts = 2, expert = mlp[4](activation = tanh), gate = mlp[3](activation = tanh), gate_input = original),
        tasks: { a: binary, b: regression },
    }
}

mtl_model! {
    /// CGC with Merlin's `add_shared_gate`.
    pub struct SharedGateCgc {
        inputs: { x: continuous(width = 6) },
        body: cgc(task_experts = 1, shared_experts = 2, expert = mlp[4], shared_gate = true),
        tasks: { a: binary, b: binary },
    }
}

fn named<'a>(
    gates: &'a [(&'static str, mtl::__private::DynBatch<f32, Cpu>)],
    name: &str,
) -> &'a mtl::__private::DynBatch<f32, Cpu> {
    &gates.iter().find(|(n, _)| *n == name).unwrap().1
}

fn assert_distribution(w: &mtl::__private::DynBatch<f32, Cpu>) {
    let k = w.shape().1;
    for row in w.as_vec().chunks(k) {
        assert!(row.iter().all(|&v| v >= 0.0), "{row:?}");
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
    }
}

#[test]
fn ple_levels_have_their_own_experts_and_gates_named_per_level() {
    let dev = Cpu::default();
    let net = dev.build_module::<Ple, f32>();
    let dense = |i: usize, o: usize| i * o + o;
    // Level 1: 5 tasks x 2 + 1 shared = 11 experts on the input; level 2: per group on H = 16.
    assert_eq!(
        net.level_1.experts.num_trainable_params(),
        dense(112, 11 * 16)
    );
    assert_eq!(
        net.level_2.experts.click.num_trainable_params(),
        dense(16, 2 * 16)
    );
    assert_eq!(
        net.level_2.experts.shared.num_trainable_params(),
        dense(16, 16)
    );
    // Task gates weigh 2 + 1 experts, level 1's shared gate all 11; Merlin's gates read x.
    assert_eq!(
        net.level_1.gates.like.num_trainable_params(),
        dense(112, 16) + 16 * 3
    );
    assert_eq!(
        net.level_1.gates.shared.num_trainable_params(),
        dense(112, 16) + 16 * 11
    );
    assert_eq!(
        net.level_2.gates.like.num_trainable_params(),
        dense(112, 16) + 16 * 3
    );
    let x = input::<112>(&dev, 9);
    assert_eq!(net.forward(x.clone()).watching_times.shape().0, 9);
    let gates = net.try_gate_weights(x.realize()).unwrap();
    let names: Vec<&str> = gates.iter().map(|(n, _)| *n).collect();
    assert_eq!(names.len(), 5 + 1 + 5, "{names:?}");
    assert_eq!(names[0], "level_1/gate_click/binary_output");
    assert_eq!(names[5], "level_1/shared_gate");
    assert_eq!(names[10], "level_2/gate_watching_times/regression_output");
    assert!(
        !names.contains(&"level_2/shared_gate"),
        "the last level has no shared gate"
    );
    for (_, w) in &gates {
        assert_distribution(w);
    }
    let text = net.to_string();
    assert!(
        text.contains("level_2.experts.shared") && text.contains("level_1.gates.shared"),
        "{text}"
    );
}

/// Σ of squared outputs of both tasks of the small models.
macro_rules! small_loss {
    ($out:expr) => {{
        let out = $out;
        out.a.square().mean() + out.b.square().mean()
    }};
}

#[test]
fn one_backward_reaches_every_expert_and_gate_of_every_level() {
    fn check(params: Vec<(&str, Vec<f32>)>) {
        for (name, g) in params {
            assert!(g.iter().any(|v| *v != 0.0), "{name} got no gradient");
        }
    }
    let dev = Cpu::default();
    let x = input::<6>(&dev, 16);

    let mut paper = dev.build_module::<PaperPle, f32>();
    let grads = small_loss!(paper.forward_mut(x.clone().leaky_traced())).backward();
    let n = &paper;
    let mut params = vec![
        (
            "l2 a experts",
            grads.get(&n.level_2.experts.a.0.weight).as_vec(),
        ),
        (
            "l2 b experts",
            grads.get(&n.level_2.experts.b.0.weight).as_vec(),
        ),
        (
            "l2 shared experts",
            grads.get(&n.level_2.experts.shared.0.weight).as_vec(),
        ),
        (
            "l3 a experts",
            grads.get(&n.level_3.experts.a.0.weight).as_vec(),
        ),
        (
            "l3 shared experts",
            grads.get(&n.level_3.experts.shared.0.weight).as_vec(),
        ),
        ("l1 gate a", grads.get(&n.level_1.gates.a.weight).as_vec()),
        (
            "l1 gate b hidden",
            grads.get(&n.level_1.gates.b.hidden.0.weight).as_vec(),
        ),
        (
            "l1 shared gate",
            grads.get(&n.level_1.gates.shared.weight).as_vec(),
        ),
        ("l2 gate a", grads.get(&n.level_2.gates.a.weight).as_vec()),
        (
            "l2 shared gate",
            grads.get(&n.level_2.gates.shared.hidden.0.weight).as_vec(),
        ),
        ("l3 gate b", grads.get(&n.level_3.gates.b.weight).as_vec()),
    ];
    // Level 1's batched experts: every one of its 1·2 + 2 = 4 blocks of 4 rows.
    let l1 = grads.get(&n.level_1.experts.0.weight).as_vec();
    for k in 0..4 {
        params.push(("a level-1 expert", l1[k * 4 * 6..(k + 1) * 4 * 6].to_vec()));
    }
    check(params);

    let mut merlin = dev.build_module::<MerlinPle, f32>();
    let grads = small_loss!(merlin.forward_mut(x.leaky_traced())).backward();
    let n = &merlin;
    check(vec![
        (
            "l1 experts",
            grads.get(&n.level_1.experts.0.weight).as_vec(),
        ),
        (
            "l2 shared experts",
            grads.get(&n.level_2.experts.shared.0.weight).as_vec(),
        ),
        (
            "l3 b experts",
            grads.get(&n.level_3.experts.b.0.weight).as_vec(),
        ),
        (
            "l1 shared gate",
            grads.get(&n.level_1.gates.shared.weight).as_vec(),
        ),
        (
            "l2 shared gate",
            grads.get(&n.level_2.gates.shared.weight).as_vec(),
        ),
        (
            "l3 gate a",
            grads.get(&n.level_3.gates.a.hidden.0.weight).as_vec(),
        ),
    ]);
}

#[test]
fn ple_with_one_level_equals_cgc_with_the_same_weights() {
    let dev = Cpu::default();
    let cgc = dev.build_module::<SmallCgc, f32>();
    let mut ple = Cpu::seed_from_u64(99).build_module::<OneLevelPle, f32>();
    let x = input::<6>(&dev, 8);
    assert_ne!(
        cgc.forward(x.clone()).a.as_vec(),
        ple.forward(x.clone()).a.as_vec()
    );
    ple.level_1.experts = cgc.experts.clone();
    ple.level_1.gates.a = cgc.gates.a.clone();
    ple.level_1.gates.b = cgc.gates.b.clone();
    ple.towers.a = cgc.towers.a.clone();
    ple.towers.b = cgc.towers.b.clone();
    ple.heads.a = cgc.heads.a.clone();
    ple.heads.b = cgc.heads.b.clone();
    let (c, p) = (cgc.forward(x.clone()), ple.forward(x));
    assert_eq!(c.a.as_vec(), p.a.as_vec());
    assert_eq!(c.b.as_vec(), p.b.as_vec());
}

#[test]
fn the_gate_input_mode_decides_what_later_gates_see() {
    let dev = Cpu::default();
    let x = input::<6>(&dev, 8);
    // Changing level 1's experts changes the level-1 outputs but not x.
    // (the network, a copy with level 1's experts shifted, their gate weights for x)
    macro_rules! moved_level_1 {
        ($model:ty) => {{
            let net = dev.build_module::<$model, f32>();
            let mut moved = net.clone();
            let mut w = net.level_1.experts.0.weight.as_vec();
            w.iter_mut().for_each(|e| *e += 0.5);
            moved.level_1.experts.0.weight.copy_from(&w);
            let before = net.try_gate_weights(x.clone().realize()).unwrap();
            let after = moved.try_gate_weights(x.clone().realize()).unwrap();
            (net, moved, before, after)
        }};
    }
    let (paper, _, before, after) = moved_level_1!(PaperPle);
    // Level mode: level 2's gates read level 1's outputs, so they move.
    assert_eq!(
        named(&before, "level_1/gate_a/binary_output").as_vec(),
        named(&after, "level_1/gate_a/binary_output").as_vec()
    );
    assert_ne!(
        named(&before, "level_2/gate_a/binary_output").as_vec(),
        named(&after, "level_2/gate_a/binary_output").as_vec()
    );
    assert_ne!(
        named(&before, "level_2/shared_gate").as_vec(),
        named(&after, "level_2/shared_gate").as_vec()
    );
    // The level-2 gate's input width is the expert width H = 4, not the input's 6.
    assert_eq!(
        paper.level_2.gates.a.hidden.0.weight.shape(),
        &(Const::<3>, Const::<4>)
    );

    let (merlin, moved, before, after) = moved_level_1!(MerlinPle);
    // Original mode: every gate reads x, so no gate moves — while the outputs do.
    for (name, w) in &before {
        assert_eq!(w.as_vec(), named(&after, name).as_vec(), "{name}");
    }
    assert_ne!(
        merlin.forward(x.clone()).a.as_vec(),
        moved.forward(x).a.as_vec()
    );
    assert_eq!(
        merlin.level_2.gates.a.hidden.0.weight.shape(),
        &(Const::<3>, Const::<6>)
    );
}

#[test]
fn cgc_shared_gate_is_reported_over_all_experts() {
    let dev = Cpu::default();
    let net = dev.build_module::<SharedGateCgc, f32>();
    let gates = net.try_gate_weights(input::<6>(&dev, 5).realize()).unwrap();
    let names: Vec<&str> = gates.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "gate_a/binary_output",
            "gate_b/binary_output",
            "shared_gate"
        ]
    );
    // 2 tasks x 1 + 2 shared = 4 experts under the shared gate, 3 under each task gate.
    assert_eq!(named(&gates, "shared_gate").shape().1, 4);
    assert_eq!(named(&gates, "gate_a/binary_output").shape().1, 3);
    for (_, w) in &gates {
        assert_distribution(w);
    }
    assert!(net.to_string().contains("metrics only"), "{net}");
}

#[test]
fn a_ple_checkpoint_round_trip_gives_identical_predictions() {
    let splits =
        mtl::data::synthetic::generate_data("tenrec-video", 1_000, &[0.5, 0.5], 5).unwrap();
    let config = TrainConfig::default().with_batch_size(128).with_seed(3);
    let mut a = Trainer::<Ple>::new(Cpu::default(), config.clone()).unwrap();
    a.fit(&splits[0], None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ple.ckpt");
    a.save_checkpoint(&path).unwrap();
    let mut b = Trainer::<Ple>::new(Cpu::seed_from_u64(8), config).unwrap();
    assert_ne!(
        a.predict(&splits[1]).unwrap(),
        b.predict(&splits[1]).unwrap()
    );
    b.load_checkpoint(&path).unwrap();
    assert_eq!(
        a.predict(&splits[1]).unwrap(),
        b.predict(&splits[1]).unwrap()
    );
    // Gate metrics carry the level prefix through the trainer too.
    let mut c = Trainer::<Ple>::new(
        Cpu::default(),
        TrainConfig::default().with_gate_metrics(true),
    )
    .unwrap();
    c.load_checkpoint(&path).unwrap();
    let report = c.evaluate(&splits[1]).unwrap();
    assert!(report
        .get("level_2/gate_like/binary_output_weight_2")
        .is_some());
    assert!(report.get("level_1/shared_gate_weight_10").is_some());
}
