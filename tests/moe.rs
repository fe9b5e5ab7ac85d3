//! Mixture-of-experts bodies: MMoE (a gate per task) and MoE (one shared gate).
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
