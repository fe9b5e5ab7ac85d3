//! ONNX export verified end to end: each notebook body (shared-bottom, MMoE, CGC, PLE) and a
//! model with every task kind and activation is trained briefly, exported, loaded with tract
//! (a pure-Rust ONNX runtime) and run; every task's scores must match the `Predictor`'s on
//! the same rows. Also: dynamic batch, output names, external data, refusals.

use std::path::Path;

use mtl::data::synthetic::generate_data;
use mtl::data::{ColumnValues, Dataset};
use mtl::export::{ExternalData, OnnxExport, OnnxOptions};
use mtl::prelude::*;
use mtl::{ColumnSchema, DType, Schema};
use tract_onnx::prelude::*;

const TENREC: &str = "mtl-runtime/datasets/tenrec_video/schema.pbtxt";

mtl_model! {
    pub struct SharedBottom {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: mlp[32, 16],
    }

    pub struct Mmoe {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: mmoe(experts = 4, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }

    pub struct Cgc {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: cgc(task_experts = 2, shared_experts = 3, expert = mlp[16], gate = mlp[16]),
        towers: mlp[16],
    }

    pub struct Ple {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: ple(levels = 2, task_experts = 2, shared_experts = 1, expert = mlp[16, 8], gate = mlp[16]),
        towers: mlp[16],
    }

    /// ESMM-style chains: like given click, share given like (a chain of three).
    pub struct Chained {
        schema: "mtl-runtime/datasets/tenrec_video/schema.pbtxt",
        body: mlp[16],
        tasks: { click: binary, like: binary(given = click), share: binary(given = like) },
    }
}

mtl_model! {
    schema: "tests/fixtures/tenrec-recent/schema.pbtxt",
    body: mlp[16],
    tasks: { click: binary, like: binary },

    /// A list input pooled by each combiner (mean is the schema's default).
    pub struct ListMean {
        inputs: { user_id: categorical(dim = 8), recent_categories: categorical(dim = 4) },
    }
    pub struct ListSum {
        inputs: { user_id: categorical(dim = 8), recent_categories: categorical(dim = 4, combiner = sum, max_len = 6) },
    }
    pub struct ListSqrtn {
        inputs: { user_id: categorical(dim = 8), recent_categories: categorical(dim = 4, combiner = sqrtn) },
    }
}

mtl_model! {
    /// Every task kind, a continuous input, gelu / tanh / selu / sigmoid layers, a tempered
    /// gate that reads the input directly, and the paper's PLE wiring.
    pub struct Mixed {
        inputs: {
            item: categorical(cardinality = 12, dim = 3),
            price: continuous,
            user: categorical(cardinality = 10, dim = 4),
        },
        body: ple(levels = 2, task_experts = 1, shared_experts = 2, expert = mlp[6](activation = gelu),
                  gate_input = level, temperature = 2.0),
        tasks: {
            click: binary(tower = mlp[5](activation = tanh)),
            kind: multiclass(classes = 3, tower = mlp[4](activation = selu)),
            watch: regression(tower = mlp[4](activation = sigmoid)),
        },
    }

    /// Batch normalisation is not exported.
    pub struct Normed {
        inputs: { user: categorical(cardinality = 10, dim = 4) },
        body: mlp[8](batch_norm),
        tasks: { click: binary },
    }
}

/// Runs the exported model on `rows` rows of `data` with tract: each output, row-major.
fn run_tract(export: &OnnxExport, data: &Dataset, rows: usize) -> Vec<(String, Vec<f32>)> {
    let model = tract_onnx::onnx()
        .model_for_path(&export.model)
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let mut inputs: TVec<TValue> = TVec::new();
    for input in &export.inputs {
        let tensor: tract_onnx::prelude::Tensor = if let [None, Some(len)] = input.shape[..] {
            // A list: each row's ids, then -1.
            let mut ids = Vec::with_capacity(rows * len);
            for r in 0..rows {
                let list = data.id_list(&input.name, r).unwrap();
                ids.extend((0..len).map(|k| list.get(k).map_or(-1, |&i| i64::from(i))));
            }
            tract_ndarray::Array2::from_shape_vec((rows, len), ids)
                .unwrap()
                .into()
        } else if input.dtype == "int64" {
            let ids: Vec<i64> = data.ids(&input.name).unwrap()[..rows]
                .iter()
                .map(|&i| i64::from(i))
                .collect();
            tract_ndarray::Array1::from_vec(ids).into()
        } else {
            tract_ndarray::Array1::from_vec(data.floats(&input.name).unwrap()[..rows].to_vec())
                .into()
        };
        inputs.push(tensor.into());
    }
    let outputs = model.run(inputs).unwrap();
    export
        .outputs
        .iter()
        .zip(outputs.iter())
        .map(|(o, t)| {
            let view = t.to_plain_array_view::<f32>().unwrap();
            assert_eq!(view.shape(), [rows, o.shape[1].unwrap()], "{}", o.name);
            (o.name.clone(), view.iter().copied().collect())
        })
        .collect()
}

/// The Merlin output names in task order, then the joint outputs of chained tasks.
fn predictor_outputs<M: MtlModel>() -> Vec<String> {
    let mut names: Vec<String> = M::SPEC
        .tasks
        .iter()
        .map(|t| t.output_name.to_string())
        .collect();
    names.extend(
        M::SPEC
            .chained_tasks()
            .into_iter()
            .map(|t| format!("{}/joint_output", M::SPEC.tasks[t].name)),
    );
    names
}

/// Trains `M` one epoch, exports it and compares tract's scores with the predictor's on 300
/// and on 7 rows (the batch dimension is dynamic); returns the largest difference.
fn check_model<M>(train: &Dataset, valid: &Dataset, dir: &Path) -> f32
where
    M: MtlModel + BuildOnDevice<Cpu, f32>,
    M::Built: TaskNetwork<f32, Cpu> + Clone,
{
    let config = TrainConfig::default()
        .with_epochs(1)
        .with_batch_size(256)
        .with_seed(5);
    let mut trainer = Trainer::<M>::new(Cpu::default(), config).unwrap();
    trainer.fit(train, None).unwrap();
    let predictor = Predictor::from_trainer(&trainer).unwrap();
    let path = dir.join(format!("{}.onnx", M::SPEC.name));
    let export = predictor
        .export_onnx(&path, &OnnxOptions::default())
        .unwrap();
    assert!(export.external_data.is_none());
    let names: Vec<&str> = export.outputs.iter().map(|o| o.name.as_str()).collect();
    let expected = predictor_outputs::<M>();
    assert_eq!(
        names, expected,
        "outputs are the Merlin output names, in task order"
    );
    let scores = predictor.predict(valid).unwrap();
    let mut worst = 0f32;
    for rows in [300, 7] {
        let outputs = run_tract(&export, valid, rows);
        assert_eq!(
            outputs.len(),
            scores.len(),
            "one ONNX output per predicted column"
        );
        for ((name, onnx), mtl) in outputs.iter().zip(&scores) {
            let width = onnx.len() / rows;
            let diff = onnx
                .iter()
                .zip(&mtl[..rows * width])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-5, "{}: {name} differs by {diff}", M::SPEC.name);
            worst = worst.max(diff);
        }
    }
    println!(
        "{}: {} nodes, max |onnx - mtl| = {worst:.2e}",
        M::SPEC.name,
        export.nodes
    );
    worst
}

