//! The loop around a training step: seeds, early stopping, progress output, schedules,
//! regularization, clipping, reports.

use mtl::data::synthetic::generate_data;
use mtl::data::Dataset;
use mtl::prelude::*;

mtl_model! {
    /// A small MMoE over the notebook's schema (small embeddings for quick tests).
    pub struct Small {
        schema: "tests/fixtures/merlin-tenrec-video/schema.json",
        inputs: {
            user_id: categorical(dim = 8), item_id: categorical(dim = 8),
            video_category: categorical(dim = 4), gender: categorical(dim = 4), age: categorical(dim = 4),
        },
        body: mmoe(experts = 2, expert = mlp[8], gate = mlp[4]),
        towers: mlp[4],
        tasks: { click: binary, like: binary, watching_times: regression },
    }
}

fn data(rows: usize, seed: u64) -> (Dataset, Dataset) {
    let mut splits = generate_data("tenrec-video", rows, &[0.8, 0.2], seed).unwrap();
    let valid = splits.pop().unwrap();
    (splits.pop().unwrap(), valid)
}

/// Every dense parameter of a trainer's network, in visiting order.
fn dense(t: &Trainer<Small>) -> Vec<f32> {
    mtl::__private::named_parameters(&t.network)
        .unwrap()
        .into_iter()
        .flat_map(|(_, v)| v)
        .collect()
}

#[test]
fn the_seed_fixes_the_dense_initialisation_and_different_seeds_differ() {
    let trainer = |seed: u64, device: Cpu| {
        Trainer::<Small>::new(device, TrainConfig::default().with_seed(seed)).unwrap()
    };
    // The device's own RNG (and its seed) no longer matters.
    let a = dense(&trainer(1, Cpu::seed_from_u64(100)));
    let b = dense(&trainer(1, Cpu::seed_from_u64(200)));
    let c = dense(&trainer(2, Cpu::seed_from_u64(100)));
    assert_eq!(a, b, "one seed, one initialisation");
    assert_ne!(a, c, "another seed, another initialisation");
    let differing = a.iter().zip(&c).filter(|(x, y)| x != y).count();
    assert!(differing > a.len() / 2, "{differing} of {} differ", a.len());

    // And so a run: same seed, same validation AUC; other seeds, other AUCs.
    let (train, valid) = data(4_000, 3);
    let auc = |seed: u64| {
        let mut t = Trainer::<Small>::new(
            Cpu::default(),
            TrainConfig::default().with_seed(seed).with_batch_size(256),
        )
        .unwrap();
        t.fit(&train, None).unwrap();
        t.evaluate(&valid)
            .unwrap()
            .get("click/binary_output/auc")
            .unwrap()
    };
    assert_eq!(auc(5), auc(5));
    let others: Vec<f64> = (6..9).map(auc).collect();
    assert!(others.iter().all(|a| *a != auc(5)), "{others:?}");
}
