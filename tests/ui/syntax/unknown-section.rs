use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        layers: mlp[8],
        body: mlp[8],
        tasks: { y: binary },
    }
}

fn main() {}
