// One DSL mistake gives one error: the model's uses below type-check against the stand-in the
// macro emits for a model with errors.
use mtl::prelude::*;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mlp[8](activation = swish),
        tasks: { y: regression, z: binary },
    }
}

fn main() {
    let dev = Cpu::default();
    let net = dev.build_module::<Model, f32>();
    println!("{net}");
    let _ = Model::INPUT_WIDTH;
    let _ = Model::spec().tasks.len();
    let _trainer = Trainer::<Model>::new(Cpu::default(), TrainConfig::default());
    let x: Tensor<(usize, Const<1>), f32, Cpu> = dev.zeros_like(&(2, Const));
    let out = net.forward(x);
    let _ = (out.y, out.z);
}
