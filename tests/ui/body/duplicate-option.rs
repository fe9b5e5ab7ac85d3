use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mlp[8](dropout = 0.1, dropout = 0.2),
        tasks: { y: binary },
    }
}

fn main() {}
