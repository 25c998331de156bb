//! Shape builtins: `reshape`, `transpose`, `expand_dims`, `squeeze`, `concat`/`stack`,
//! `broadcast_to`, `tile`, `reverse`, `ensure_shape` and `len`.

use super::{Call, req};
use crate::eval::{Eval, Res, tval_type};
use crate::infer;
use crate::value::{Num, TVal, Value};
use pipec_diag::{Code, Diagnostic};
use pipec_ir::{Dim, OpKind, ReshapeDim, Shape, TensorType};

pub(super) fn reshape(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    let sspan = req(&a, 1).1;
    let raw = some!(ev.int_list(req(&a, 1), "a shape")?);
    let dims = match reshape_dims(&raw) {
        Ok(d) => d,
        Err(msg) => {
            let d = Diagnostic::error(Code::BadReshape, msg)
                .with_label(sspan, "this shape")
                .with_help("use -1 for at most one dim; every other dim is a size, 0 or more");
            return ev.fail(d);
        }
    };
    // Saturating: a product past `usize` cannot match any real element count
    // (and a 0 anywhere still makes it exactly 0).
    let fixed: usize = dims
        .iter()
        .map(|d| if let ReshapeDim::Fixed(n) = d { *n } else { 1 })
        .fold(1usize, usize::saturating_mul);
    let has_infer = dims.contains(&ReshapeDim::Infer);
    if let Some(n) = ty.shape.num_elements() {
        let ok = if has_infer {
            fixed != 0 && n % fixed == 0
        } else {
            n == fixed
        };
        if !ok {
            let d = Diagnostic::error(
                Code::BadReshape,
                format!("cannot reshape {} ({n} elements) into {:?}", ty.shape, raw),
            )
            .with_label(
                sspan,
                format!(
                    "{} elements",
                    if has_infer {
                        format!("a multiple of {fixed}")
                    } else {
                        fixed.to_string()
                    }
                ),
            )
            .with_help("the element count must stay the same; use -1 to infer one dim");
            return ev.fail(d);
        }
    }
    ev.emit(OpKind::Reshape(dims), vec![t], span)
}

pub(super) fn transpose(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    let perm: Vec<usize> = match a[1].clone() {
        None => (0..ty.rank()).rev().collect(),
        Some(p) => {
            let ps = p.1;
            let raw = some!(ev.int_list(p, "a permutation")?);
            let mut perm = Vec::new();
            for i in raw {
                let Some(axis) = infer::norm_axis(i, ty.rank()) else {
                    let d = Diagnostic::error(
                        Code::BadAxis,
                        format!(
                            "axis {i} is out of range for a tensor of rank {}",
                            ty.rank()
                        ),
                    )
                    .with_label(ps, "in this permutation")
                    .with_help("a permutation lists each axis 0 to rank - 1 once");
                    return ev.fail(d);
                };
                perm.push(axis);
            }
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            if sorted != (0..ty.rank()).collect::<Vec<_>>() {
                let d = Diagnostic::error(
                    Code::BadAxis,
                    format!("{perm:?} is not a permutation of the {} axes", ty.rank()),
                )
                .with_label(ps, "");
                return ev.fail(d);
            }
            perm
        }
    };
    ev.emit(OpKind::Transpose(perm), vec![t], span)
}

pub(super) fn expand_dims(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    let axis = some!(ev.one_axis(a[1].clone(), ty.rank() + 1, 0)?);
    ev.emit(OpKind::ExpandDims(axis), vec![t], span)
}

pub(super) fn squeeze(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    let axes: Vec<usize> = match a[1].clone() {
        None => ty
            .shape
            .0
            .iter()
            .enumerate()
            .filter(|(_, d)| **d == Dim::Known(1))
            .map(|(i, _)| i)
            .collect(),
        Some(v) => some!(ev.axes_arg(Some(v), ty.rank())?),
    };
    for &ax in &axes {
        if ty.shape.0[ax] != Dim::Known(1) && ty.shape.0[ax] != Dim::Unknown {
            let d = Diagnostic::error(
                Code::BadAxis,
                format!("cannot squeeze axis {ax} of size {}", ty.shape.0[ax]),
            )
            .with_label(span, "only size-1 axes can be squeezed");
            return ev.fail(d);
        }
    }
    ev.emit(OpKind::Squeeze(axes), vec![t], span)
}

