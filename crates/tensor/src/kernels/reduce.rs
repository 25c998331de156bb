//! Reductions over axes.

use super::KernelError;
use crate::Tensor;
use crate::ops::ReduceOp;

/// Reduces `x` over `axes` (SPEC §6); `argmax`/`argmin` take exactly one axis.
pub fn reduce(op: ReduceOp, x: &Tensor, axes: &[usize], keepdims: bool) -> Result<Tensor, KernelError> {
    let _ = (op, x, axes, keepdims);
    Err(KernelError::InvalidArgument("reduce is not implemented yet".into()))
}
