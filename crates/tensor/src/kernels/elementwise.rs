//! Elementwise kernels: unary and binary ops, `where`, `clip`, and the broadcasting rules.

use super::scalar::{FloatElem, NumElem};
use super::{KernelError, float_dispatch, num_dispatch, rule_error};
use crate::ops::{BinaryOp, UnaryOp};
use crate::{DType, Tensor, TensorElem, dispatch};
use ndarray::{ArcArray, IxDyn, Zip};

pub(crate) type Arr<T> = ArcArray<T, IxDyn>;

/// Binds `$f` to the scalar function of a same-dtype arithmetic op (a zero-sized fn item,
/// so every arm compiles to its own inlined loop); other ops run `$other`.
macro_rules! num_binary_fn {
    ($op:expr, $t:ty, $f:ident => $body:expr, _ => $other:expr) => {
        match $op {
            BinaryOp::Add => {
                let $f = <$t as NumElem>::add;
                $body
            }
            BinaryOp::Sub => {
                let $f = <$t as NumElem>::sub;
                $body
            }
            BinaryOp::Mul => {
                let $f = <$t as NumElem>::mul;
                $body
            }
            BinaryOp::FloorDiv => {
                let $f = <$t as NumElem>::floor_div;
                $body
            }
            BinaryOp::Mod => {
                let $f = <$t as NumElem>::rem;
                $body
            }
            BinaryOp::Pow => {
                let $f = <$t as NumElem>::pow;
                $body
            }
            BinaryOp::Maximum => {
                let $f = <$t as NumElem>::maximum;
                $body
            }
            BinaryOp::Minimum => {
                let $f = <$t as NumElem>::minimum;
                $body
            }
            _ => $other,
        }
    };
}

/// Binds `$f` to the scalar function of a comparison (`T, T -> bool`).
macro_rules! cmp_fn {
    ($op:expr, $t:ty, $f:ident => $body:expr, _ => $other:expr) => {
        match $op {
            BinaryOp::Eq => {
                let $f = |a: $t, b: $t| a == b;
                $body
            }
            BinaryOp::Ne => {
                let $f = |a: $t, b: $t| a != b;
                $body
            }
            BinaryOp::Lt => {
                let $f = |a: $t, b: $t| a < b;
                $body
            }
            BinaryOp::Le => {
                let $f = |a: $t, b: $t| a <= b;
                $body
            }
            BinaryOp::Gt => {
                let $f = |a: $t, b: $t| a > b;
                $body
            }
            BinaryOp::Ge => {
                let $f = |a: $t, b: $t| a >= b;
                $body
            }
            _ => $other,
        }
    };
}

/// Binds `$f` to the scalar function of a same-dtype unary op defined on all numbers.
macro_rules! num_unary_fn {
    ($op:expr, $t:ty, $f:ident => $body:expr, _ => $other:expr) => {
        match $op {
            UnaryOp::Neg => {
                let $f = <$t as NumElem>::neg;
                $body
            }
            UnaryOp::Abs => {
                let $f = <$t as NumElem>::abs;
                $body
            }
            UnaryOp::Sign => {
                let $f = <$t as NumElem>::sign;
                $body
            }
            UnaryOp::Square => {
                let $f = <$t as NumElem>::square;
                $body
            }
            UnaryOp::Relu => {
                let $f = <$t as NumElem>::relu;
                $body
            }
            _ => $other,
        }
    };
}

/// Binds `$f` to the scalar function of a same-dtype float-only unary op.
macro_rules! float_unary_fn {
    ($op:expr, $t:ty, $f:ident => $body:expr, _ => $other:expr) => {
        match $op {
            UnaryOp::Exp => { let $f = <$t as FloatElem>::exp; $body }
            UnaryOp::Expm1 => { let $f = <$t as FloatElem>::expm1; $body }
            UnaryOp::Log => { let $f = <$t as FloatElem>::log; $body }
            UnaryOp::Log1p => { let $f = <$t as FloatElem>::log1p; $body }
            UnaryOp::Sqrt => { let $f = <$t as FloatElem>::sqrt; $body }
            UnaryOp::Rsqrt => { let $f = <$t as FloatElem>::rsqrt; $body }
            UnaryOp::Reciprocal => { let $f = <$t as FloatElem>::reciprocal; $body }
            UnaryOp::Sin => { let $f = <$t as FloatElem>::sin; $body }
            UnaryOp::Cos => { let $f = <$t as FloatElem>::cos; $body }
            UnaryOp::Tan => { let $f = <$t as FloatElem>::tan; $body }
            UnaryOp::Tanh => { let $f = <$t as FloatElem>::tanh; $body }
            UnaryOp::Sigmoid => { let $f = <$t as FloatElem>::sigmoid; $body }
            UnaryOp::Floor => { let $f = <$t as FloatElem>::floor; $body }
            UnaryOp::Ceil => { let $f = <$t as FloatElem>::ceil; $body }
            UnaryOp::Round => { let $f = <$t as FloatElem>::round; $body }
            _ => num_unary_fn!($op, $t, $f => $body, _ => $other),
        }
    };
}

