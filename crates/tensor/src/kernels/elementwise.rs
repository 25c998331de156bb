//! Elementwise kernels: unary and binary ops, `where`, `clip`, and the broadcasting rules.

use super::scalar::{FloatElem, NumElem};
use super::{KernelError, float_dispatch, num_dispatch, rule_error};
use crate::ops::{BinaryDomain, BinaryOp, FailsOn, UnaryDomain, UnaryOp};
use crate::{Bytes, DType, Tensor, TensorElem, plain_dispatch};
use ndarray::{ArcArray, IxDyn, Zip};

pub(crate) type Arr<T> = ArcArray<T, IxDyn>;

/// One arm of a generated kernel dispatch: binds `$f` to the row's scalar kernel when the
/// row's domain fits the dispatch context, else runs `$other`. Contexts: `num` (element
/// type `NumElem`), `float` (`FloatElem`), `test` (floats to bool), `cmp` (any ordered
/// type to bool), `logic` (bool).
macro_rules! kernel_arm {
    (num, num, $t:ty, $k:ident, $f:ident, $body:expr, $other:expr) => {{
        let $f = <$t as NumElem>::$k;
        $body
    }};
    (float, num, $t:ty, $k:ident, $f:ident, $body:expr, $other:expr) => {{
        let $f = <$t as NumElem>::$k;
        $body
    }};
    (float, float, $t:ty, $k:ident, $f:ident, $body:expr, $other:expr) => {{
        let $f = <$t as FloatElem>::$k;
        $body
    }};
    (test, float_test, $t:ty, $k:ident, $f:ident, $body:expr, $other:expr) => {{
        let $f = <$t as FloatElem>::$k;
        $body
    }};
    (logic, logic, $t:ty, $k:ident, $f:ident, $body:expr, $other:expr) => {{
        let $f = super::scalar::logic::$k;
        $body
    }};
    (num, arith, $t:ty, $k:ident, $f:ident, $body:expr, $other:expr) => {{
        let $f = <$t as NumElem>::$k;
        $body
    }};
    (float, arith, $t:ty, $k:ident, $f:ident, $body:expr, $other:expr) => {{
        let $f = <$t as NumElem>::$k;
        $body
    }};
    (float, float_arith, $t:ty, $k:ident, $f:ident, $body:expr, $other:expr) => {{
        let $f = <$t as FloatElem>::$k;
        $body
    }};
    (cmp, equality, $t:ty, $k:ident, $f:ident, $body:expr, $other:expr) => {{
        let $f = super::scalar::cmp::$k::<$t>;
        $body
    }};
    (cmp, order, $t:ty, $k:ident, $f:ident, $body:expr, $other:expr) => {{
        let $f = super::scalar::cmp::$k::<$t>;
        $body
    }};
    ($ctx:ident, $dom:ident, $t:ty, $k:ident, $f:ident, $body:expr, $other:expr) => {
        $other
    };
}

pub(crate) use kernel_arm;

