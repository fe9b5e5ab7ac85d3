use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { price: continuous(dim = 3) },
        body: mlp[8],
        tasks: { y: binary },
    }
}

fn main() {}
