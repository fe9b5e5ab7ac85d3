use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures",
        body: mlp[8],
    }
}

fn main() {}
