use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mmoe(experts = 4, expert = mlp[16], levels = 2),
        tasks: { y: binary, z: binary },
    }
}

fn main() {}

mod cgc {
    use mtl::mtl_model;

    mtl_model! {
        pub struct Model {
            inputs: { x: continuous },
            body: cgc(task_experts = 1, expert = mlp[8], gate_input = level, shared_gate = true),
            tasks: { y: binary, z: binary },
        }
    }
}
