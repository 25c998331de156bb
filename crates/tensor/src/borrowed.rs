//! Tensors whose elements live in memory they do not own: the rows of a memory-mapped array
//! file, read in place by kernels that only read (the fused elementwise kernel).
//!
//! A [`Tensor`] owns its buffer (an `ndarray` `ArcArray`), so it cannot be a view of a
//! mapping; a [`BorrowedTensor`] is that view, and a [`TensorRef`] is what a reading kernel
//! takes: either one.

use crate::{DType, Tensor, TensorElem};
use half::{bf16, f16};

/// A read-only, row-major, contiguous numeric tensor over borrowed bytes (a file's mapping).
#[derive(Clone, Copy, Debug)]
pub struct BorrowedTensor<'a> {
    dtype: DType,
    shape: &'a [usize],
    bytes: &'a [u8],
}

impl<'a> BorrowedTensor<'a> {
    /// `bytes` seen as a tensor of `dtype` and `shape`; `None` unless the dtype's elements are
    /// valid for every bit pattern (not `bool`, not `str`), the length matches the shape and
    /// the bytes are aligned for the element type.
    pub fn new(dtype: DType, shape: &'a [usize], bytes: &'a [u8]) -> Option<BorrowedTensor<'a>> {
        let len = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        let t = BorrowedTensor {
            dtype,
            shape,
            bytes,
        };
        let fits = crate::io::native!(dtype, T => {
            bytes.len() == len.checked_mul(std::mem::size_of::<T>())?
                && T::from_bytes(bytes).is_some()
        });
        fits.unwrap_or(false).then_some(t)
    }

    /// The element dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &'a [usize] {
        self.shape
    }

    /// The elements, row-major, if they are of type `T`.
    pub fn values<T: FromBytes>(&self) -> Option<&'a [T]> {
        (T::DTYPE == self.dtype)
            .then(|| T::from_bytes(self.bytes))
            .flatten()
    }

    /// The rows (along axis 0) whose `keep` entry is true, copied into a new tensor: a
    /// filter's compaction of rows it read in place. `keep` has one entry per row.
    pub fn compress_rows(&self, keep: &[bool]) -> Tensor {
        crate::io::native!(self.dtype, T => {
            let values = self.values::<T>().expect("checked when built");
            let view = ndarray::ArrayView::from_shape(ndarray::IxDyn(self.shape), values)
                .expect("length checked when built");
            T::wrap(crate::tensor::compress_plain(view, keep).into_shared())
        })
        .expect("only native dtypes are borrowed")
    }

    /// A tensor owning a copy of the elements.
    pub fn to_tensor(&self) -> Tensor {
        crate::io::native!(self.dtype, T => {
            let v: Vec<T> = self.values::<T>().expect("checked when built").to_vec();
            Tensor::from_vec(self.shape, v).expect("length checked when built")
        })
        .expect("only native dtypes are borrowed")
    }
}

/// Element types that may be read straight out of bytes: every bit pattern is a value.
pub trait FromBytes: Sized {
    /// The dtype of this element type.
    const DTYPE: DType;
    /// `bytes` as elements; `None` if misaligned, of a length not a whole number of
    /// elements, or for a type some bit patterns of which are not values (`bool`).
    fn from_bytes(bytes: &[u8]) -> Option<&[Self]>;
}

macro_rules! from_bytes {
    ($($t:ty => $d:ident),*) => {$(
        impl FromBytes for $t {
            const DTYPE: DType = DType::$d;
            fn from_bytes(bytes: &[u8]) -> Option<&[Self]> {
                bytemuck::try_cast_slice(bytes).ok()
            }
        }
    )*};
}
from_bytes!(i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, i64 => I64,
            u64 => U64, f32 => F32, f64 => F64);

// Half floats are plain bits too, but no file reader hands them out borrowed (they are
// converted when read), so they are never borrowed; `bool` has invalid bit patterns.
macro_rules! never_borrowed {
    ($($t:ty => $d:ident),*) => {$(
        impl FromBytes for $t {
            const DTYPE: DType = DType::$d;
            fn from_bytes(_: &[u8]) -> Option<&[Self]> {
                None
            }
        }
    )*};
}
never_borrowed!(bool => Bool, f16 => F16, bf16 => BF16);

