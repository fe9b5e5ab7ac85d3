use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "/etc/schema.json",
        body: mlp[8],
    }
}

fn main() {}
