use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mmoe(experts = 0, expert = mlp[16]),
        tasks: { y: binary, z: binary },
    }
}

fn main() {}
