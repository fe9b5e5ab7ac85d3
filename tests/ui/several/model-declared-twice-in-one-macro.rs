// Two models of one name in one `mtl_model!`: one error, on the second name.
use mtl::prelude::*;

mtl_model! {
    inputs: { x: continuous },
    tasks: { click: binary },

    pub struct Video {
        body: mlp[8],
    }
    pub struct Video {
        body: mlp[16],
    }
}

fn main() {
    let net = Cpu::default().build_module::<Video, f32>();
    println!("{net}");
}