#[test]
fn notebook_bodies_export_and_score_like_the_predictor() {
    let splits = generate_data("tenrec-video", 4_000, &[0.9, 0.1], 21).unwrap();
    let dir = tempfile::tempdir().unwrap();
    check_model::<SharedBottom>(&splits[0], &splits[1], dir.path());
    check_model::<Mmoe>(&splits[0], &splits[1], dir.path());
    check_model::<Cgc>(&splits[0], &splits[1], dir.path());
    check_model::<Ple>(&splits[0], &splits[1], dir.path());
    // Joint outputs: `like/joint_output` (two factors) and `share/joint_output` (three).
    check_model::<Chained>(&splits[0], &splits[1], dir.path());
    // The schema file the models were compiled against is the embedded one.
    assert!(Path::new(TENREC).exists());
}

#[test]
fn pooled_list_inputs_export() {
    let options = mtl::data::synthetic::SyntheticOptions {
        recent_categories: true,
        ..Default::default()
    };
    let splits =
        mtl::data::synthetic::generate_data_with("tenrec-video", 4_000, &[0.9, 0.1], 8, &options)
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    check_model::<ListMean>(&splits[0], &splits[1], dir.path());
    check_model::<ListSum>(&splits[0], &splits[1], dir.path());
    check_model::<ListSqrtn>(&splits[0], &splits[1], dir.path());
}

