use mtl::mtl_model;
use mtl::prelude::*;

/// A block that keeps its input width (4), while the model declares 8.
#[derive(Debug, Clone)]
pub struct Keep<E: Dtype, D: Device<E>> {
    _types: std::marker::PhantomData<(E, D)>,
}

impl<E: Dtype, D: Device<E>> TensorCollection<E, D> for Keep<E, D> {
    type To<E2: Dtype, D2: Device<E2>> = Keep<E2, D2>;
    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(visitor: &mut V) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields((), |()| Keep { _types: std::marker::PhantomData })
    }
}

impl<E: Dtype, D: Device<E>, T: Tape<E, D>> Module<Tensor<(usize, Const<4>), E, D, T>> for Keep<E, D> {
    type Output = Tensor<(usize, Const<4>), E, D, T>;
    type Error = D::Err;
    fn try_forward(&self, x: Tensor<(usize, Const<4>), E, D, T>) -> Result<Self::Output, D::Err> {
        Ok(x)
    }
}

mtl_model! {
    pub struct Model {
        inputs: { x: continuous(width = 4) },
        body: custom(Keep, width = 8),
        tasks: { y: binary },
    }
}

fn main() {}
