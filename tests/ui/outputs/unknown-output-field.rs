use mtl::mtl_model;
use mtl::prelude::*;

mtl_model! {
    pub struct Model {
        inputs: { x: continuous },
        body: mlp[8],
        tasks: { click: binary, like: binary },
    }
}

fn main() {
    let dev = Cpu::default();
    let net = dev.build_module::<Model, f32>();
    let x: Tensor<(usize, Const<1>), f32, Cpu> = dev.zeros_like(&(3, Const::<1>));
    let out = net.forward(x);
    let _ = out.clikc;
}
