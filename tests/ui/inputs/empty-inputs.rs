use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: {},
        body: mlp[8],
        tasks: { y: regression },
    }
}

fn main() {}
