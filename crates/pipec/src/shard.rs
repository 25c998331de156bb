//! `--shard I/N` (Python: `shard=(I, N)`): run one shard of a pipeline (SPEC §15).

use petgraph::Direction;
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

/// Inserts `shard(num, index)` right after every source of `p` (a node without inputs),
/// so that each shard reads its own records and does everything after (maps, batching) on
/// them alone, as Grain does. Sharding every source alike keeps `zip` pairing the same
/// records, and the shards of a `concatenate` still cover each input once. (After a
/// `global_shuffle`, once the language has one, the shard goes after it instead.)
pub fn insert(p: &mut Pipeline, index: u64, num: u64) {
    let sources: Vec<_> = p
        .graph
        .node_indices()
        .filter(|&n| {
            p.graph
                .edges_directed(n, Direction::Incoming)
                .next()
                .is_none()
        })
        .collect();
    for src in sources {
        let node = &p.graph[src];
        let shard = p.graph.add_node(DsNode {
            kind: DsKind::Shard { num, index },
            elem: node.elem.clone(),
            span: node.span,
        });
        let outgoing: Vec<_> = p
            .graph
            .edges_directed(src, Direction::Outgoing)
            .map(|e| (e.id(), e.target(), *e.weight()))
            .collect();
        for (edge, target, weight) in outgoing {
            p.graph.remove_edge(edge);
            p.graph.add_edge(shard, target, weight);
        }
        p.graph.add_edge(src, shard, 0);
        if p.output == src {
            p.output = shard;
        }
    }
}
