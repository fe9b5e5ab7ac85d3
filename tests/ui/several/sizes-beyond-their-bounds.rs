use mtl::mtl_model;

mtl_model! {
    pub struct Model {
        inputs: {
            x: continuous(width = 18446744073709551615),
            u: categorical(cardinality = 8589934592, dim = 4),
        },
        body: ple(levels = 17, task_experts = 9223372036854775808, shared_experts = 1,
                  expert = mlp[18446744073709551615]),
        tasks: { y: multiclass(classes = 4294967296) },
    }
}

mtl_model! {
    pub struct Wide {
        inputs: { x: continuous },
        body: mmoe(experts = 4294967296, expert = mlp[16]),
        tasks: { y: regression },
    }
}

fn main() {}
