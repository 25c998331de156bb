//! `fuse-filters`: `filter(p).filter(q)` becomes `filter(p && q)` when `q` can neither
//! fail nor have effects (it would now also run on elements `p` rejects).

use super::{inline_into, may_fail_or_effect, only_consumer};
use crate::Pass;
use pipec_diag::{Code, Diagnostic};
use pipec_ir::{DsKind, Function, OpKind, Program, TensorType};
use pipec_tensor::DType;
use pipec_tensor::ops::BinaryOp;

/// The `fuse-filters` pass.
pub struct FuseFilters;

impl Pass for FuseFilters {
    fn name(&self) -> &'static str {
        "fuse-filters"
    }

    fn description(&self) -> &'static str {
        "merge consecutive filters by ANDing their predicates"
    }

    fn run(&self, prog: &mut Program, remarks: &mut Vec<Diagnostic>) -> bool {
        let mut changed = false;
        for pi in super::pipelines(prog) {
            loop {
                let p = &prog.pipelines[pi];
                let mut found = None;
                for node in p.topo_order() {
                    let DsKind::Filter { func: f1 } = p.graph[node].kind else {
                        continue;
                    };
                    let Some(next) = only_consumer(p, node) else {
                        continue;
                    };
                    let DsKind::Filter { func: f2 } = p.graph[next].kind else {
                        continue;
                    };
                    if prog.func(f2).reads_position() {
                        // Fused, it would see the first filter's input, whose positions differ.
                        let d = Diagnostic::remark(
                            Code::PassRemark,
                            "fuse-filters: not fused, because the second predicate draws random numbers by the position of each element it sees",
                        )
                        .with_label(p.graph[next].span, "this predicate");
                        remarks.push(d);
                        continue;
                    }
                    if may_fail_or_effect(prog.func(f2)) {
                        let d = Diagnostic::remark(
                            Code::PassRemark,
                            "fuse-filters: not fused, because the second predicate could fail or has effects on elements the first one rejects",
                        )
                        .with_label(p.graph[next].span, "this predicate");
                        remarks.push(d);
                        continue;
                    }
                    found = Some((node, next, f1, f2));
                    break;
                }
                let Some((first, second, f1, f2)) = found else {
                    break;
                };
                let (a, b) = (prog.func(f1), prog.func(f2));
                let mut fused =
                    Function::new(format!("{}&{}", a.name, b.name), a.span, a.param_types());
                let params = fused.params.clone();
                let ra = inline_into(&mut fused, a, &params);
                let rb = inline_into(&mut fused, b, &params);
                let both = fused.push(
                    OpKind::Binary(BinaryOp::And),
                    vec![ra[0], rb[0]],
                    TensorType::scalar(DType::Bool),
                    b.span,
                );
                fused.results = vec![both];
                let span = prog.pipelines[pi].graph[first].span;
                let id = prog.add_function(fused);
                let p = &mut prog.pipelines[pi];
                p.graph[second].kind = DsKind::Filter { func: id };
                super::bypass(p, first);
                remarks.push(
                    Diagnostic::remark(
                        Code::PassRemark,
                        "fuse-filters: fused two consecutive filters",
                    )
                    .with_label(span, "predicates ANDed"),
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
