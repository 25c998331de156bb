//! `dce`: removes ops whose results nobody uses. Eager ops are effectful and always stay;
//! so do ops that may fail at run time (integer division by zero, run-time shape
//! mismatches), since the unoptimized program would report that error.

use crate::Pass;
use pipec_diag::Diagnostic;
use pipec_ir::Program;

/// Dead code elimination.
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn description(&self) -> &'static str {
        "remove pure ops whose results are never used (unless they may fail)"
    }

    fn run(&self, prog: &mut Program, _remarks: &mut Vec<Diagnostic>) -> bool {
        let mut changed = false;
        for f in &mut prog.functions {
            let mut live = vec![false; f.values.len()];
            for r in &f.results {
                live[r.index()] = true;
            }
            let mut keep = vec![false; f.ops.len()];
            for (i, op) in f.ops.iter().enumerate().rev() {
                if !op.kind.is_pure()
                    || crate::util::op_may_fail(f, op)
                    || op.outputs.iter().any(|o| live[o.index()])
                {
                    keep[i] = true;
                    for v in &op.inputs {
                        live[v.index()] = true;
                    }
                }
            }
            if keep.iter().all(|k| *k) {
                continue;
            }
            changed = true;
            let mut i = 0;
            f.ops.retain(|_| {
                let k = keep[i];
                i += 1;
                k
            });
        }
        changed
    }
}