pub(super) fn concat_stack(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let (v, vs) = req(&a, 0);
    let parts = match v {
        Value::List(vs) | Value::Tuple(vs) => vs,
        Value::Tensor(TVal::Concrete(t)) if t.rank() >= 1 => (0..t.shape()[0])
            .map(|i| Value::Tensor(TVal::Concrete(t.index_axis0(i))))
            .collect(),
        other => {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!(
                    "`{name}` takes a list of tensors, found {}",
                    other.kind_name()
                ),
            )
            .with_label(vs, "")
            .with_help(format!("`{name}([a, b], axis: 0)`"));
            return ev.fail(d);
        }
    };
    if parts.is_empty() {
        let d = Diagnostic::error(Code::WrongKind, format!("`{name}` of an empty list"))
            .with_label(vs, "");
        return ev.fail(d);
    }
    // Weak numbers take the dtype of the first tensor (or their default).
    let first_dtype = parts.iter().find_map(|p| {
        if let Value::Tensor(t) = p {
            Some(tval_type(t).dtype)
        } else {
            None
        }
    });
    let mut ts = Vec::new();
    for p in parts {
        let t = match (&p, first_dtype) {
            (Value::Num(_) | Value::Bool(_), Some(dt)) => ev.weak_scalar(&p, dt, vs)?,
            _ => ev.tensor_operand(p, vs)?,
        };
        ts.push(some!(t));
    }
    let tys: Vec<TensorType> = ts.iter().map(tval_type).collect();
    let dtype = tys[0].dtype;
    if let Some(bad) = tys.iter().find(|t| t.dtype != dtype) {
        let d = Diagnostic::error(
            Code::DtypeMismatch,
            format!("`{name}` of {dtype} and {}", bad.dtype),
        )
        .with_label(vs, "")
        .with_help("cast them to one dtype");
        return ev.fail(d);
    }
    let rank = tys[0].rank();
    if let Some(other) = tys.iter().find(|t| t.rank() != rank) {
        let d = Diagnostic::error(
            Code::ConcatMismatch,
            format!(
                "`{name}` of tensors with different ranks: {} and {other}",
                tys[0]
            ),
        )
        .with_label(vs, format!("ranks {rank} and {}", other.rank()))
        .with_help("`expand_dims` or `reshape` the operands to one rank first");
        return ev.fail(d);
    }
    let out_rank = if name == "stack" { rank + 1 } else { rank };
    if out_rank == 0 {
        let d = Diagnostic::error(Code::ConcatMismatch, "cannot concat scalars")
            .with_label(vs, "")
            .with_help("use `stack` to make a vector of scalars");
        return ev.fail(d);
    }
    let axis = some!(ev.one_axis(a[1].clone(), out_rank, 0)?);
    // Every dim but the concatenation axis must agree where both are known.
    for i in 0..rank {
        if name == "concat" && i == axis {
            continue;
        }
        let mut d = tys[0].shape.0[i];
        for t in &tys[1..] {
            match (d, t.shape.0[i]) {
                (Dim::Known(x), Dim::Known(y)) if x != y => {
                    let d = Diagnostic::error(
                        Code::ConcatMismatch,
                        format!("`{name}` of shapes {} and {}", tys[0].shape, t.shape),
                    )
                    .with_label(vs, format!("dim {i} differs"))
                    .with_help("all dims but the concatenation axis must agree");
                    return ev.fail(d);
                }
                (Dim::Unknown, k) => d = k,
                _ => {}
            }
        }
    }
    let kind = if name == "stack" {
        OpKind::Stack(axis)
    } else {
        OpKind::Concat(axis)
    };
    ev.emit(kind, ts, span)
}

