use mtl::mtl_model;

// Without a schema, a list input needs `max_len`.
mtl_model! {
    pub struct Model {
        inputs: {
            user_id: categorical(cardinality = 100, dim = 4),
            tags: categorical(cardinality = 30, dim = 4, combiner = mean),
        },
        body: mlp[8],
        tasks: { click: binary },
    }
}

fn main() {
    let _ = Model::spec();
}
