use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { user: categorical(cardinality = 10, dim = 4) },
        body: mlp[8],
        tasks: { click: binary(loss_weight = 2.0), watch: regression },
        loss_balancing: uncertainty,
    }
}

fn main() {
    let _ = Model::spec();
}
