use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/broken.json",
        body: mlp[8],
    }
}

fn main() {}
