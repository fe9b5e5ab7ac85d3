use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/tenrec.json",
        body: mlp[8],
        tasks: { click: binary, watching_times: binary },
    }
}

fn main() {}
