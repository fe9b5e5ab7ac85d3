use mtl::prelude::*;

mtl_model! {
    inputs: { x: continuous },
    body: mlp[8],
    tasks: { click: binary },
}

fn main() {}
