use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/mixed.json",
        body: mlp[8],
        tasks: { rating: multiclass(classes = 3), click: binary },
    }
}

fn main() {}
