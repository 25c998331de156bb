//! `vmap`: a per-element function rewritten to run on a whole batch at once.
//!
//! Shared by the `vectorize-map` pass (which moves a map after the following `batch`) and
//! by the interpreter's block execution (which runs a map or filter over blocks of
//! consecutive elements). Both rely on the same promise: row `i` of the batched function's
//! result is bit for bit the per-element function's result on element `i`.

use crate::{Dim, Function, Op, OpKind, ReshapeDim, Shape, TensorType, ValueId};
use pipec_tensor::kernels::SliceItem;
use std::collections::HashMap;

/// `f` with a leading batch axis of size `batch` on every parameter, or why not.
pub fn vectorize(f: &Function, batch: Dim) -> Result<Function, String> {
    vectorize_impl(f, batch, false)
}

/// [`vectorize`] for the runtime's blocks: an eager call whose host function runs on blocks
/// ([`crate::HostFunction::runs_on_blocks`]) becomes one call on the whole block. Not for
/// the compile-time pass, whose IR would then show a host call the source never made.
pub fn vectorize_blocks(f: &Function, batch: Dim) -> Result<Function, String> {
    vectorize_impl(f, batch, true)
}

fn vectorize_impl(f: &Function, batch: Dim, eager_blocks: bool) -> Result<Function, String> {
    let batched_ty = |t: &TensorType| TensorType::new(t.dtype, t.shape.prepend(batch));
    let mut vf = Function::new(
        format!("{}.v", f.name),
        f.span,
        f.param_types().iter().map(batched_ty).collect(),
    );
    // Old value → (new value, whether it carries the batch axis).
    let mut map: HashMap<ValueId, (ValueId, bool)> = HashMap::new();
    for (old, new) in f.params.iter().zip(vf.params.clone()) {
        map.insert(*old, (new, true));
    }
    for op in &f.ops {
        let ins: Vec<(ValueId, bool)> = op.inputs.iter().map(|v| map[v]).collect();
        let out_ty = |k: usize| f.ty(op.outputs[k]).clone();
        if !ins.iter().any(|(_, b)| *b) {
            // Nothing batched flows in: the op is the same for every element.
            if !op.kind.is_pure() {
                return Err(format!("it calls the eager function `{}`", eager_name(op)));
            }
            let tys = (0..op.outputs.len()).map(out_ty).collect();
            let outs = vf.push_multi(
                op.kind.clone(),
                ins.iter().map(|(v, _)| *v).collect(),
                tys,
                op.span,
            );
            for (o, n) in op.outputs.iter().zip(outs) {
                map.insert(*o, (n, false));
            }
            continue;
        }
        let shift = |a: &usize| a + 1;
        let kind = match &op.kind {
            // On blocks, a host function that runs on them is called once on the whole
            // block (its operands must all be batched, as below for every op).
            OpKind::Eager(h) => match eager_blocks.then(|| crate::host::on_blocks(h)).flatten() {
                Some(rows) => OpKind::Eager(rows),
                None => return Err(format!("it calls the eager function `{}`", eager_name(op))),
            },
            OpKind::Const(_) => unreachable!("constants have no inputs"),
            k if k.is_elementwise() => {
                // Batched operands must keep their axes aligned under numpy's right-aligned
                // broadcasting: give lower-rank batched operands size-1 axes after the batch axis.
                // A fused op kept only because it may fail has no outputs; its (broadcast)
                // rank is then that of its widest operand.
                let out_rank = match op.outputs.first() {
                    Some(&o) => f.ty(o).rank(),
                    None => op.inputs.iter().map(|v| f.ty(*v).rank()).max().unwrap_or(0),
                };
                let mut new_ins = Vec::new();
                for ((v, b), old) in ins.iter().zip(&op.inputs) {
                    let r = f.ty(*old).rank();
                    if *b && r < out_rank {
                        let mut cur = *v;
                        for _ in r..out_rank {
                            let t = vf.ty(cur).clone();
                            let mut dims = t.shape.0.clone();
                            dims.insert(1, Dim::Known(1));
                            cur = vf.push(
                                OpKind::ExpandDims(1),
                                vec![cur],
                                TensorType::new(t.dtype, Shape(dims)),
                                op.span,
                            );
                        }
                        new_ins.push(cur);
                    } else {
                        new_ins.push(*v);
                    }
                }
                // A fused op may have several outputs, all of the region's one shape.
                let tys = (0..op.outputs.len())
                    .map(|k| batched_ty(&out_ty(k)))
                    .collect();
                let outs = vf.push_multi(k.clone(), new_ins, tys, op.span);
                for (o, n) in op.outputs.iter().zip(outs) {
                    map.insert(*o, (n, true));
                }
                continue;
            }
            OpKind::Reduce {
                op: r,
                axes,
                keepdims,
            } => OpKind::Reduce {
                op: *r,
                axes: axes.iter().map(shift).collect(),
                keepdims: *keepdims,
            },
            OpKind::Reshape(dims) => {
                if dims.contains(&ReshapeDim::Infer) {
                    return Err("it reshapes with an inferred (-1) dim".into());
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
            OpKind::Sort(a) => OpKind::Sort(a + 1),
            OpKind::Concat(a) | OpKind::Stack(a) if ins.iter().all(|(_, b)| *b) => match &op.kind {
                OpKind::Concat(_) => OpKind::Concat(a + 1),
                _ => OpKind::Stack(a + 1),
            },
            OpKind::Concat(_) | OpKind::Stack(_) => {
                return Err(format!(
                    "it joins a per-element tensor with a constant in `{}`",
                    op.kind.mnemonic()
                ));
            }
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
            OpKind::OneHot { depth, dtype } => OpKind::OneHot {
                depth: *depth,
                dtype: *dtype,
            },
            OpKind::EnsureShape(s) => OpKind::EnsureShape(s.prepend(batch)),
            OpKind::MatMul => {
                // A batched right operand of rank 1 would turn into a matrix; everything
                // else batches through matmul's own broadcasting.
                if ins[1].1 && f.ty(op.inputs[1]).rank() == 1 {
                    return Err("its matmul has a per-element vector on the right".into());
                }
                if ins[0].1 && ins[1].1 && f.ty(op.inputs[0]).rank() == 1 {
                    return Err("its matmul multiplies two per-element operands of rank 1".into());
                }
                // Otherwise matmul's own batch broadcasting computes each row alone
                // ([B, k] @ [k, n] is exactly B rows of [k] @ [k, n]).
                OpKind::MatMul
            }
            OpKind::BroadcastTo(_) => return Err("it broadcasts to a fixed shape".into()),
            other => return Err(format!("`{}` has no batched form", other.mnemonic())),
        };
        if !ins.iter().all(|(_, b)| *b) && !matches!(op.kind, OpKind::MatMul) {
            return Err(format!(
                "`{}` mixes per-element and constant operands",
                op.kind.mnemonic()
            ));
        }
        let tys = (0..op.outputs.len())
            .map(|k| batched_ty(&out_ty(k)))
            .collect();
        let outs = vf.push_multi(kind, ins.iter().map(|(v, _)| *v).collect(), tys, op.span);
        for (o, n) in op.outputs.iter().zip(outs) {
            map.insert(*o, (n, true));
        }
    }
    let mut results = Vec::new();
    for r in &f.results {
        let (v, b) = map[r];
        if !b {
            return Err("a result does not depend on the element".into());
        }
        results.push(v);
    }
    vf.results = results;
    vf.batched = true;
    Ok(vf)
}

fn eager_name(op: &Op) -> String {
    match &op.kind {
        OpKind::Eager(h) => h.name().to_string(),
        _ => String::new(),
    }
}
