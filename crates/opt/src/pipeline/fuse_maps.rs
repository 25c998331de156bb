//! `fuse-maps`: `map(f).map(g)` becomes `map(g ∘ f)`, one traced function, so the
//! function passes see both bodies together (and elementwise fusion can span them).

use super::{inline_into, only_consumer};
use crate::Pass;
use pipec_diag::{Code, Diagnostic};
use pipec_ir::{DsKind, Function, Parallelism, Program};

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
            loop {
                let p = &prog.pipelines[pi];
                let mut found = None;
                for node in p.topo_order() {
                    let DsKind::Map { .. } = p.graph[node].kind else {
                        continue;
                    };
                    let Some(next) = only_consumer(p, node) else {
                        continue;
                    };
                    match &p.graph[next].kind {
                        DsKind::Map { .. } => {
                            found = Some((node, next));
                            break;
                        }
                        other => {
                            // A map separated from the next map by another transformation.
                            if let Some(after) = only_consumer(p, next)
                                && matches!(p.graph[after].kind, DsKind::Map { .. })
                                && !matches!(other, DsKind::Batch { .. })
                            {
                                let d = Diagnostic::remark(
                                    Code::PassRemark,
                                    format!("fuse-maps: not fused with the next map because it feeds `{}` first", other.mnemonic()),
                                )
                                .with_label(p.graph[node].span, "this map")
                                .with_label(p.graph[next].span, "in between");
                                if !remarks.contains(&d) {
                                    remarks.push(d);
                                }
                            }
                        }
                    }
                }
                let Some((first, second)) = found else { break };
                let p = &prog.pipelines[pi];
                let (
                    DsKind::Map {
                        func: f1,
                        parallelism: p1,
                        deterministic: d1,
                    },
                    DsKind::Map {
                        func: f2,
                        parallelism: p2,
                        deterministic: d2,
                    },
                ) = (&p.graph[first].kind, &p.graph[second].kind)
                else {
                    unreachable!("both are maps")
                };
                let (f1, f2) = (prog.func(*f1), prog.func(*f2));
                let mut fused = Function::new(
                    format!("{}+{}", f1.name, f2.name),
                    f1.span,
                    f1.param_types(),
                );
                let params = fused.params.clone();
                let mid = inline_into(&mut fused, f1, &params);
                let out = inline_into(&mut fused, f2, &mid);
                fused.results = out;
                let parallelism = match (p1, p2) {
                    (Parallelism::Sequential, other) | (other, Parallelism::Sequential) => *other,
                    (Parallelism::Autotune, _) | (_, Parallelism::Autotune) => {
                        Parallelism::Autotune
                    }
                    (Parallelism::Fixed(a), Parallelism::Fixed(b)) => Parallelism::Fixed(*a.max(b)),
                };
                let deterministic = *d1 && *d2;
                let span = p.graph[first].span;
                let id = prog.add_function(fused);
                let p = &mut prog.pipelines[pi];
                p.graph[second].kind = DsKind::Map {
                    func: id,
                    parallelism,
                    deterministic,
                };
                p.graph[second].span = span.to(p.graph[second].span);
                super::bypass(p, first);
                remarks.push(
                    Diagnostic::remark(Code::PassRemark, "fuse-maps: fused two consecutive maps")
                        .with_label(span, "into one function"),
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
