//! The tenrec-video generator: Merlin's feature distribution, both target modes, determinism.

use std::collections::HashMap;

use mtl::data::synthetic::{generate_data, generate_data_with, SyntheticOptions, TargetMode};
use mtl::data::{Dataset, WriteOptions};
use mtl::metrics::auc;

const TARGETS: [&str; 4] = ["click", "follow", "like", "share"];

fn generate(mode: TargetMode, rows: usize, seed: u64) -> Dataset {
    let options = SyntheticOptions {
        mode,
        true_probabilities: true,
        ..Default::default()
    };
    generate_data_with("tenrec-video", rows, &[1.0], seed, &options)
        .unwrap()
        .remove(0)
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64
}

fn median(v: &[u32]) -> u32 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
fn ids_are_lognormal_and_side_features_are_bins_of_the_id() {
    let ds = generate(TargetMode::Merlin, 100_000, 1);
    for (col, max) in [("user_id", 100_000), ("item_id", 179_280)] {
        let ids = ds.ids(col).unwrap();
        assert!(
            ids.iter().all(|&i| (1..=max).contains(&i)),
            "{col} in [1, {max}]"
        );
        // trunc(lognormal(3, 1)): median e^3 = 20.09 truncates to 19 or 20.
        assert!(
            (19..=20).contains(&median(ids)),
            "{col} median {}",
            median(ids)
        );
        let share_below_e4 =
            ids.iter().filter(|&&i| f64::from(i) < 4f64.exp()).count() as f64 / ids.len() as f64;
        assert!(
            (share_below_e4 - 0.841).abs() < 0.01,
            "P(ln id < 4) ~ Phi(1): {share_below_e4}"
        );
    }
    // Same id, same side feature; values are labels 1..max-1, mostly 1.
    for (feature, id, max) in [
        ("gender", "user_id", 4),
        ("age", "user_id", 9),
        ("video_category", "item_id", 4),
    ] {
        let mut seen: HashMap<u32, u32> = HashMap::new();
        for (&i, &f) in ds.ids(id).unwrap().iter().zip(ds.ids(feature).unwrap()) {
            assert!((1..=max).contains(&f), "{feature}={f}");
            assert_eq!(
                *seen.entry(i).or_insert(f),
                f,
                "{feature} is a function of {id}"
            );
        }
        let ones = ds.ids(feature).unwrap().iter().filter(|&&f| f == 1).count();
        assert!(ones as f64 / 100_000.0 > 0.9, "{feature} mostly 1");
        // Monotone in the id: equal-width bins of the id.
        let mut pairs: Vec<(u32, u32)> = seen.into_iter().collect();
        pairs.sort_unstable();
        assert!(
            pairs.windows(2).all(|w| w[0].1 <= w[1].1),
            "{feature} grows with {id}"
        );
    }
}

