use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/tenrec.json",
        inputs: { user_id: categorical, country: categorical },
        body: mlp[8],
    }
}

fn main() {}
