//! The host tensor: an n-dimensional array of one dtype, cheap to clone and slice.

use crate::dtype::{AnyElem, DType, Elem};
use bytes::Bytes;
use half::{bf16, f16};
use ndarray::{ArcArray, Array, ArrayView, IxDyn};

/// A host tensor. Clones share the buffer (copy on write), so slicing a source
/// into elements and passing values between ops does not copy data.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Tensor {
    Bool(ArcArray<bool, IxDyn>),
    I8(ArcArray<i8, IxDyn>),
    U8(ArcArray<u8, IxDyn>),
    I16(ArcArray<i16, IxDyn>),
    U16(ArcArray<u16, IxDyn>),
    I32(ArcArray<i32, IxDyn>),
    U32(ArcArray<u32, IxDyn>),
    I64(ArcArray<i64, IxDyn>),
    U64(ArcArray<u64, IxDyn>),
    F16(ArcArray<f16, IxDyn>),
    BF16(ArcArray<bf16, IxDyn>),
    F32(ArcArray<f32, IxDyn>),
    F64(ArcArray<f64, IxDyn>),
    Str(ArcArray<Bytes, IxDyn>),
}

/// The dtypes, one row each: the `Tensor`/`DType` variant, its class (`bool`, `int`,
/// `float`, `str`) and its Rust element type. Every dtype dispatch in the crate (over a tensor's
/// variant or over a `DType`, for all dtypes, the numeric ones or the floats) is generated
/// from this one table.
#[doc(hidden)]
#[macro_export]
macro_rules! for_each_dtype {
    ($($m:ident)::+; $($args:tt)*) => {
        $($m)::+! { ($($args)*)
            Bool bool bool;
            I8 int i8;
            U8 int u8;
            I16 int i16;
            U16 int u16;
            I32 int i32;
            U32 int u32;
            I64 int i64;
            U64 int u64;
            F16 half $crate::f16;
            BF16 half $crate::bf16;
            F32 float f32;
            F64 float f64;
            Str str $crate::Bytes;
        }
    };
}

/// `$yes` when a dtype of class `$class` passes `$filter` (`all`; `plain`: not `str`;
/// `num`: not bool or `str`; `float`, half floats included; `native`: the numbers a file
/// holds as they are in memory, not bool, half floats or `str`), else `$no`.
#[doc(hidden)]
#[macro_export]
macro_rules! dtype_pick {
    (all, $class:ident, $yes:expr, $no:expr) => {
        $yes
    };
    (plain, str, $yes:expr, $no:expr) => {
        $no
    };
    (plain, $class:ident, $yes:expr, $no:expr) => {
        $yes
    };
    (num, int, $yes:expr, $no:expr) => {
        $yes
    };
    (num, float, $yes:expr, $no:expr) => {
        $yes
    };
    (num, half, $yes:expr, $no:expr) => {
        $yes
    };
    (float, float, $yes:expr, $no:expr) => {
        $yes
    };
    (float, half, $yes:expr, $no:expr) => {
        $yes
    };
    (native, int, $yes:expr, $no:expr) => {
        $yes
    };
    (native, float, $yes:expr, $no:expr) => {
        $yes
    };
    ($filter:ident, $class:ident, $yes:expr, $no:expr) => {
        $no
    };
}

/// A `match` over a tensor's variants from [`for_each_dtype`]: binds `$a` to the array.
#[doc(hidden)]
#[macro_export]
macro_rules! tensor_match {
    (($filter:ident, $t:expr, $a:ident, $body:expr, $other:expr) $( $v:ident $class:ident $ty:ty; )*) => {
        {
            // A filtered-out arm leaves `$a` unused.
            #[allow(unused_variables)]
            let out = match $t {
                $( $crate::Tensor::$v($a) => $crate::dtype_pick!($filter, $class, $body, $other), )*
            };
            out
        }
    };
}

/// A `match` over a tensor's variants that rebuilds a tensor of the same variant.
#[doc(hidden)]
#[macro_export]
macro_rules! tensor_map_match {
    (($t:expr, $a:ident, $body:expr) $( $v:ident $class:ident $ty:ty; )*) => {
        match $t {
            $( $crate::Tensor::$v($a) => $crate::Tensor::$v($body), )*
        }
    };
}

