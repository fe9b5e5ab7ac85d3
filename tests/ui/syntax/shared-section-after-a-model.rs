use mtl::prelude::*;

mtl_model! {
    pub struct Video {
        inputs: { x: continuous },
        body: mlp[8],
    }
    tasks: { click: binary },
}

fn main() {
    let net = Cpu::default().build_module::<Video, f32>();
    println!("{net}");
}
