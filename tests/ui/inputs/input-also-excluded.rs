use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/mixed.json",
        inputs: { price: continuous },
        exclude: [price],
        body: mlp[8],
        tasks: { click: binary },
    }
}

fn main() {}
