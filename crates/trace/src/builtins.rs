//! Builtin tensor operations, operators, methods and indexing: type and shape rules for
//! symbolic operands, kernel calls for trace-time ones.

use crate::eval::{Eval, Res, tval_type};
use crate::infer;
use crate::value::{FuncVal, Num, TVal, Value};
use pipec_diag::{Code, Diagnostic, Span, did_you_mean};
use pipec_ir::{Dim, OpKind, ReshapeDim, Shape, TensorType};
use pipec_syntax::ast;
use pipec_tensor::kernels::{self, SliceItem};
use pipec_tensor::ops::{BinaryOp, DTypeRuleError, ReduceOp, UnaryOp};
use pipec_tensor::{DType, Scalar, Tensor};

/// Builtin tensor ops beyond the op tables' elementwise and reduction ops whose result
/// depends only on the dtypes and shapes of their tensor operands (never on values) and that
/// have no side effects: tracing one once per signature gives the ops an evaluator run
/// performs (what eager plans rely on).
const VALUE_INDEPENDENT_OTHERS: &[&str] = &[
    "cast",
    "where",
    "clip",
    "reshape",
    "transpose",
    "expand_dims",
    "squeeze",
    "concat",
    "stack",
    "broadcast_to",
    "tile",
    "reverse",
    "matmul",
    "one_hot",
    "sort",
    "shape",
];

/// The builtins that are elementwise or reduction ops, by their call names: derived from
/// the op tables, so a new op in a table is a builtin without an edit here.
fn table_builtins() -> impl Iterator<Item = &'static str> {
    UnaryOp::ALL
        .iter()
        .map(|op| op.call_name())
        .chain(BinaryOp::ALL.iter().map(|op| op.call_name()))
        .filter(|n| !n.is_empty())
        .chain(ReduceOp::ALL.iter().map(|op| op.name()))
}

/// Whether the builtin `name` is value-independent (see [`VALUE_INDEPENDENT_OTHERS`]).
pub(crate) fn is_value_independent(name: &str) -> bool {
    table_builtins().any(|b| b == name) || VALUE_INDEPENDENT_OTHERS.contains(&name)
}

/// The other builtin functions (constructors, sources, host-only ops).
const OTHER_BUILTINS: &[&str] = &[
    "zeros",
    "ones",
    "fill",
    "arange",
    "len",
    "numpy",
    "item",
    "print",
    "unique",
    "nonzero",
    "boolean_mask",
    "ensure_shape",
    "py_function",
    "read_npy",
    "read_npz",
    "read_csv",
    "range",
    "from_tensor_slices",
    "from_tensors",
    "zip",
];

/// Every builtin function name.
pub(crate) fn builtins() -> impl Iterator<Item = &'static str> {
    table_builtins()
        .chain(VALUE_INDEPENDENT_OTHERS.iter().copied())
        .chain(OTHER_BUILTINS.iter().copied())
}

/// Host-only operations: errors inside traced functions (SPEC §5).
const HOST_ONLY: &[&str] = &[
    "numpy",
    "item",
    "print",
    "unique",
    "nonzero",
    "boolean_mask",
];

/// Whether `name` is a builtin function.
pub(crate) fn is_builtin(name: &str) -> bool {
    builtins().any(|b| b == name)
}

/// Positional and named arguments after evaluation.
type Pos = Vec<(Value, Span)>;
type Named = Vec<(ast::Ident, Value, Span)>;
/// Arguments bound to a parameter list: one slot per parameter, `None` where not given.
pub(crate) type BoundArgs = Vec<Option<(Value, Span)>>;