/// A `match` over every row of the unary op table (see `crate::ops::for_each_unary_op`).
macro_rules! unary_dispatch {
    (($ctx:ident, $op:expr, $t:ty, $f:ident, $body:expr, $other:expr)
     $( $(#[$doc:meta])* $v:ident = $name:literal, call $call:literal : $dom:ident, cost $cost:literal => $k:ident; )*) => {
        match $op {
            $( UnaryOp::$v => crate::kernels::elementwise::kernel_arm!($ctx, $dom, $t, $k, $f, $body, $other), )*
        }
    };
}

pub(crate) use unary_dispatch;

/// A `match` over every row of the binary op table (see `crate::ops::for_each_binary_op`).
macro_rules! binary_dispatch {
    (($ctx:ident, $op:expr, $t:ty, $f:ident, $body:expr, $other:expr)
     $( $(#[$doc:meta])* $v:ident = $name:literal, call $call:literal : $dom:ident, cost $cost:literal, fails $fails:ident => $k:ident; )*) => {
        match $op {
            $( BinaryOp::$v => crate::kernels::elementwise::kernel_arm!($ctx, $dom, $t, $k, $f, $body, $other), )*
        }
    };
}

pub(crate) use binary_dispatch;

/// Binds `$f` to the scalar function of unary op `$op` for element type `$t` in context
/// `$ctx` (a zero-sized fn item, so every arm compiles to its own inlined loop); ops of
/// another domain run `$other`.
macro_rules! unary_fn {
    ($ctx:ident, $op:expr, $t:ty, $f:ident => $body:expr, _ => $other:expr) => {
        crate::ops::for_each_unary_op!(crate::kernels::elementwise::unary_dispatch; $ctx, $op, $t, $f, $body, $other)
    };
}
pub(crate) use unary_fn;

/// [`unary_fn`] for binary ops.
macro_rules! binary_fn {
    ($ctx:ident, $op:expr, $t:ty, $f:ident => $body:expr, _ => $other:expr) => {
        crate::ops::for_each_binary_op!(crate::kernels::elementwise::binary_dispatch; $ctx, $op, $t, $f, $body, $other)
    };
}
pub(crate) use binary_fn;

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
    match op.domain() {
        UnaryDomain::Logic => match x {
            Tensor::Bool(a) => {
                unary_fn!(logic, op, bool, f => Ok(Tensor::Bool(map_arr(a, f))), _ => Err(bad()))
            }
            _ => Err(bad()),
        },
        UnaryDomain::FloatTest => {
            float_dispatch!(x, a => test_unary_arr(op, a).ok_or_else(bad), _ => Err(bad()))
        }
        UnaryDomain::Float => {
            float_dispatch!(x, a => float_unary_arr(op, a).ok_or_else(bad), _ => Err(bad()))
        }
        UnaryDomain::Num => {
            num_dispatch!(x, a => num_unary_arr(op, a).ok_or_else(bad), bool => Err(bad()))
        }
    }
}

fn test_unary_arr<T: FloatElem>(op: UnaryOp, a: &Arr<T>) -> Option<Tensor> {
    unary_fn!(test, op, T, f => Some(Tensor::Bool(map_arr(a, f))), _ => None)
}

fn float_unary_arr<T: FloatElem>(op: UnaryOp, a: &Arr<T>) -> Option<Tensor> {
    unary_fn!(float, op, T, f => Some(T::wrap(map_arr(a, f))), _ => None)
}

fn num_unary_arr<T: NumElem>(op: UnaryOp, a: &Arr<T>) -> Option<Tensor> {
    unary_fn!(num, op, T, f => Some(T::wrap(map_arr(a, f))), _ => None)
}

/// Applies a same-dtype unary op defined on all numbers (`neg abs sign square relu`) to a
/// slice: the inner loop of fused elementwise code.
pub fn num_unary_slice<T: NumElem>(op: UnaryOp, x: &[T], out: &mut [T]) -> Result<(), KernelError> {
    unary_fn!(num, op, T, f => {
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
    unary_fn!(float, op, T, f => {
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
    binary_fn!(num, op, T, f => {
        super::simd::map_binary(a, b, out, f);
        Ok(())
    }, _ => Err(KernelError::InvalidArgument(format!("`{}` is not a same-dtype arithmetic op", op.name()))))
}

/// [`binary_slice`] for floats, with the float-only ops (`/`, `atan2`) as well.
pub fn float_binary_slice<T: FloatElem>(
    op: BinaryOp,
    a: &[T],
    b: &[T],
    out: &mut [T],
) -> Result<(), KernelError> {
    binary_fn!(float, op, T, f => {
        super::simd::map_binary(a, b, out, f);
        Ok(())
    }, _ => Err(KernelError::InvalidArgument(format!("`{}` is not a same-dtype float op", op.name()))))
}

/// Errors for integer `//`/`%` by zero and negative integer powers, given the divisors
/// (exponents) in row-major order of the broadcast output.
fn check_divisors<T: NumElem>(
    op: BinaryOp,
    mut b: impl Iterator<Item = T>,
    dt: DType,
) -> Result<(), KernelError> {
    if !op.may_fail(dt) {
        return Ok(());
    }
    match op.fails_on() {
        FailsOn::Int => match b.position(T::is_zero) {
            Some(index) => Err(KernelError::DivisionByZero { index }),
            None => Ok(()),
        },
        FailsOn::Signed => match b.position(T::is_negative) {
            Some(index) => Err(KernelError::NegativePower { index }),
            None => Ok(()),
        },
        FailsOn::Never => Ok(()),
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
    if let (Tensor::Str(x), Tensor::Str(y)) = (a, b) {
        return str_binary(op, x, y);
    }
    match op.domain() {
        BinaryDomain::Logic => match (a, b) {
            (Tensor::Bool(x), Tensor::Bool(y)) => {
                binary_fn!(logic, op, bool, f => Ok(Tensor::Bool(zip_arr(x, y, f)?)), _ => Err(bad()))
            }
            _ => Err(bad()),
        },
        BinaryDomain::Equality | BinaryDomain::Order => {
            plain_dispatch!(a, x => compare_arr(op, x, b), str => Err(bad()))
        }
        BinaryDomain::FloatArith => {
            float_dispatch!(a, x => float_binary_arr(op, x, same_as(x, b)), _ => Err(bad()))
        }
        BinaryDomain::Arith => {
            num_dispatch!(a, x => num_binary_arr(op, x, same_as(x, b)), bool => Err(bad()))
        }
    }
}

/// `b`'s array, known to have `x`'s element type.
fn same_as<'a, T: TensorElem>(_x: &Arr<T>, b: &'a Tensor) -> &'a Arr<T> {
    T::view(b).expect("dtypes checked equal")
}

fn compare_arr<T: TensorElem + crate::Elem + PartialOrd>(
    op: BinaryOp,
    x: &Arr<T>,
    b: &Tensor,
) -> Result<Tensor, KernelError> {
    let y = same_as(x, b);
    binary_fn!(cmp, op, T, f => Ok(Tensor::Bool(zip_arr(x, y, f)?)), _ => Err(KernelError::InvalidArgument(format!("`{}` is not a comparison", op.name()))))
}

fn float_binary_arr<T: FloatElem>(
    op: BinaryOp,
    x: &Arr<T>,
    y: &Arr<T>,
) -> Result<Tensor, KernelError> {
    binary_fn!(float, op, T, f => Ok(T::wrap(zip_arr(x, y, f)?)),
        _ => Err(KernelError::InvalidArgument(format!("`{}` is not a float op", op.name()))))
}

fn num_binary_arr<T: NumElem>(op: BinaryOp, x: &Arr<T>, y: &Arr<T>) -> Result<Tensor, KernelError> {
    if op.may_fail(T::DTYPE) {
        // Find the offending element in output order only when one exists.
        let suspect = |v: T| {
            if op.fails_on() == FailsOn::Signed {
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
    binary_fn!(num, op, T, f => Ok(T::wrap(zip_arr(x, y, f)?)),
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
    match (a, b) {
        (Tensor::Str(x), Tensor::Str(y)) => Ok(Tensor::Str(zip3_ref(c, x, y, |k, p, q| {
            if k { p.clone() } else { q.clone() }
        })?)),
        _ => {
            plain_dispatch!(a, x => Ok(Tensor::from(zip3_arr(c, x, same_as(x, b), |k, p, q| if k { p } else { q })?)),
            str => unreachable!("dtypes checked equal"))
        }
    }
}

/// `==`, `!=` and `+` (concatenation) on strings, with numpy broadcasting.
fn str_binary(op: BinaryOp, x: &Arr<Bytes>, y: &Arr<Bytes>) -> Result<Tensor, KernelError> {
    match op {
        BinaryOp::Eq => Ok(Tensor::Bool(zip_ref(x, y, |p, q| p == q)?)),
        BinaryOp::Ne => Ok(Tensor::Bool(zip_ref(x, y, |p, q| p != q)?)),
        BinaryOp::Add => Ok(Tensor::Str(zip_ref(x, y, |p, q| {
            let mut s = Vec::with_capacity(p.len() + q.len());
            s.extend_from_slice(p);
            s.extend_from_slice(q);
            Bytes::from(s)
        })?)),
        _ => Err(rule_error(
            op.name(),
            &[DType::Str],
            crate::ops::DTypeRuleError::Unsupported,
        )),
    }
}

/// Applies `f` pairwise by reference with numpy broadcasting (elements that are not `Copy`).
pub(crate) fn zip_ref<A, B, U: Clone>(
    a: &Arr<A>,
    b: &Arr<B>,
    f: impl Fn(&A, &B) -> U,
) -> Result<Arr<U>, KernelError> {
    let shape = broadcast_shapes(a.shape(), b.shape()).ok_or_else(|| KernelError::Broadcast {
        lhs: a.shape().to_vec(),
        rhs: b.shape().to_vec(),
    })?;
    super::checked_len(&shape, std::mem::size_of::<U>())?;
    let dim = IxDyn(&shape);
    let av = a.broadcast(dim.clone()).expect("shapes broadcast");
    let bv = b.broadcast(dim).expect("shapes broadcast");
    Ok(Zip::from(&av)
        .and(&bv)
        .map_collect(|p, q| f(p, q))
        .into_shared())
}

/// [`zip_ref`] for `where` on strings.
fn zip3_ref<U: Clone>(
    c: &Arr<bool>,
    a: &Arr<U>,
    b: &Arr<U>,
    f: impl Fn(bool, &U, &U) -> U,
) -> Result<Arr<U>, KernelError> {
    let ca = broadcast_shapes(c.shape(), a.shape()).ok_or_else(|| KernelError::Broadcast {
        lhs: c.shape().to_vec(),
        rhs: a.shape().to_vec(),
    })?;
    let shape = broadcast_shapes(&ca, b.shape()).ok_or_else(|| KernelError::Broadcast {
        lhs: ca.clone(),
        rhs: b.shape().to_vec(),
    })?;
    super::checked_len(&shape, std::mem::size_of::<U>())?;
    let dim = IxDyn(&shape);
    let cv = c.broadcast(dim.clone()).expect("shapes broadcast");
    let av = a.broadcast(dim.clone()).expect("shapes broadcast");
    let bv = b.broadcast(dim).expect("shapes broadcast");
    Ok(Zip::from(&cv)
        .and(&av)
        .and(&bv)
        .map_collect(|&k, p, q| f(k, p, q))
        .into_shared())
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
