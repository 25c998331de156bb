//! Host numbers in planned eager bodies: `item(x)` while a plan is traced.
//!
//! The evaluator turns `item(x)` into a [`Num`]: an exact integer or an `f64`. A plan
//! cannot know the value, so it holds the number as a scalar IR value ([`Value::HostNum`]:
//! `i64` or `f64`) and traces the arithmetic the evaluator would do on it, only where the
//! IR computes exactly what the evaluator's host arithmetic does:
//! - floats: `+`, `-`, `*`, `/` and comparisons are the same IEEE `f64` operations in both;
//!   `//`, `%` and `**` are not (numpy's `divmod`, which the kernels follow, is not
//!   `floor(x / y)`), so they are not planned;
//! - integers: `i64` arithmetic equals the evaluator's exact arithmetic while nothing
//!   overflows, which a guard on the operands' range checks (a call whose operands are
//!   out of range takes a path that has no plan: the evaluator); comparisons are exact;
//! - a division by zero, which the evaluator reports, is guarded out of `/`; the integer
//!   kernels of `//` and `%` fail on it, and a failing plan defers to the evaluator.
//!
//! A host number meeting a tensor takes its dtype, as a number does, where that is one
//! exact cast (`Eval::host_as`). Anything else it meets (a shape, an index, `**`,
//! `print`, a tensor of another dtype) fails the trace, and those calls run on the
//! evaluator.