/// `n` rows for `Mixed`: ids, a price and the three targets.
fn mixed_data(n: usize) -> Dataset {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut user, mut item, mut price, mut click, mut kind, mut watch) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let (u, i) = ((next() % 10) as u32, (next() % 12) as u32);
        let p = (next() % 1000) as f32 / 250.0 - 2.0;
        user.push(u);
        item.push(i);
        price.push(p);
        click.push(f32::from(u < 4 || i % 4 == 0));
        kind.push(((u + i) % 3) as f32);
        watch.push(p.abs() + u as f32 * 0.1);
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

#[test]
fn every_task_kind_and_activation_exports() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed_data(2_000);
    check_model::<Mixed>(&data, &data, dir.path());
}

#[test]
fn external_data_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed_data(500);
    let trainer =
        Trainer::<Mixed>::new(Cpu::default(), TrainConfig::default().with_seed(2)).unwrap();
    let predictor = Predictor::from_trainer(&trainer).unwrap();
    let path = dir.path().join("mixed.onnx");
    let options = OnnxOptions {
        external_data: ExternalData::Always,
    };
    let export = predictor.export_onnx(&path, &options).unwrap();
    let data_file = export.external_data.clone().unwrap();
    assert_eq!(data_file, dir.path().join("mixed.onnx.data"));
    // The weights live in the data file: the model file is smaller than an inline export by
    // about the data's size (64-byte padding aside).
    let inline = dir.path().join("inline").join("mixed.onnx");
    std::fs::create_dir(inline.parent().unwrap()).unwrap();
    predictor
        .export_onnx(&inline, &OnnxOptions::default())
        .unwrap();
    let len = |p: &Path| std::fs::metadata(p).unwrap().len();
    let (model_len, data_len, inline_len) = (len(&path), len(&data_file), len(&inline));
    assert!(data_len as usize >= 4 * (12 * 3 + 10 * 4), "{data_len}");
    assert!(
        model_len + data_len / 2 < inline_len && inline_len <= model_len + data_len,
        "{model_len} + {data_len} vs {inline_len}"
    );
    let scores = predictor.predict(&data).unwrap();
    let outputs = run_tract(&export, &data, 50);
    assert_eq!(outputs.len(), scores.len());
    for ((name, onnx), mtl) in outputs.iter().zip(&scores) {
        let diff = onnx
            .iter()
            .zip(mtl)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-5, "{name}: {diff}");
    }
    // Nothing left behind but the two files.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["inline", "mixed.onnx", "mixed.onnx.data"]);

    // Batch normalisation: a clear refusal, no file.
    let trainer = Trainer::<Normed>::new(Cpu::default(), TrainConfig::default()).unwrap();
    let err = Predictor::from_trainer(&trainer)
        .unwrap()
        .export_onnx(dir.path().join("normed.onnx"), &OnnxOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Normed") && err.contains("batch normalisation"),
        "{err}"
    );
    assert!(!dir.path().join("normed.onnx").exists());
}