/// [`tensor_map_match`] for the plain dtypes; a `str` tensor gives `$other`.
#[doc(hidden)]
#[macro_export]
macro_rules! tensor_plain_map_match {
    (($t:expr, $a:ident, $body:expr, $other:expr) $( $v:ident $class:ident $ty:ty; )*) => {
        {
            #[allow(unused_variables)]
            let out = match $t {
                $( $crate::Tensor::$v($a) => $crate::dtype_pick!(plain, $class, $crate::Tensor::$v($body), $other), )*
            };
            out
        }
    };
}

/// A `match` over a `DType` from [`for_each_dtype`]: binds type `$t` to its Rust type.
#[doc(hidden)]
#[macro_export]
macro_rules! dtype_match {
    (($filter:ident, $d:expr, $t:ident, $body:expr, $other:expr) $( $v:ident $class:ident $ty:ty; )*) => {
        match $d {
            $( $crate::DType::$v => $crate::dtype_pick!($filter, $class, {
                #[allow(dead_code)]
                type $t = $ty;
                $body
            }, $other), )*
        }
    };
}

/// Applies a generic expression to the array inside a [`Tensor`], whatever its dtype.
///
/// `dispatch!(t, a => a.len())` binds `a` to the `ArcArray<T, IxDyn>` of any variant.
#[macro_export]
macro_rules! dispatch {
    ($t:expr, $a:ident => $body:expr) => {
        $crate::for_each_dtype!($crate::tensor_match; all, $t, $a, $body, unreachable!())
    };
}

/// Like [`dispatch!`] for the dtypes with plain (`Copy`) elements; a `str` tensor runs
/// `$other`.
#[macro_export]
macro_rules! plain_dispatch {
    ($t:expr, $a:ident => $body:expr, str => $other:expr) => {
        $crate::for_each_dtype!($crate::tensor_match; plain, $t, $a, $body, $other)
    };
}

/// Like [`map_same!`] for the dtypes with plain elements; a `str` tensor gives `$other`
/// (a whole `Tensor`).
#[macro_export]
macro_rules! plain_map_same {
    ($t:expr, $a:ident => $body:expr, str => $other:expr) => {
        $crate::for_each_dtype!($crate::tensor_plain_map_match; $t, $a, $body, $other)
    };
}

/// Like [`dispatch!`], but rebuilds a tensor of the same dtype from the result array.
#[macro_export]
macro_rules! map_same {
    ($t:expr, $a:ident => $body:expr) => {
        $crate::for_each_dtype!($crate::tensor_map_match; $t, $a, $body)
    };
}

/// Conversion between a typed array and a [`Tensor`].
pub trait TensorElem: AnyElem {
    /// Wraps an array of this element type.
    fn wrap(a: ArcArray<Self, IxDyn>) -> Tensor;
    /// The array inside `t`, if `t` has this element type.
    fn view(t: &Tensor) -> Option<&ArcArray<Self, IxDyn>>;
    /// The array inside `t`, taken out, if `t` has this element type (else `t` back).
    fn unwrap(t: Tensor) -> Result<ArcArray<Self, IxDyn>, Tensor>;
}

macro_rules! tensor_elem {
    ($($t:ty => $v:ident),*) => {$(
        impl TensorElem for $t {
            fn wrap(a: ArcArray<Self, IxDyn>) -> Tensor { Tensor::$v(a) }
            fn view(t: &Tensor) -> Option<&ArcArray<Self, IxDyn>> {
                match t { Tensor::$v(a) => Some(a), _ => None }
            }
            fn unwrap(t: Tensor) -> Result<ArcArray<Self, IxDyn>, Tensor> {
                match t { Tensor::$v(a) => Ok(a), t => Err(t) }
            }
        }
        impl From<ArcArray<$t, IxDyn>> for Tensor {
            fn from(a: ArcArray<$t, IxDyn>) -> Tensor { Tensor::$v(a) }
        }
    )*};
}
tensor_elem!(bool => Bool, i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32,
             i64 => I64, u64 => U64, f16 => F16, bf16 => BF16, f32 => F32, f64 => F64,
             Bytes => Str);

