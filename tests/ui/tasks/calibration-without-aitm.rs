use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { user: categorical(cardinality = 10, dim = 4) },
        body: mlp[8],
        towers: mlp[4],
        tasks: { click: binary, buy: binary(given = click, calibration = 0.5) },
    }
}

fn main() {
    let _ = Model::spec();
}
