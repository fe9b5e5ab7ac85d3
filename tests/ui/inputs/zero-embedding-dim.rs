use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { user_id: categorical(cardinality = 10, dim = 0) },
        body: mlp[8],
        tasks: { y: binary },
    }
}

fn main() {}
