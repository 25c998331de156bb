//! Shape ops, slicing and creation.

use super::KernelError;
use crate::{DType, Scalar, Tensor};

/// One item of an index expression (Python/numpy semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceItem {
    /// `x[i]`: picks one index (negative counts from the end) and drops the axis.
    Index(i64),
    /// `x[start:stop:step]`, clamped as Python does; `step` must not be 0.
    Range {
        /// First index (default: the start for positive steps, the end for negative).
        start: Option<i64>,
        /// One past the last index.
        stop: Option<i64>,
        /// Stride; negative walks backwards.
        step: i64,
    },
    /// `x[None]` / `np.newaxis`: inserts an axis of length 1.
    NewAxis,
}

macro_rules! todo_kernel {
    ($($(#[$m:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        $(#[$m])*
        pub fn $name($($arg: $ty),*) -> Result<Tensor, KernelError> {
            let _ = ($($arg),*);
            Err(KernelError::InvalidArgument(concat!(stringify!($name), " is not implemented yet").into()))
        }
    )*};
}
todo_kernel! {
    /// Same elements in a new shape (row-major).
    pub fn reshape(x: &Tensor, shape: &[usize]);
    /// Permutes the axes.
    pub fn transpose(x: &Tensor, perm: &[usize]);
    /// Inserts an axis of length 1 at `axis`.
    pub fn expand_dims(x: &Tensor, axis: usize);
    /// Removes the given axes of length 1 (all of them if `axes` is empty).
    pub fn squeeze(x: &Tensor, axes: &[usize]);
    /// Joins tensors along an existing axis.
    pub fn concat(xs: &[Tensor], axis: usize);
    /// Joins tensors along a new axis.
    pub fn stack(xs: &[Tensor], axis: usize);
    /// Broadcasts to `shape` (numpy).
    pub fn broadcast_to(x: &Tensor, shape: &[usize]);
    /// Repeats the tensor `reps` times along each axis (numpy `tile`).
    pub fn tile(x: &Tensor, reps: &[usize]);
    /// Reverses the order along the given axes.
    pub fn reverse(x: &Tensor, axes: &[usize]);
    /// Basic indexing: `items` cover leading axes; the ellipsis is already expanded.
    pub fn slice(x: &Tensor, items: &[SliceItem]);
    /// A tensor of zeros.
    pub fn zeros(shape: &[usize], dtype: DType);
    /// A tensor of ones.
    pub fn ones(shape: &[usize], dtype: DType);
    /// A tensor filled with `value`.
    pub fn fill(shape: &[usize], value: Scalar);
    /// `0, 1, ..., n-1` in `dtype`.
    pub fn arange(n: usize, dtype: DType);
}
