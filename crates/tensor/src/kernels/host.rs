//! Host-only ops whose result shape depends on values, and `sort`.

use super::KernelError;
use crate::Tensor;

/// Sorted distinct values, 1-D (`numpy.unique`).
pub fn unique(x: &Tensor) -> Result<Tensor, KernelError> {
    let _ = x;
    Err(KernelError::InvalidArgument("unique is not implemented yet".into()))
}

/// Indices of nonzero elements: `i64[n, rank]` (`np.argwhere`), or `i64[n]` for rank 1.
pub fn nonzero(x: &Tensor) -> Result<Tensor, KernelError> {
    let _ = x;
    Err(KernelError::InvalidArgument("nonzero is not implemented yet".into()))
}

/// `x[mask]`.
pub fn boolean_mask(x: &Tensor, mask: &Tensor) -> Result<Tensor, KernelError> {
    let _ = (x, mask);
    Err(KernelError::InvalidArgument("boolean_mask is not implemented yet".into()))
}

/// Sorts along `axis`, ascending, NaN last (numpy).
pub fn sort(x: &Tensor, axis: usize) -> Result<Tensor, KernelError> {
    let _ = (x, axis);
    Err(KernelError::InvalidArgument("sort is not implemented yet".into()))
}
