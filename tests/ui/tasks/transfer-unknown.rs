use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { user: categorical(cardinality = 10, dim = 4) },
        body: mlp[8],
        towers: mlp[4],
        // `aitm` misspelt, and a transfer from a task that is not binary.
        tasks: {
            click: binary,
            buy: binary(given = click, transfer = atim, calibration = 0.5),
            dwell: regression,
            share: binary(given = dwell, transfer = aitm),
        },
    }
}

fn main() {
    let _ = Model::spec();
}
