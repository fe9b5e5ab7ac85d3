use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/tenrec.json",
        exclude: [likes],
        body: mlp[8],
    }
}

fn main() {}
