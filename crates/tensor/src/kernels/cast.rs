//! `cast` between dtypes and the conversion of weakly typed literals.

use super::elementwise::{Arr, map_arr};
use super::scalar::{CastElem, CastValue};
use crate::{DType, Scalar, Tensor, plain_dispatch};
use half::{bf16, f16};

/// Converts `x` to dtype `to` (SPEC §6): float→int truncates toward zero and saturates
/// (NaN → 0), int→int wraps, →bool is `!= 0`, bool→number is 0/1, and float targets
/// round to nearest even.
///
/// Divergence from numpy: numpy's float→int casts of out-of-range values are
/// platform-defined (x86 gives the minimum integer); here they saturate, as SPEC requires.
/// `i64`/`u64` values beyond 2^53 cast to `bf16` may be double-rounded (via `f64`).
///
/// No cast converts to or from `str` (`as_string` and `string_to_number` do): the type
/// rules refuse such a cast before any kernel runs.
pub fn cast(x: &Tensor, to: DType) -> Tensor {
    if x.dtype() == to {
        return x.clone();
    }
    plain_dispatch!(x, a => cast_arr(a, to), str => unreachable!("the type rules refuse casts of str"))
}

fn cast_arr<S: CastElem>(a: &Arr<S>, to: DType) -> Tensor {
    fn go<S: CastElem, D: CastElem>(a: &Arr<S>) -> Tensor {
        D::wrap(map_arr(a, |v| D::from_cast_value(v.to_cast_value())))
    }
    match to {
        DType::Bool => go::<S, bool>(a),
        DType::I8 => go::<S, i8>(a),
        DType::U8 => go::<S, u8>(a),
        DType::I16 => go::<S, i16>(a),
        DType::U16 => go::<S, u16>(a),
        DType::I32 => go::<S, i32>(a),
        DType::U32 => go::<S, u32>(a),
        DType::I64 => go::<S, i64>(a),
        DType::U64 => go::<S, u64>(a),
        DType::F16 => go::<S, f16>(a),
        DType::BF16 => go::<S, bf16>(a),
        DType::F32 => go::<S, f32>(a),
        DType::F64 => go::<S, f64>(a),
        DType::Str => unreachable!("the type rules refuse casts to str"),
    }
}

/// Casts a slice element by element (the inner loop of fused code).
pub fn cast_slice<S: CastElem, D: CastElem>(x: &[S], out: &mut [D]) {
    super::simd::map_unary(x, out, |v: S| D::from_cast_value(v.to_cast_value()));
}

fn scalar_from_value(v: CastValue, dtype: DType) -> Scalar {
    fn s<D: CastElem>(v: CastValue) -> Scalar {
        Scalar::from_elem(D::from_cast_value(v))
    }
    match dtype {
        DType::Bool => s::<bool>(v),
        DType::I8 => s::<i8>(v),
        DType::U8 => s::<u8>(v),
        DType::I16 => s::<i16>(v),
        DType::U16 => s::<u16>(v),
        DType::I32 => s::<i32>(v),
        DType::U32 => s::<u32>(v),
        DType::I64 => s::<i64>(v),
        DType::U64 => s::<u64>(v),
        DType::F16 => s::<f16>(v),
        DType::BF16 => s::<bf16>(v),
        DType::F32 => s::<f32>(v),
        DType::F64 => s::<f64>(v),
        DType::Str => unreachable!("no literal converts to str"),
    }
}

/// A float literal as a scalar of `dtype`, by the rules of [`cast`] (`dtype` is not `str`:
/// no number converts to a string).
pub fn scalar_from_f64(value: f64, dtype: DType) -> Scalar {
    scalar_from_value(CastValue::Float(value), dtype)
}

/// The integers an integer (or `bool`) dtype holds, lowest and highest; `None` for the
/// other dtypes.
pub fn int_range(dtype: DType) -> Option<(i128, i128)> {
    Some(match dtype {
        DType::Bool => (0, 1),
        DType::I8 => (i8::MIN.into(), i8::MAX.into()),
        DType::U8 => (0, u8::MAX.into()),
        DType::I16 => (i16::MIN.into(), i16::MAX.into()),
        DType::U16 => (0, u16::MAX.into()),
        DType::I32 => (i32::MIN.into(), i32::MAX.into()),
        DType::U32 => (0, u32::MAX.into()),
        DType::I64 => (i64::MIN.into(), i64::MAX.into()),
        DType::U64 => (0, u64::MAX.into()),
        _ => return None,
    })
}

/// An integer literal as a scalar of `dtype`; `None` if the value is out of the dtype's
/// range (for floats: if it would round to infinity; for bool: unless it is 0 or 1).
pub fn scalar_from_i128(value: i128, dtype: DType) -> Option<Scalar> {
    if dtype.is_str() {
        return None;
    }
    let (lo, hi) = int_range(dtype).unwrap_or((i128::MIN, i128::MAX));
    if value < lo || value > hi {
        return None;
    }
    let s = scalar_from_value(CastValue::Int(value), dtype);
    let infinite = match s {
        Scalar::F16(v) => v.is_infinite(),
        Scalar::BF16(v) => v.is_infinite(),
        Scalar::F32(v) => v.is_infinite(),
        Scalar::F64(v) => v.is_infinite(),
        _ => false,
    };
    (!infinite).then_some(s)
}
