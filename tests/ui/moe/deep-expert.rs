use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mmoe(experts = 2, expert = mlp[16, 8]),
        tasks: { y: binary, z: binary },
    }
}

fn main() {}
