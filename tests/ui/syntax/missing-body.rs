use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        tasks: { y: binary },
    }
}

fn main() {}
