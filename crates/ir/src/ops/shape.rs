//! Shape ops: reshape, transpose, expand_dims, squeeze, concat, stack, broadcast_to, tile,
//! reverse, slice, ensure_shape and shape. Their type rules use `?` dims: a rule fails only when
//! known dims prove the op impossible, and otherwise leaves the check to run time.

use super::{BatchRule, all_batched};
use crate::function::{OpKind, ReshapeDim};
use crate::types::{Dim, Shape, TensorType};
use pipec_tensor::Tensor;
use pipec_tensor::kernels::{self, KernelError, SliceItem};

/// The run-time shape of a reshape of `len` elements to `dims`: the one `-1` rule, used by
/// typing, evaluation and the tracer's messages.
pub fn resolve_reshape(dims: &[ReshapeDim], len: usize) -> Result<Vec<usize>, String> {
    let fixed: usize = dims
        .iter()
        .map(|d| match d {
            ReshapeDim::Fixed(n) => *n,
            ReshapeDim::Infer => 1,
        })
        .fold(1usize, usize::saturating_mul);
    dims.iter()
        .map(|d| match d {
            ReshapeDim::Fixed(n) => Ok(*n),
            ReshapeDim::Infer if fixed > 0 && len.is_multiple_of(fixed) => Ok(len / fixed),
            ReshapeDim::Infer => Err(format!(
                "cannot reshape {len} elements into a shape with {fixed} elements per -1"
            )),
        })
        .collect()
}

fn axis_ok(axis: usize, rank: usize, op: &str) -> Result<(), String> {
    if axis < rank {
        Ok(())
    } else {
        Err(format!(
            "`{op}` axis {axis} is out of range for rank {rank}"
        ))
    }
}

pub(super) fn infer(kind: &OpKind, inputs: &[&TensorType]) -> Result<TensorType, String> {
    let x = inputs.first().ok_or("no operands")?;
    let dims = &x.shape.0;
    let out = |d: Vec<Dim>| Ok(TensorType::new(x.dtype, Shape(d)));
    match kind {
        OpKind::Reshape(rd) => match x.shape.num_elements() {
            Some(n) => {
                let shape = resolve_reshape(rd, n)?;
                if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(n) {
                    return Err(format!("cannot reshape {} into {shape:?}", x.shape));
                }
                out(shape.into_iter().map(Dim::Known).collect())
            }
            None => out(rd
                .iter()
                .map(|d| match d {
                    ReshapeDim::Fixed(k) => Dim::Known(*k),
                    ReshapeDim::Infer => Dim::Unknown,
                })
                .collect()),
        },
        OpKind::Transpose(perm) => {
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            if sorted != (0..dims.len()).collect::<Vec<_>>() {
                return Err(format!(
                    "{perm:?} is not a permutation of rank {}",
                    dims.len()
                ));
            }
            out(perm.iter().map(|&a| dims[a]).collect())
        }
        OpKind::ExpandDims(axis) => {
            axis_ok(*axis, dims.len() + 1, "expand_dims")?;
            let mut d = dims.clone();
            d.insert(*axis, Dim::Known(1));
            out(d)
        }
        OpKind::Squeeze(axes) => {
            for &a in axes {
                axis_ok(a, dims.len(), "squeeze")?;
                if !dims[a].admits(1) {
                    return Err(format!("cannot squeeze axis {a} of size {}", dims[a]));
                }
            }
            out(dims
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, d)| *d)
                .collect())
        }
        OpKind::Concat(axis) | OpKind::Stack(axis) => {
            let stack = matches!(kind, OpKind::Stack(_));
            let name = kind.mnemonic();
            if inputs.iter().any(|t| t.dtype != x.dtype) {
                return Err(format!("`{name}` of different dtypes"));
            }
            if inputs.iter().any(|t| t.rank() != dims.len()) {
                return Err(format!("`{name}` of different ranks"));
            }
            axis_ok(*axis, dims.len() + usize::from(stack), name)?;
            let mut d = Vec::with_capacity(dims.len() + 1);
            for i in 0..dims.len() {
                if !stack && i == *axis {
                    d.push(
                        inputs
                            .iter()
                            .try_fold(Dim::Known(0), |acc, t| match (acc, t.shape.0[i]) {
                                (Dim::Known(a), Dim::Known(b)) => a.checked_add(b).map(Dim::Known),
                                _ => Some(Dim::Unknown),
                            })
                            .unwrap_or(Dim::Unknown),
                    );
                    continue;
                }
                let mut dim = dims[i];
                for t in &inputs[1..] {
                    match (dim, t.shape.0[i]) {
                        (Dim::Known(a), Dim::Known(b)) if a != b => {
                            return Err(format!("`{name}` of shapes {} and {}", x.shape, t.shape));
                        }
                        (Dim::Unknown, k) => dim = k,
                        _ => {}
                    }
                }
                d.push(dim);
            }
            if stack {
                d.insert(*axis, Dim::Known(inputs.len()));
            }
            out(d)
        }
        OpKind::BroadcastTo(target) => {
            let t = Shape::known(target);
            if Shape::broadcast(&x.shape, &t).as_ref() != Some(&t) {
                return Err(format!("cannot broadcast {} to {t}", x.shape));
            }
            out(t.0)
        }
        OpKind::Tile(reps) => {
            if reps.len() != dims.len() {
                return Err(format!("`tile` needs {} repetitions", dims.len()));
            }
            out(dims
                .iter()
                .zip(reps)
                .map(|(d, r)| d.known().map_or(Dim::Unknown, |n| Dim::Known(n * r)))
                .collect())
        }
        OpKind::Reverse(axes) => {
            for &a in axes {
                axis_ok(a, dims.len(), "reverse")?;
            }
            out(dims.clone())
        }
        OpKind::Slice(items) => {
            let consumed = items
                .iter()
                .filter(|i| !matches!(i, SliceItem::NewAxis))
                .count();
            if consumed > dims.len() {
                return Err(format!(
                    "too many indices ({consumed}) for a tensor of rank {}",
                    dims.len()
                ));
            }
            let mut d = Vec::new();
            let mut axis = 0;
            for item in items {
                match *item {
                    SliceItem::Index(i) => {
                        if let Dim::Known(n) = dims[axis]
                            && (i >= n as i64 || i < -(n as i64))
                        {
                            return Err(format!("index {i} is out of range for size {n}"));
                        }
                        axis += 1;
                    }
                    SliceItem::Range { start, stop, step } => {
                        if step == 0 {
                            return Err("slice step cannot be zero".into());
                        }
                        d.push(match dims[axis] {
                            Dim::Known(n) => Dim::Known(kernels::slice_len(start, stop, step, n)),
                            Dim::Unknown => Dim::Unknown,
                        });
                        axis += 1;
                    }
                    SliceItem::NewAxis => d.push(Dim::Known(1)),
                }
            }
            d.extend_from_slice(&dims[axis..]);
            out(d)
        }
        OpKind::EnsureShape(shape) => {
            if shape.rank() != dims.len()
                || shape
                    .0
                    .iter()
                    .zip(dims)
                    .any(|(a, b)| matches!((a, b), (Dim::Known(p), Dim::Known(q)) if p != q))
            {
                return Err(format!("`ensure_shape` of {} to {shape}", x.shape));
            }
            out(shape.0.clone())
        }
        OpKind::Shape => Ok(TensorType::new(
            pipec_tensor::DType::I64,
            Shape::known(&[dims.len()]),
        )),
        _ => unreachable!("not a shape op"),
    }
}

