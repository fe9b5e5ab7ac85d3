//! Data-parallel training over MPI (the `mpi` feature): two processes with batch B/2 each train
//! the same model as one process with batch B, report the same exact metrics, and rank 0's
//! checkpoint loads in a single process.
//!
//! `cargo test --features mpi --test distributed` runs the one-process reference here and
//! launches the two ranks with `mpirun --oversubscribe -np 2` on this test binary (its `worker`
//! test, which does nothing unless `MTL_MPI_WORKER` is set). Without `mpirun` on the PATH the
//! test says it is skipped and passes.
#![cfg(feature = "mpi")]

use std::path::Path;
use std::process::Command;

use mtl::data::synthetic::generate_data;
use mtl::data::Dataset;
use mtl::distributed::Cluster;
use mtl::prelude::*;

mtl_model! {
    pub struct Model {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        inputs: { user_id: categorical(dim = 8), item_id: categorical(dim = 8), age: categorical(dim = 4) },
        body: mlp[16],
        towers: mlp[8],
        tasks: { click: binary(metrics = [auc]), like: binary(metrics = [auc]) },
    }
}

/// The global batch.
const BATCH: usize = 512;

fn data() -> (Dataset, Dataset) {
    let mut splits = generate_data("tenrec-video", 8 * BATCH + 1_000, &[0.8, 0.2], 4).unwrap();
    let valid = splits.pop().unwrap();
    let train = splits.pop().unwrap();
    // A whole number of global batches.
    let train = train.slice(0..(train.num_rows() / BATCH) * BATCH);
    (train, valid)
}

fn config(batch: usize) -> TrainConfig {
    TrainConfig {
        // In order: global batch k is the ranks' local batches k side by side.
        shuffle: false,
        ..TrainConfig::default()
            .with_batch_size(batch)
            .with_epochs(3)
            .with_seed(6)
            .with_threads(1)
            .with_progress(false)
    }
}

/// One rank of the job: trains on its share with batch B/2, evaluates on the gathered
/// validation shares, writes `rank<r>.json` (predictions on the whole validation data and the
/// exact AUCs), and rank 0 writes the checkpoint.
#[test]
fn worker() {
    let Ok(out) = std::env::var("MTL_MPI_WORKER") else {
        return;
    };
    let out = Path::new(&out);
    let cluster = Cluster::init().unwrap();
    let (train, valid) = data();
    let per_rank = BATCH / cluster.size();
    let share = cluster.shard(&train, per_rank).unwrap();
    let valid_share = cluster.shard(&valid, 100).unwrap();
    let valid_all = cluster.gather(&valid_share).unwrap();
    // What cannot train data-parallel yet says so before any collective.
    let mut l2 =
        Trainer::<Model>::new(Cpu::default(), config(per_rank).with_embeddings_l2(1e-4)).unwrap();
    let err = l2.distribute(cluster.clone()).unwrap_err().to_string();
    assert!(err.contains("embedding L2"), "{err}");
    let mut trainer = Trainer::<Model>::new(Cpu::default(), config(per_rank)).unwrap();
    trainer.distribute(cluster.clone()).unwrap();
    let stream =
        mtl::data::StreamingDataset::open(std::env::var("MTL_MPI_PARTS").unwrap()).unwrap();
    let err = trainer
        .fit_streaming(&stream, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("in-memory"), "{err}");
    let history = trainer.fit(&share, Some(&valid_all)).unwrap();
    let report = trainer.evaluate(&valid_all).unwrap();
    let predictions = trainer.predict(&valid).unwrap();
    // A dataset written in parts: each rank reads its own.
    let parts = std::env::var("MTL_MPI_PARTS").unwrap();
    let part_rows = cluster
        .open_share(&parts, &Default::default())
        .unwrap()
        .num_rows();
    let result = serde_json::json!({
        "rank": cluster.rank(),
        "part_rows": part_rows,
        "rows": share.num_rows(),
        "click_auc": report.get("click/binary_output/auc"),
        "like_auc": report.get("like/binary_output/auc"),
        "loss": history.epochs.last().unwrap().train.get("loss"),
        "predictions": predictions,
    });
    std::fs::write(
        out.join(format!("rank{}.json", cluster.rank())),
        result.to_string(),
    )
    .unwrap();
    if cluster.is_root() {
        trainer.save_checkpoint(out.join("model.ckpt")).unwrap();
    }
}

