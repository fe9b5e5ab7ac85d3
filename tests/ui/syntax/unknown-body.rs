use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: transformer(heads = 4),
        tasks: { y: binary },
    }
}

fn main() {}