#[test]
fn merlin_mode_targets_are_noise() {
    let ds = generate(TargetMode::Merlin, 100_000, 2);
    for t in TARGETS {
        let rate = mean(ds.floats(t).unwrap());
        assert!((rate - 0.5).abs() < 0.01, "{t} rate {rate}");
        let ceiling = auc(
            ds.floats(&format!("{t}_true_prob")).unwrap(),
            ds.floats(t).unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(ceiling, 0.5, "{t}: nothing to learn");
        // No feature predicts it either.
        let ids: Vec<f32> = ds
            .ids("user_id")
            .unwrap()
            .iter()
            .map(|&i| i as f32)
            .collect();
        let by_user = auc(&ids, ds.floats(t).unwrap(), None).unwrap();
        assert!((by_user - 0.5).abs() < 0.01, "{t} vs user_id: {by_user}");
    }
    let watch = ds.floats("watching_times").unwrap();
    assert!(watch
        .iter()
        .all(|&w| (0.0..=4.0).contains(&w) && w.fract() == 0.0));
    assert!(
        (mean(watch) - 2.0).abs() < 0.02,
        "uniform on 0..=4: {}",
        mean(watch)
    );
}

#[test]
fn signal_mode_has_real_task_structure_and_a_ceiling_well_above_half() {
    let ds = generate(TargetMode::Signal, 200_000, 3);
    let click = ds.floats("click").unwrap();
    let rates: HashMap<&str, f64> = TARGETS
        .iter()
        .map(|t| (*t, mean(ds.floats(t).unwrap())))
        .collect();
    assert!((0.2..0.4).contains(&rates["click"]), "{rates:?}");
    for t in ["like", "share", "follow"] {
        assert!(
            rates[t] < rates["click"] / 3.0,
            "{t} much rarer than click: {rates:?}"
        );
        assert!(rates[t] > 0.005, "{t} not vanishing: {rates:?}");
        let y = ds.floats(t).unwrap();
        assert!(
            y.iter().zip(click).all(|(&y, &c)| y <= c),
            "{t} only after a click"
        );
    }
    // watching_times correlates with click.
    let watch = ds.floats("watching_times").unwrap();
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for (&w, &c) in watch.iter().zip(click) {
        if c == 1.0 {
            with.push(w)
        } else {
            without.push(w)
        }
    }
    assert!(
        mean(&with) > 1.5 && mean(&without) < 0.2,
        "{} vs {}",
        mean(&with),
        mean(&without)
    );
    // The true probabilities rank the labels far better than chance (the learnable ceiling),
    // and they are calibrated.
    for t in TARGETS {
        let p = ds.floats(&format!("{t}_true_prob")).unwrap();
        let ceiling = auc(p, ds.floats(t).unwrap(), None).unwrap();
        assert!(ceiling > 0.75, "{t} ceiling AUC {ceiling}");
        assert!(
            (mean(p) - rates[t]).abs() < 0.01,
            "{t} calibrated: {} vs {}",
            mean(p),
            rates[t]
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_data_everywhere() {
    let a = generate(TargetMode::Signal, 5_000, 42);
    let b = generate(TargetMode::Signal, 5_000, 42);
    let c = generate(TargetMode::Signal, 5_000, 43);
    for col in ["user_id", "item_id", "gender"] {
        assert_eq!(a.ids(col), b.ids(col));
        assert_ne!(a.ids(col), c.ids(col));
    }
    assert_eq!(a.floats("click"), b.floats("click"));
    // Golden values: ChaCha8 streams and pure-Rust libm make these platform independent.
    let sum = |d: &Dataset, c: &str| d.ids(c).unwrap().iter().map(|&v| u64::from(v)).sum::<u64>();
    assert_eq!((sum(&a, "user_id"), sum(&a, "item_id")), GOLDEN_ID_SUMS);
    let clicks = a
        .floats("click")
        .unwrap()
        .iter()
        .filter(|&&c| c == 1.0)
        .count();
    assert_eq!(clicks, GOLDEN_CLICKS);
}

const GOLDEN_ID_SUMS: (u64, u64) = (165_686, 164_818);
const GOLDEN_CLICKS: usize = 1_692;

#[test]
fn splits_are_contiguous_and_round_trip_through_parquet() {
    let all = generate_data("tenrec-video", 1_000, &[1.0], 9)
        .unwrap()
        .remove(0);
    let parts = generate_data("tenrec-video", 1_000, &[0.8, 0.2], 9).unwrap();
    assert_eq!(parts[0].num_rows(), 800);
    assert_eq!(parts[1].num_rows(), 200);
    assert_eq!(
        parts[1].ids("user_id").unwrap(),
        &all.ids("user_id").unwrap()[800..]
    );
    // Default options: exactly Merlin's ten columns.
    assert_eq!(all.schema().len(), 10);

    let dir = tempfile::tempdir().unwrap();
    parts[1]
        .write_parquet(dir.path(), &WriteOptions::default())
        .unwrap();
    let back = Dataset::open(dir.path()).unwrap();
    assert_eq!(back.schema(), parts[1].schema());
    for col in ["user_id", "age"] {
        assert_eq!(back.ids(col), parts[1].ids(col));
    }
    for col in ["click", "watching_times"] {
        assert_eq!(back.floats(col), parts[1].floats(col));
    }
}

#[test]
fn unknown_dataset_names_suggest_the_closest() {
    let e = generate_data("tenrec_video", 10, &[1.0], 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("did you mean `tenrec-video`"), "{e}");
}
