//! `vectorize-map`: `map(f).batch(n)` becomes `batch(n).map(f')`, where `f'` is `f` with a
//! leading batch axis on every value, so `f` runs once per batch instead of once per
//! element (the main speed lever for small elements). Only done when every op of `f` has
//! a batched form that computes exactly the per-element results, row by row.

use super::only_consumer;
use crate::Pass;
use pipec_diag::{Code, Diagnostic};
use pipec_ir::vmap::vectorize;
use pipec_ir::{Dim, DsKind, DsNodeId, Pipeline, Program, Source, TensorType};

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
                let may_fail = f.ops.iter().any(|op| crate::util::op_may_fail(f, op));
                if drop_remainder && may_fail {
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
                if may_fail && upstream_may_fail(prog, p, node) {
                    // Element by element, this map fails on element i before anything
                    // upstream runs on element j > i; after the swap `batch` pulls up to a
                    // whole batch first, so an upstream error on j would be reported instead.
                    note(
                        "it may fail, and so may what runs before it: after the swap an \
                         error upstream of `batch` on a later element would be reported \
                         instead of this map's error on an earlier one"
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

/// Whether anything upstream of `node` may report an error at run time, or have an effect:
/// every node but those that never fail (`range`, `take`, `skip`, `repeat`, `enumerate`,
/// `shard`, `zip`, `concatenate`, `unbatch`, array sources, and maps and filters whose
/// functions neither fail nor have effects). An array source's rows cannot fail once it is
/// open: constants, arguments, and `.npy`/`.npz` arrays, whose header and size are checked
/// when the pipeline opens (only the file changing under the run can fail a row, which no
/// order of evaluation makes deterministic). Line, CSV, record and Parquet readers (bad
/// data mid-file), `batch` (ragged rows), and nodes that hold elements (`shuffle`, `cache`,
/// `prefetch`: the memory cap) count as failing.
fn upstream_may_fail(prog: &Program, p: &Pipeline, node: DsNodeId) -> bool {
    let in_memory = |srcs: &[Source]| {
        srcs.iter().all(|s| {
            matches!(
                s,
                Source::Const(_) | Source::Arg(_) | Source::Npy(_) | Source::Npz(..)
            )
        })
    };
    let mut seen = std::collections::HashSet::new();
    let mut stack = p.inputs(node);
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        let quiet = match &p.graph[n].kind {
            DsKind::Range { .. }
            | DsKind::Take(_)
            | DsKind::Skip(_)
            | DsKind::Repeat(_)
            | DsKind::Enumerate(_)
            | DsKind::Shard { .. }
            | DsKind::Zip
            | DsKind::Concatenate
            | DsKind::Unbatch => true,
            DsKind::FromTensorSlices(srcs) | DsKind::FromTensors(srcs) | DsKind::RangeOf(srcs) => {
                in_memory(srcs)
            }
            DsKind::RepeatOf(src) => in_memory(std::slice::from_ref(src)),
            DsKind::Map { func, .. } | DsKind::Filter { func } => {
                !super::may_fail_or_effect(prog.func(*func))
            }
            _ => false,
        };
        if !quiet {
            return true;
        }
        stack.extend(p.inputs(n));
    }
    false
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
