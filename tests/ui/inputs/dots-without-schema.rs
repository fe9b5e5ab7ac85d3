use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous, .. },
        body: mlp[8],
        tasks: { y: regression, .. },
    }
}

fn main() {}
