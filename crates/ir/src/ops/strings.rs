//! String ops (SPEC §13): the IR's side of `pipec_tensor::kernels::strings::StrOp`, which
//! declares each op, its attributes, its dtype rule and its kernel.

use super::BatchRule;
use crate::function::OpKind;
use crate::types::{Dim, Shape, TensorType};
use pipec_tensor::kernels::KernelError;
use pipec_tensor::kernels::strings::StrOp;
use pipec_tensor::{DType, Tensor};

pub(super) fn infer(op: &StrOp, inputs: &[&TensorType]) -> Result<TensorType, String> {
    let dtypes: Vec<DType> = inputs.iter().map(|t| t.dtype).collect();
    let dtype = op.result_dtype(&dtypes)?;
    let x = inputs
        .first()
        .ok_or_else(|| format!("`{}` takes at least one operand", op.name()))?;
    let shape = match op {
        StrOp::Split(_) => {
            if x.rank() != 0 {
                return Err(format!(
                    "`split` takes one string (rank 0), not {x}: the parts of several strings would be ragged; split before `batch`"
                ));
            }
            Shape(vec![Dim::Unknown])
        }
        StrOp::Join(_) => {
            if x.rank() == 0 {
                return Err(
                    "`join` joins the last axis of a tensor of strings, not one string".into(),
                );
            }
            Shape(x.shape.0[..x.rank() - 1].to_vec())
        }
        // Elementwise over every operand, with numpy broadcasting.
        _ => {
            let mut s = Shape::scalar();
            for t in inputs {
                s = Shape::broadcast(&s, &t.shape).ok_or_else(|| {
                    format!(
                        "`{}` operands of shapes {s} and {} do not broadcast",
                        op.name(),
                        t.shape
                    )
                })?;
            }
            s
        }
    };
    Ok(TensorType::new(dtype, shape))
}

pub(super) fn eval(op: &StrOp, inputs: &[Tensor]) -> Result<Tensor, KernelError> {
    op.eval(inputs)
}

pub(super) fn batch_rule(kind: &OpKind, op: &StrOp) -> BatchRule {
    match op {
        StrOp::Split(_) => BatchRule::Refuse("`split` of several strings would be ragged".into()),
        // The last axis stays the last axis under a leading batch axis.
        StrOp::Join(_) => BatchRule::Op(kind.clone()),
        _ => BatchRule::Elementwise,
    }
}
