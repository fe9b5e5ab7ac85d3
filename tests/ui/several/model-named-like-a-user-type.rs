// A model that takes the name of a type of the user's: one error, and none from the generated
// code. (A user type that takes one of the model's other names, such as `VideoNetwork`, is
// no error at all: see `tests/dsl_models.rs`.)
use mtl::prelude::*;

pub struct Video;

mtl_model! {
    pub struct Video {
        inputs: { x: continuous },
        body: mlp[8],
        tasks: { click: binary },
    }
}

fn main() {}