pub(super) fn broadcast_to(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    let sspan = req(&a, 1).1;
    let shape = some!(ev.usize_list(req(&a, 1), "a shape")?);
    let target = Shape::known(&shape);
    if pipec_ir::Shape::broadcast(&ty.shape, &target).as_ref() != Some(&target) {
        let d = Diagnostic::error(
            Code::BroadcastMismatch,
            format!("cannot broadcast {} to {}", ty.shape, target),
        )
        .with_label(sspan, "");
        return ev.fail(d);
    }
    ev.emit(OpKind::BroadcastTo(shape), vec![t], span)
}

pub(super) fn tile(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    let rspan = req(&a, 1).1;
    let reps = some!(ev.usize_list(req(&a, 1), "repetitions")?);
    if reps.len() != ty.rank() {
        let d = Diagnostic::error(
            Code::BadAxis,
            format!("`tile` needs {} repetitions, one per axis", ty.rank()),
        )
        .with_label(rspan, format!("{} given", reps.len()));
        return ev.fail(d);
    }
    ev.emit(OpKind::Tile(reps), vec![t], span)
}

pub(super) fn reverse(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    let axes = some!(ev.axes_arg(a[1].clone(), ty.rank())?);
    ev.emit(OpKind::Reverse(axes), vec![t], span)
}

pub(super) fn ensure_shape(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    let sspan = req(&a, 1).1;
    let raw = some!(ev.int_list(req(&a, 1), "a shape")?);
    let shape = Shape(
        raw.iter()
            .map(|&d| {
                if d < 0 {
                    Dim::Unknown
                } else {
                    Dim::Known(d as usize)
                }
            })
            .collect(),
    );
    let compatible = shape.rank() == ty.rank()
        && shape.0.iter().zip(&ty.shape.0).all(|(a, b)| match (a, b) {
            (Dim::Known(x), Dim::Known(y)) => x == y,
            _ => true,
        });
    if !compatible {
        let d = Diagnostic::error(
            Code::EnsureShapeFailed,
            format!("`ensure_shape` to {shape}, but the tensor is {}", ty.shape),
        )
        .with_label(sspan, "can never match");
        return ev.fail(d);
    }
    let merged = Shape(
        shape
            .0
            .iter()
            .zip(&ty.shape.0)
            .map(|(a, b)| if *a == Dim::Unknown { *b } else { *a })
            .collect(),
    );
    ev.emit(OpKind::EnsureShape(merged), vec![t], span)
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

/// `len(x)`: a trace-time count (a symbolic dim when the first dim is `?`).
pub(super) fn len(ev: &mut Eval<'_>, Call { args: a, .. }: Call) -> Res<Value> {
    let (v, s) = req(&a, 0);
    match v {
        Value::Tuple(vs) | Value::List(vs) => Ok(Value::Num(Num::Int(vs.len() as i128))),
        Value::Str(st) => Ok(Value::Num(Num::Int(st.chars().count() as i128))),
        other => {
            let Some(t) = ev.tensor_of(other, s)? else {
                return Ok(Value::Poison);
            };
            let ty = tval_type(&t);
            match ty.shape.0.first() {
                None => {
                    let d = Diagnostic::error(Code::WrongKind, "`len` of a scalar")
                        .with_label(s, "rank 0")
                        .with_help("`len` counts the first dim");
                    ev.fail(d)
                }
                Some(Dim::Known(n)) => Ok(Value::Num(Num::Int(*n as i128))),
                Some(Dim::Unknown) => Ok(Value::SymDim(std::sync::Arc::new(crate::value::DimOf {
                    of: t,
                    axis: Some(0),
                }))),
            }
        }
    }
}

/// `shape(x)`: the run-time shape as `i64[rank]` (SPEC §4), like `tf.shape`.
pub(super) fn shape(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let (v, s) = req(&a, 0);
    match ev.tensor_of(v, s)? {
        Some(t) => ev.shape_of(t, span),
        None => Ok(Value::Poison),
    }
}
