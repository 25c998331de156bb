//! `--shard I/N` (Python: `shard=(I, N)`): run one shard of a pipeline (SPEC §15).

use petgraph::Direction;
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use pipec_diag::{Code, Diagnostic};
use pipec_ir::{DsKind, DsNode, Pipeline};

/// Checks a shard choice: `num` at least 1 and `index` below it.
pub fn check(index: u64, num: u64) -> Result<(), Diagnostic> {
    if num == 0 || index >= num {
        return Err(Diagnostic::error(
            Code::BadUsage,
            format!("shard {index} of {num} does not exist"),
        )
        .with_help(if num == 0 {
            "the number of shards is at least 1: `--shard 0/2` and `--shard 1/2` split a pipeline in two".to_string()
        } else {
            format!("shards count from 0: the shards of {num} are 0 to {}", num - 1)
        }));
    }
    Ok(())
}

/// Inserts `shard(num, index)` into `p` where SPEC §15 puts it: right after the pipeline's
/// last `global_shuffle` (every `global_shuffle` with none after it on the way to the
/// output), and right after every source whose records reach the output without passing
/// one. Each shard thus reads its own records (or, after a `global_shuffle`, its share of
/// the shuffled positions) and does everything after (maps, batching) on them alone, as
/// Grain does. Sharding every source alike keeps `zip` pairing the same records, and the
/// shards of a `concatenate` still cover each input once.
///
/// A `global_shuffle` that gets a shard needs a seed: every shard process must draw the same
/// permutation, or the shards would overlap.
pub fn insert(p: &mut Pipeline, index: u64, num: u64) -> Result<(), Diagnostic> {
    let is_global =
        |p: &Pipeline, n: NodeIndex<u32>| matches!(p.graph[n].kind, DsKind::GlobalShuffle { .. });
    // The last global shuffles: those from which no other one is reachable downstream.
    let globals: Vec<_> = p
        .graph
        .node_indices()
        .filter(|&n| is_global(p, n))
        .collect();
    let last: Vec<_> = globals
        .iter()
        .copied()
        .filter(|&g| {
            let mut stack = p.consumers(g);
            let mut seen = std::collections::HashSet::new();
            while let Some(n) = stack.pop() {
                if !seen.insert(n) {
                    continue;
                }
                if is_global(p, n) {
                    return false;
                }
                stack.extend(p.consumers(n));
            }
            true
        })
        .collect();
    for &g in &last {
        if let DsKind::GlobalShuffle { seed: None, .. } = p.graph[g].kind {
            return Err(Diagnostic::error(
                Code::BadUsage,
                "`--shard` needs the `global_shuffle` it follows to have a seed",
            )
            .with_label(p.graph[g].span, "shuffles with a fresh seed in every process")
            .with_help("write `global_shuffle(seed: N)`: every shard must draw the same permutation, or the shards would overlap"));
        }
    }
    // Nodes whose elements reach the output without passing a last global shuffle.
    let mut around = std::collections::HashSet::new();
    let mut stack = vec![p.output];
    while let Some(n) = stack.pop() {
        if last.contains(&n) || !around.insert(n) {
            continue;
        }
        stack.extend(p.inputs(n));
    }
    let sources: Vec<_> = p
        .graph
        .node_indices()
        .filter(|&n| {
            around.contains(&n)
                && p.graph
                    .edges_directed(n, Direction::Incoming)
                    .next()
                    .is_none()
        })
        .collect();
    for node in last.into_iter().chain(sources) {
        // Only the edges on the way to the output around a last global shuffle move (for a
        // last global shuffle, all of them).
        let keep_all = is_global(p, node);
        add_after(p, node, num, index, |target| {
            keep_all || around.contains(&target)
        });
    }
    Ok(())
}

/// Puts `shard(num, index)` between `node` and those of its consumers `moved` accepts.
fn add_after(
    p: &mut Pipeline,
    node: NodeIndex<u32>,
    num: u64,
    index: u64,
    moved: impl Fn(NodeIndex<u32>) -> bool,
) {
    let n = &p.graph[node];
    let shard = p.graph.add_node(DsNode {
        kind: DsKind::Shard { num, index },
        elem: n.elem.clone(),
        span: n.span,
    });
    let outgoing: Vec<_> = p
        .graph
        .edges_directed(node, Direction::Outgoing)
        .map(|e| (e.id(), e.target(), *e.weight()))
        .filter(|(_, target, _)| moved(*target))
        .collect();
    for (edge, target, weight) in outgoing {
        p.graph.remove_edge(edge);
        p.graph.add_edge(shard, target, weight);
    }
    p.graph.add_edge(node, shard, 0);
    if p.output == node {
        p.output = shard;
    }
}
