use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/mixed.json",
        inputs: { user_id: categorical(cardinality = 50, dim = 8) },
        body: mlp[8],
        tasks: { click: binary },
    }
}

fn main() {}