/// `mpirun`, if there is one on the PATH.
fn mpirun() -> Option<String> {
    let ok = Command::new("mpirun").arg("--version").output().ok()?;
    ok.status.success().then(|| "mpirun".to_string())
}

#[test]
fn two_ranks_train_like_one_process_with_the_whole_batch() {
    if std::env::var("MTL_MPI_WORKER").is_ok() {
        return; // inside a worker
    }
    let Some(mpirun) = mpirun() else {
        eprintln!(
            "SKIPPED: mpirun is not on the PATH; install Open MPI (Debian: apt-get install \
             openmpi-bin libopenmpi-dev) to run the data-parallel equivalence test"
        );
        return;
    };
    // The reference: one process, batch B.
    let (train, valid) = data();
    let mut one = Trainer::<Model>::new(Cpu::default(), config(BATCH)).unwrap();
    let history = one.fit(&train, Some(&valid)).unwrap();
    let report = one.evaluate(&valid).unwrap();
    let expected = one.predict(&valid).unwrap();

    // Two ranks, batch B/2 each, on this test binary; the training rows also written in 3
    // parts for `open_share`.
    let dir = tempfile::tempdir().unwrap();
    let parts = dir.path().join("parts");
    train
        .write_parquet(
            &parts,
            &mtl::data::WriteOptions {
                rows_per_file: Some(train.num_rows() / 3 + 1),
                ..Default::default()
            },
        )
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let status = Command::new(&mpirun)
        .args(["--oversubscribe", "-np", "2"])
        .arg(&exe)
        .args(["--exact", "worker", "--nocapture", "--test-threads", "1"])
        .env("MTL_MPI_WORKER", dir.path())
        .env("MTL_MPI_PARTS", &parts)
        // Open MPI refuses to run as root without these (CI containers); others ignore them.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .status()
        .unwrap();
    assert!(status.success(), "mpirun failed: {status}");
    let read = |r: usize| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.path().join(format!("rank{r}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let (rank0, rank1) = (read(0), read(1));
    assert_eq!(
        rank0["rows"].as_u64().unwrap() + rank1["rows"].as_u64().unwrap(),
        train.num_rows() as u64
    );
    let predictions = |v: &serde_json::Value| -> Vec<Vec<f32>> {
        serde_json::from_value(v["predictions"].clone()).unwrap()
    };
    // Parts {0, 2} and {1}: every row read by exactly one rank.
    assert_eq!(
        rank0["part_rows"].as_u64().unwrap() + rank1["part_rows"].as_u64().unwrap(),
        train.num_rows() as u64
    );
    assert!(rank0["part_rows"].as_u64().unwrap() > rank1["part_rows"].as_u64().unwrap());
    // Both replicas hold the same weights, bit for bit.
    assert_eq!(predictions(&rank0), predictions(&rank1));
    // And the same as one process, up to the order of float sums.
    let mut worst = 0f32;
    for (a, b) in predictions(&rank0).iter().zip(&expected) {
        for (x, y) in a.iter().zip(b) {
            worst = worst.max((x - y).abs());
        }
    }
    eprintln!("max |2 ranks - 1 process| over the predictions: {worst:.2e}");
    assert!(worst < 1e-4, "2 ranks vs 1 process: {worst}");
    // Exact metrics over every validation row, and the training loss of the global batch.
    for (key, name) in [
        ("click_auc", "click/binary_output/auc"),
        ("like_auc", "like/binary_output/auc"),
    ] {
        let (two, one) = (rank0[key].as_f64().unwrap(), report.get(name).unwrap());
        assert!((two - one).abs() < 1e-4, "{name}: {two} vs {one}");
    }
    let loss = history.epochs.last().unwrap().train.get("loss").unwrap();
    assert!((rank0["loss"].as_f64().unwrap() - loss).abs() < 1e-4);
    // Rank 0's checkpoint loads in one process and scores as the ranks do.
    let mut loaded = Trainer::<Model>::new(Cpu::default(), config(BATCH)).unwrap();
    loaded
        .load_checkpoint(dir.path().join("model.ckpt"))
        .unwrap();
    assert_eq!(loaded.predict(&valid).unwrap(), predictions(&rank0));
}
