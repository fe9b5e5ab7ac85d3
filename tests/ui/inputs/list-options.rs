use mtl::mtl_model;

// List inputs: a `max_len` beyond the schema's value_count.max, an unknown combiner, list options
// on a scalar column, a list with no maximum length.
mtl_model! {
    pub struct Model {
        schema: "../fixtures/lists.json",
        inputs: {
            tags: categorical(dim = 4, max_len = 9),
            recent_items: categorical(dim = 4, combiner = max),
            user_id: categorical(dim = 4, combiner = sum),
            item_id: categorical(dim = 4, max_len = 3),
            history: categorical(dim = 4),
        },
        body: mlp[8],
        tasks: { click: binary },
    }
}

fn main() {
    let _ = Model::spec();
}
