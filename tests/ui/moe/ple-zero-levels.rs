use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: ple(levels = 0, task_experts = 2, shared_experts = 1, expert = mlp[8]),
        tasks: { y: binary, z: binary },
    }
}

fn main() {}