impl Tensor {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        fn d<T: AnyElem>(_: &ArcArray<T, IxDyn>) -> DType {
            T::DTYPE
        }
        dispatch!(self, a => d(a))
    }

    /// The shape (one length per axis).
    pub fn shape(&self) -> &[usize] {
        dispatch!(self, a => a.shape())
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        dispatch!(self, a => a.len())
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes occupied by the elements (not counting sharing); a string counts its handle
    /// and its bytes.
    pub fn nbytes(&self) -> usize {
        let fixed = self.len() * self.dtype().size_bytes();
        match self {
            Tensor::Str(a) => fixed + a.iter().map(Bytes::len).sum::<usize>(),
            _ => fixed,
        }
    }

    /// Builds a tensor from a shape and row-major data; `None` if the lengths differ.
    pub fn from_vec<T: TensorElem>(shape: &[usize], data: Vec<T>) -> Option<Tensor> {
        ArcArray::from_shape_vec(IxDyn(shape), data)
            .ok()
            .map(T::wrap)
    }

    /// A rank-0 tensor holding `value`.
    pub fn scalar<T: TensorElem>(value: T) -> Tensor {
        T::wrap(ArcArray::from_elem(IxDyn(&[]), value))
    }

    /// The typed array inside, if the dtype is `T`'s.
    pub fn as_array<T: TensorElem>(&self) -> Option<&ArcArray<T, IxDyn>> {
        T::view(self)
    }

    /// The element at row-major position `index` as a [`Scalar`] (`None` past the end and
    /// for `str`, which has no scalar form).
    pub fn get_flat(&self, index: usize) -> Option<Scalar> {
        crate::for_each_dtype!(crate::tensor_match; plain, self, a,
            a.iter().nth(index).map(|v| Scalar::from_elem(*v)), None)
    }

    /// The `i`-th slice along axis 0 (shares the buffer).
    pub fn index_axis0(&self, i: usize) -> Tensor {
        map_same!(self, a => a.clone().index_axis_move(ndarray::Axis(0), i))
    }

    /// Rows `start..end` along axis 0 (shares the buffer: batching contiguous data is free).
    pub fn slice_axis0(&self, start: usize, end: usize) -> Tensor {
        map_same!(self, a => {
            let mut v = a.clone();
            v.slice_axis_inplace(ndarray::Axis(0), ndarray::Slice::from(start..end));
            v
        })
    }

    /// The rows along axis 0 whose `keep` entry is true, copied into one new tensor
    /// (a filter's compaction of a block). `keep` has one entry per row.
    pub fn compress_rows(&self, keep: &[bool]) -> Tensor {
        // Scalar rows of plain numbers take `compress_pod` (vectorized for 4 and 8 bytes).
        macro_rules! vector_compaction {
            ($($v:ident),*) => {
                match self {
                    $(Tensor::$v(a) => {
                        if let Some(packed) = compress_scalars(a.view(), keep) {
                            return Tensor::$v(packed.into_shared());
                        }
                    })*
                    _ => {}
                }
            };
        }
        vector_compaction!(I8, U8, I16, U16, I32, U32, I64, U64, F32, F64);
        map_same!(self, a => compress(a.view(), keep).into_shared())
    }

    /// Rows `rows[0], rows[1], ...` along axis 0 copied into one new tensor (numpy's
    /// `a[rows]`: `global_shuffle` gathering a block from its input); `None` for a scalar
    /// or when a row is past the end.
    pub fn take_rows(&self, rows: &[usize]) -> Option<Tensor> {
        let n = *self.shape().first()?;
        if rows.iter().any(|&r| r >= n) {
            return None;
        }
        Some(map_same!(self, a => take(a, rows)))
    }
}

/// `a[rows]` along axis 0 for in-range `rows`: row slices copied when `a` is contiguous.
fn take<T: Clone>(a: &ArcArray<T, IxDyn>, rows: &[usize]) -> ArcArray<T, IxDyn> {
    let mut shape = a.shape().to_vec();
    let row: usize = shape[1..].iter().product();
    shape[0] = rows.len();
    let data = match a.as_slice() {
        Some(flat) if row == 1 => rows.iter().map(|&r| flat[r].clone()).collect(),
        Some(flat) => {
            let mut data = Vec::with_capacity(rows.len() * row);
            for &r in rows {
                data.extend_from_slice(&flat[r * row..(r + 1) * row]);
            }
            data
        }
        None => return a.select(ndarray::Axis(0), rows).into_shared(),
    };
    ArcArray::from_shape_vec(IxDyn(&shape), data).expect("rows times the row shape")
}

