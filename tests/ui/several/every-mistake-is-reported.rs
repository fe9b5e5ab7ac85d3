use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous(width = 0), u: categorical },
        body: mlp[8, 0](activation = swish),
        tasks: {
            y: regression(class_weights = (1.0, 2.0)),
            z: binary(loss_weight = -1.0, metrics = [rmse]),
        },
    }
}

fn main() {}
