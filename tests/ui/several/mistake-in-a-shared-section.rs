// A mistake in a section shared by two models is reported once, and neither model adds
// follow-on errors where it is used.
use mtl::prelude::*;

mtl_model! {
    inputs: { x: continuous },
    towers: mlp[8](activation = swish),
    tasks: { click: binary },

    pub struct Small {
        body: mlp[8],
    }
    pub struct Wide {
        body: mlp[64],
    }
}

fn main() {
    let dev = Cpu::default();
    let (a, b) = (dev.build_module::<Small, f32>(), dev.build_module::<Wide, f32>());
    println!("{a} {b} {}", Small::INPUT_WIDTH + Wide::INPUT_WIDTH);
    let x: Tensor<(usize, Const<1>), f32, Cpu> = dev.zeros_like(&(2, Const));
    let _ = a.forward(x).click;
}
