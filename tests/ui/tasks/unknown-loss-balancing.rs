use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { user: categorical(cardinality = 10, dim = 4) },
        body: mlp[8],
        tasks: { click: binary, watch: regression },
        loss_balancing: gradnom,
    }
}

fn main() {
    // The model is still usable: the DSL error is the only error.
    let _ = Model::spec();
}
