//! Constant padding of an f32 tensor: BlazeFace's and the ResNet's zero channels on the
//! shortcut paths. Copies whole rows of the last axis.

use super::{f32_input, f32_output};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::array::{Pad, PadMode};

#[derive(Clone, Debug, PartialEq)]
pub struct ConstantPad {
    /// (before, after) for every axis.
    pub pads: Vec<(usize, usize)>,
    pub value: f32,
}

impl Eq for ConstantPad {}

impl ConstantPad {
    fn output_shape(&self, shape: &[usize]) -> Vec<usize> {
        shape.iter().zip(&self.pads).map(|(&n, &(a, b))| a + n + b).collect()
    }

    /// Copy `input` (of `shape`) into `out` (of the padded shape, already holding the value).
    pub(crate) fn run(&self, input: &[f32], shape: &[usize], out: &mut [f32]) {
        let padded = self.output_shape(shape);
        let rank = shape.len();
        if rank == 0 || input.is_empty() {
            return;
        }
        let row = shape[rank - 1];
        // Index of each input row over the leading axes, carried like an odometer.
        let mut at = vec![0usize; rank - 1];
        for src in input.chunks_exact(row) {
            let mut offset = 0;
            for axis in 0..rank - 1 {
                offset = offset * padded[axis] + at[axis] + self.pads[axis].0;
            }
            offset = offset * padded[rank - 1] + self.pads[rank - 1].0;
            out[offset..][..row].copy_from_slice(src);
            for axis in (0..rank - 1).rev() {
                at[axis] += 1;
                if at[axis] < shape[axis] {
                    break;
                }
                at[axis] = 0;
            }
        }
    }
}

impl Op for ConstantPad {
    fn name(&self) -> StaticName {
        "ConstantPad".into()
    }

    op_as_typed_op!();
}

impl EvalOp for ConstantPad {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape().to_vec();
        if shape.len() != self.pads.len() {
            bail!("ConstantPad: input rank {}, expected {}", shape.len(), self.pads.len());
        }
        let data = f32_input(&input)?;
        f32_output(&self.output_shape(&shape), |out| {
            if self.value != 0.0 {
                out.fill(self.value);
            }
            self.run(data, &shape, out)
        })
    }
}

impl TypedOp for ConstantPad {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let Some(shape) = inputs[0].shape.as_concrete() else { bail!("ConstantPad: symbolic input shape") };
        if shape.len() != self.pads.len() {
            bail!("ConstantPad: input rank {}, expected {}", shape.len(), self.pads.len());
        }
        Ok(tvec!(f32::fact(self.output_shape(shape))))
    }

    as_op!();
}

/// A [`ConstantPad`] for `node` if it pads an f32 tensor of concrete shape with a constant.
pub(super) fn replacement(model: &TypedModel, node: &TypedNode) -> TractResult<Option<ConstantPad>> {
    let Some(pad) = node.op_as::<Pad>() else { return Ok(None) };
    let PadMode::Constant(value) = &pad.mode else { return Ok(None) };
    let input = model.outlet_fact(node.inputs[0])?;
    let concrete = input.shape.as_concrete().is_some_and(|s| s.len() == pad.pads.len() && !s.is_empty());
    if input.datum_type != f32::datum_type() || value.datum_type() != f32::datum_type() || value.len() != 1 || !concrete
    {
        return Ok(None);
    }
    let value = f32_input(value)?[0];
    Ok(Some(ConstantPad { pads: pad.pads.clone(), value }))
}
