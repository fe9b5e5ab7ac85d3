// A model that does not even parse still gives one error, whatever uses it.
use mtl::prelude::*;

mtl_model! {
    pub struct Model {
        body mlp[8],
    }
}

fn main() {
    let dev = Cpu::default();
    let net = dev.build_module::<Model, f32>();
    println!("{net}");
    let _ = Model::INPUT_WIDTH;
    let _trainer = Trainer::<Model>::new(Cpu::default(), TrainConfig::default());
}
