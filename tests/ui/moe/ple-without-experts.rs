use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: ple(levels = 2, task_experts = 0, shared_experts = 0, expert = mlp[8]),
        tasks: { y: binary, z: binary },
    }
}

fn main() {}
