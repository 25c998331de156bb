//! `vectorize-map`: `map(f).batch(n)` becomes `batch(n).map(f')`, where `f'` is `f` with a
//! leading batch axis on every value, so `f` runs once per batch instead of once per
//! element (the main speed lever for small elements). Only done when every op of `f` has
//! a batched form that computes exactly the per-element results, row by row.

use super::only_consumer;
use crate::Pass;
use pipec_diag::{Code, Diagnostic};
use pipec_ir::vmap::vectorize;
use pipec_ir::{Dim, DsKind, Program, TensorType};

/// The `vectorize-map` pass.
pub struct VectorizeMap;

impl Pass for VectorizeMap {
    fn name(&self) -> &'static str {
        "vectorize-map"
    }

    fn description(&self) -> &'static str {
        "run a batch-polymorphic map once per batch: map(f).batch(n) -> batch(n).map(f')"
    }

    fn run(&self, prog: &mut Program, remarks: &mut Vec<Diagnostic>) -> bool {
        let mut changed = false;
        for pi in super::pipelines(prog) {
            for node in prog.pipelines[pi].topo_order() {
                let p = &prog.pipelines[pi];
                let DsKind::Map {
                    func,
                    parallelism,
                    deterministic,
                } = p.graph[node].kind.clone()
                else {
                    continue;
                };
                let span = p.graph[node].span;
                let note = |why: String, remarks: &mut Vec<Diagnostic>| {
                    let d = Diagnostic::remark(
                        Code::PassRemark,
                        format!("vectorize-map: not vectorized: {why}"),
                    )
                    .with_label(span, "this map");
                    remarks.push(d);
                };
                let input = p.inputs(node)[0];
                if matches!(
                    p.graph[input].kind,
                    DsKind::Batch { .. } | DsKind::PaddedBatch { .. }
                ) {
                    // Already runs once per batch.
                    continue;
                }
                let Some(next) = only_consumer(p, node) else {
                    note(
                        "its elements are not batched right after it".into(),
                        remarks,
                    );
                    continue;
                };
                let DsKind::Batch {
                    size,
                    drop_remainder,
                } = p.graph[next].kind
                else {
                    note(
                        format!(
                            "it is followed by `{}`, not `batch`",
                            p.graph[next].kind.mnemonic()
                        ),
                        remarks,
                    );
                    continue;
                };
                let batch_dim = if drop_remainder {
                    Dim::Known(size)
                } else {
                    Dim::Unknown
                };
                let f = prog.func(func);
                if drop_remainder && f.ops.iter().any(|op| crate::util::op_may_fail(f, op)) {
                    // After the swap, rows of a dropped final batch would never be mapped,
                    // so an error the unoptimized program reports on them would vanish.
                    note(
                        "it may fail on an element that `drop_remainder` drops, and that \
                         error must still be reported"
                            .into(),
                        remarks,
                    );
                    continue;
                }
                if failure_sites(f) >= 2 {
                    // On a whole batch the op that fails first in program order is reported;
                    // element by element it is the first failing element's. With one op that
                    // may fail the two agree (its first failing row is the first element).
                    note(
                        "more than one of its operations may fail: on a whole batch the \
                         first failing operation would be reported, not the first failing \
                         element"
                            .into(),
                        remarks,
                    );
                    continue;
                }
                let vf = match vectorize(f, batch_dim) {
                    Ok(vf) => vf,
                    Err(why) => {
                        note(why, remarks);
                        continue;
                    }
                };
                let in_elem = p.graph[input].elem.clone();
                let batched_in = in_elem
                    .map_leaves(&mut |t| TensorType::new(t.dtype, t.shape.prepend(batch_dim)));
                let out_elem = p.graph[next].elem.clone();
                let id = prog.add_function(vf);
                let p = &mut prog.pipelines[pi];
                // Swap the two nodes' roles: the map node becomes the batch, the batch the map.
                p.graph[node].kind = DsKind::Batch {
                    size,
                    drop_remainder,
                };
                p.graph[node].elem = batched_in;
                let batch_span = p.graph[next].span;
                p.graph[node].span = batch_span;
                p.graph[next].kind = DsKind::Map {
                    func: id,
                    parallelism,
                    deterministic,
                };
                p.graph[next].elem = out_elem;
                p.graph[next].span = span;
                remarks.push(
                    Diagnostic::remark(Code::PassRemark, format!("vectorize-map: runs once per batch of {size} instead of once per element"))
                        .with_label(span, "vectorized"),
                );
                changed = true;
            }
        }
        if changed {
            super::gc_functions(prog);
        }
        changed
    }
}

/// How many places in `f` may fail at run time: each op that may fail, and each
/// instruction of a fused op that may fail.
fn failure_sites(f: &pipec_ir::Function) -> usize {
    f.ops
        .iter()
        .map(|op| {
            let own = usize::from(crate::util::op_may_fail(f, op));
            match &op.kind {
                pipec_ir::OpKind::Fused(body) => body
                    .insts
                    .iter()
                    .filter(|i| {
                        matches!(i, pipec_ir::FusedOp::Binary(b, a, _) if b.may_fail(body.dtype(*a)))
                    })
                    .count()
                    .max(own),
                _ => own,
            }
        })
        .sum()
}
