//! Elementwise builtins and operators: weak typing and dtype unification, the op tables'
//! unary and binary ops, `cast`, `where`, `clip`, and trace-time number arithmetic.

use super::{Call, req};
use crate::eval::{Eval, Res, tval_type};
use crate::value::{Num, TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::OpKind;
use pipec_syntax::ast;
use pipec_tensor::kernels;
use pipec_tensor::ops::{BinaryOp, DTypeRuleError, UnaryOp};
use pipec_tensor::{DType, Scalar, Tensor};

impl Eval<'_> {
    /// Converts a weakly typed number to a scalar of `dtype`, with the SPEC's checks.
    pub(super) fn weak_to(
        &mut self,
        v: &Value,
        dtype: DType,
        span: Span,
        other_span: Span,
    ) -> Res<Option<TVal>> {
        let scalar = match v {
            Value::Num(Num::Int(i)) => {
                if dtype == DType::Bool {
                    None
                } else {
                    match kernels::scalar_from_i128(*i, dtype) {
                        Some(s) => Some(s),
                        None => {
                            let d = Diagnostic::error(
                                Code::IntegerTooLarge,
                                format!("{i} does not fit in {dtype}"),
                            )
                            .with_label(span, format!("out of range for {dtype}"))
                            .with_label(other_span, format!("this is {dtype}"));
                            self.fail(d)?;
                            return Ok(None);
                        }
                    }
                }
            }
            Value::Num(Num::Float(f)) => {
                if dtype.is_float() && !crate::literal::float_fits(*f, dtype) {
                    let d = Diagnostic::error(
                        Code::LiteralOutOfRange,
                        format!("the number `{f:e}` is too large for {dtype}"),
                    )
                    .with_label(span, format!("not a {dtype} value"))
                    .with_label(other_span, format!("this is {dtype}"))
                    .with_help(format!(
                        "write a number {dtype} can hold, or cast the tensor to a wider dtype"
                    ));
                    self.fail(d)?;
                    return Ok(None);
                } else if dtype.is_float() {
                    Some(kernels::scalar_from_f64(*f, dtype))
                } else {
                    let d = Diagnostic::error(Code::FloatLiteralWithInt, format!("the float literal `{f:?}` is used with a tensor of {dtype}"))
                        .with_label(span, "a float")
                        .with_label(other_span, format!("this is {dtype}"))
                        .with_note("number literals take the dtype of the tensor they meet, and an integer tensor cannot hold a float")
                        .with_help(format!("cast the tensor first: `cast(x, f32) * {f:?}`, or write an integer literal"));
                    self.fail(d)?;
                    return Ok(None);
                }
            }
            Value::Bool(b) => {
                if dtype == DType::Bool {
                    Some(Scalar::Bool(*b))
                } else {
                    let d = Diagnostic::error(
                        Code::DtypeMismatch,
                        format!("a bool is used with a tensor of {dtype}"),
                    )
                    .with_label(span, "a bool")
                    .with_label(other_span, format!("this is {dtype}"))
                    .with_help(format!("cast it: `cast(b, {dtype})`"));
                    self.fail(d)?;
                    return Ok(None);
                }
            }
            _ => return Ok(None),
        };
        match scalar {
            Some(s) => Ok(Some(TVal::Concrete(s.to_tensor()))),
            None => {
                let d =
                    Diagnostic::error(Code::DtypeMismatch, "a number is used with a bool tensor")
                        .with_label(span, "a number")
                        .with_label(other_span, "this is bool")
                        .with_help("use `true`/`false`, or cast the tensor to a number type");
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    pub(super) fn is_weak(v: &Value) -> bool {
        matches!(v, Value::Num(_) | Value::Bool(_))
    }

    /// Converts two operands to tensors of one dtype (weak numbers adapt), or reports why not.
    pub(super) fn unify(
        &mut self,
        a: Value,
        b: Value,
        aspan: Span,
        bspan: Span,
        what: &str,
    ) -> Res<Option<(TVal, TVal)>> {
        let host = |v: &Value| matches!(v, Value::HostNum(..));
        if host(&a) != host(&b) {
            // A host number meeting a tensor takes its dtype (`crate::host_num`).
            let (h, t, hspan, tspan) = if host(&a) {
                (&a, b.clone(), aspan, bspan)
            } else {
                (&b, a.clone(), bspan, aspan)
            };
            let (&Value::HostNum(id, from), false) = (h, Self::is_weak(&t)) else {
                return self.not_planned("a host number with a number", hspan);
            };
            let Some(t) = self.tensor_of(t, tspan)? else {
                return Ok(None);
            };
            let h = self.host_as(id, from, tval_type(&t).dtype, hspan)?;
            return Ok(Some(if host(&a) { (h, t) } else { (t, h) }));
        }
        let (ta, tb) = match (Self::is_weak(&a), Self::is_weak(&b)) {
            (true, false) => {
                let Some(tb) = self.tensor_of(b, bspan)? else {
                    return Ok(None);
                };
                let Some(ta) = self.weak_to(&a, tval_type(&tb).dtype, aspan, bspan)? else {
                    return Ok(None);
                };
                (ta, tb)
            }
            (false, true) => {
                let Some(ta) = self.tensor_of(a, aspan)? else {
                    return Ok(None);
                };
                let Some(tb) = self.weak_to(&b, tval_type(&ta).dtype, bspan, aspan)? else {
                    return Ok(None);
                };
                (ta, tb)
            }
            _ => {
                let Some(ta) = self.tensor_of(a, aspan)? else {
                    return Ok(None);
                };
                let Some(tb) = self.tensor_of(b, bspan)? else {
                    return Ok(None);
                };
                (ta, tb)
            }
        };
        let (da, db) = (tval_type(&ta).dtype, tval_type(&tb).dtype);
        if da != db {
            let d = Diagnostic::error(
                Code::DtypeMismatch,
                format!("`{what}` on tensors of different dtypes: {da} and {db}"),
            )
            .with_label(aspan, format!("this is {da}"))
            .with_label(bspan, format!("this is {db}"))
            .with_note("pipec never converts dtypes implicitly (as in TensorFlow)")
            .with_help(crate::hints::dtype_mismatch_help(
                &self.quote(aspan).unwrap_or_else(|| "x".into()),
                da,
                &self.quote(bspan).unwrap_or_else(|| "y".into()),
                db,
            ));
            self.fail(d)?;
            return Ok(None);
        }
        Ok(Some((ta, tb)))
    }

    /// A prefix operator.
    pub(crate) fn unary_expr(&mut self, op: ast::UnaryOp, v: Value, span: Span) -> Res<Value> {
        match (op, &v) {
            (_, Value::Poison) => Ok(Value::Poison),
            (ast::UnaryOp::Neg, Value::Num(Num::Int(i))) => Ok(Value::Num(Num::Int(-i))),
            (ast::UnaryOp::Neg, Value::Num(Num::Float(f))) => Ok(Value::Num(Num::Float(-f))),
            (ast::UnaryOp::Neg, Value::HostNum(id, dtype)) => self.host_neg(*id, *dtype, span),
            (ast::UnaryOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
            _ => {
                let uop = match op {
                    ast::UnaryOp::Neg => UnaryOp::Neg,
                    ast::UnaryOp::Not => UnaryOp::Not,
                };
                let Some(t) = self.tensor_of(v, span)? else {
                    return Ok(Value::Poison);
                };
                self.apply_unary(uop, t, span)
            }
        }
    }

    /// A unary tensor op with its dtype rule checked.
    pub(crate) fn apply_unary(&mut self, op: UnaryOp, t: TVal, span: Span) -> Res<Value> {
        let ty = tval_type(&t);
        if let Err(e) = op.result_dtype(ty.dtype) {
            return self.dtype_rule_error(op.name(), ty.dtype, e, span);
        }
        self.emit(OpKind::Unary(op), vec![t], span)
    }

    pub(super) fn dtype_rule_error(
        &mut self,
        name: &str,
        dtype: DType,
        e: DTypeRuleError,
        span: Span,
    ) -> Res<Value> {
        let shown = op_shown(name);
        let d = match e {
            DTypeRuleError::NeedsFloat if name == "div" => Diagnostic::error(
                Code::IntegerTrueDivision,
                format!("`/` on {dtype} tensors"),
            )
            .with_label(span, format!("true division of {dtype}"))
            .with_note(
                "`/` is true division and needs floats; integers are never converted implicitly",
            )
            .with_help("use `//` for floor division, or `cast(x, f32) / y` for a float result"),
            DTypeRuleError::NeedsFloat => Diagnostic::error(
                Code::FloatOnlyOp,
                format!("`{shown}` needs a float tensor, found {dtype}"),
            )
            .with_label(span, format!("{dtype} here"))
            .with_help(format!("cast first: `{name}(cast(x, f32))`")),
            DTypeRuleError::NeedsBool => Diagnostic::error(
                Code::UnsupportedDtype,
                format!("`{shown}` needs a bool tensor, found {dtype}"),
            )
            .with_label(span, format!("{dtype} here"))
            .with_help("compare first, e.g. `x != 0`, or `cast(x, bool)`"),
            DTypeRuleError::Unsupported => Diagnostic::error(
                Code::UnsupportedDtype,
                format!("`{shown}` is not defined on {dtype}"),
            )
            .with_label(span, format!("{dtype} here"))
            .with_help(match (name, dtype) {
                ("neg", DType::Bool) => {
                    "to negate a bool use `!x`; for numbers, cast first: `-cast(x, i32)`"
                        .to_string()
                }
                (_, DType::Bool) => {
                    "bools are not numbers here: cast first, e.g. `cast(x, i32)`".to_string()
                }
                _ => format!("cast to a dtype that supports `{shown}` first, e.g. `cast(x, i32)`"),
            }),
        };
        self.fail(d)
    }

    /// A binary operator expression.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn binary_expr(
        &mut self,
        op: ast::BinaryOp,
        l: Value,
        r: Value,
        span: Span,
        op_span: Span,
        lspan: Span,
        rspan: Span,
    ) -> Res<Value> {
        if matches!(l, Value::Poison) || matches!(r, Value::Poison) {
            return Ok(Value::Poison);
        }
        if let (Value::Num(a), Value::Num(b)) = (&l, &r) {
            return self.num_binary(op, *a, *b, span);
        }
        let number = |v: &Value| matches!(v, Value::HostNum(..) | Value::Num(_));
        if (matches!(l, Value::HostNum(..)) || matches!(r, Value::HostNum(..)))
            && number(&l)
            && number(&r)
        {
            return self.host_binary(op, &l, &r, span);
        }
        // Trace-time values that are not tensors compare by value: `x.dtype == f32`.
        let same = match (&l, &r) {
            (Value::DType(a), Value::DType(b)) => Some(a == b),
            (Value::Str(a), Value::Str(b)) => Some(a == b),
            _ => None,
        };
        if let (Some(same), ast::BinaryOp::Eq | ast::BinaryOp::Ne) = (same, op) {
            return Ok(Value::Bool(same == (op == ast::BinaryOp::Eq)));
        }
        if let (Value::Bool(a), Value::Bool(b)) = (&l, &r) {
            match op {
                ast::BinaryOp::And => return Ok(Value::Bool(*a && *b)),
                ast::BinaryOp::Or => return Ok(Value::Bool(*a || *b)),
                ast::BinaryOp::Eq => return Ok(Value::Bool(a == b)),
                ast::BinaryOp::Ne => return Ok(Value::Bool(a != b)),
                _ => {}
            }
        }
        if (matches!(l, Value::Tuple(_)) || matches!(r, Value::Tuple(_)))
            && let (Value::Tuple(a), Value::Tuple(b), ast::BinaryOp::Eq | ast::BinaryOp::Ne) =
                (&l, &r, op)
        {
            let same = tuple_eq(a, b);
            if let Some(same) = same {
                return Ok(Value::Bool(if op == ast::BinaryOp::Eq {
                    same
                } else {
                    !same
                }));
            }
        }
        if op == ast::BinaryOp::MatMul {
            let Some((a, b)) = self.unify(l, r, lspan, rspan, "@")? else {
                return Ok(Value::Poison);
            };
            return self.matmul(a, b, span);
        }
        let bop = match op {
            ast::BinaryOp::Add => BinaryOp::Add,
            ast::BinaryOp::Sub => BinaryOp::Sub,
            ast::BinaryOp::Mul => BinaryOp::Mul,
            ast::BinaryOp::Div => BinaryOp::Div,
            ast::BinaryOp::FloorDiv => BinaryOp::FloorDiv,
            ast::BinaryOp::Mod => BinaryOp::Mod,
            ast::BinaryOp::Pow => BinaryOp::Pow,
            ast::BinaryOp::Eq => BinaryOp::Eq,
            ast::BinaryOp::Ne => BinaryOp::Ne,
            ast::BinaryOp::Lt => BinaryOp::Lt,
            ast::BinaryOp::Le => BinaryOp::Le,
            ast::BinaryOp::Gt => BinaryOp::Gt,
            ast::BinaryOp::Ge => BinaryOp::Ge,
            ast::BinaryOp::And => BinaryOp::And,
            ast::BinaryOp::Or => BinaryOp::Or,
            ast::BinaryOp::MatMul => unreachable!("handled above"),
        };
        let Some((a, b)) = self.unify(l, r, lspan, rspan, op.symbol())? else {
            return Ok(Value::Poison);
        };
        self.apply_binary(bop, a, b, span, op_span, lspan, rspan)
    }

    /// A binary tensor op with dtype and broadcast checks.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply_binary(
        &mut self,
        op: BinaryOp,
        a: TVal,
        b: TVal,
        span: Span,
        op_span: Span,
        lspan: Span,
        rspan: Span,
    ) -> Res<Value> {
        let (ta, tb) = (tval_type(&a), tval_type(&b));
        if let Err(e) = op.result_dtype(ta.dtype) {
            return self.dtype_rule_error(op.name(), ta.dtype, e, op_span);
        }
        if pipec_ir::Shape::broadcast(&ta.shape, &tb.shape).is_none() {
            let d = Diagnostic::error(Code::BroadcastMismatch, format!("shapes {} and {} do not broadcast", ta.shape, tb.shape))
                .with_label(lspan, format!("shape {}", ta.shape))
                .with_label(rspan, format!("shape {}", tb.shape))
                .with_note("numpy broadcasting aligns shapes from the right; each pair of dims must be equal or 1")
                .with_help("reshape or `expand_dims` one operand so the dims line up");
            return self.fail(d);
        }
        self.emit(OpKind::Binary(op), vec![a, b], span)
    }

    pub(super) fn num_binary(
        &mut self,
        op: ast::BinaryOp,
        a: Num,
        b: Num,
        span: Span,
    ) -> Res<Value> {
        use ast::BinaryOp as B;
        let zero_div = |ev: &mut Self| {
            let d = Diagnostic::error(
                Code::DivisionByZero,
                "division by zero in a constant expression",
            )
            .with_label(span, "divides by zero");
            ev.fail(d)
        };
        let r = match (a, b) {
            (Num::Int(x), Num::Int(y)) => match op {
                B::Add => Num::Int(x.wrapping_add(y)),
                B::Sub => Num::Int(x.wrapping_sub(y)),
                B::Mul => Num::Int(x.saturating_mul(y)),
                B::Div => {
                    if y == 0 {
                        return zero_div(self);
                    }
                    Num::Float(x as f64 / y as f64)
                }
                B::FloorDiv => {
                    if y == 0 {
                        return zero_div(self);
                    }
                    Num::Int(
                        x.div_euclid(y)
                            - if (x.rem_euclid(y) != 0) && y < 0 {
                                1
                            } else {
                                0
                            },
                    )
                }
                B::Mod => {
                    if y == 0 {
                        return zero_div(self);
                    }
                    let m = x % y;
                    Num::Int(if m != 0 && ((m < 0) != (y < 0)) {
                        m + y
                    } else {
                        m
                    })
                }
                B::Pow => {
                    if y < 0 {
                        Num::Float((x as f64).powf(y as f64))
                    } else {
                        Num::Int(x.saturating_pow(u32::try_from(y).unwrap_or(u32::MAX)))
                    }
                }
                _ => return Ok(Value::Bool(compare(op, x.cmp(&y)))),
            },
            _ => {
                let (x, y) = (a.as_f64(), b.as_f64());
                match op {
                    B::Add => Num::Float(x + y),
                    B::Sub => Num::Float(x - y),
                    B::Mul => Num::Float(x * y),
                    B::Div => {
                        if y == 0.0 {
                            return zero_div(self);
                        }
                        Num::Float(x / y)
                    }
                    B::FloorDiv => {
                        if y == 0.0 {
                            return zero_div(self);
                        }
                        Num::Float((x / y).floor())
                    }
                    B::Mod => {
                        if y == 0.0 {
                            return zero_div(self);
                        }
                        let m = x % y;
                        Num::Float(if m != 0.0 && ((m < 0.0) != (y < 0.0)) {
                            m + y
                        } else {
                            m
                        })
                    }
                    B::Pow => Num::Float(x.powf(y)),
                    _ => match x.partial_cmp(&y) {
                        Some(o) => return Ok(Value::Bool(compare(op, o))),
                        None => return Ok(Value::Bool(op == B::Ne)),
                    },
                }
            }
        };
        if matches!(op, B::And | B::Or | B::MatMul) {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("`{}` needs bools or tensors, not numbers", op.symbol()),
            )
            .with_label(span, "");
            return self.fail(d);
        }
        Ok(Value::Num(r))
    }

    /// `cast` of a weakly typed number: exact conversion rules of SPEC §6.
    pub(super) fn weak_cast(&mut self, v: &Value, span: Span) -> Res<Option<TVal>> {
        let t = match v {
            Value::Num(Num::Int(i)) => match i64::try_from(*i) {
                Ok(x) => Tensor::scalar(x),
                Err(_) => {
                    let d = Diagnostic::error(
                        Code::IntegerTooLarge,
                        "this integer does not fit in 64 bits",
                    )
                    .with_label(span, "");
                    self.fail(d)?;
                    return Ok(None);
                }
            },
            Value::Num(Num::Float(f)) => Tensor::scalar(*f),
            Value::Bool(b) => Tensor::scalar(*b),
            _ => return Ok(None),
        };
        Ok(Some(TVal::Concrete(t)))
    }

    /// A weak number as a scalar tensor of `dtype`.
    pub(crate) fn weak_scalar(&mut self, v: &Value, dtype: DType, span: Span) -> Res<Option<TVal>> {
        let s = match v {
            Value::Num(Num::Int(i)) => kernels::scalar_from_i128(*i, dtype),
            Value::Num(Num::Float(f)) if dtype.is_float() => {
                Some(kernels::scalar_from_f64(*f, dtype))
            }
            Value::Bool(b) if dtype == DType::Bool => Some(Scalar::Bool(*b)),
            _ => None,
        };
        match s {
            Some(s) => Ok(Some(TVal::Concrete(s.to_tensor()))),
            None => {
                let d = Diagnostic::error(
                    Code::DtypeMismatch,
                    format!("{} cannot be used as {dtype}", v.kind_name()),
                )
                .with_label(span, "")
                .with_help(format!("cast it: `cast(x, {dtype})`"));
                self.fail(d)?;
                Ok(None)
            }
        }
    }
}

/// How an op is written in source, for messages: operators by their symbol, the rest by name.
fn op_shown(name: &str) -> &str {
    match name {
        "neg" => "-",
        "not" => "!",
        "add" => "+",
        "sub" => "-",
        "mul" => "*",
        "div" => "/",
        "floordiv" => "//",
        "mod" => "%",
        "eq" => "==",
        "ne" => "!=",
        "lt" => "<",
        "le" => "<=",
        "gt" => ">",
        "ge" => ">=",
        "and" => "&&",
        "or" => "||",
        other => other,
    }
}

fn compare(op: ast::BinaryOp, o: std::cmp::Ordering) -> bool {
    use ast::BinaryOp as B;
    use std::cmp::Ordering::*;
    match op {
        B::Eq => o == Equal,
        B::Ne => o != Equal,
        B::Lt => o == Less,
        B::Le => o != Greater,
        B::Gt => o == Greater,
        B::Ge => o != Less,
        _ => false,
    }
}

fn tuple_eq(a: &[Value], b: &[Value]) -> Option<bool> {
    if a.len() != b.len() {
        return Some(false);
    }
    for (x, y) in a.iter().zip(b) {
        let same = match (x, y) {
            (Value::Num(p), Value::Num(q)) => p.as_f64() == q.as_f64(),
            (Value::Bool(p), Value::Bool(q)) => p == q,
            (Value::SymDim(_), _) | (_, Value::SymDim(_)) => return None,
            (Value::Tuple(p), Value::Tuple(q)) => tuple_eq(p, q)?,
            _ => return None,
        };
        if !same {
            return Some(false);
        }
    }
    Some(true)
}

/// An op-table unary op called by name (`exp(x)`).
pub(super) fn unary(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let op = UnaryOp::from_call_name(name).expect("registered from the unary op table");
    let (v, s) = req(&a, 0);
    let t = some!(ev.tensor_of(v, s)?);
    ev.apply_unary(op, t, span)
}

/// An op-table binary op called by name (`maximum(x, y)`).
pub(super) fn binary(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let op = BinaryOp::from_call_name(name).expect("registered from the binary op table");
    let (x, xs) = req(&a, 0);
    let (y, ys) = req(&a, 1);
    let (x, y) = some!(ev.unify(x, y, xs, ys, name)?);
    ev.apply_binary(op, x, y, span, span, xs, ys)
}

pub(super) fn cast(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let (v, s) = req(&a, 0);
    let dt = some!(ev.dtype_arg(req(&a, 1))?);
    let t = match &v {
        Value::Num(_) | Value::Bool(_) => ev.weak_cast(&v, s)?,
        Value::HostNum(id, dtype) => Some(Eval::host_tensor(*id, *dtype)),
        _ => ev.tensor_of(v, s)?,
    };
    let t = some!(t);
    let from = tval_type(&t).dtype;
    if from.is_str() != dt.is_str() {
        let help = if from.is_str() {
            format!("parse the text: `string_to_number(s, {dt})`")
        } else {
            "write the number as text: `as_string(x)`".to_string()
        };
        let d = Diagnostic::error(
            Code::DtypeMismatch,
            format!("`cast` does not convert {from} to {dt}"),
        )
        .with_label(span, "")
        .with_help(help);
        return ev.fail(d);
    }
    ev.emit(OpKind::Cast(dt), vec![t], span)
}

pub(super) fn where_(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let (c, cs) = req(&a, 0);
    let (x, xs) = req(&a, 1);
    let (y, ys) = req(&a, 2);
    let Some(c) = ev.tensor_of(c, cs)? else {
        return Ok(Value::Poison);
    };
    let ct = tval_type(&c);
    if ct.dtype != DType::Bool {
        let d = Diagnostic::error(
            Code::DtypeMismatch,
            format!("the condition of `where` must be bool, found {}", ct.dtype),
        )
        .with_label(cs, format!("{} here", ct.dtype))
        .with_help("compare first, e.g. `where(x > 0, a, b)`");
        return ev.fail(d);
    }
    let Some((x, y)) = ev.unify(x, y, xs, ys, "where")? else {
        return Ok(Value::Poison);
    };
    let (tx, ty) = (tval_type(&x), tval_type(&y));
    if pipec_ir::Shape::broadcast(&ct.shape, &tx.shape)
        .and_then(|s| pipec_ir::Shape::broadcast(&s, &ty.shape))
        .is_none()
    {
        let d = Diagnostic::error(
            Code::BroadcastMismatch,
            format!(
                "`where` operands {}, {} and {} do not broadcast",
                ct.shape, tx.shape, ty.shape
            ),
        )
        .with_label(span, "");
        return ev.fail(d);
    }
    ev.emit(OpKind::Select, vec![c, x, y], span)
}

pub(super) fn clip(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let (x, xs) = req(&a, 0);
    let (lo, ls) = req(&a, 1);
    let (hi, hs) = req(&a, 2);
    let Some((x, lo)) = ev.unify(x, lo, xs, ls, "clip")? else {
        return Ok(Value::Poison);
    };
    let Some((x, hi)) = ev.unify(Value::Tensor(x), hi, xs, hs, "clip")? else {
        return Ok(Value::Poison);
    };
    let (tx, tl, th) = (tval_type(&x), tval_type(&lo), tval_type(&hi));
    if tx.dtype.is_str() {
        // Caught here, not by the kernel at run time.
        let d = Diagnostic::error(Code::DtypeMismatch, "`clip` takes numbers, found str")
            .with_label(span, "")
            .with_help("to bound a string's length, use `substr`");
        return ev.fail(d);
    }
    if pipec_ir::Shape::broadcast(&tx.shape, &tl.shape)
        .and_then(|s| pipec_ir::Shape::broadcast(&s, &th.shape))
        .is_none()
    {
        let d = Diagnostic::error(Code::BroadcastMismatch, "`clip` operands do not broadcast")
            .with_label(span, "");
        return ev.fail(d);
    }
    ev.emit(OpKind::Clip, vec![x, lo, hi], span)
}
