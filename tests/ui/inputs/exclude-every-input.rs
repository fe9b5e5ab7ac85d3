use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        schema: "../fixtures/tenrec.json",
        exclude: [user_id, item_id, video_category, gender, age],
        body: mlp[8],
    }
}

fn main() {}
