//! Models written in the DSL, built on the CPU: shapes, gradients, parameter counts, modes.

use mtl::prelude::*;

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

#[test]
fn small_model_spec_and_shapes() {
    assert_eq!(Small::INPUT_WIDTH, 9);
    let spec = Small::spec();
    assert_eq!(spec.features.iter().map(|f| f.name).collect::<Vec<_>>(), ["price", "user_id"]);
    assert_eq!(spec.tasks[0].output_name, "click/binary_output");
    let dev = Cpu::default();
    let net = dev.build_module::<Small, f32>();
    let x: Tensor<(usize, Const<9>), f32, _> = dev.sample_normal_like(&(7, Const::<9>));
    let out = net.forward(x);
    assert_eq!(out.click.shape().0, 7);
    assert_eq!(out.watch.shape().0, 7);
    println!("{net}");
}
