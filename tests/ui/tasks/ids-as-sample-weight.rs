// A categorical column as a sample weight is ambiguous (ids, not amounts): it takes
// `as_number(..)`; `as_number` on a column of numbers is a mistake too.
use mtl::prelude::*;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/tenrec.json",
        body: mlp[8],
        tasks: {
            click: binary(sample_weight = age),
            like: binary(sample_weight = as_number(watching_times)),
            follow: binary(sample_weight = [click, as_number(gender)]),
        },
    }
}

fn main() {}
