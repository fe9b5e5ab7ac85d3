use mtl::prelude::*;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mlp[8],
        towers: identity,
        tasks: { y: binary },
    }
}

fn main() {}
