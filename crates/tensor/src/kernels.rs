//! The one implementation of every op: used by the interpreter, by constant folding and
//! by eager functions alike.
//!
//! Per-element math lives in [`scalar`] (one generic function per op and element type);
//! the array kernels here apply it with tight loops over contiguous slices when they can
//! and with broadcasting `Zip`s otherwise. Semantics follow SPEC §6 and, where it is
//! silent, numpy; deliberate divergences from numpy are noted on the function.

mod cast;
mod elementwise;
pub mod fused;
mod host;
pub mod image;
mod linalg;
mod pad;
pub mod permute;
pub mod random;
mod reduce;
pub mod scalar;
mod shape;
mod simd;
pub(crate) use simd::compress_pod;
pub mod strings;

pub use cast::{cast, cast_slice, int_range, scalar_from_f64, scalar_from_i128};
pub use elementwise::{
    binary, binary_slice, broadcast_shapes, clip, float_binary_slice, float_unary_slice,
    num_unary_slice, select, unary,
};
pub use fused::{
    FusedOp, FusedProgram, LaneWork, pool_parallel, pool_usable, run_fused, run_fused_on,
    set_kernel_threads,
};
pub use host::{boolean_mask, nonzero, sort, unique};
pub use linalg::{matmul, one_hot};
pub use pad::paste;
pub use reduce::reduce;
pub use scalar::{CastElem, FloatElem, IntElem, NumElem};
pub use shape::{
    RowStacker, SharedRows, SliceItem, arange, broadcast_to, concat, expand_dims, fill, ones,
    reshape, reverse, shape_of, slice, slice_len, squeeze, stack, tile, transpose, zeros,
};

use crate::DType;
use crate::ops::DTypeRuleError;

/// Why a kernel could not produce a result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// Integer `//` or `%` by zero; `index` is the row-major flat index in the broadcast output.
    #[error("integer division by zero at element {index}")]
    DivisionByZero {
        /// Row-major flat index of the first offending element of the output.
        index: usize,
    },
    /// A signed integer raised to a negative integer power (numpy refuses it too);
    /// `index` is the row-major flat index in the broadcast output.
    #[error("integers to negative integer powers are not allowed")]
    NegativePower {
        /// Row-major flat index of the first offending element of the output.
        index: usize,
    },
    /// Operand shapes do not broadcast.
    #[error("shapes {lhs:?} and {rhs:?} do not broadcast")]
    Broadcast {
        /// Shape of the left operand.
        lhs: Vec<usize>,
        /// Shape of the right operand.
        rhs: Vec<usize>,
    },
    /// An operand has a dtype the op does not accept.
    #[error("{0}")]
    DType(String),
    /// An argument (axis, shape, step, ...) is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// The result would have too many elements to allocate.
    #[error("result of {elements} elements is too large")]
    TooLarge {
        /// The number of elements asked for.
        elements: u128,
    },
    /// Bytes that are not a valid image of the expected format (corrupt, truncated,
    /// another format).
    #[error("{0}")]
    BadImage(String),
    /// A value the op cannot take (a string that is not a number, a position past the end
    /// of a string).
    #[error("{0}")]
    BadValue(String),
    /// A file an op reads (`read_file`) could not be read.
    #[error("cannot read `{path}`: {reason}")]
    File {
        /// The path as the program gave it.
        path: String,
        /// Why.
        reason: String,
    },
    /// The result would be larger than the memory ceiling (`--max-memory`).
    #[error("a result of {bytes} bytes is over the memory limit of {limit} bytes (--max-memory)")]
    OverMemoryLimit {
        /// The bytes the result would occupy.
        bytes: u128,
        /// The ceiling.
        limit: u64,
    },
}

/// Most elements a kernel will allocate; beyond it the result is [`KernelError::TooLarge`]
/// rather than an allocation abort. The same 2^31 the tracer enforces on known shapes
/// (E0700), so a shape that is only known at run time gets the same limit.
const MAX_ELEMENTS: u128 = 1 << 31;

/// The element count of `shape` for elements of `elem_size` bytes, or `TooLarge` / `OverMemoryLimit`.
fn checked_len(shape: &[usize], elem_size: usize) -> Result<usize, KernelError> {
    let n: u128 = shape
        .iter()
        .fold(1u128, |acc, &d| acc.saturating_mul(d as u128));
    let bytes = n.saturating_mul(elem_size as u128);
    // ndarray also needs the product of the non-zero dims to fit `isize`, even when some
    // dim is 0 and nothing is allocated (numpy: "array is too big").
    let spread: u128 = shape
        .iter()
        .filter(|&&d| d != 0)
        .fold(1u128, |acc, &d| acc.saturating_mul(d as u128));
    if n > MAX_ELEMENTS || spread > isize::MAX as u128 {
        Err(KernelError::TooLarge {
            elements: n.max(spread),
        })
    } else if let Err(limit) = crate::limits::check_bytes(bytes) {
        Err(KernelError::OverMemoryLimit { bytes, limit })
    } else {
        Ok(n as usize)
    }
}

/// The error for an op applied to a dtype its rule rejects.
fn rule_error(op: &str, dtypes: &[DType], err: DTypeRuleError) -> KernelError {
    let tys = dtypes
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(" and ");
    let why = match err {
        DTypeRuleError::NeedsFloat => "it needs a float dtype",
        DTypeRuleError::NeedsBool => "it needs bool",
        DTypeRuleError::Unsupported => "it is not defined on this dtype",
    };
    KernelError::DType(format!("`{op}` does not accept {tys}: {why}"))
}

/// Dispatches over the non-bool variants of a tensor; `bool` runs `$other`.
macro_rules! num_dispatch {
    ($t:expr, $a:ident => $body:expr, bool => $other:expr) => {
        $crate::for_each_dtype!($crate::tensor_match; num, $t, $a, $body, $other)
    };
}
pub(crate) use num_dispatch;

/// Dispatches over the float variants of a tensor; anything else runs `$other`.
macro_rules! float_dispatch {
    ($t:expr, $a:ident => $body:expr, _ => $other:expr) => {
        $crate::for_each_dtype!($crate::tensor_match; float, $t, $a, $body, $other)
    };
}
pub(crate) use float_dispatch;
