//! Ops that compute across elements: reductions, `matmul`, `one_hot` and `sort`.

use super::{BatchRule, all_batched};
use crate::function::OpKind;
use crate::types::{Dim, Shape, TensorType};
use pipec_tensor::kernels::{self, KernelError};
use pipec_tensor::{DType, Tensor};

pub(super) fn infer(kind: &OpKind, inputs: &[&TensorType]) -> Result<TensorType, String> {
    let x = inputs[0];
    let dims = &x.shape.0;
    match kind {
        OpKind::Reduce { op, axes, keepdims } => {
            let d = op
                .result_dtype(x.dtype)
                .map_err(|_| format!("`{}` does not take {}", op.name(), x.dtype))?;
            if axes.windows(2).any(|w| w[0] >= w[1]) || axes.iter().any(|&a| a >= dims.len()) {
                return Err(format!(
                    "bad reduction axes {axes:?} for rank {}",
                    dims.len()
                ));
            }
            let mut out = Vec::new();
            for (i, dim) in dims.iter().enumerate() {
                if !axes.contains(&i) {
                    out.push(*dim);
                } else if *keepdims {
                    out.push(Dim::Known(1));
                }
            }
            Ok(TensorType::new(d, Shape(out)))
        }
        OpKind::MatMul => {
            let y = inputs[1];
            if x.dtype != y.dtype || x.dtype == DType::Bool || x.dtype.is_str() {
                return Err(format!("`matmul` of {} and {}", x.dtype, y.dtype));
            }
            let (sa, sb) = (&x.shape.0, &y.shape.0);
            if sa.is_empty() || sb.is_empty() {
                return Err("`matmul` of a scalar".into());
            }
            let k_a = sa[sa.len() - 1];
            let k_b = if sb.len() == 1 {
                sb[0]
            } else {
                sb[sb.len() - 2]
            };
            if let (Dim::Known(p), Dim::Known(q)) = (k_a, k_b)
                && p != q
            {
                return Err(format!("`matmul` inner dims {p} and {q} differ"));
            }
            let batch_a = Shape(sa[..sa.len().saturating_sub(2)].to_vec());
            let batch_b = Shape(sb[..sb.len().saturating_sub(2)].to_vec());
            let mut out = Shape::broadcast(&batch_a, &batch_b)
                .ok_or_else(|| format!("`matmul` batch dims of {} and {}", x.shape, y.shape))?
                .0;
            if sa.len() >= 2 {
                out.push(sa[sa.len() - 2]);
            }
            if sb.len() >= 2 {
                out.push(sb[sb.len() - 1]);
            }
            Ok(TensorType::new(x.dtype, Shape(out)))
        }
        OpKind::OneHot { depth, dtype } => {
            if !x.dtype.is_int() {
                return Err(format!("`one_hot` indices of {}", x.dtype));
            }
            let mut out = dims.clone();
            out.push(Dim::Known(*depth));
            Ok(TensorType::new(*dtype, Shape(out)))
        }
        OpKind::Sort(axis) => {
            if x.dtype.is_str() {
                return Err(format!("`sort` of {}", x.dtype));
            }
            if *axis >= dims.len() {
                return Err(format!("`sort` axis {axis} of rank {}", dims.len()));
            }
            Ok((*x).clone())
        }
        _ => unreachable!("not a compute op"),
    }
}

pub(super) fn eval(kind: &OpKind, inputs: &[Tensor]) -> Result<Tensor, KernelError> {
    match kind {
        OpKind::Reduce { op, axes, keepdims } => kernels::reduce(*op, &inputs[0], axes, *keepdims),
        OpKind::MatMul => kernels::matmul(&inputs[0], &inputs[1]),
        OpKind::OneHot { depth, dtype } => kernels::one_hot(&inputs[0], *depth, *dtype),
        OpKind::Sort(axis) => kernels::sort(&inputs[0], *axis),
        _ => unreachable!("not a compute op"),
    }
}

pub(super) fn batch_rule(kind: &OpKind, batched: &[bool], inputs: &[&TensorType]) -> BatchRule {
    let op = match kind {
        OpKind::Reduce { op, axes, keepdims } => OpKind::Reduce {
            op: *op,
            axes: axes.iter().map(|a| a + 1).collect(),
            keepdims: *keepdims,
        },
        OpKind::Sort(a) => OpKind::Sort(a + 1),
        OpKind::OneHot { depth, dtype } => OpKind::OneHot {
            depth: *depth,
            dtype: *dtype,
        },
        OpKind::MatMul => {
            // A batched right operand of rank 1 would turn into a matrix; everything else
            // batches through matmul's own broadcasting ([B, k] @ [k, n] is exactly B rows
            // of [k] @ [k, n]).
            if batched[1] && inputs[1].rank() == 1 {
                return BatchRule::Refuse(
                    "its matmul has a per-element vector on the right".into(),
                );
            }
            if batched[0] && batched[1] && inputs[0].rank() == 1 {
                return BatchRule::Refuse(
                    "its matmul multiplies two per-element operands of rank 1".into(),
                );
            }
            return BatchRule::Op(OpKind::MatMul);
        }
        _ => unreachable!("not a compute op"),
    };
    all_batched(kind, batched, op)
}
