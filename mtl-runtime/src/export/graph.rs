//! Building an ONNX graph node by node: fresh value names, constants and weights as
//! initializers, and the few node shapes the exporter needs (column slices, activations).

use std::collections::HashMap;

use super::proto::*;
use crate::spec::Activation;

/// A graph under construction.
#[derive(Default)]
pub(crate) struct Graph {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    /// Float weights, by initializer name, kept apart so the writer can place them inline or
    /// in the external data file.
    pub weights: Vec<(String, Vec<i64>, Vec<f32>)>,
    counter: usize,
    /// `(value, start, end)` → the sliced value, so a column range read twice is sliced once.
    slices: HashMap<(String, usize, usize), String>,
}

pub(crate) fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ATTR_INT,
        i,
    }
}

impl Graph {
    fn fresh(&mut self, op: &str) -> String {
        self.counter += 1;
        format!("{}_{}", op.to_ascii_lowercase(), self.counter)
    }

    /// Adds `op(inputs)` with `attrs`; returns its output, named `output` or a fresh name.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        output: Option<&str>,
    ) -> String {
        let out = output.map_or_else(|| self.fresh(op), str::to_string);
        let name = self.fresh(&format!("{op}_node"));
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name,
            op_type: op.into(),
            attribute: attrs,
        });
        out
    }

    /// A float initializer `name` of shape `dims`.
    pub fn weight(&mut self, name: &str, dims: Vec<i64>, values: Vec<f32>) -> String {
        self.weights.push((name.to_string(), dims, values));
        name.to_string()
    }

    /// A small int64 constant (shapes, indices).
    pub fn ints(&mut self, values: Vec<i64>) -> String {
        let name = self.fresh("const");
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: INT64,
            int64_data: values,
            name: name.clone(),
            ..Default::default()
        });
        name
    }

    /// A float scalar constant.
    pub fn scalar(&mut self, value: f32) -> String {
        let name = self.fresh("scalar");
        self.weights.push((name.clone(), Vec::new(), vec![value]));
        name
    }

    /// Columns `start..end` of the `[B, W]` value `x` (`x` itself when that is all of it).
    pub fn columns(&mut self, x: &str, width: usize, start: usize, end: usize) -> String {
        if start == 0 && end == width {
            return x.to_string();
        }
        let key = (x.to_string(), start, end);
        if let Some(s) = self.slices.get(&key) {
            return s.clone();
        }
        let starts = self.ints(vec![start as i64]);
        let ends = self.ints(vec![end as i64]);
        let axes = self.ints(vec![1]);
        let out = self.node("Slice", &[x, &starts, &ends, &axes], vec![], None);
        self.slices.insert(key, out.clone());
        out
    }

    /// `act(x)` elementwise (the exact erf GELU spelled out: ONNX has `Gelu` only from opset
    /// 20, which few runtimes implement).
    pub fn activation(&mut self, x: &str, act: Activation) -> String {
        match act {
            Activation::Linear => x.to_string(),
            Activation::Relu => self.node("Relu", &[x], vec![], None),
            Activation::Tanh => self.node("Tanh", &[x], vec![], None),
            Activation::Sigmoid => self.node("Sigmoid", &[x], vec![], None),
            // ONNX's default alpha and gamma are SELU's constants, as the engine uses them.
            Activation::Selu => self.node("Selu", &[x], vec![], None),
            Activation::Gelu => {
                let inv_sqrt2 = self.scalar(std::f32::consts::FRAC_1_SQRT_2);
                let scaled = self.node("Mul", &[x, &inv_sqrt2], vec![], None);
                let erf = self.node("Erf", &[&scaled], vec![], None);
                let one = self.scalar(1.0);
                let shifted = self.node("Add", &[&erf, &one], vec![], None);
                let half = self.scalar(0.5);
                let half_x = self.node("Mul", &[x, &half], vec![], None);
                self.node("Mul", &[&half_x, &shifted], vec![], None)
            }
        }
    }
}