use crate::eval::{Abort, Eval, Res};
use crate::value::{Num, TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{OpKind, TensorType, ValueId};
use pipec_syntax::ast;
use pipec_tensor::ops::BinaryOp;
use pipec_tensor::{DType, Tensor};

/// The largest magnitude of an integer operand of `+` and `-`: a sum or difference of two
/// such stays inside `i64`.
const ADD_BOUND: i64 = (1 << 62) - 1;
/// The largest magnitude of two traced integer factors: their product stays inside `i64`.
const MUL_BOUND: i64 = (1 << 31) - 1;

/// An operand of host arithmetic: a number known now, or a traced host number.
#[derive(Clone, Copy)]
enum Operand {
    Known(Num),
    Traced(ValueId, DType),
}

impl Operand {
    fn of(v: &Value) -> Option<Operand> {
        match v {
            Value::Num(n) => Some(Operand::Known(*n)),
            Value::HostNum(id, dtype) => Some(Operand::Traced(*id, *dtype)),
            _ => None,
        }
    }

    fn is_float(self) -> bool {
        matches!(
            self,
            Operand::Known(Num::Float(_)) | Operand::Traced(_, DType::F64)
        )
    }
}

impl Eval<'_> {
    /// `item(x)` of a symbolic tensor while a plan is traced: its one element as the
    /// evaluator reads it (`kernels::cast` to `f64` for floats, to `i64` for integers).
    pub(crate) fn plan_item(&mut self, v: ValueId, ty: TensorType, span: Span) -> Res<Value> {
        if ty.shape.num_elements() != Some(1) || ty.dtype.is_str() || ty.dtype == DType::Bool {
            return self.not_planned("`item` of this tensor", span);
        }
        let dtype = if ty.dtype.is_float() {
            DType::F64
        } else {
            DType::I64
        };
        let mut t = TVal::Symbolic(v, ty.clone());
        if ty.rank() > 0 {
            t = self.emitted(OpKind::Reshape(Vec::new()), vec![t], span)?;
        }
        if ty.dtype != dtype {
            t = self.emitted(OpKind::Cast(dtype), vec![t], span)?;
        }
        self.host_value(t, dtype, span)
    }

    /// A binary operator with a traced host number on at least one side.
    pub(crate) fn host_binary(
        &mut self,
        op: ast::BinaryOp,
        l: &Value,
        r: &Value,
        span: Span,
    ) -> Res<Value> {
        use ast::BinaryOp as B;
        let (Some(a), Some(b)) = (Operand::of(l), Operand::of(r)) else {
            return self.not_planned("a host number with something other than a number", span);
        };
        let compare = match op {
            B::Eq => Some(BinaryOp::Eq),
            B::Ne => Some(BinaryOp::Ne),
            B::Lt => Some(BinaryOp::Lt),
            B::Le => Some(BinaryOp::Le),
            B::Gt => Some(BinaryOp::Gt),
            B::Ge => Some(BinaryOp::Ge),
            _ => None,
        };
        if a.is_float() || b.is_float() || op == B::Div {
            // The evaluator computes in `f64` as soon as either side is a float, and `/`
            // of two integers converts both (`as f64`, as the kernels' cast does).
            let x = self.as_f64(a, span)?;
            let y = self.as_f64(b, span)?;
            let bop = match (op, compare) {
                (_, Some(c)) => return self.emit(OpKind::Binary(c), vec![x, y], span),
                (B::Add, _) => BinaryOp::Add,
                (B::Sub, _) => BinaryOp::Sub,
                (B::Mul, _) => BinaryOp::Mul,
                (B::Div, _) => {
                    self.nonzero(&y, span)?;
                    BinaryOp::Div
                }
                _ => return self.not_planned(&format!("`{}` of floats", op.symbol()), span),
            };
            let v = self.emit(OpKind::Binary(bop), vec![x, y], span)?;
            return self.host_result(v, DType::F64, span);
        }
        let (x, y) = (self.as_i64(a, span)?, self.as_i64(b, span)?);
        let bop = match (op, compare) {
            (_, Some(c)) => return self.emit(OpKind::Binary(c), vec![x, y], span),
            (B::Add | B::Sub, _) => {
                self.require_within(&x, ADD_BOUND, span)?;
                self.require_within(&y, ADD_BOUND, span)?;
                if op == B::Add {
                    BinaryOp::Add
                } else {
                    BinaryOp::Sub
                }
            }
            (B::Mul, _) => {
                match (known_i64(&x), known_i64(&y)) {
                    (Some(c), _) => self.require_within(&y, product_bound(c), span)?,
                    (_, Some(c)) => self.require_within(&x, product_bound(c), span)?,
                    _ => {
                        self.require_within(&x, MUL_BOUND, span)?;
                        self.require_within(&y, MUL_BOUND, span)?;
                    }
                }
                BinaryOp::Mul
            }
            // `i64::MIN // -1` is the one quotient past `i64`.
            (B::FloorDiv, _) => {
                self.require_within(&x, i64::MAX, span)?;
                BinaryOp::FloorDiv
            }
            (B::Mod, _) => BinaryOp::Mod,
            _ => return self.not_planned(&format!("`{}` of integers", op.symbol()), span),
        };
        let v = self.emit(OpKind::Binary(bop), vec![x, y], span)?;
        self.host_result(v, DType::I64, span)
    }

    /// A traced host number meeting a tensor of `dtype`, converted as the evaluator
    /// converts a number to the dtype of the tensor it meets (`Eval::weak_to`), where that
    /// is one exact cast: an integer to an integer dtype it fits (guarded) or to `f32`/`f64`
    /// (both round the same integer to nearest), a float to `f64`, or to `f32` when its
    /// magnitude is at most `f32::MAX` (guarded: the evaluator refuses a finite number that
    /// rounds to infinity, and NaN and infinities are left to it). Anything else (`f16`,
    /// `bool`, a float meeting integers) is not planned.
    pub(crate) fn host_as(
        &mut self,
        id: ValueId,
        from: DType,
        dtype: DType,
        span: Span,
    ) -> Res<TVal> {
        let x = TVal::Symbolic(id, TensorType::scalar(from));
        let fits = match (from, dtype) {
            (DType::I64, DType::F32 | DType::F64 | DType::I64) | (DType::F64, DType::F64) => None,
            (DType::I64, int) if int.is_int() => Some(int_range(int)),
            (DType::F64, DType::F32) => Some((
                Tensor::scalar(-f64::from(f32::MAX)),
                Tensor::scalar(f64::from(f32::MAX)),
            )),
            _ => return self.not_planned(&format!("a host number used as {dtype}"), span),
        };
        if let Some((low, high)) = fits {
            self.require_between(&x, low, high, span)?;
        }
        if from == dtype {
            return Ok(x);
        }
        self.emitted(OpKind::Cast(dtype), vec![x], span)
    }

    /// `-n` of a traced host number.
    pub(crate) fn host_neg(&mut self, id: ValueId, dtype: DType, span: Span) -> Res<Value> {
        let x = TVal::Symbolic(id, TensorType::scalar(dtype));
        if dtype == DType::I64 {
            self.require_within(&x, i64::MAX, span)?;
        }
        let v = self.emit(
            OpKind::Unary(pipec_tensor::ops::UnaryOp::Neg),
            vec![x],
            span,
        )?;
        self.host_result(v, dtype, span)
    }

    /// The truth of a traced host number as a condition: nonzero, as the evaluator's
    /// `n.as_f64() != 0.0` (NaN is true), decided by a guard.
    pub(crate) fn host_truth(
        &mut self,
        id: ValueId,
        dtype: DType,
        span: Span,
    ) -> Res<Option<bool>> {
        let x = TVal::Symbolic(id, TensorType::scalar(dtype));
        let zero = TVal::Concrete(zero(dtype));
        let ne = self.emitted(OpKind::Binary(BinaryOp::Ne), vec![x, zero], span)?;
        let TVal::Symbolic(c, ty) = ne else {
            return self.not_planned("a known truth", span);
        };
        self.guard(c, ty, span)
    }

    /// A traced host number as the tensor `cast` converts a number to (`i64` or `f64`).
    pub(crate) fn host_tensor(id: ValueId, dtype: DType) -> TVal {
        TVal::Symbolic(id, TensorType::scalar(dtype))
    }

    /// Fails the trace of a plan: the calls that reach this run on the evaluator. Host
    /// numbers exist only while a plan is traced, which has no compile state to record a
    /// diagnostic in, so this always aborts (what [`Eval::fail`] does there).
    pub(crate) fn not_planned<T>(&self, what: &str, span: Span) -> Res<T> {
        let d = Diagnostic::error(Code::NotTraceTime, format!("{what} is not planned"))
            .with_label(span, "");
        Err(Abort::Error(Box::new(d)))
    }

    /// Requires `cond` (a traced `bool[]`) to hold: a guard whose other branch is not
    /// planned.
    fn require(&mut self, cond: TVal, span: Span) -> Res<()> {
        let decided = match cond {
            TVal::Symbolic(c, ty) => self.guard(c, ty, span)?,
            TVal::Concrete(t) => t.as_array::<bool>().and_then(|a| a.iter().next().copied()),
        };
        if decided != Some(true) {
            return self.not_planned("a host number out of the planned range", span);
        }
        Ok(())
    }

    /// Requires an `i64` operand to lie in `[-bound, bound]`.
    fn require_within(&mut self, x: &TVal, bound: i64, span: Span) -> Res<()> {
        if let Some(c) = known_i64(x) {
            if c.unsigned_abs() > bound.unsigned_abs() {
                return self.not_planned("a number out of the planned range", span);
            }
            return Ok(());
        }
        self.require_between(x, Tensor::scalar(-bound), Tensor::scalar(bound), span)
    }

    /// Requires a traced scalar to lie in `[low, high]` (scalars of its dtype; NaN does
    /// not).
    fn require_between(&mut self, x: &TVal, low: Tensor, high: Tensor, span: Span) -> Res<()> {
        let above = self.emitted(
            OpKind::Binary(BinaryOp::Ge),
            vec![x.clone(), TVal::Concrete(low)],
            span,
        )?;
        let below = self.emitted(
            OpKind::Binary(BinaryOp::Le),
            vec![x.clone(), TVal::Concrete(high)],
            span,
        )?;
        let both = self.emitted(OpKind::Binary(BinaryOp::And), vec![above, below], span)?;
        self.require(both, span)
    }

    /// Requires a divisor to be nonzero, as the evaluator does before dividing.
    fn nonzero(&mut self, y: &TVal, span: Span) -> Res<()> {
        let dtype = crate::eval::tval_type(y).dtype;
        let ne = self.emitted(
            OpKind::Binary(BinaryOp::Ne),
            vec![y.clone(), TVal::Concrete(zero(dtype))],
            span,
        )?;
        self.require(ne, span)
    }

    /// An operand as an `f64` scalar: numbers by `Num::as_f64`, traced integers by the
    /// kernels' cast (both round to nearest).
    fn as_f64(&mut self, x: Operand, span: Span) -> Res<TVal> {
        match x {
            Operand::Known(n) => Ok(TVal::Concrete(Tensor::scalar(n.as_f64()))),
            Operand::Traced(id, DType::F64) => {
                Ok(TVal::Symbolic(id, TensorType::scalar(DType::F64)))
            }
            Operand::Traced(id, dtype) => self.emitted(
                OpKind::Cast(DType::F64),
                vec![TVal::Symbolic(id, TensorType::scalar(dtype))],
                span,
            ),
        }
    }

    /// An integer operand as an `i64` scalar; a literal past `i64` is not planned.
    fn as_i64(&mut self, x: Operand, span: Span) -> Res<TVal> {
        match x {
            Operand::Known(Num::Int(i)) => match i64::try_from(i) {
                Ok(i) => Ok(TVal::Concrete(Tensor::scalar(i))),
                Err(_) => self.not_planned("an integer past i64", span),
            },
            Operand::Traced(id, dtype) => Ok(TVal::Symbolic(id, TensorType::scalar(dtype))),
            Operand::Known(Num::Float(_)) => self.not_planned("a float as an integer", span),
        }
    }

    /// Emits an op on at least one traced operand, as a tensor value.
    fn emitted(&mut self, kind: OpKind, inputs: Vec<TVal>, span: Span) -> Res<TVal> {
        match self.emit(kind, inputs, span)? {
            Value::Tensor(t) => Ok(t),
            _ => self.not_planned("an op on a host number", span),
        }
    }

    /// An emitted scalar as a host number.
    fn host_result(&mut self, v: Value, dtype: DType, span: Span) -> Res<Value> {
        match v {
            Value::Tensor(t) => self.host_value(t, dtype, span),
            other => Ok(other),
        }
    }

    fn host_value(&mut self, t: TVal, dtype: DType, span: Span) -> Res<Value> {
        match t {
            TVal::Symbolic(id, _) => Ok(Value::HostNum(id, dtype)),
            TVal::Concrete(_) => self.not_planned("a known host number", span),
        }
    }
}

/// The value of an `i64` operand known now.
fn known_i64(x: &TVal) -> Option<i64> {
    match x {
        TVal::Concrete(t) => t.as_array::<i64>().and_then(|a| a.iter().next().copied()),
        TVal::Symbolic(..) => None,
    }
}

/// The values of an integer dtype, as `i64` bounds (an `i64` is never above `u64::MAX`).
fn int_range(dtype: DType) -> (Tensor, Tensor) {
    let (low, high) = pipec_tensor::kernels::int_range(dtype).unwrap_or((0, 0));
    let clamp = |v: i128| v.clamp(i64::MIN.into(), i64::MAX.into()) as i64;
    (Tensor::scalar(clamp(low)), Tensor::scalar(clamp(high)))
}

/// The largest magnitude of an `i64` whose product with `c` stays inside `i64`.
fn product_bound(c: i64) -> i64 {
    (i64::MAX.unsigned_abs() / c.unsigned_abs().max(1)) as i64
}

/// Zero of a host number's dtype.
fn zero(dtype: DType) -> Tensor {
    if dtype == DType::F64 {
        Tensor::scalar(0.0f64)
    } else {
        Tensor::scalar(0i64)
    }
}