/// Applies `f` to every element; a tight loop over the buffer when it is contiguous
/// (the result then keeps the input's memory order).
pub(crate) fn map_arr<T: Copy, U: Clone + Default>(a: &Arr<T>, f: impl Fn(T) -> U) -> Arr<U> {
    if let Some(s) = a.as_slice() {
        let mut v: Vec<U> = vec![U::default(); s.len()];
        super::simd::map_unary(s, &mut v, f);
        Arr::from_shape_vec(a.raw_dim(), v).expect("length matches shape")
    } else {
        a.map(|&x| f(x)).into_shared()
    }
}

/// Applies `f` pairwise with numpy broadcasting.
pub(crate) fn zip_arr<A: Copy, B: Copy, U: Clone + Default>(
    a: &Arr<A>,
    b: &Arr<B>,
    f: impl Fn(A, B) -> U,
) -> Result<Arr<U>, KernelError> {
    if a.shape() == b.shape()
        && let (Some(x), Some(y)) = (a.as_slice(), b.as_slice())
    {
        let mut v: Vec<U> = vec![U::default(); x.len()];
        super::simd::map_binary(x, y, &mut v, f);
        return Ok(Arr::from_shape_vec(a.raw_dim(), v).expect("length matches shape"));
    }
    let shape = broadcast_shapes(a.shape(), b.shape()).ok_or_else(|| KernelError::Broadcast {
        lhs: a.shape().to_vec(),
        rhs: b.shape().to_vec(),
    })?;
    super::checked_len(&shape, std::mem::size_of::<U>())?;
    // Tensor-with-scalar is the common broadcast: keep it a slice loop.
    if b.len() == 1
        && a.shape() == shape.as_slice()
        && let Some(x) = a.as_slice()
    {
        let q = *b.iter().next().expect("one element");
        let mut v: Vec<U> = vec![U::default(); x.len()];
        super::simd::map_unary(x, &mut v, |p| f(p, q));
        return Ok(Arr::from_shape_vec(a.raw_dim(), v).expect("length matches shape"));
    }
    if a.len() == 1
        && b.shape() == shape.as_slice()
        && let Some(y) = b.as_slice()
    {
        let p = *a.iter().next().expect("one element");
        let mut v: Vec<U> = vec![U::default(); y.len()];
        super::simd::map_unary(y, &mut v, |q| f(p, q));
        return Ok(Arr::from_shape_vec(b.raw_dim(), v).expect("length matches shape"));
    }
    let dim = IxDyn(&shape);
    let av = a.broadcast(dim.clone()).expect("shapes broadcast");
    let bv = b.broadcast(dim).expect("shapes broadcast");
    Ok(Zip::from(&av)
        .and(&bv)
        .map_collect(|&p, &q| f(p, q))
        .into_shared())
}

/// Applies `f` to three broadcast operands.
pub(crate) fn zip3_arr<A: Copy, B: Copy, C: Copy, U: Clone>(
    a: &Arr<A>,
    b: &Arr<B>,
    c: &Arr<C>,
    f: impl Fn(A, B, C) -> U,
) -> Result<Arr<U>, KernelError> {
    let ab = broadcast_shapes(a.shape(), b.shape()).ok_or_else(|| KernelError::Broadcast {
        lhs: a.shape().to_vec(),
        rhs: b.shape().to_vec(),
    })?;
    let shape = broadcast_shapes(&ab, c.shape()).ok_or_else(|| KernelError::Broadcast {
        lhs: ab.clone(),
        rhs: c.shape().to_vec(),
    })?;
    super::checked_len(&shape, std::mem::size_of::<U>())?;
    let dim = IxDyn(&shape);
    let av = a.broadcast(dim.clone()).expect("shapes broadcast");
    let bv = b.broadcast(dim.clone()).expect("shapes broadcast");
    let cv = c.broadcast(dim).expect("shapes broadcast");
    Ok(Zip::from(&av)
        .and(&bv)
        .and(&cv)
        .map_collect(|&p, &q, &r| f(p, q, r))
        .into_shared())
}

