//! `fuse-maps`: `map(f).map(g)` becomes `map(g ∘ f)`, one traced function, so the
//! function passes see both bodies together (and elementwise fusion can span them).

use super::{inline_into, only_consumer};
use crate::Pass;
use pipec_diag::{Code, Diagnostic};
use pipec_ir::{DsKind, DsNodeId, FuncId, Function, OpKind, Parallelism, Pipeline, Program};

/// The `fuse-maps` pass.
pub struct FuseMaps;

impl Pass for FuseMaps {
    fn name(&self) -> &'static str {
        "fuse-maps"
    }

    fn description(&self) -> &'static str {
        "merge consecutive maps into one traced function"
    }

    fn run(&self, prog: &mut Program, remarks: &mut Vec<Diagnostic>) -> bool {
        let mut changed = false;
        for pi in super::pipelines(prog) {
            // Whole chains are fused at once: fusing pair by pair would copy the growing
            // function once per map, quadratic in the chain's length.
            for chain in chains(prog, &prog.pipelines[pi], remarks) {
                fuse_chain(prog, pi, &chain, remarks);
                changed = true;
            }
        }
        if changed {
            super::gc_functions(prog);
        }
        changed
    }
}

/// The maximal chains of two or more maps, each map's only consumer the next, in
/// topological order; remarks on maps kept apart by a transformation in between.
fn chains(prog: &Program, p: &Pipeline, remarks: &mut Vec<Diagnostic>) -> Vec<Vec<DsNodeId>> {
    // A map calling an eager function is a barrier: fused with a parallel map, a sequential
    // map's one worker would become one per lane, and the calls' effects (a worker's state,
    // `print`) would interleave differently from `-O0`.
    let eager = |n: DsNodeId| match p.graph[n].kind {
        DsKind::Map { func, .. } => prog
            .func(func)
            .ops
            .iter()
            .any(|op| matches!(op.kind, OpKind::Eager(_))),
        _ => false,
    };
    for node in p.topo_order() {
        if eager(node)
            && (only_consumer(p, node)
                .is_some_and(|c| matches!(p.graph[c].kind, DsKind::Map { .. }))
                || p.inputs(node).first().is_some_and(|&i| {
                    matches!(p.graph[i].kind, DsKind::Map { .. })
                        && only_consumer(p, i) == Some(node)
                }))
        {
            remarks.push(
                Diagnostic::remark(
                    Code::PassRemark,
                    "fuse-maps: not fused with the maps next to it: it calls an eager function, a barrier",
                )
                .with_label(p.graph[node].span, "this map"),
            );
        }
    }
    let is_map = |n: DsNodeId| matches!(p.graph[n].kind, DsKind::Map { .. }) && !eager(n);
    // A map run per batch by `vectorize-map` and a map of whole batches number their
    // elements differently (rows, batches): fused, random ops would draw by the wrong one.
    let func_of = |n: DsNodeId| match p.graph[n].kind {
        DsKind::Map { func, .. } => Some(prog.func(func)),
        _ => None,
    };
    let compatible = |a: DsNodeId, b: DsNodeId| match (func_of(a), func_of(b)) {
        (Some(f), Some(g)) => f.batched == g.batched || !(f.reads_position() || g.reads_position()),
        _ => true,
    };
    // The map that continues a chain from `node`, if any.
    let next_map = |node: DsNodeId| {
        only_consumer(p, node).filter(|&next| is_map(next) && compatible(node, next))
    };
    let mut out = Vec::new();
    for node in p.topo_order() {
        if !is_map(node) {
            continue;
        }
        match only_consumer(p, node) {
            Some(next) if is_map(next) && compatible(node, next) => {
                // Start only at the head of a chain.
                let continues = p
                    .inputs(node)
                    .first()
                    .is_some_and(|&i| is_map(i) && next_map(i) == Some(node));
                if continues {
                    continue;
                }
                let mut chain = vec![node];
                let mut at = node;
                while let Some(next) = next_map(at) {
                    chain.push(next);
                    at = next;
                }
                out.push(chain);
            }
            Some(next) if !matches!(p.graph[next].kind, DsKind::Map { .. }) => {
                // A map separated from the next map by another transformation.
                let other = &p.graph[next].kind;
                if let Some(after) = only_consumer(p, next)
                    && is_map(after)
                    && !matches!(other, DsKind::Batch { .. })
                {
                    let d = Diagnostic::remark(
                        Code::PassRemark,
                        format!(
                            "fuse-maps: not fused with the next map because it feeds `{}` first",
                            other.mnemonic()
                        ),
                    )
                    .with_label(p.graph[node].span, "this map")
                    .with_label(p.graph[next].span, "in between");
                    remarks.push(d);
                }
            }
            _ => {}
        }
    }
    out
}

/// Replaces a chain of maps by one map (at the last one's place) running one function.
fn fuse_chain(prog: &mut Program, pi: usize, chain: &[DsNodeId], remarks: &mut Vec<Diagnostic>) {
    let p = &prog.pipelines[pi];
    let maps: Vec<(FuncId, Parallelism, bool)> = chain
        .iter()
        .map(|&n| match &p.graph[n].kind {
            DsKind::Map {
                func,
                parallelism,
                deterministic,
            } => (*func, *parallelism, *deterministic),
            _ => unreachable!("a chain holds maps only"),
        })
        .collect();
    let first = prog.func(maps[0].0);
    let last = prog.func(maps[maps.len() - 1].0);
    let name = if maps.len() <= 8 {
        maps.iter()
            .map(|m| prog.func(m.0).name.as_str())
            .collect::<Vec<_>>()
            .join("+")
    } else {
        format!("{}+({} maps)+{}", first.name, maps.len() - 2, last.name)
    };
    let mut fused = Function::new(name, first.span, first.param_types());
    let mut values = fused.params.clone();
    for m in &maps {
        values = inline_into(&mut fused, prog.func(m.0), &values);
    }
    fused.results = values;
    // Maps that all run per batch (after `vectorize-map`) still do, fused.
    fused.batched = maps.iter().all(|m| prog.func(m.0).batched);
    let parallelism = maps[1..].iter().fold(maps[0].1, |acc, m| combine(acc, m.1));
    let deterministic = maps.iter().all(|m| m.2);
    let head = p.graph[chain[0]].span;
    let tail = *chain.last().expect("a chain has maps");
    let id = prog.add_function(fused);
    let p = &mut prog.pipelines[pi];
    p.graph[tail].kind = DsKind::Map {
        func: id,
        parallelism,
        deterministic,
    };
    p.graph[tail].span = head.to(p.graph[tail].span);
    for &n in &chain[..chain.len() - 1] {
        super::bypass(p, n);
    }
    let msg = match chain.len() {
        2 => "fuse-maps: fused two consecutive maps".to_string(),
        n => format!("fuse-maps: fused {n} consecutive maps"),
    };
    remarks.push(Diagnostic::remark(Code::PassRemark, msg).with_label(head, "into one function"));
}

/// The parallelism of two fused maps: the more parallel one's.
fn combine(a: Parallelism, b: Parallelism) -> Parallelism {
    match (a, b) {
        (Parallelism::Sequential, other) | (other, Parallelism::Sequential) => other,
        (Parallelism::Autotune, _) | (_, Parallelism::Autotune) => Parallelism::Autotune,
        (Parallelism::Fixed(a), Parallelism::Fixed(b)) => Parallelism::Fixed(a.max(b)),
    }
}
