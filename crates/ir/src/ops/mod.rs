//! What the compiler knows about each op kind, declared in one place per op family.
//!
//! For every [`OpKind`] this module answers the questions the stages ask:
//! - [`OpKind::infer`]: the result types from the operand types (the tracer types what it
//!   emits with it, and [`crate::verify`] re-runs it on every op after tracing and after
//!   every pass, so the two cannot drift apart);
//! - [`OpKind::eval`] (in each family file): the meaning, as calls into the shared kernels;
//! - [`OpKind::may_fail`] and [`OpKind::has_effect`]: what every pass that removes, moves
//!   or speculates an op must respect;
//! - [`OpKind::batch_rule`]: how the op runs on a leading batch axis (`vmap`);
//! - [`OpKind::cost`]: a rough cost per output element, for the fused kernel's cost model.
//!
//! The elementwise ops' own facts (names, dtype rules, kernels, costs, which dtypes may
//! fail) come from the op tables of `pipec_tensor::ops`; the families here add the
//! tensor-level rules. Files: `elementwise.rs` (unary, binary, cast, where, clip, fused),
//! `shape.rs` (reshape, transpose, expand_dims, squeeze, concat, stack, broadcast_to, tile,
//! reverse, slice, ensure_shape), `compute.rs` (reductions, matmul, one_hot, sort),
//! `special.rs` (constants and eager calls), `strings.rs` (the `str` ops, declared with their
//! kernels in `pipec_tensor::kernels::strings`).

mod compute;
mod elementwise;
mod shape;
mod special;
mod strings;

use crate::function::OpKind;
use crate::types::{Dim, TensorType};
use pipec_tensor::Tensor;
use pipec_tensor::kernels::KernelError;
use pipec_tensor::kernels::strings::StrOp;

pub use shape::resolve_reshape;

/// How an op runs when some operands carry a leading batch axis.
#[derive(Debug)]
pub enum BatchRule {
    /// Elementwise: the same op, with batched operands of lower rank given size-1 axes
    /// after the batch axis so numpy's right-aligned broadcasting keeps rows apart.
    Elementwise,
    /// This op kind on the batched operands (axes shifted past the batch axis).
    Op(OpKind),
    /// No batched form computes exactly the per-element rows; why.
    Refuse(String),
}

impl OpKind {
    /// The result types for operands of types `inputs`, or why the op cannot take them.
    /// `None` for an eager call: its results are what its declaration says.
    pub fn infer(&self, inputs: &[&TensorType]) -> Option<Result<Vec<TensorType>, String>> {
        let arity = self.arity();
        if let Some(n) = arity
            && inputs.len() != n
        {
            return Some(Err(format!(
                "`{}` takes {n} operand(s), found {}",
                self.mnemonic(),
                inputs.len()
            )));
        }
        Some(match self {
            OpKind::Const(t) => Ok(vec![special::const_type(t)]),
            OpKind::Eager(_) => return None,
            OpKind::Unary(_)
            | OpKind::Binary(_)
            | OpKind::Cast(_)
            | OpKind::Select
            | OpKind::Clip
            | OpKind::Fused(_) => elementwise::infer(self, inputs),
            OpKind::Reduce { .. } | OpKind::MatMul | OpKind::OneHot { .. } | OpKind::Sort(_) => {
                compute::infer(self, inputs).map(|t| vec![t])
            }
            OpKind::Str(op) => strings::infer(op, inputs).map(|t| vec![t]),
            _ => shape::infer(self, inputs).map(|t| vec![t]),
        })
    }

    /// How many operands the op takes, if fixed.
    pub fn arity(&self) -> Option<usize> {
        match self {
            OpKind::Const(_) => Some(0),
            OpKind::Unary(_) | OpKind::Cast(_) | OpKind::Reduce { .. } => Some(1),
            OpKind::Binary(_) | OpKind::MatMul => Some(2),
            OpKind::Select | OpKind::Clip => Some(3),
            OpKind::Concat(_) | OpKind::Stack(_) | OpKind::Fused(_) | OpKind::Eager(_) => None,
            OpKind::Str(StrOp::Format(_)) => None,
            OpKind::Str(StrOp::Substr) => Some(3),
            _ => Some(1),
        }
    }

