//! `matmul` and `one_hot`.

use super::KernelError;
use crate::{DType, Tensor};

/// numpy `matmul`, including batch dims and the 1-D cases.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor, KernelError> {
    let _ = (a, b);
    Err(KernelError::InvalidArgument("matmul is not implemented yet".into()))
}

/// TF `one_hot`: a new last axis of length `depth`; out-of-range indices give all zeros.
pub fn one_hot(indices: &Tensor, depth: usize, dtype: DType) -> Result<Tensor, KernelError> {
    let _ = (indices, depth, dtype);
    Err(KernelError::InvalidArgument("one_hot is not implemented yet".into()))
}
