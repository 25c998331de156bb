//! Pipeline passes: rewrites of the dataset graph (and of the functions its maps run).

mod fuse_filters;
mod fuse_maps;
mod noops;
mod vectorize;

pub use fuse_filters::FuseFilters;
pub use fuse_maps::FuseMaps;
pub use noops::EliminateNoops;
pub use vectorize::VectorizeMap;

use petgraph::Direction;
use petgraph::visit::EdgeRef;
use pipec_ir::{DsKind, DsNodeId, FuncId, Function, Pipeline, Program, ValueId};
use std::collections::HashMap;

/// Removes `node` (which has exactly one input), connecting its consumers to its input.
pub(crate) fn bypass(p: &mut Pipeline, node: DsNodeId) {
    let input = p.inputs(node)[0];
    let outs: Vec<(DsNodeId, u32)> = p
        .graph
        .edges_directed(node, Direction::Outgoing)
        .map(|e| (e.target(), *e.weight()))
        .collect();
    for (target, pos) in outs {
        p.graph.add_edge(input, target, pos);
    }
    if p.output == node {
        p.output = input;
    }
    p.graph.remove_node(node);
}

/// The single consumer of `node`, if it has exactly one.
pub(crate) fn only_consumer(p: &Pipeline, node: DsNodeId) -> Option<DsNodeId> {
    match p.consumers(node).as_slice() {
        [c] if p.output != node => Some(*c),
        _ => None,
    }
}

/// Copies the ops of `src` into `dst`, with `src`'s parameters bound to `args`; returns
/// the values standing for `src`'s results.
pub(crate) fn inline_into(dst: &mut Function, src: &Function, args: &[ValueId]) -> Vec<ValueId> {
    let mut map: HashMap<ValueId, ValueId> = src
        .params
        .iter()
        .copied()
        .zip(args.iter().copied())
        .collect();
    for op in &src.ops {
        let inputs: Vec<ValueId> = op.inputs.iter().map(|v| map[v]).collect();
        let tys = op.outputs.iter().map(|o| src.ty(*o).clone()).collect();
        let outs = dst.push_multi(op.kind.clone(), inputs, tys, op.span);
        for (old, new) in op.outputs.iter().zip(outs) {
            map.insert(*old, new);
        }
    }
    src.results.iter().map(|r| map[r]).collect()
}

/// Whether evaluating `func` can fail or have effects, so it must not run on elements the
/// original program would not have run it on (each op's declaration answers for it).
pub(crate) fn may_fail_or_effect(func: &Function) -> bool {
    func.ops
        .iter()
        .any(|op| op.kind.has_effect() || crate::util::op_may_fail(func, op))
}

/// Every pipeline of `prog` with its index, for passes that also add functions.
pub(crate) fn pipelines(prog: &Program) -> std::ops::Range<usize> {
    0..prog.pipelines.len()
}

/// Drops functions no pipeline node refers to any more, renumbering the rest in order.
pub(crate) fn gc_functions(prog: &mut Program) {
    let mut used = vec![false; prog.functions.len()];
    fn mark(p: &Pipeline, used: &mut [bool]) {
        for n in p.graph.node_weights() {
            if let Some(f) = n.kind.func() {
                used[f.index()] = true;
            }
            if let DsKind::Interleave(nest) = &n.kind {
                mark(&nest.inner, used);
            }
        }
    }
    for p in &prog.pipelines {
        mark(p, &mut used);
    }
    if used.iter().all(|u| *u) {
        return;
    }
    let mut remap = vec![None; used.len()];
    let mut kept = Vec::new();
    for (i, f) in std::mem::take(&mut prog.functions).into_iter().enumerate() {
        if used[i] {
            remap[i] = Some(FuncId(kept.len() as u32));
            kept.push(f);
        }
    }
    prog.functions = kept;
    fn renumber(p: &mut Pipeline, remap: &[Option<FuncId>]) {
        for n in p.graph.node_weights_mut() {
            if let Some(func) = n.kind.func_mut() {
                *func = remap[func.index()].expect("marked used by `mark` above");
            }
            if let DsKind::Interleave(nest) = &mut n.kind {
                renumber(&mut nest.inner, remap);
            }
        }
    }
    for p in &mut prog.pipelines {
        renumber(p, &remap);
    }
}
