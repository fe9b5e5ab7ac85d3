use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/mixed.json",
        inputs: { views: categorical(cardinality = 10) },
        body: mlp[8],
        tasks: { click: binary },
    }
}

fn main() {}
