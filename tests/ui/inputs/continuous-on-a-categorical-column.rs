use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/mixed.json",
        inputs: { user_id: continuous, price: continuous(width = 3) },
        body: mlp[8],
        tasks: { click: binary },
    }
}

fn main() {}
