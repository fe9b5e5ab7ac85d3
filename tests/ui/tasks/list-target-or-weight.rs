use mtl::mtl_model;

// A list column cannot be a target or a sample weight: both hold one value per row.
mtl_model! {
    pub struct Model {
        schema: "../fixtures/lists.json",
        inputs: { user_id: categorical(dim = 4) },
        body: mlp[8],
        tasks: {
            clicks: binary,
            click: binary(sample_weight = as_number(tags)),
        },
    }
}

fn main() {
    let _ = Model::spec();
}