/// The most dims a tensor may have (numpy's `NPY_MAXDIMS`).
const MAX_RANK: usize = 64;
impl Eval<'_> {
    /// Matches arguments to a builtin's parameter list; `params[..required]` are required.
    pub(crate) fn bind_args(
        &mut self,
        fname: &str,
        params: &[&str],
        required: usize,
        pos: Pos,
        named: Named,
        span: Span,
    ) -> Res<Option<BoundArgs>> {
        let mut out: Vec<Option<(Value, Span)>> = vec![None; params.len()];
        if pos.len() > params.len() {
            let d = Diagnostic::error(
                Code::WrongArity,
                format!(
                    "`{fname}` takes at most {} argument(s) but {} were given",
                    params.len(),
                    pos.len()
                ),
            )
            .with_label(pos[params.len()].1, "unexpected argument")
            .with_help(format!("`{fname}({})`", params.join(", ")));
            self.fail(d)?;
            return Ok(None);
        }
        for (i, p) in pos.into_iter().enumerate() {
            out[i] = Some(p);
        }
        for (name, v, vspan) in named {
            match params.iter().position(|p| *p == name.name) {
                Some(i) if out[i].is_none() => out[i] = Some((v, vspan)),
                Some(_) => {
                    let d = Diagnostic::error(
                        Code::BadNamedArgument,
                        format!("argument `{}` of `{fname}` is given twice", name.name),
                    )
                    .with_label(name.span, "already given positionally");
                    self.fail(d)?;
                    return Ok(None);
                }
                None => {
                    let mut d = Diagnostic::error(
                        Code::BadNamedArgument,
                        format!("`{fname}` has no argument named `{}`", name.name),
                    )
                    .with_label(name.span, "unknown argument");
                    d = match did_you_mean(&name.name, params.iter().copied()) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!("`{fname}` takes: {}", params.join(", "))),
                    };
                    self.fail(d)?;
                    return Ok(None);
                }
            }
        }
        if let Some(missing) = (0..required).find(|&i| out[i].is_none()) {
            let d = Diagnostic::error(
                Code::WrongArity,
                format!("`{fname}` needs argument `{}`", params[missing]),
            )
            .with_label(span, format!("missing `{}`", params[missing]))
            .with_help(format!("`{fname}({})`", params.join(", ")));
            self.fail(d)?;
            return Ok(None);
        }
        if out
            .iter()
            .flatten()
            .any(|(v, _)| matches!(v, Value::Poison))
        {
            return Ok(None);
        }
        Ok(Some(out))
    }

    /// [`Self::bind_args`] for other modules.
    pub(crate) fn bind_args_pub(
        &mut self,
        fname: &str,
        params: &[&str],
        required: usize,
        pos: Pos,
        named: Named,
        span: Span,
    ) -> Res<Option<BoundArgs>> {
        self.bind_args(fname, params, required, pos, named, span)
    }

    /// Emits (while tracing) or evaluates (when every input is known) one op.
    pub(crate) fn op(
        &mut self,
        kind: OpKind,
        inputs: Vec<TVal>,
        out: TensorType,
        span: Span,
    ) -> Res<Value> {
        // numpy's limit on dims (NPY_MAXDIMS): beyond it shapes cost quadratic memory
        // along an op chain, and printing cannot follow numpy.
        if out.shape.rank() > MAX_RANK {
            let d = Diagnostic::error(
                Code::TensorTooLarge,
                format!(
                    "a tensor would have {} dims; at most {MAX_RANK} are allowed, as in numpy",
                    out.shape.rank()
                ),
            )
            .with_label(
                span,
                format!("this `{}` adds the dim past the limit", kind.mnemonic()),
            );
            return self.fail(d);
        }
        if inputs.iter().all(|t| matches!(t, TVal::Concrete(_))) {
            let tensors: Vec<Tensor> = inputs
                .into_iter()
                .map(|t| match t {
                    TVal::Concrete(t) => t,
                    TVal::Symbolic(..) => unreachable!("checked above"),
                })
                .collect();
            return match kind.eval(&tensors) {
                Ok(mut outs) => {
                    let out = outs.remove(0);
                    // Trace-time constants cost their size (a loop may repeat a big op).
                    if !self.charge(1 + out.len() as u64 / 256, 0, span) {
                        return Ok(Value::Poison);
                    }
                    Ok(Value::Tensor(TVal::Concrete(out)))
                }
                Err(e) => {
                    let code = match e {
                        kernels::KernelError::DivisionByZero { .. } => Code::DivisionByZero,
                        kernels::KernelError::NegativePower { .. } => Code::NegativePower,
                        kernels::KernelError::Broadcast { .. } => Code::BroadcastMismatch,
                        kernels::KernelError::TooLarge { .. } => Code::TensorTooLarge,
                        kernels::KernelError::OverMemoryLimit { .. } => Code::MemoryLimit,
                        _ => Code::WrongKind,
                    };
                    let d = Diagnostic::error(code, e.to_string())
                        .with_label(span, format!("in this `{}`", kind.mnemonic()));
                    self.fail(d)
                }
            };
        }
        // The op's own type rule must agree with what the call site worked out (and
        // reported errors for): a disagreement is a compiler bug, caught here at its source.
        let in_tys: Vec<TensorType> = inputs.iter().map(tval_type).collect();
        let refs: Vec<&TensorType> = in_tys.iter().collect();
        match kind.infer(&refs) {
            Some(Ok(tys)) if tys.len() == 1 && tys[0] == out => {}
            None => {}
            other => {
                let found = match other {
                    Some(Ok(tys)) => tys
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    Some(Err(e)) => e,
                    None => String::new(),
                };
                let d = Diagnostic::error(
                    Code::InternalError,
                    format!(
                        "internal compiler error: `{}` typed {out} while tracing, but its rule gives {found}",
                        kind.mnemonic()
                    ),
                )
                .with_label(span, "in this operation")
                .with_help("this is a bug in pipec; please report it with the program that triggers it");
                return self.fail(d);
            }
        }
        let bytes = crate::budget::op_bytes(inputs.len(), &[&out]);
        if !self.charge(1 + out.shape.rank() as u64, bytes, span) {
            return Ok(Value::Poison);
        }
        let ids: Vec<_> = inputs
            .into_iter()
            .map(|t| self.materialize(t, span))
            .collect();
        let func = self
            .frame
            .func
            .as_mut()
            .expect("symbolic values exist only while tracing");
        let v = func.push(kind, ids, out.clone(), span);
        Ok(Value::Tensor(TVal::Symbolic(v, out)))
    }

    fn tensor_of(&mut self, v: Value, span: Span) -> Res<Option<TVal>> {
        self.tensor_operand(v, span)
    }

    /// Converts a weakly typed number to a scalar of `dtype`, with the SPEC's checks.
    fn weak_to(
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

    fn is_weak(v: &Value) -> bool {
        matches!(v, Value::Num(_) | Value::Bool(_))
    }

    /// Converts two operands to tensors of one dtype (weak numbers adapt), or reports why not.
    fn unify(
        &mut self,
        a: Value,
        b: Value,
        aspan: Span,
        bspan: Span,
        what: &str,
    ) -> Res<Option<(TVal, TVal)>> {
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
        let out = match op.result_dtype(ty.dtype) {
            Ok(d) => d,
            Err(e) => return self.dtype_rule_error(op.name(), ty.dtype, e, span),
        };
        self.op(
            OpKind::Unary(op),
            vec![t],
            TensorType::new(out, ty.shape),
            span,
        )
    }

    fn dtype_rule_error(
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
        let out_dtype = match op.result_dtype(ta.dtype) {
            Ok(d) => d,
            Err(e) => return self.dtype_rule_error(op.name(), ta.dtype, e, op_span),
        };
        let Some(shape) = infer::broadcast(&ta.shape, &tb.shape) else {
            let d = Diagnostic::error(Code::BroadcastMismatch, format!("shapes {} and {} do not broadcast", ta.shape, tb.shape))
                .with_label(lspan, format!("shape {}", ta.shape))
                .with_label(rspan, format!("shape {}", tb.shape))
                .with_note("numpy broadcasting aligns shapes from the right; each pair of dims must be equal or 1")
                .with_help("reshape or `expand_dims` one operand so the dims line up");
            return self.fail(d);
        };
        self.op(
            OpKind::Binary(op),
            vec![a, b],
            TensorType::new(out_dtype, shape),
            span,
        )
    }

    fn num_binary(&mut self, op: ast::BinaryOp, a: Num, b: Num, span: Span) -> Res<Value> {
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

    fn matmul(&mut self, a: TVal, b: TVal, span: Span) -> Res<Value> {
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
        let Some(batch) = infer::broadcast(&batch_a, &batch_b) else {
            let d = Diagnostic::error(
                Code::MatmulMismatch,
                format!(
                    "matmul batch dims of {} and {} do not broadcast",
                    ta.shape, tb.shape
                ),
            )
            .with_label(span, "");
            return self.fail(d);
        };
        let mut dims = batch.0;
        if sa.len() >= 2 {
            dims.push(sa[sa.len() - 2]);
        }
        if sb.len() >= 2 {
            dims.push(sb[sb.len() - 1]);
        }
        self.op(
            OpKind::MatMul,
            vec![a, b],
            TensorType::new(ta.dtype, Shape(dims)),
            span,
        )
    }

    /// A host-only op inside a traced function: the SPEC §5 error.
    pub(crate) fn host_only_error(&mut self, what: &str, span: Span) -> Res<Value> {
        let fname = self
            .frame
            .fn_name
            .clone()
            .unwrap_or_else(|| "this function".into());
        let traced = if fname == "lambda" {
            "a lambda given to `map`/`filter`".to_string()
        } else {
            format!("`{fname}`")
        };
        let d = Diagnostic::error(Code::HostOnlyInTrace, format!("`{what}` needs concrete values, but {traced} is traced"))
            .with_label(span, "host-only operation in a traced function")
            .with_note("inside `map` and `filter`, a function is traced once per element signature: its tensors are symbolic and have no values yet")
            .with_help(eager_fix_help(&fname));
        self.fail(d)
    }

    /// Calls a builtin by name.
    pub(crate) fn call_builtin(
        &mut self,
        name: &str,
        pos: Pos,
        named: Named,
        span: Span,
    ) -> Res<Value> {
        if self.tracing()
            && name == "numpy"
            && let [(x, xspan)] = pos.as_slice()
            && named.is_empty()
        {
            return self.numpy_in_trace(x.clone(), *xspan, span, "numpy(...)");
        }
        if self.tracing() && HOST_ONLY.contains(&name) {
            return self.host_only_error(&format!("{name}(...)"), span);
        }
        if let Some(op) = UnaryOp::from_call_name(name) {
            let Some(a) = self.bind_args(name, &["x"], 1, pos, named, span)? else {
                return Ok(Value::Poison);
            };
            let (v, s) = a[0].clone().expect("required");
            let Some(t) = self.tensor_of(v, s)? else {
                return Ok(Value::Poison);
            };
            return self.apply_unary(op, t, span);
        }
        if let Some(op) = BinaryOp::from_call_name(name) {
            let Some(a) = self.bind_args(name, &["x", "y"], 2, pos, named, span)? else {
                return Ok(Value::Poison);
            };
            let (x, xs) = a[0].clone().expect("required");
            let (y, ys) = a[1].clone().expect("required");
            let Some((x, y)) = self.unify(x, y, xs, ys, name)? else {
                return Ok(Value::Poison);
            };
            return self.apply_binary(op, x, y, span, span, xs, ys);
        }
        if let Some(op) = ReduceOp::from_name(name) {
            let Some(a) = self.bind_args(name, &["x", "axis", "keepdims"], 1, pos, named, span)?
            else {
                return Ok(Value::Poison);
            };
            return self.reduce(op, a, span);
        }
        match name {
            "cast" => {
                let Some(a) = self.bind_args(name, &["x", "dtype"], 2, pos, named, span)? else {
                    return Ok(Value::Poison);
                };
                let (v, s) = a[0].clone().expect("required");
                let Some(dt) = self.dtype_arg(a[1].clone().expect("required"))? else {
                    return Ok(Value::Poison);
                };
                let t = match &v {
                    Value::Num(_) | Value::Bool(_) => self.weak_cast(&v, s)?,
                    _ => self.tensor_of(v, s)?,
                };
                let Some(t) = t else { return Ok(Value::Poison) };
                let ty = tval_type(&t);
                self.op(
                    OpKind::Cast(dt),
                    vec![t],
                    TensorType::new(dt, ty.shape),
                    span,
                )
            }
            "matmul" => {
                let Some(a) = self.bind_args(name, &["a", "b"], 2, pos, named, span)? else {
                    return Ok(Value::Poison);
                };
                let (x, xs) = a[0].clone().expect("required");
                let (y, ys) = a[1].clone().expect("required");
                let Some((x, y)) = self.unify(x, y, xs, ys, "matmul")? else {
                    return Ok(Value::Poison);
                };
                self.matmul(x, y, span)
            }
            "where" => {
                let Some(a) = self.bind_args(name, &["cond", "x", "y"], 3, pos, named, span)?
                else {
                    return Ok(Value::Poison);
                };
                let (c, cs) = a[0].clone().expect("required");
                let (x, xs) = a[1].clone().expect("required");
                let (y, ys) = a[2].clone().expect("required");
                let Some(c) = self.tensor_of(c, cs)? else {
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
                    return self.fail(d);
                }
                let Some((x, y)) = self.unify(x, y, xs, ys, "where")? else {
                    return Ok(Value::Poison);
                };
                let (tx, ty) = (tval_type(&x), tval_type(&y));
                let shape = infer::broadcast(&ct.shape, &tx.shape)
                    .and_then(|s| infer::broadcast(&s, &ty.shape));
                let Some(shape) = shape else {
                    let d = Diagnostic::error(
                        Code::BroadcastMismatch,
                        format!(
                            "`where` operands {}, {} and {} do not broadcast",
                            ct.shape, tx.shape, ty.shape
                        ),
                    )
                    .with_label(span, "");
                    return self.fail(d);
                };
                self.op(
                    OpKind::Select,
                    vec![c, x, y],
                    TensorType::new(tx.dtype, shape),
                    span,
                )
            }
            "clip" => {
                let Some(a) = self.bind_args(name, &["x", "lo", "hi"], 3, pos, named, span)? else {
                    return Ok(Value::Poison);
                };
                let (x, xs) = a[0].clone().expect("required");
                let (lo, ls) = a[1].clone().expect("required");
                let (hi, hs) = a[2].clone().expect("required");
                let Some((x, lo)) = self.unify(x, lo, xs, ls, "clip")? else {
                    return Ok(Value::Poison);
                };
                let Some((x, hi)) = self.unify(Value::Tensor(x), hi, xs, hs, "clip")? else {
                    return Ok(Value::Poison);
                };
                let (tx, tl, th) = (tval_type(&x), tval_type(&lo), tval_type(&hi));
                let Some(shape) = infer::broadcast(&tx.shape, &tl.shape)
                    .and_then(|s| infer::broadcast(&s, &th.shape))
                else {
                    let d = Diagnostic::error(
                        Code::BroadcastMismatch,
                        "`clip` operands do not broadcast",
                    )
                    .with_label(span, "");
                    return self.fail(d);
                };
                self.op(
                    OpKind::Clip,
                    vec![x, lo, hi],
                    TensorType::new(tx.dtype, shape),
                    span,
                )
            }
            "shape" => {
                let Some(a) = self.bind_args(name, &["x"], 1, pos, named, span)? else {
                    return Ok(Value::Poison);
                };
                let (v, s) = a[0].clone().expect("required");
                match self.tensor_of(v, s)? {
                    Some(t) => self.shape_of(t, span),
                    None => Ok(Value::Poison),
                }
            }
            "len" => {
                let Some(a) = self.bind_args(name, &["x"], 1, pos, named, span)? else {
                    return Ok(Value::Poison);
                };
                let (v, s) = a[0].clone().expect("required");
                match v {
                    Value::Tuple(vs) | Value::List(vs) => {
                        Ok(Value::Num(Num::Int(vs.len() as i128)))
                    }
                    Value::Str(st) => Ok(Value::Num(Num::Int(st.chars().count() as i128))),
                    other => {
                        let Some(t) = self.tensor_of(other, s)? else {
                            return Ok(Value::Poison);
                        };
                        let ty = tval_type(&t);
                        match ty.shape.0.first() {
                            None => {
                                let d = Diagnostic::error(Code::WrongKind, "`len` of a scalar")
                                    .with_label(s, "rank 0")
                                    .with_help("`len` counts the first dim");
                                self.fail(d)
                            }
                            Some(Dim::Known(n)) => Ok(Value::Num(Num::Int(*n as i128))),
                            Some(Dim::Unknown) => {
                                Ok(Value::SymDim(std::sync::Arc::new(crate::value::DimOf {
                                    of: t,
                                    axis: Some(0),
                                })))
                            }
                        }
                    }
                }
            }
            _ => self.call_builtin_more(name, pos, named, span),
        }
    }

    /// `cast` of a weakly typed number: exact conversion rules of SPEC §6.
    fn weak_cast(&mut self, v: &Value, span: Span) -> Res<Option<TVal>> {
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

    /// A dtype argument.
    pub(crate) fn dtype_arg(&mut self, (v, s): (Value, Span)) -> Res<Option<DType>> {
        match v {
            Value::DType(d) => Ok(Some(d)),
            Value::Str(st) if DType::from_name(&st).is_some() => Ok(DType::from_name(&st)),
            Value::Poison => Ok(None),
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("expected a dtype, found {}", other.kind_name()),
                )
                .with_label(s, "not a dtype")
                .with_help(
                    "dtypes are bool, i8, u8, i16, u16, i32, u32, i64, u64, f16, bf16, f32, f64",
                );
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    /// Axis arguments: an int or a list/tuple of ints, normalized against `rank`.
    pub(crate) fn axes_arg(
        &mut self,
        v: Option<(Value, Span)>,
        rank: usize,
    ) -> Res<Option<Vec<usize>>> {
        let Some((v, s)) = v else {
            return Ok(Some((0..rank).collect()));
        };
        let raw: Vec<Value> = match v {
            Value::Tuple(vs) | Value::List(vs) => vs,
            Value::Tensor(TVal::Concrete(t)) if t.rank() == 1 && t.dtype().is_int() => {
                let t = kernels::cast(&t, DType::I64);
                t.as_array::<i64>()
                    .map(|a| a.iter().map(|&i| Value::Num(Num::Int(i as i128))).collect())
                    .unwrap_or_default()
            }
            other => vec![other],
        };
        let mut axes = Vec::new();
        for v in raw {
            let Some(i) = self.int_value(v, s, "an axis")? else {
                return Ok(None);
            };
            match infer::norm_axis(i, rank) {
                Some(a) if !axes.contains(&a) => axes.push(a),
                Some(_) => {
                    let d = Diagnostic::error(Code::BadAxis, format!("axis {i} is repeated"))
                        .with_label(s, "");
                    self.fail(d)?;
                    return Ok(None);
                }
                None => {
                    let d = Diagnostic::error(
                        Code::BadAxis,
                        format!("axis {i} is out of range for a tensor of rank {rank}"),
                    )
                    .with_label(
                        s,
                        format!("valid axes are {} to {}", -(rank as i64), rank as i64 - 1),
                    )
                    .with_help("negative axes count from the end: -1 is the last");
                    self.fail(d)?;
                    return Ok(None);
                }
            }
        }
        axes.sort_unstable();
        Ok(Some(axes))
    }

    /// A bool argument known at trace time.
    pub(crate) fn bool_arg(
        &mut self,
        v: Option<(Value, Span)>,
        default: bool,
    ) -> Res<Option<bool>> {
        match v {
            None => Ok(Some(default)),
            Some((Value::Bool(b), _)) => Ok(Some(b)),
            Some((Value::Poison, _)) => Ok(None),
            Some((other, s)) => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("expected `true` or `false`, found {}", other.kind_name()),
                )
                .with_label(s, "not a bool");
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    fn reduce(&mut self, op: ReduceOp, a: Vec<Option<(Value, Span)>>, span: Span) -> Res<Value> {
        let (v, s) = a[0].clone().expect("required");
        let Some(t) = self.tensor_of(v, s)? else {
            return Ok(Value::Poison);
        };
        let ty = tval_type(&t);
        let out_dtype = match op.result_dtype(ty.dtype) {
            Ok(d) => d,
            Err(e) => return self.dtype_rule_error(op.name(), ty.dtype, e, span),
        };
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
        let shape = infer::reduce(&ty.shape, &axes, keepdims);
        self.op(
            OpKind::Reduce { op, axes, keepdims },
            vec![t],
            TensorType::new(out_dtype, shape),
            span,
        )
    }

    /// A method call: dataset transformations, or a builtin with the receiver first.
    pub(crate) fn method(
        &mut self,
        r: Value,
        rspan: Span,
        name: &ast::Ident,
        args: &[ast::Arg],
        span: Span,
    ) -> Res<Value> {
        if let Value::Dataset(ds) = r {
            let (pos, named) = self.eval_args(args)?;
            return self.dataset_method(ds, name, pos, named, span);
        }
        if matches!(r, Value::Poison) {
            // The arguments may hold independent errors (say, a `map` of another dataset
            // passed to `zip`): evaluate them so those are reported too.
            self.eval_args(args)?;
            return Ok(Value::Poison);
        }
        if self.tracing() && name.name == "numpy" && args.is_empty() {
            return self.numpy_in_trace(r, rspan, span, ".numpy()");
        }
        if self.tracing() && HOST_ONLY.contains(&name.name.as_str()) {
            return self.host_only_error(&format!(".{}()", name.name), name.span.to(span));
        }
        if name.name == "numpy" && args.is_empty() {
            return Ok(r);
        }
        if !is_builtin(&name.name)
            || matches!(
                name.name.as_str(),
                "range"
                    | "from_tensor_slices"
                    | "from_tensors"
                    | "read_npy"
                    | "read_npz"
                    | "read_csv"
                    | "py_function"
            )
        {
            let d = Diagnostic::error(
                Code::UnknownName,
                format!("{} has no method `{}`", r.kind_name(), name.name),
            )
            .with_label(name.span, "unknown method");
            let d = match did_you_mean(&name.name, builtins()) {
                Some(s) => d.with_help(format!("did you mean `.{s}(...)`?")),
                None => d,
            };
            return self.fail(d);
        }
        let (mut pos, named) = self.eval_args(args)?;
        pos.insert(0, (r, rspan));
        self.call_builtin(&name.name, pos, named, span)
    }

    /// `base[...]`: tuple/list element access, or tensor indexing and slicing.
    pub(crate) fn index(
        &mut self,
        b: Value,
        bspan: Span,
        indices: &[ast::IndexItem],
        span: Span,
    ) -> Res<Value> {
        match b {
            Value::Poison => Ok(Value::Poison),
            Value::Tuple(vs) | Value::List(vs) => {
                let [ast::IndexItem::Expr(e)] = indices else {
                    let d = Diagnostic::error(Code::WrongKind, "a tuple takes one integer index")
                        .with_label(span, "");
                    return self.fail(d);
                };
                let Some(i) = self.int_arg(e, "a tuple index")? else {
                    return Ok(Value::Poison);
                };
                let n = vs.len() as i64;
                let j = if i < 0 { i + n } else { i };
                if !(0..n).contains(&j) {
                    let d = Diagnostic::error(
                        Code::IndexOutOfRange,
                        format!("index {i} is out of range for a tuple of {n}"),
                    )
                    .with_label(e.span, "");
                    return self.fail(d);
                }
                Ok(vs[j as usize].clone())
            }
            other => {
                let Some(t) = self.tensor_of(other, bspan)? else {
                    return Ok(Value::Poison);
                };
                self.tensor_index(t, indices, span)
            }
        }
    }

    fn opt_int(&mut self, e: &Option<ast::Expr>) -> Res<Result<Option<i64>, ()>> {
        match e {
            None => Ok(Ok(None)),
            Some(e) => Ok(self.int_arg(e, "a slice bound")?.map(Some).ok_or(())),
        }
    }

    fn tensor_index(&mut self, t: TVal, indices: &[ast::IndexItem], span: Span) -> Res<Value> {
        let ty = tval_type(&t);
        // A single bool tensor index is a mask (host-only).
        if let [ast::IndexItem::Expr(e)] = indices {
            let v = self.expr(e)?;
            if let Value::Tensor(m) = &v
                && tval_type(m).dtype == DType::Bool
            {
                if self.tracing() {
                    return self.host_only_error("x[mask]", span);
                }
                let m = m.clone();
                return self.host_op(|x| kernels::boolean_mask(&x[0], &x[1]), vec![t, m], span);
            }
        }
        let n_explicit = indices
            .iter()
            .filter(|i| !matches!(i, ast::IndexItem::Ellipsis(_)))
            .count();
        if indices
            .iter()
            .filter(|i| matches!(i, ast::IndexItem::Ellipsis(_)))
            .count()
            > 1
        {
            let d = Diagnostic::error(Code::WrongKind, "an index can have only one `...`")
                .with_label(span, "");
            return self.fail(d);
        }
        if n_explicit > ty.rank() {
            let d = Diagnostic::error(
                Code::IndexOutOfRange,
                format!(
                    "too many indices ({n_explicit}) for a tensor of rank {}",
                    ty.rank()
                ),
            )
            .with_label(span, format!("shape {}", ty.shape));
            return self.fail(d);
        }
        let mut items = Vec::new();
        let mut dims = Vec::new();
        let mut axis = 0usize;
        for item in indices {
            match item {
                ast::IndexItem::Ellipsis(_) => {
                    let fill = ty.rank() - n_explicit;
                    for _ in 0..fill {
                        items.push(SliceItem::Range {
                            start: None,
                            stop: None,
                            step: 1,
                        });
                        dims.push(ty.shape.0[axis]);
                        axis += 1;
                    }
                }
                ast::IndexItem::Expr(e) => {
                    let v = self.expr(e)?;
                    if let Value::Tensor(TVal::Symbolic(..)) = v {
                        let d = Diagnostic::error(Code::NotTraceTime, "indexing with a symbolic tensor is not supported")
                            .with_label(e.span, "index known only at run time")
                            .with_help("use `one_hot` and a reduction, or `where`, or move this into an `eager fn`");
                        return self.fail(d);
                    }
                    let Some(i) = self.int_value(v, e.span, "an index")? else {
                        return Ok(Value::Poison);
                    };
                    if let Dim::Known(n) = ty.shape.0[axis]
                        && (i >= n as i64 || i < -(n as i64))
                    {
                        let d = Diagnostic::error(Code::IndexOutOfRange, format!("index {i} is out of range for axis {axis} of size {n}"))
                            .with_label(e.span, format!("valid indices are {} to {}", -(n as i64), n as i64 - 1))
                            .with_help("indices start at 0; negative indices count from the end (-1 is the last); a slice such as `x[1:]` never goes out of range");
                        return self.fail(d);
                    }
                    items.push(SliceItem::Index(i));
                    axis += 1;
                }
                ast::IndexItem::Slice {
                    start,
                    stop,
                    step,
                    span: sspan,
                } => {
                    let Ok(a) = self.opt_int(start)? else {
                        return Ok(Value::Poison);
                    };
                    let Ok(b) = self.opt_int(stop)? else {
                        return Ok(Value::Poison);
                    };
                    let Ok(c) = self.opt_int(step)? else {
                        return Ok(Value::Poison);
                    };
                    let step = c.unwrap_or(1);
                    if step == 0 {
                        let d = Diagnostic::error(Code::ZeroSliceStep, "slice step cannot be zero")
                            .with_label(*sspan, "step 0")
                            .with_help("use a step of 1 or more (or negative to go backwards)");
                        return self.fail(d);
                    }
                    dims.push(match ty.shape.0[axis] {
                        Dim::Known(n) => Dim::Known(kernels::slice_len(a, b, step, n)),
                        Dim::Unknown => Dim::Unknown,
                    });
                    items.push(SliceItem::Range {
                        start: a,
                        stop: b,
                        step,
                    });
                    axis += 1;
                }
            }
        }
        dims.extend_from_slice(&ty.shape.0[axis..]);
        self.op(
            OpKind::Slice(items),
            vec![t],
            TensorType::new(ty.dtype, Shape(dims)),
            span,
        )
    }

    /// Runs a host-only kernel on concrete operands (eager code and top level only).
    pub(crate) fn host_op(
        &mut self,
        k: impl FnOnce(&[Tensor]) -> Result<Tensor, kernels::KernelError>,
        inputs: Vec<TVal>,
        span: Span,
    ) -> Res<Value> {
        let mut ts = Vec::new();
        for t in inputs {
            match t {
                TVal::Concrete(t) => ts.push(t),
                TVal::Symbolic(..) => return self.host_only_error("this operation", span),
            }
        }
        match k(&ts) {
            Ok(t) => Ok(Value::Tensor(TVal::Concrete(t))),
            Err(e) => {
                let d = Diagnostic::error(Code::WrongKind, e.to_string()).with_label(span, "");
                self.fail(d)
            }
        }
    }

    /// The function value of an argument (for `map`, `filter`, `py_function`).
    pub(crate) fn func_arg(&mut self, (v, s): (Value, Span), what: &str) -> Res<Option<FuncVal>> {
        match v {
            Value::Func(f) => Ok(Some(f)),
            Value::Poison => Ok(None),
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("`{what}` needs a function, found {}", other.kind_name()),
                )
                .with_label(s, "not a function")
                .with_help(format!(
                    "pass a function name or a lambda: `.{what}(|x| ...)`"
                ));
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

/// The two fixes for code that needs values (SPEC §5): run it eagerly, either by declaring
/// the function `eager fn` or by calling it through `py_function`. A lambda has no name to
/// declare, so its help names a new function instead.
pub(crate) fn eager_fix_help(fname: &str) -> String {
    if fname == "lambda" {
        "move the lambda's body into `eager fn f(x) -> TYPE { ... }` and map `f`, which runs per element on host arrays, \
         or call it as `py_function(|x| ..., [x], TYPE)`"
            .to_string()
    } else {
        format!(
            "declare it `eager fn {fname}(...) -> TYPE {{ ... }}` to run it per element on host arrays, or call it as `py_function({fname}, [args], TYPE)`"
        )
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

/// Reshape target dims from a list of trace-time ints (one -1 allowed).
pub(crate) fn reshape_dims(raw: &[i64]) -> Result<Vec<ReshapeDim>, String> {
    let mut out = Vec::new();
    let mut infer = false;
    for &d in raw {
        if d == -1 {
            if infer {
                return Err("only one dim of a reshape can be -1".into());
            }
            infer = true;
            out.push(ReshapeDim::Infer);
        } else if d < 0 {
            return Err(format!("a reshape dim cannot be {d}"));
        } else {
            out.push(ReshapeDim::Fixed(d as usize));
        }
    }
    Ok(out)
}
