use mtl::mtl_model;

// `table = ..`: an unknown input, a continuous one, a dim that disagrees, ids beyond the table,
// a chain of tables.
mtl_model! {
    pub struct Model {
        schema: "../fixtures/lists.json",
        inputs: {
            user_id: categorical(dim = 8),
            item_id: categorical(dim = 16),
            recent_items: categorical(dim = 8, table = item_id),
            tags: categorical(table = item),
        },
        body: mlp[8],
        tasks: { click: binary },
    }
}

mtl_model! {
    pub struct Other {
        schema: "../fixtures/lists.json",
        inputs: {
            user_id: categorical(dim = 8),
            recent_items: categorical(dim = 8, table = user_id),
        },
        body: mlp[8],
        tasks: { click: binary },
    }
}

mtl_model! {
    pub struct NoSchema {
        inputs: {
            price: continuous,
            item: categorical(cardinality = 50, dim = 8),
            recent: categorical(max_len = 5, table = item),
            similar: categorical(max_len = 5, table = recent),
            user: categorical(cardinality = 10, dim = 4, table = price),
        },
        body: mlp[8],
        tasks: { click: binary },
    }
}

fn main() {
    let _ = Model::spec();
    let _ = Other::spec();
    let _ = NoSchema::spec();
}