    /// Evaluates a pure op on host tensors: the one meaning of every op, used by the
    /// interpreter, trace-time evaluation and `const-fold`. Eager ops need a host instance
    /// and are run by the runtime instead.
    pub fn eval(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, KernelError> {
        match self {
            OpKind::Const(_) | OpKind::Eager(_) => special::eval(self),
            OpKind::Unary(_)
            | OpKind::Binary(_)
            | OpKind::Cast(_)
            | OpKind::Select
            | OpKind::Clip
            | OpKind::Fused(_) => elementwise::eval(self, inputs),
            OpKind::Reduce { .. } | OpKind::MatMul | OpKind::OneHot { .. } | OpKind::Sort(_) => {
                compute::eval(self, inputs).map(|t| vec![t])
            }
            OpKind::Str(op) => strings::eval(op, inputs).map(|t| vec![t]),
            _ => shape::eval(self, inputs).map(|t| vec![t]),
        }
    }

    /// Whether the op has an effect beyond its results (an eager call may print, talk to a
    /// worker, keep state): such an op is never removed, merged, moved or run speculatively.
    pub fn has_effect(&self) -> bool {
        matches!(self, OpKind::Eager(_))
    }

    /// Whether the op has no effects and depends only on its inputs.
    pub fn is_pure(&self) -> bool {
        !self.has_effect()
    }

    /// Whether evaluating the op on operands of these types may fail for some values
    /// (an integer division by zero, a negative integer power, a shape known only at run
    /// time that may not fit, an eager call). Passes never remove such an op, nor run it
    /// on elements or before ops the unoptimized program would not have.
    pub fn may_fail(&self, inputs: &[&TensorType]) -> bool {
        let unknown_shape = || inputs.iter().any(|t| t.shape.as_known().is_none());
        match self {
            // Reading a shape never fails, whatever the shape.
            OpKind::Const(_) | OpKind::Shape => false,
            OpKind::Eager(_) | OpKind::EnsureShape(_) => true,
            OpKind::Unary(_) | OpKind::Cast(_) => false,
            OpKind::Binary(op) => {
                inputs.first().is_some_and(|t| op.may_fail(t.dtype)) || unknown_shape()
            }
            OpKind::Fused(body) => body.may_fail() || unknown_shape(),
            OpKind::Str(op) => op.may_fail() || unknown_shape(),
            // A reshape of a fully known shape was checked when it was typed.
            _ => unknown_shape(),
        }
    }

    /// A rough cost of one output element, in units of one simple vector op.
    pub fn cost(&self) -> usize {
        match self {
            OpKind::Unary(op) => op.cost(),
            OpKind::Binary(op) => op.cost(),
            OpKind::Fused(body) => body.cost(),
            OpKind::Const(_) => 0,
            _ => 1,
        }
    }

    /// How the op runs with a leading batch axis of size `batch` on the operands marked in
    /// `batched` (at least one), whose per-element types are `inputs`.
    pub fn batch_rule(&self, batched: &[bool], inputs: &[&TensorType], batch: Dim) -> BatchRule {
        match self {
            OpKind::Eager(h) => {
                BatchRule::Refuse(format!("it calls the eager function `{}`", h.name()))
            }
            OpKind::Const(_) => BatchRule::Refuse("a constant has no operands".into()),
            k if k.is_elementwise() => BatchRule::Elementwise,
            OpKind::Str(op) => strings::batch_rule(self, op),
            OpKind::Reduce { .. } | OpKind::MatMul | OpKind::OneHot { .. } | OpKind::Sort(_) => {
                compute::batch_rule(self, batched, inputs)
            }
            _ => shape::batch_rule(self, batched, batch),
        }
    }

    /// Whether the op is elementwise (each output element depends on the matching input
    /// elements).
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            OpKind::Unary(_)
                | OpKind::Binary(_)
                | OpKind::Cast(_)
                | OpKind::Select
                | OpKind::Clip
                | OpKind::Fused(_)
        )
    }
}

/// Every op but matmul needs every operand batched once one is.
fn all_batched(kind: &OpKind, batched: &[bool], op: OpKind) -> BatchRule {
    if batched.iter().all(|b| *b) {
        BatchRule::Op(op)
    } else {
        BatchRule::Refuse(format!(
            "`{}` mixes per-element and constant operands",
            kind.mnemonic()
        ))
    }
}