/// One element value of any dtype: constants in fused bodies, printing, folding.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Scalar {
    Bool(bool),
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F16(f16),
    BF16(bf16),
    F32(f32),
    F64(f64),
}

impl Scalar {
    /// Wraps one element.
    pub fn from_elem<T: Elem>(v: T) -> Scalar {
        use std::any::Any;
        let any = &v as &dyn Any;
        macro_rules! try_as {
            ($($t:ty => $var:ident),*) => {$(
                if let Some(x) = any.downcast_ref::<$t>() { return Scalar::$var(*x); }
            )*};
        }
        try_as!(bool => Bool, i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32,
                i64 => I64, u64 => U64, f16 => F16, bf16 => BF16, f32 => F32, f64 => F64);
        unreachable!("every Elem type is listed above")
    }

    /// The dtype of the value.
    pub fn dtype(self) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::I8(_) => DType::I8,
            Scalar::U8(_) => DType::U8,
            Scalar::I16(_) => DType::I16,
            Scalar::U16(_) => DType::U16,
            Scalar::I32(_) => DType::I32,
            Scalar::U32(_) => DType::U32,
            Scalar::I64(_) => DType::I64,
            Scalar::U64(_) => DType::U64,
            Scalar::F16(_) => DType::F16,
            Scalar::BF16(_) => DType::BF16,
            Scalar::F32(_) => DType::F32,
            Scalar::F64(_) => DType::F64,
        }
    }

    /// A rank-0 tensor holding this value.
    pub fn to_tensor(self) -> Tensor {
        match self {
            Scalar::Bool(v) => Tensor::scalar(v),
            Scalar::I8(v) => Tensor::scalar(v),
            Scalar::U8(v) => Tensor::scalar(v),
            Scalar::I16(v) => Tensor::scalar(v),
            Scalar::U16(v) => Tensor::scalar(v),
            Scalar::I32(v) => Tensor::scalar(v),
            Scalar::U32(v) => Tensor::scalar(v),
            Scalar::I64(v) => Tensor::scalar(v),
            Scalar::U64(v) => Tensor::scalar(v),
            Scalar::F16(v) => Tensor::scalar(v),
            Scalar::BF16(v) => Tensor::scalar(v),
            Scalar::F32(v) => Tensor::scalar(v),
            Scalar::F64(v) => Tensor::scalar(v),
        }
    }
}

/// [`Tensor::compress_rows`] for plain numbers, wherever they are (a tensor's buffer or a
/// mapped file's rows): vectorized for scalar rows.
pub(crate) fn compress_plain<T: bytemuck::Pod>(
    a: ArrayView<'_, T, IxDyn>,
    keep: &[bool],
) -> Array<T, IxDyn> {
    compress_scalars(a.view(), keep).unwrap_or_else(|| compress(a, keep))
}

/// [`compress`] of a contiguous rank-1 array of plain values by the vector kernel; `None`
/// for other layouts.
fn compress_scalars<T: bytemuck::Pod>(
    a: ArrayView<'_, T, IxDyn>,
    keep: &[bool],
) -> Option<Array<T, IxDyn>> {
    if a.ndim() != 1 {
        return None;
    }
    let flat = a.to_slice()?;
    let data = crate::kernels::compress_pod(flat, keep);
    Some(Array::from_shape_vec(IxDyn(&[data.len()]), data).expect("one value per kept row"))
}