/// What a kernel that only reads takes as an input: a tensor, or elements borrowed in place.
#[derive(Clone, Copy, Debug)]
pub enum TensorRef<'a> {
    /// A tensor.
    Owned(&'a Tensor),
    /// Elements in memory the tensor does not own.
    Borrowed(BorrowedTensor<'a>),
}

impl<'a> TensorRef<'a> {
    /// The element dtype.
    pub fn dtype(&self) -> DType {
        match self {
            TensorRef::Owned(t) => t.dtype(),
            TensorRef::Borrowed(b) => b.dtype,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &'a [usize] {
        match *self {
            TensorRef::Owned(t) => t.shape(),
            TensorRef::Borrowed(b) => b.shape,
        }
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the elements are contiguous in row-major order.
    pub fn is_standard_layout(&self) -> bool {
        match self {
            TensorRef::Owned(t) => crate::dispatch!(t, a => a.is_standard_layout()),
            TensorRef::Borrowed(_) => true,
        }
    }

    /// The rows whose `keep` entry is true, copied into a new tensor (see
    /// [`Tensor::compress_rows`]).
    pub fn compress_rows(&self, keep: &[bool]) -> Tensor {
        match self {
            TensorRef::Owned(t) => t.compress_rows(keep),
            TensorRef::Borrowed(b) => b.compress_rows(keep),
        }
    }

    /// An owned tensor with these elements (a clone sharing the buffer, or a copy).
    pub fn to_tensor(&self) -> Tensor {
        match self {
            TensorRef::Owned(t) => (*t).clone(),
            TensorRef::Borrowed(b) => b.to_tensor(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_bytes_read_as_their_dtype_and_copy_out() {
        let values: Vec<i32> = (0..12).map(|i| i * 7 - 20).collect();
        let bytes: &[u8] = bytemuck::cast_slice(&values);
        let shape = [4usize, 3];
        let b = BorrowedTensor::new(DType::I32, &shape, bytes).expect("aligned, right length");
        assert_eq!(b.values::<i32>(), Some(&values[..]));
        assert_eq!(b.values::<u32>(), None);
        let want = Tensor::from_vec(&shape, values.clone()).expect("shape");
        assert_eq!(b.to_tensor(), want);
        assert_eq!(TensorRef::Borrowed(b).len(), 12);
        assert_eq!(TensorRef::Borrowed(b).shape(), &[4, 3]);
        let keep = [true, false, false, true];
        assert_eq!(b.compress_rows(&keep), want.compress_rows(&keep));
        let flat = [4usize * 3];
        let b = BorrowedTensor::new(DType::I32, &flat, bytes).expect("same bytes, rank 1");
        let keep: Vec<bool> = (0..12).map(|i| i % 5 != 2).collect();
        let want = Tensor::from_vec(&flat, values.clone()).expect("shape");
        assert_eq!(b.compress_rows(&keep), want.compress_rows(&keep));
        let empty_rows = [5usize, 0];
        let none = &bytes[..0];
        let b = BorrowedTensor::new(DType::I32, &empty_rows, none).expect("no bytes, no elements");
        let keep = [true, false, true, true, false];
        assert_eq!(b.compress_rows(&keep).shape(), &[3, 0]);
    }

    #[test]
    fn wrong_lengths_misalignment_and_bool_are_refused() {
        let values = [1u32, 2, 3, 4];
        let bytes: &[u8] = bytemuck::cast_slice(&values);
        assert!(BorrowedTensor::new(DType::U32, &[3], bytes).is_none());
        assert!(BorrowedTensor::new(DType::U32, &[3], &bytes[1..13]).is_none());
        assert!(BorrowedTensor::new(DType::Bool, &[16], bytes).is_none());
        assert!(BorrowedTensor::new(DType::Str, &[1], bytes).is_none());
        assert!(BorrowedTensor::new(DType::U8, &[usize::MAX, 2], bytes).is_none());
        assert!(BorrowedTensor::new(DType::U16, &[2, 4], bytes).is_some());
    }
}
