//! [`Fanout`]: one tensor handed to several consumers without losing its gradient tape.
//!
//! A dfdx tensor owns its tape; using it twice means splitting the tape off and giving it to
//! exactly one of the uses (the others get fresh, empty tapes that merge back when the task
//! losses are summed). Giving the tape to none of them silently drops every gradient recorded
//! before — the reason this lives in one small type instead of in generated code.

use dfdx::prelude::*;

/// A tensor shared by several consumers: the first [`Fanout::next`] carries the recorded tape,
/// later ones a fresh tape of the same type. For inference tapes (`NoneTape`) it is a clone.
///
/// Every fanout made during training must be consumed at least once; the macro's generated code
/// only creates fanouts for values that have a consumer.
#[derive(Debug)]
pub struct Fanout<S: Shape, E: Dtype, D: Storage<E>, T> {
    value: Tensor<S, E, D>,
    tape: Option<T>,
}

impl<S: Shape, E: Dtype, D: Storage<E>, T: Tape<E, D>> Fanout<S, E, D, T> {
    pub fn new(tensor: Tensor<S, E, D, T>) -> Self {
        let (value, tape) = tensor.split_tape();
        Fanout {
            value,
            tape: Some(tape),
        }
    }

    /// The tensor for the next consumer.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Tensor<S, E, D, T> {
        match self.tape.take() {
            Some(tape) => self.value.clone().put_tape(tape),
            None => self.value.retaped::<T>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_consumer_contributes_to_the_gradient() {
        let dev = Cpu::default();
        let w: Tensor<Rank1<3>, f32, _> = dev.tensor([1.0, 2.0, 3.0]);
        let h = w.leaky_trace() * 2.0;
        let mut fan = Fanout::new(h);
        // loss = Σ(2w) + Σ(2w)·3 = 8·Σw: dL/dw = 8 for each element.
        let a = fan.next().sum();
        let b = fan.next().sum() * 3.0;
        let grads = (a + b).backward();
        assert_eq!(grads.get(&w).array(), [8.0, 8.0, 8.0]);
    }
}
