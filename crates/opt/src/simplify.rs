//! `simplify`: algebraic identities that hold for every value — NaN, infinities and `-0.0`
//! included — and whose operand broadcast does not change the result's shape. The result's
//! uses are redirected to the kept operand; `dce` then removes the dead op.
//!
//! Floats: `x * 1`, `1 * x`, `x / 1`, `x - 0.0`, `x + -0.0`, `-0.0 + x`. Integers: `x + 0`,
//! `0 + x`, `x - 0`, `x * 1`, `1 * x`, `x // 1`. Any dtype: `maximum(x, x)`, `minimum(x, x)`,
//! `where(c, x, x)`, `neg(neg(x))`, `!!x`, `x && true`, `x || false`, `reshape` to the same
//! shape, `transpose` by the identity, `broadcast_to`/`ensure_shape` of a value whose
//! static shape already is the target. Deliberately absent: `x + 0.0` (`-0.0 + 0.0` is
//! `+0.0`), `x * 0` and `x - x` on floats (NaN and infinities).

use crate::Pass;
use crate::util::{all_equal_bits, const_of, def_op, remark, replace_uses, use_counts};
use pipec_diag::Diagnostic;
use pipec_ir::{Dim, Function, OpKind, Program, ReshapeDim, Shape, ValueId};
use pipec_tensor::ops::{BinaryOp, UnaryOp};
use pipec_tensor::{DType, Scalar, Tensor};

/// Algebraic simplification.
pub struct Simplify;

/// `1`, `0` or (floats) `-0.0` of a dtype, by the cast rules.
fn special(dtype: DType, which: &str) -> Option<Scalar> {
    if dtype.is_str() {
        return None;
    }
    let v: f64 = match which {
        "one" => 1.0,
        "zero" => 0.0,
        _ => -0.0,
    };
    Some(pipec_tensor::kernels::scalar_from_f64(v, dtype))
}

fn is(t: &Tensor, which: &str) -> bool {
    special(t.dtype(), which).is_some_and(|s| all_equal_bits(t, s))
}

/// Whether broadcasting a value of static shape `small` against one of `big` leaves
/// `big`'s run-time shape unchanged for every run-time shape `big` admits.
pub(crate) fn broadcasts_into(small: &[usize], big: &Shape) -> bool {
    small.len() <= big.rank()
        && small
            .iter()
            .rev()
            .zip(big.0.iter().rev())
            .all(|(&s, &b)| s == 1 || b == Dim::Known(s))
}

/// Whether a reshape to `dims` of a value of static shape `from` always is the identity.
fn reshape_is_identity(from: &Shape, dims: &[ReshapeDim]) -> bool {
    if from.rank() != dims.len() {
        return false;
    }
    let fixed: usize = dims
        .iter()
        .map(|d| if let ReshapeDim::Fixed(n) = d { *n } else { 1 })
        .product();
    dims.iter().zip(&from.0).all(|(d, f)| match d {
        ReshapeDim::Fixed(n) => *f == Dim::Known(*n),
        // With every other dim equal, `-1` infers this one back (unless they hold 0
        // elements, when the kernel rejects the reshape and must still do so).
        ReshapeDim::Infer => fixed > 0,
    })
}

/// Whether `v` may hold a signalling NaN: a float that comes straight from the input (a
/// parameter), a constant, or an op that moves bits without arithmetic. Arithmetic (and a
/// float-to-float cast) always yields quiet NaNs, and `x * 1.0` on a signalling NaN gives a
/// quiet one (numpy's `x * 1.0` too), so removing it is exact only when `x` is never
/// signalling.
pub(crate) fn may_be_signaling_nan(f: &Function, v: ValueId) -> bool {
    if !f.ty(v).dtype.is_float() {
        return false;
    }
    let Some(j) = def_op(f, v) else {
        return true;
    };
    !match &f.ops[j].kind {
        OpKind::Binary(b) => matches!(
            b,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Pow
        ),
        OpKind::Unary(u) => !matches!(u, UnaryOp::Neg | UnaryOp::Abs),
        OpKind::Cast(_) => true,
        _ => false,
    }
}

