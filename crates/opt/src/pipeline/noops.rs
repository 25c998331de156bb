//! `eliminate-noops`: removes transformations that do nothing: `skip(0)`, `take(-1)`,
//! `repeat(1)`, `shard(1, 0)`, and maps whose function returns its parameters unchanged.

use super::bypass;
use crate::Pass;
use pipec_diag::{Code, Diagnostic};
use pipec_ir::{DsKind, Program};

/// The `eliminate-noops` pass.
pub struct EliminateNoops;

impl Pass for EliminateNoops {
    fn name(&self) -> &'static str {
        "eliminate-noops"
    }

    fn description(&self) -> &'static str {
        "remove skip(0), take(-1), repeat(1), shard(1, 0) and identity maps"
    }

    fn run(&self, prog: &mut Program, remarks: &mut Vec<Diagnostic>) -> bool {
        let mut changed = false;
        for pi in super::pipelines(prog) {
            let nodes = prog.pipelines[pi].topo_order();
            for node in nodes {
                let n = &prog.pipelines[pi].graph[node];
                let what = match &n.kind {
                    DsKind::Skip(0) => Some("skip(0)"),
                    DsKind::Take(k) if *k < 0 => Some("take(-1)"),
                    DsKind::Repeat(Some(1)) => Some("repeat(1)"),
                    DsKind::Shard { num: 1, .. } => Some("shard(1, 0)"),
                    DsKind::Map { func, .. } => {
                        // The same leaves in a different tuple structure is not an identity.
                        let p = &prog.pipelines[pi];
                        let same_structure = p
                            .inputs(node)
                            .first()
                            .is_some_and(|i| p.graph[*i].elem == n.elem);
                        let f = prog.func(*func);
                        (f.ops.is_empty() && f.results == f.params && same_structure)
                            .then_some("an identity map")
                    }
                    _ => None,
                };
                if let Some(what) = what {
                    remarks.push(
                        Diagnostic::remark(
                            Code::PassRemark,
                            format!("eliminate-noops: removed {what}"),
                        )
                        .with_label(n.span, "does nothing"),
                    );
                    bypass(&mut prog.pipelines[pi], node);
                    changed = true;
                }
            }
        }
        if changed {
            super::gc_functions(prog);
        }
        changed
    }
}
