use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous, x: continuous(width = 2) },
        body: mlp[8],
        tasks: { y: binary },
    }
}

fn main() {}
