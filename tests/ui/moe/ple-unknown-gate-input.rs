use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: ple(levels = 2, expert = mlp[8], gate_input = previous),
        tasks: { y: binary, z: binary },
    }
}

fn main() {}