/// The numpy broadcast of two shapes, or `None` if they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Applies an elementwise unary op (SPEC §6).
pub fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor, KernelError> {
    let dt = x.dtype();
    op.result_dtype(dt)
        .map_err(|e| rule_error(op.name(), &[dt], e))?;
    let bad = || rule_error(op.name(), &[dt], crate::ops::DTypeRuleError::Unsupported);
    match op {
        UnaryOp::Not => match x {
            Tensor::Bool(a) => Ok(Tensor::Bool(map_arr(a, |v| !v))),
            _ => Err(bad()),
        },
        UnaryOp::IsNan => {
            float_dispatch!(x, a => Ok(Tensor::Bool(map_arr(a, FloatElem::is_nan))), _ => Err(bad()))
        }
        UnaryOp::IsFinite => {
            float_dispatch!(x, a => Ok(Tensor::Bool(map_arr(a, FloatElem::is_finite))), _ => Err(bad()))
        }
        _ if op.is_float_only() => {
            float_dispatch!(x, a => float_unary_arr(op, a).ok_or_else(bad), _ => Err(bad()))
        }
        _ => num_dispatch!(x, a => num_unary_arr(op, a).ok_or_else(bad), bool => Err(bad())),
    }
}

fn float_unary_arr<T: FloatElem>(op: UnaryOp, a: &Arr<T>) -> Option<Tensor> {
    float_unary_fn!(op, T, f => Some(T::wrap(map_arr(a, f))), _ => None)
}

fn num_unary_arr<T: NumElem>(op: UnaryOp, a: &Arr<T>) -> Option<Tensor> {
    num_unary_fn!(op, T, f => Some(T::wrap(map_arr(a, f))), _ => None)
}

/// Applies a same-dtype unary op defined on all numbers (`neg abs sign square relu`) to a
/// slice: the inner loop of fused elementwise code.
pub fn num_unary_slice<T: NumElem>(op: UnaryOp, x: &[T], out: &mut [T]) -> Result<(), KernelError> {
    num_unary_fn!(op, T, f => {
        super::simd::map_unary(x, out, f);
        Ok(())
    }, _ => Err(KernelError::InvalidArgument(format!("`{}` is not a same-dtype numeric op", op.name()))))
}

/// Applies any same-dtype unary op on floats to a slice: the inner loop of fused code.
pub fn float_unary_slice<T: FloatElem>(
    op: UnaryOp,
    x: &[T],
    out: &mut [T],
) -> Result<(), KernelError> {
    float_unary_fn!(op, T, f => {
        super::simd::map_unary(x, out, f);
        Ok(())
    }, _ => Err(KernelError::InvalidArgument(format!("`{}` is not a same-dtype float op", op.name()))))
}

/// Applies a same-dtype arithmetic binary op (`+ - // % ** maximum minimum`, and `*`) to
/// equal-length slices: the inner loop of fused elementwise code. Integer `//`/`%` by zero
/// and negative integer exponents are reported with their index in the slice.
pub fn binary_slice<T: NumElem>(
    op: BinaryOp,
    a: &[T],
    b: &[T],
    out: &mut [T],
) -> Result<(), KernelError> {
    check_divisors(op, b.iter().copied(), T::DTYPE)?;
    num_binary_fn!(op, T, f => {
        super::simd::map_binary(a, b, out, f);
        Ok(())
    }, _ => Err(KernelError::InvalidArgument(format!("`{}` is not a same-dtype arithmetic op", op.name()))))
}

/// [`binary_slice`] for floats, with `/` as well.
pub fn float_binary_slice<T: FloatElem>(
    op: BinaryOp,
    a: &[T],
    b: &[T],
    out: &mut [T],
) -> Result<(), KernelError> {
    if op == BinaryOp::Div {
        super::simd::map_binary(a, b, out, T::div);
        return Ok(());
    }
    binary_slice(op, a, b, out)
}

