//! Host tensors for pipec: dtypes, the [`Tensor`] value, and (in later modules) the one
//! implementation of every op that the interpreter, constant folding and eager functions share.

#![warn(clippy::print_stdout, clippy::print_stderr)]

mod borrowed;
pub mod busy;
mod dtype;
pub mod format;
pub mod io;
pub mod kernels;
pub mod limits;
pub mod ops;
mod tensor;

pub use borrowed::{BorrowedTensor, FromBytes, TensorRef};
pub use bytes::Bytes;
pub use dtype::{AnyElem, DType, Elem};
pub use half::{bf16, f16};
pub use ndarray;
pub use tensor::{Scalar, Tensor, TensorElem};
