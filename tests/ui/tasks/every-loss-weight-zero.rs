use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mlp[8],
        tasks: { y: regression(loss_weight = 0.0), z: binary(loss_weight = 0) },
    }
}

fn main() {}
