//! Constants and eager calls: the two ops with no operand-derived type rule.

use crate::function::OpKind;
use crate::types::{Shape, TensorType};
use pipec_tensor::Tensor;
use pipec_tensor::kernels::KernelError;

/// The type of a constant: its dtype and its (fully known) shape.
pub(super) fn const_type(t: &Tensor) -> TensorType {
    TensorType::new(t.dtype(), Shape::known(t.shape()))
}

pub(super) fn eval(kind: &OpKind) -> Result<Vec<Tensor>, KernelError> {
    match kind {
        OpKind::Const(t) => Ok(vec![t.clone()]),
        OpKind::Eager(host) => Err(KernelError::InvalidArgument(format!(
            "eager function `{}` cannot be evaluated at compile time",
            host.name()
        ))),
        _ => unreachable!("not a special op"),
    }
}
