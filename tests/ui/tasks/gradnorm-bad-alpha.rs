use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { user: categorical(cardinality = 10, dim = 4) },
        body: mlp[8],
        tasks: { click: binary, watch: regression(loss_weight = 0.5) },
        loss_balancing: gradnorm(alpha = -1, beta = 2),
    }
}

fn main() {
    let _ = Model::spec();
}
