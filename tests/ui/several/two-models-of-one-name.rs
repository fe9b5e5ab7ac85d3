// Two models of one name: one error, on the second name, and none from the generated code or
// from the uses below.
use mtl::prelude::*;

mtl_model! {
    pub struct Video {
        inputs: { x: continuous },
        body: mlp[8],
        tasks: { click: binary },
    }
}

mtl_model! {
    pub struct Video {
        inputs: { x: continuous(width = 2) },
        body: mlp[4],
        tasks: { like: binary },
    }
}

fn main() {
    let net = Cpu::default().build_module::<Video, f32>();
    println!("{net} {}", Video::INPUT_WIDTH);
}
