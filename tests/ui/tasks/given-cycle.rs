use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { user: categorical(cardinality = 10, dim = 4) },
        body: mlp[8],
        tasks: {
            click: binary(given = buy),
            cart: binary(given = click),
            buy: binary(given = cart),
            view: binary(given = view),
        },
    }
}

fn main() {
    let _ = Model::spec();
}
