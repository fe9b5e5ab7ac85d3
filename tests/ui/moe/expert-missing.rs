use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: moe(experts = 4),
        tasks: { y: binary, z: binary },
    }
}

fn main() {}
