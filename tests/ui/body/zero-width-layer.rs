use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mlp[32, 0],
        tasks: { y: binary },
    }
}

fn main() {}
