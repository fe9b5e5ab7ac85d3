use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: cgc(task_experts = 1, shared_experts = 1, expert = mlp[8]),
        tasks: { shared: binary, z: binary },
    }
}

fn main() {}
