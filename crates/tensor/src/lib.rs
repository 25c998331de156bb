//! Host tensors for pipec: dtypes, the [`Tensor`] value, and (in later modules) the one
//! implementation of every op that the interpreter, constant folding and eager functions share.

#![warn(clippy::print_stdout, clippy::print_stderr)]

mod dtype;
mod tensor;
pub mod ops;
pub mod format;
pub mod kernels;
pub mod io;

pub use dtype::{DType, Elem};
pub use half::{bf16, f16};
pub use tensor::{Scalar, Tensor, TensorElem};
pub use ndarray;
