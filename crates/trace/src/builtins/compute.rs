//! Compute builtins: reductions, `matmul` (and `@`), `one_hot` and `sort`.

use super::{Call, req};
use crate::eval::{Eval, Res, tval_type};
use crate::value::{TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{Dim, OpKind, Shape};
use pipec_tensor::DType;
use pipec_tensor::ops::{DTypeRuleError, ReduceOp};

impl Eval<'_> {
    pub(super) fn matmul(&mut self, a: TVal, b: TVal, span: Span) -> Res<Value> {
        let (ta, tb) = (tval_type(&a), tval_type(&b));
        if ta.rank() == 0 || tb.rank() == 0 {
            let d = Diagnostic::error(
                Code::MatmulMismatch,
                "matmul needs operands of rank 1 or more",
            )
            .with_label(span, format!("{ta} @ {tb}"))
            .with_help("use `*` to multiply by a scalar");
            return self.fail(d);
        }
        if ta.dtype == DType::Bool {
            return self.dtype_rule_error("matmul", ta.dtype, DTypeRuleError::Unsupported, span);
        }
        let (sa, sb) = (&ta.shape.0, &tb.shape.0);
        let k_a = sa[sa.len() - 1];
        let k_b = if sb.len() == 1 {
            sb[0]
        } else {
            sb[sb.len() - 2]
        };
        if let (Dim::Known(x), Dim::Known(y)) = (k_a, k_b)
            && x != y
        {
            let d = Diagnostic::error(
                Code::MatmulMismatch,
                format!(
                    "matmul of {} and {}: inner dims {x} and {y} differ",
                    ta.shape, tb.shape
                ),
            )
            .with_label(span, "inner dims must match")
            .with_help("transpose one operand, e.g. `a @ transpose(b)`");
            return self.fail(d);
        }
        let batch_a = Shape(sa[..sa.len().saturating_sub(2)].to_vec());
        let batch_b = Shape(sb[..sb.len().saturating_sub(2)].to_vec());
        if pipec_ir::Shape::broadcast(&batch_a, &batch_b).is_none() {
            let d = Diagnostic::error(
                Code::MatmulMismatch,
                format!(
                    "matmul batch dims of {} and {} do not broadcast",
                    ta.shape, tb.shape
                ),
            )
            .with_label(span, "");
            return self.fail(d);
        }
        self.emit(OpKind::MatMul, vec![a, b], span)
    }

    pub(super) fn reduce(
        &mut self,
        op: ReduceOp,
        a: Vec<Option<(Value, Span)>>,
        span: Span,
    ) -> Res<Value> {
        let (v, s) = req(&a, 0);
        let Some(t) = self.tensor_of(v, s)? else {
            return Ok(Value::Poison);
        };
        let ty = tval_type(&t);
        if let Err(e) = op.result_dtype(ty.dtype) {
            return self.dtype_rule_error(op.name(), ty.dtype, e, span);
        }
        let Some(axes) = self.axes_arg(a[1].clone(), ty.rank())? else {
            return Ok(Value::Poison);
        };
        let Some(keepdims) = self.bool_arg(a[2].clone(), false)? else {
            return Ok(Value::Poison);
        };
        if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) && axes.len() != 1 && ty.rank() != 1 {
            let d = Diagnostic::error(
                Code::BadAxis,
                format!("`{}` needs exactly one axis", op.name()),
            )
            .with_label(span, "")
            .with_help(format!("`{}(x, axis: -1)`", op.name()));
            return self.fail(d);
        }
        self.emit(OpKind::Reduce { op, axes, keepdims }, vec![t], span)
    }
}

pub(super) fn sort(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    if ty.rank() == 0 {
        let d = Diagnostic::error(Code::BadAxis, "cannot sort a scalar").with_label(span, "");
        return ev.fail(d);
    }
    if ty.dtype.is_str() {
        // Caught here, not by the kernel at run time (as `tf.sort` refuses strings).
        let d = Diagnostic::error(Code::DtypeMismatch, "`sort` takes numbers, found str")
            .with_label(span, "")
            .with_help(
                "to order strings, sort the numbers they stand for (`lookup`, `string_to_number`)",
            );
        return ev.fail(d);
    }
    let axis = some!(ev.one_axis(a[1].clone(), ty.rank(), -1)?);
    ev.emit(OpKind::Sort(axis), vec![t], span)
}

pub(super) fn one_hot(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    if !ty.dtype.is_int() {
        let d = Diagnostic::error(
            Code::DtypeMismatch,
            format!("`one_hot` indices must be integers, found {}", ty.dtype),
        )
        .with_label(span, "")
        .with_help("cast the indices to i32 or i64");
        return ev.fail(d);
    }
    let (dv, ds) = req(&a, 1);
    let depth = some!(ev.int_value(dv, ds, "the depth")?);
    if depth < 0 {
        let d = Diagnostic::error(Code::WrongKind, "`one_hot` depth must be non-negative")
            .with_label(ds, "");
        return ev.fail(d);
    }
    let dtype = match a[2].clone() {
        Some(v) => some!(ev.dtype_arg(v)?),
        None => DType::F32,
    };
    ev.emit(
        OpKind::OneHot {
            depth: depth as usize,
            dtype,
        },
        vec![t],
        span,
    )
}

/// An op-table reduction called by name (`sum(x, axis: 0)`).
pub(super) fn reduce(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let op = ReduceOp::from_name(name).expect("registered from the reduction table");
    ev.reduce(op, a, span)
}

pub(super) fn matmul(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let (x, xs) = req(&a, 0);
    let (y, ys) = req(&a, 1);
    let (x, y) = some!(ev.unify(x, y, xs, ys, "matmul")?);
    ev.matmul(x, y, span)
}
