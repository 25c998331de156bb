//! `vmap`: a per-element function rewritten to run on a whole batch at once.
//!
//! Shared by the `vectorize-map` pass (which moves a map after the following `batch`) and
//! by the interpreter's block execution (which runs a map or filter over blocks of
//! consecutive elements). Both rely on the same promise: row `i` of the batched function's
//! result is bit for bit the per-element function's result on element `i`.

use crate::{BatchRule, Dim, Function, Op, OpKind, Shape, TensorType, ValueId};
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
        if !ins.iter().any(|(_, b)| *b) && !op.kind.varies_per_element() {
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
        let in_tys: Vec<&TensorType> = op.inputs.iter().map(|v| f.ty(*v)).collect();
        let batched: Vec<bool> = ins.iter().map(|(_, b)| *b).collect();
        let rule = match &op.kind {
            // On blocks, a host function that runs on them is called once on the whole
            // block (its operands must all be batched, as for every op).
            OpKind::Eager(h) if eager_blocks && batched.iter().all(|b| *b) => {
                match crate::host::on_blocks(h) {
                    Some(rows) => BatchRule::Op(OpKind::Eager(rows)),
                    None => op.kind.batch_rule(&batched, &in_tys, batch),
                }
            }
            k => k.batch_rule(&batched, &in_tys, batch),
        };
        let kind = match rule {
            BatchRule::Refuse(why) => return Err(why),
            BatchRule::Op(kind) => kind,
            BatchRule::Elementwise => {
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
                let outs = vf.push_multi(op.kind.clone(), new_ins, tys, op.span);
                for (o, n) in op.outputs.iter().zip(outs) {
                    map.insert(*o, (n, true));
                }
                continue;
            }
        };
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
