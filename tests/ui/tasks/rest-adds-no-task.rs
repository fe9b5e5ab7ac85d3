use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/mixed.json",
        exclude: [rating, click],
        body: mlp[8],
        tasks: { .. },
    }
}

fn main() {
    let _ = Model::spec();
}
