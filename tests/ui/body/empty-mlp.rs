use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mlp[],
        tasks: { y: binary },
    }
}

fn main() {}