fn compress<T: Clone>(a: ArrayView<'_, T, IxDyn>, keep: &[bool]) -> Array<T, IxDyn> {
    if a.ndim() == 0 {
        return a.to_owned();
    }
    // Entries past the last row mean nothing (callers pass one per row).
    let keep = &keep[..keep.len().min(a.shape()[0])];
    let kept = keep.iter().filter(|&&k| k).count();
    let mut shape = a.shape().to_vec();
    let row: usize = shape[1..].iter().product();
    shape[0] = kept;
    let mut data = Vec::with_capacity(kept * row);
    match a.to_slice() {
        // Scalar rows: every value is written and the cursor advances only past kept ones,
        // so the loop has no branch on the data.
        Some(flat) if row == 1 => {
            // Plain numbers never get here (`compress_scalars`); for strings, bools and
            // half floats the slots start initialized, so each overwrite drops what it
            // replaces. Slot `k` is written before the cursor passes it, and the cursor never
            // passes `kept`: `kept + 1` slots are enough.
            data = flat[..(kept + 1).min(flat.len())].to_vec();
            let mut k = 0;
            for (v, &keep) in flat.iter().zip(keep) {
                data[k] = v.clone();
                k += keep as usize;
            }
            data.truncate(k);
        }
        // Contiguous rows: copy runs of kept rows as slices.
        Some(flat) => {
            for (i, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
                data.extend_from_slice(&flat[i * row..(i + 1) * row]);
            }
        }
        None => {
            for (i, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
                data.extend(a.index_axis(ndarray::Axis(0), i).iter().cloned());
            }
        }
    }
    Array::from_shape_vec(IxDyn(&shape), data)
        .expect("kept rows times the row length is the data length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `rows` rows of `width` counting `i32`s (scalar rows for width 0), in row-major
    /// layout or as a transposed view of a `[width, rows]` tensor.
    fn rows_of(rows: usize, width: usize, transpose: bool) -> Tensor {
        let data: Vec<i32> = (0..(rows * width.max(1)) as i32).collect();
        if width == 0 {
            Tensor::from_vec(&[rows], data).expect("shape")
        } else if transpose {
            let t = Tensor::from_vec(&[width, rows], data).expect("shape");
            crate::kernels::transpose(&t, &[1, 0]).expect("transpose")
        } else {
            Tensor::from_vec(&[rows, width], data).expect("shape")
        }
    }

    proptest! {
        /// Every layout (scalar rows, contiguous rows, a transposed view) keeps exactly the
        /// rows whose mask entry is true, in order; a mask shorter than the rows keeps none
        /// past its end. Sizes cross several 64-row words, some of them wholly kept.
        #[test]
        fn compress_rows_keeps_the_masked_rows(
            rows in 0usize..200,
            width in 0usize..4,
            mask in proptest::collection::vec(any::<bool>(), 0..210),
            kept_run in 0usize..140,
            transpose in any::<bool>(),
        ) {
            let mut mask = mask;
            let run = kept_run.min(mask.len());
            mask[..run].fill(true);
            let t = rows_of(rows, width, transpose);
            let got = t.compress_rows(&mask);
            let kept: Vec<Tensor> = (0..rows)
                .filter(|&i| mask.get(i).copied().unwrap_or(false))
                .map(|i| t.index_axis0(i))
                .collect();
            prop_assert_eq!(got.shape()[0], kept.len());
            for (i, r) in kept.iter().enumerate() {
                prop_assert_eq!(&got.index_axis0(i), r);
            }
        }

        /// Strings (values that own memory) keep the masked rows too, through the loop
        /// that drops what it overwrites.
        #[test]
        fn compress_rows_keeps_masked_strings(mask in proptest::collection::vec(any::<bool>(), 0..40)) {
            let words: Vec<crate::Bytes> =
                (0..mask.len()).map(|i| crate::Bytes::from(format!("w{i}"))).collect();
            let t = Tensor::from_vec(&[words.len()], words.clone()).expect("shape");
            let got = t.compress_rows(&mask);
            let want: Vec<crate::Bytes> = words
                .into_iter()
                .zip(&mask)
                .filter(|(_, k)| **k)
                .map(|(w, _)| w)
                .collect();
            prop_assert_eq!(got, Tensor::from_vec(&[want.len()], want).expect("shape"));
        }

        /// Every layout gathers exactly the rows asked for, repeats and any order included;
        /// a row past the end gathers nothing.
        #[test]
        fn take_rows_gathers_the_rows_asked_for(
            rows in 1usize..40,
            width in 0usize..4,
            picks in proptest::collection::vec(0usize..45, 0..60),
            transpose in any::<bool>(),
        ) {
            let t = rows_of(rows, width, transpose);
            let got = t.take_rows(&picks);
            if picks.iter().any(|&p| p >= rows) {
                prop_assert!(got.is_none());
            } else {
                let got = got.expect("rows in range");
                prop_assert_eq!(got.shape()[0], picks.len());
                prop_assert_eq!(&got.shape()[1..], &t.shape()[1..]);
                for (i, &p) in picks.iter().enumerate() {
                    prop_assert_eq!(&got.index_axis0(i), &t.index_axis0(p));
                }
            }
        }
    }
}
