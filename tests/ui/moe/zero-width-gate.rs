use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mmoe(experts = 4, expert = mlp[16], gate = mlp[0]),
        tasks: { y: binary, z: binary },
    }
}

fn main() {}
