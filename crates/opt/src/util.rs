//! Small helpers the function passes share: finding constants, rewriting uses, remarks.

use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{Function, OpKind, ValueDef, ValueId};
use pipec_tensor::{Scalar, Tensor};

/// The constant tensor defining `v`, if `v` is the output of a `const` op.
pub(crate) fn const_of(func: &Function, v: ValueId) -> Option<&Tensor> {
    match func.values[v.index()].def {
        ValueDef::Op(op, _) => match &func.ops[op.index()].kind {
            OpKind::Const(t) => Some(t),
            _ => None,
        },
        ValueDef::Param(_) => None,
    }
}

/// The op defining `v`, if any.
pub(crate) fn def_op(func: &Function, v: ValueId) -> Option<usize> {
    match func.values[v.index()].def {
        ValueDef::Op(op, _) => Some(op.index()),
        ValueDef::Param(_) => None,
    }
}

/// Every element's bit pattern, in row-major order (a string as its length, then its bytes
/// eight to a word, so that different strings never give the same words).
pub(crate) fn tensor_bits(t: &Tensor) -> Vec<u64> {
    pipec_tensor::plain_dispatch!(t, a => a.iter().map(|v| scalar_bits(Scalar::from_elem(*v))).collect(),
    str => match t {
        Tensor::Str(a) => a
            .iter()
            .flat_map(|b| {
                std::iter::once(b.len() as u64).chain(b.chunks(8).map(|c| {
                    let mut w = [0u8; 8];
                    w[..c.len()].copy_from_slice(c);
                    u64::from_le_bytes(w)
                }))
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// Whether `t` has elements and all are bit-identical to `s`.
pub(crate) fn all_equal_bits(t: &Tensor, s: Scalar) -> bool {
    t.dtype() == s.dtype() && !t.is_empty() && tensor_bits(t).iter().all(|b| *b == scalar_bits(s))
}

/// A scalar's bit pattern (NaN payloads and the sign of zero included).
pub(crate) fn scalar_bits(s: Scalar) -> u64 {
    match s {
        Scalar::Bool(v) => v as u64,
        Scalar::I8(v) => v as u8 as u64,
        Scalar::U8(v) => v as u64,
        Scalar::I16(v) => v as u16 as u64,
        Scalar::U16(v) => v as u64,
        Scalar::I32(v) => v as u32 as u64,
        Scalar::U32(v) => v as u64,
        Scalar::I64(v) => v as u64,
        Scalar::U64(v) => v,
        Scalar::F16(v) => v.to_bits() as u64,
        Scalar::BF16(v) => v.to_bits() as u64,
        Scalar::F32(v) => v.to_bits() as u64,
        Scalar::F64(v) => v.to_bits(),
    }
}

/// A tensor's identity for merging: dtype, shape and the bits of every element.
pub(crate) fn tensor_key(t: &Tensor) -> (String, Vec<usize>, Vec<u64>) {
    (
        t.dtype().name().to_string(),
        t.shape().to_vec(),
        tensor_bits(t),
    )
}

/// Replaces every use of `from` (op operands and function results) with `to`.
pub(crate) fn replace_uses(func: &mut Function, from: ValueId, to: ValueId) {
    for op in &mut func.ops {
        for v in &mut op.inputs {
            if *v == from {
                *v = to;
            }
        }
    }
    for r in &mut func.results {
        if *r == from {
            *r = to;
        }
    }
}

/// How many times each value is used (as an operand or a result).
pub(crate) fn use_counts(func: &Function) -> Vec<usize> {
    let mut n = vec![0; func.values.len()];
    for op in &func.ops {
        for v in &op.inputs {
            n[v.index()] += 1;
        }
    }
    for r in &func.results {
        n[r.index()] += 1;
    }
    n
}

/// Adds a remark `PASS: message` at `span` (the manager drops repeats at the end: a
/// search here would make a pass quadratic in the number of its remarks).
pub(crate) fn remark(
    remarks: &mut Vec<Diagnostic>,
    pass: &str,
    span: Span,
    message: String,
    label: &str,
) {
    let d =
        Diagnostic::remark(Code::PassRemark, format!("{pass}: {message}")).with_label(span, label);
    remarks.push(d);
}

/// Whether evaluating `op` may fail at run time (the op's own declaration decides:
/// `OpKind::may_fail`): such an op is not removed or moved past another one that may fail,
/// so the optimized program reports the same first error as the unoptimized one.
pub(crate) fn op_may_fail(func: &Function, op: &pipec_ir::Op) -> bool {
    let tys: Vec<&pipec_ir::TensorType> = op.inputs.iter().map(|v| func.ty(*v)).collect();
    op.kind.may_fail(&tys)
}