pub(super) fn eval(kind: &OpKind, inputs: &[Tensor]) -> Result<Tensor, KernelError> {
    let x = &inputs[0];
    match kind {
        OpKind::Reshape(dims) => {
            let shape = resolve_reshape(dims, x.len()).map_err(KernelError::InvalidArgument)?;
            kernels::reshape(x, &shape)
        }
        OpKind::Transpose(perm) => kernels::transpose(x, perm),
        OpKind::ExpandDims(axis) => kernels::expand_dims(x, *axis),
        OpKind::Squeeze(axes) => kernels::squeeze(x, axes),
        OpKind::Concat(axis) => kernels::concat(inputs, *axis),
        OpKind::Stack(axis) => kernels::stack(inputs, *axis),
        OpKind::BroadcastTo(shape) => kernels::broadcast_to(x, shape),
        OpKind::Tile(reps) => kernels::tile(x, reps),
        OpKind::Reverse(axes) => kernels::reverse(x, axes),
        OpKind::Slice(items) => kernels::slice(x, items),
        OpKind::EnsureShape(shape) if shape.admits(x.shape()) => Ok(x.clone()),
        OpKind::EnsureShape(shape) => Err(KernelError::InvalidArgument(format!(
            "ensure_shape expected {shape}, found {:?}",
            x.shape()
        ))),
        OpKind::Shape => Ok(kernels::shape_of(x)),
        _ => unreachable!("not a shape op"),
    }
}

pub(super) fn batch_rule(kind: &OpKind, batched: &[bool], batch: Dim) -> BatchRule {
    let shift = |a: &usize| a + 1;
    let op = match kind {
        OpKind::Reshape(dims) => {
            if dims.contains(&ReshapeDim::Infer) {
                return BatchRule::Refuse("it reshapes with an inferred (-1) dim".into());
            }
            let mut d = vec![ReshapeDim::Infer];
            d.extend(dims.iter().copied());
            OpKind::Reshape(d)
        }
        OpKind::Transpose(perm) => {
            let mut p = vec![0];
            p.extend(perm.iter().map(shift));
            OpKind::Transpose(p)
        }
        OpKind::ExpandDims(a) => OpKind::ExpandDims(a + 1),
        OpKind::Squeeze(axes) => OpKind::Squeeze(axes.iter().map(shift).collect()),
        OpKind::Reverse(axes) => OpKind::Reverse(axes.iter().map(shift).collect()),
        OpKind::Concat(_) | OpKind::Stack(_) if !batched.iter().all(|b| *b) => {
            return BatchRule::Refuse(format!(
                "it joins a per-element tensor with a constant in `{}`",
                kind.mnemonic()
            ));
        }
        OpKind::Concat(a) => OpKind::Concat(a + 1),
        OpKind::Stack(a) => OpKind::Stack(a + 1),
        OpKind::Tile(reps) => {
            let mut r = vec![1];
            r.extend(reps.iter().copied());
            OpKind::Tile(r)
        }
        OpKind::Slice(items) => {
            let mut it = vec![SliceItem::Range {
                start: None,
                stop: None,
                step: 1,
            }];
            it.extend(items.iter().cloned());
            OpKind::Slice(it)
        }
        OpKind::EnsureShape(s) => OpKind::EnsureShape(s.prepend(batch)),
        OpKind::BroadcastTo(_) => {
            return BatchRule::Refuse("it broadcasts to a fixed shape".into());
        }
        // On a batch it would count the batch axis too: one op cannot drop that entry.
        OpKind::Shape => {
            return BatchRule::Refuse("it reads a run-time shape (`shape`)".into());
        }
        other => return BatchRule::Refuse(format!("`{}` has no batched form", other.mnemonic())),
    };
    all_batched(kind, batched, op)
}