/// What an op simplifies to, or a reason it looked like an identity but is not one.
enum Outcome {
    Replace(ValueId, &'static str),
    Kept(String),
    Nothing,
}

fn examine(f: &Function, i: usize) -> Outcome {
    let op = &f.ops[i];
    let out = op.outputs[0];
    let out_ty = f.ty(out);
    let dt = out_ty.dtype;
    let same_type = |v: ValueId| f.ty(v) == out_ty;
    match &op.kind {
        OpKind::Binary(b) => {
            let (a, c) = (op.inputs[0], op.inputs[1]);
            if a == c && matches!(b, BinaryOp::Maximum | BinaryOp::Minimum) && same_type(a) {
                return Outcome::Replace(a, "of a value with itself");
            }
            if a == c && *b == BinaryOp::Sub && dt.is_float() {
                return Outcome::Kept("kept `x - x`: not 0 when x is NaN or infinite".into());
            }
            let float = dt.is_float();
            // (kept operand, constant operand) pairs to try.
            let mut tries: Vec<(ValueId, ValueId)> = vec![(a, c)];
            if matches!(
                b,
                BinaryOp::Add | BinaryOp::Mul | BinaryOp::And | BinaryOp::Or
            ) {
                tries.push((c, a));
            }
            for (keep, other) in tries {
                let Some(k) = const_of(f, other) else {
                    continue;
                };
                let identity = match b {
                    BinaryOp::Mul => is(k, "one"),
                    BinaryOp::Div => float && is(k, "one"),
                    BinaryOp::FloorDiv => !float && is(k, "one"),
                    BinaryOp::Add if float => {
                        if is(k, "zero") {
                            return Outcome::Kept(
                                "kept `x + 0.0`: not an identity for floats (-0.0 + 0.0 is +0.0); `x - 0.0` is".into(),
                            );
                        }
                        is(k, "neg_zero")
                    }
                    BinaryOp::Add => is(k, "zero"),
                    BinaryOp::Sub => {
                        if float && is(k, "neg_zero") {
                            return Outcome::Kept(
                                "kept `x - -0.0`: not an identity for floats (-0.0 - -0.0 is +0.0)"
                                    .into(),
                            );
                        }
                        is(k, "zero")
                    }
                    BinaryOp::And => dt == DType::Bool && is(k, "one"),
                    BinaryOp::Or => dt == DType::Bool && is(k, "zero"),
                    _ => false,
                };
                if *b == BinaryOp::Mul && float && is(k, "zero") {
                    return Outcome::Kept(
                        "kept `x * 0`: not 0 when x is NaN, infinite or negative".into(),
                    );
                }
                if !identity {
                    continue;
                }
                if !same_type(keep) || !broadcasts_into(k.shape(), &f.ty(keep).shape) {
                    return Outcome::Kept(format!(
                        "kept `{}` with an identity constant: broadcasting {} against {}{:?} changes the shape",
                        b.name(),
                        f.ty(keep),
                        k.dtype(),
                        k.shape()
                    ));
                }
                if float
                    && matches!(
                        b,
                        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Sub | BinaryOp::Add
                    )
                    && may_be_signaling_nan(f, keep)
                {
                    return Outcome::Kept(format!(
                        "kept `{}` with an identity constant: it turns a signalling NaN of its input into a quiet one, as numpy does",
                        b.name()
                    ));
                }
                return Outcome::Replace(keep, "with an identity constant");
            }
            Outcome::Nothing
        }
        OpKind::Unary(u @ (UnaryOp::Neg | UnaryOp::Not)) => {
            let inner = op.inputs[0];
            match def_op(f, inner).map(|j| &f.ops[j]) {
                Some(d)
                    if matches!(&d.kind, OpKind::Unary(v) if v == u) && same_type(d.inputs[0]) =>
                {
                    Outcome::Replace(d.inputs[0], "of itself")
                }
                _ => Outcome::Nothing,
            }
        }
        OpKind::Select if op.inputs[1] == op.inputs[2] => {
            let (c, x) = (op.inputs[0], op.inputs[1]);
            let c_shape = f.ty(c).shape.as_known();
            if same_type(x) && c_shape.is_some_and(|s| broadcasts_into(&s, &f.ty(x).shape)) {
                Outcome::Replace(x, "with equal branches")
            } else {
                Outcome::Nothing
            }
        }
        OpKind::Reshape(dims)
            if same_type(op.inputs[0]) && reshape_is_identity(&f.ty(op.inputs[0]).shape, dims) =>
        {
            Outcome::Replace(op.inputs[0], "to the same shape")
        }
        OpKind::Transpose(perm)
            if perm.iter().enumerate().all(|(k, p)| k == *p) && same_type(op.inputs[0]) =>
        {
            Outcome::Replace(op.inputs[0], "by the identity permutation")
        }
        OpKind::BroadcastTo(shape)
            if f.ty(op.inputs[0]).shape.as_known().as_ref() == Some(shape)
                && same_type(op.inputs[0]) =>
        {
            Outcome::Replace(op.inputs[0], "to the shape it has")
        }
        OpKind::EnsureShape(shape) => {
            let from = &f.ty(op.inputs[0]).shape;
            let implied = from.rank() == shape.rank()
                && from
                    .0
                    .iter()
                    .zip(&shape.0)
                    .all(|(a, b)| *b == Dim::Unknown || a == b);
            if implied && same_type(op.inputs[0]) {
                Outcome::Replace(op.inputs[0], "already implied by the static type")
            } else {
                Outcome::Nothing
            }
        }
        _ => Outcome::Nothing,
    }
}

impl Pass for Simplify {
    fn name(&self) -> &'static str {
        "simplify"
    }

    fn description(&self) -> &'static str {
        "algebraic identities exact for every value (NaN, inf and -0.0 included)"
    }

    fn run(&self, prog: &mut Program, remarks: &mut Vec<Diagnostic>) -> bool {
        let mut changed = false;
        for f in &mut prog.functions {
            let mut uses = use_counts(f);
            for i in 0..f.ops.len() {
                let op = &f.ops[i];
                if !op.kind.is_pure() || op.outputs.len() != 1 || uses[op.outputs[0].index()] == 0 {
                    continue;
                }
                let (span, name, out) = (op.span, op.kind.mnemonic(), op.outputs[0]);
                match examine(f, i) {
                    Outcome::Replace(to, why) => {
                        replace_uses(f, out, to);
                        uses[to.index()] += uses[out.index()];
                        uses[out.index()] = 0;
                        remark(
                            remarks,
                            self.name(),
                            span,
                            format!("removed `{name}` {why}"),
                            "the result is its operand",
                        );
                        changed = true;
                    }
                    Outcome::Kept(why) => remark(remarks, self.name(), span, why, "not simplified"),
                    Outcome::Nothing => {}
                }
            }
        }
        changed
    }
}