/// Errors for integer `//`/`%` by zero and negative integer powers, given the divisors
/// (exponents) in row-major order of the broadcast output.
fn check_divisors<T: NumElem>(
    op: BinaryOp,
    mut b: impl Iterator<Item = T>,
    dt: DType,
) -> Result<(), KernelError> {
    if !dt.is_int() {
        return Ok(());
    }
    match op {
        BinaryOp::FloorDiv | BinaryOp::Mod => match b.position(T::is_zero) {
            Some(index) => Err(KernelError::DivisionByZero { index }),
            None => Ok(()),
        },
        BinaryOp::Pow if dt.is_signed_int() => match b.position(T::is_negative) {
            Some(index) => Err(KernelError::NegativePower { index }),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Applies an elementwise binary op (SPEC §6): both operands have one dtype, shapes
/// broadcast as in numpy.
pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor, KernelError> {
    let (da, db) = (a.dtype(), b.dtype());
    if da != db {
        return Err(KernelError::DType(format!(
            "operands of `{}` have different dtypes {da} and {db}",
            op.name()
        )));
    }
    op.result_dtype(da)
        .map_err(|e| rule_error(op.name(), &[da], e))?;
    let bad = || rule_error(op.name(), &[da], crate::ops::DTypeRuleError::Unsupported);
    match op {
        BinaryOp::And | BinaryOp::Or => match (a, b) {
            (Tensor::Bool(x), Tensor::Bool(y)) => {
                let res = if op == BinaryOp::And {
                    zip_arr(x, y, |p, q| p && q)
                } else {
                    zip_arr(x, y, |p, q| p || q)
                };
                Ok(Tensor::Bool(res?))
            }
            _ => Err(bad()),
        },
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            dispatch!(a, x => compare_arr(op, x, b))
        }
        BinaryOp::Div => float_dispatch!(a, x => {
            let y = same_as(x, b);
            Ok(Tensor::from(zip_arr(x, y, FloatElem::div)?))
        }, _ => Err(bad())),
        _ => num_dispatch!(a, x => num_binary_arr(op, x, same_as(x, b)), bool => Err(bad())),
    }
}

/// `b`'s array, known to have `x`'s element type.
fn same_as<'a, T: TensorElem>(_x: &Arr<T>, b: &'a Tensor) -> &'a Arr<T> {
    T::view(b).expect("dtypes checked equal")
}

fn compare_arr<T: TensorElem + PartialOrd>(
    op: BinaryOp,
    x: &Arr<T>,
    b: &Tensor,
) -> Result<Tensor, KernelError> {
    let y = same_as(x, b);
    cmp_fn!(op, T, f => Ok(Tensor::Bool(zip_arr(x, y, f)?)), _ => unreachable!("caller passes comparisons"))
}

fn num_binary_arr<T: NumElem>(op: BinaryOp, x: &Arr<T>, y: &Arr<T>) -> Result<Tensor, KernelError> {
    if T::DTYPE.is_int() && matches!(op, BinaryOp::FloorDiv | BinaryOp::Mod | BinaryOp::Pow) {
        // Find the offending element in output order only when one exists.
        let suspect = |v: T| {
            if op == BinaryOp::Pow {
                T::is_negative(v)
            } else {
                T::is_zero(v)
            }
        };
        if y.iter().any(|&v| suspect(v)) {
            let shape =
                broadcast_shapes(x.shape(), y.shape()).ok_or_else(|| KernelError::Broadcast {
                    lhs: x.shape().to_vec(),
                    rhs: y.shape().to_vec(),
                })?;
            let yb = y.broadcast(IxDyn(&shape)).expect("shapes broadcast");
            check_divisors(op, yb.iter().copied(), T::DTYPE)?;
        }
    }
    num_binary_fn!(op, T, f => Ok(T::wrap(zip_arr(x, y, f)?)),
        _ => Err(KernelError::InvalidArgument(format!("`{}` is not an arithmetic op", op.name()))))
}

/// `where(cond, a, b)`: `a` where `cond` is true, else `b`; all three broadcast.
pub fn select(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor, KernelError> {
    let Tensor::Bool(c) = cond else {
        return Err(KernelError::DType(format!(
            "`where` needs a bool condition, not {}",
            cond.dtype()
        )));
    };
    if a.dtype() != b.dtype() {
        return Err(KernelError::DType(format!(
            "branches of `where` have different dtypes {} and {}",
            a.dtype(),
            b.dtype()
        )));
    }
    dispatch!(a, x => Ok(Tensor::from(zip3_arr(c, x, same_as(x, b), |k, p, q| if k { p } else { q })?)))
}

/// `clip(x, lo, hi)` = `minimum(maximum(x, lo), hi)` as numpy: NaN propagates and
/// `lo > hi` gives `hi`.
pub fn clip(x: &Tensor, lo: &Tensor, hi: &Tensor) -> Result<Tensor, KernelError> {
    if x.dtype() != lo.dtype() || x.dtype() != hi.dtype() {
        return Err(KernelError::DType(format!(
            "operands of `clip` have different dtypes {}, {} and {}",
            x.dtype(),
            lo.dtype(),
            hi.dtype()
        )));
    }
    let bad = || {
        rule_error(
            "clip",
            &[x.dtype()],
            crate::ops::DTypeRuleError::Unsupported,
        )
    };
    num_dispatch!(x, a => Ok(Tensor::from(zip3_arr(a, same_as(a, lo), same_as(a, hi), |v, l, h| {
        NumElem::minimum(NumElem::maximum(v, l), h)
    })?)), bool => Err(bad()))
}
