//! Creation builtins, evaluated at trace time: `zeros`, `ones`, `fill` and `arange`.

use super::{Call, req};
use crate::eval::{Eval, Res};
use crate::value::{TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_tensor::DType;
use pipec_tensor::kernels;

pub(super) fn zeros_ones(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let shape = some!(ev.usize_list(req(&a, 0), "a shape")?);
    let dtype = match a[1].clone() {
        Some(v) => some!(ev.dtype_arg(v)?),
        None => DType::F32,
    };
    let r = if name == "zeros" {
        kernels::zeros(&shape, dtype)
    } else {
        kernels::ones(&shape, dtype)
    };
    ev.kernel_result(r, span)
}

pub(super) fn fill(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let shape = some!(ev.usize_list(req(&a, 0), "a shape")?);
    let (v, vs) = req(&a, 1);
    let dtype = match a[2].clone() {
        Some(d) => Some(some!(ev.dtype_arg(d)?)),
        None => None,
    };
    let scalar = match (&v, dtype) {
        (Value::Num(_) | Value::Bool(_), Some(dt)) => {
            some!(ev.weak_scalar(&v, dt, vs)?)
        }
        _ => some!(ev.tensor_operand(v, vs)?),
    };
    let TVal::Concrete(st) = scalar else {
        let d = Diagnostic::error(
            Code::NotTraceTime,
            "`fill` needs a value known at trace time",
        )
        .with_label(vs, "")
        .with_help("use `broadcast_to(x, shape)` for a symbolic value");
        return ev.fail(d);
    };
    let Some(s) = (st.rank() == 0).then(|| st.get_flat(0)).flatten() else {
        let d =
            Diagnostic::error(Code::WrongKind, "`fill` needs a scalar value").with_label(vs, "");
        return ev.fail(d);
    };
    ev.kernel_result(kernels::fill(&shape, s), span)
}

pub(super) fn arange(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let (v, vs) = req(&a, 0);
    let n = some!(ev.int_value(v, vs, "the length")?);
    if n < 0 {
        let d = Diagnostic::error(Code::WrongKind, "`arange` length must be non-negative")
            .with_label(vs, "");
        return ev.fail(d);
    }
    let dtype = match a[1].clone() {
        Some(v) => some!(ev.dtype_arg(v)?),
        None => DType::I32,
    };
    if let Err(d) = check_elements(&[n as usize], vs) {
        return ev.fail(d);
    }
    ev.kernel_result(kernels::arange(n as usize, dtype), span)
}

/// Checks that a shape's element count stays within the limit, before anything allocates.
pub(crate) fn check_elements(shape: &[usize], span: Span) -> Result<(), Diagnostic> {
    const MAX_ELEMENTS: u128 = 1 << 31;
    let n = shape
        .iter()
        .try_fold(1u128, |acc, &d| acc.checked_mul(d as u128))
        .unwrap_or(u128::MAX);
    if n > MAX_ELEMENTS {
        return Err(Diagnostic::error(
            Code::TensorTooLarge,
            format!("a tensor of shape {shape:?} would have {n} elements"),
        )
        .with_label(span, format!("the limit is {MAX_ELEMENTS} elements"))
        .with_help("make it smaller, or stream the data as a dataset"));
    }
    Ok(())
}
