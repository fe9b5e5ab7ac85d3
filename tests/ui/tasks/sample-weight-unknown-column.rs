use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mlp[8],
        tasks: { y: binary, z: binary(sample_weight = clicks) },
    }
}

fn main() {}
