//! Copying named parameter tensors between a dfdx network and the engine's flat vector.
//!
//! The network stays the parameters' home between `fit` calls (checkpoints, `evaluate`, the
//! user's own code read it); the engine copies them in when training starts and back when it
//! stops, matching tensors by their dfdx names.

use std::collections::HashMap;

use dfdx::prelude::*;

/// The name and dimensions of every trainable tensor of a network, in visiting order.
pub(crate) fn trainable_tensors<M: TensorCollection<f32, D>, D: Device<f32>>(
    network: &M,
) -> Result<Vec<(String, Vec<usize>)>, D::Err> {
    struct List(Vec<(String, Vec<usize>)>);
    impl<D: Device<f32>> TensorVisitor<f32, D> for List {
        type Viewer = (ViewTensorRef, ViewTensorName);
        type Err = D::Err;
        type E2 = f32;
        type D2 = D;
        fn visit<S: Shape>(
            &mut self,
            opts: TensorOptions<S, f32, D>,
            (t, name): (&Tensor<S, f32, D>, String),
        ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
            if opts.do_gradient_update {
                self.0.push((name, t.shape().concrete().into()));
            }
            Ok(None)
        }
    }
    let mut list = List(Vec::new());
    M::iter_tensors(&mut RecursiveWalker {
        m: (network, String::new()),
        f: &mut list,
    })?;
    Ok(list.0)
}

/// Copies every trainable tensor named in `index` (name → offset) into `flat`.
pub(crate) fn read_params<M: TensorCollection<f32, D>, D: Device<f32>>(
    network: &M,
    index: &HashMap<String, usize>,
    flat: &mut [f32],
) -> Result<(), D::Err> {
    struct Read<'a> {
        index: &'a HashMap<String, usize>,
        flat: &'a mut [f32],
    }
    impl<D: Device<f32>> TensorVisitor<f32, D> for Read<'_> {
        type Viewer = (ViewTensorRef, ViewTensorName);
        type Err = D::Err;
        type E2 = f32;
        type D2 = D;
        fn visit<S: Shape>(
            &mut self,
            opts: TensorOptions<S, f32, D>,
            (t, name): (&Tensor<S, f32, D>, String),
        ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
            if let (true, Some(&o)) = (opts.do_gradient_update, self.index.get(&name)) {
                let n = t.shape().num_elements();
                t.copy_into(&mut self.flat[o..o + n]);
            }
            Ok(None)
        }
    }
    M::iter_tensors(&mut RecursiveWalker {
        m: (network, String::new()),
        f: &mut Read { index, flat },
    })?;
    Ok(())
}

/// Copies `flat` back into every trainable tensor named in `index`.
pub(crate) fn write_params<M: TensorCollection<f32, D>, D: Device<f32>>(
    network: &mut M,
    index: &HashMap<String, usize>,
    flat: &[f32],
) -> Result<(), D::Err> {
    struct Write<'a> {
        index: &'a HashMap<String, usize>,
        flat: &'a [f32],
    }
    impl<D: Device<f32>> TensorVisitor<f32, D> for Write<'_> {
        type Viewer = (ViewTensorMut, ViewTensorName);
        type Err = D::Err;
        type E2 = f32;
        type D2 = D;
        fn visit<S: Shape>(
            &mut self,
            opts: TensorOptions<S, f32, D>,
            (t, name): (&mut Tensor<S, f32, D>, String),
        ) -> Result<Option<Tensor<S, f32, D>>, D::Err> {
            if let (true, Some(&o)) = (opts.do_gradient_update, self.index.get(&name)) {
                let n = t.shape().num_elements();
                t.copy_from(&self.flat[o..o + n]);
            }
            Ok(None)
        }
    }
    M::iter_tensors(&mut RecursiveWalker {
        m: (network, String::new()),
        f: &mut Write { index, flat },
    })?;
    Ok(())
}
