//! `const-fold`: an op whose operands are all constants becomes a constant, computed by
//! [`OpKind::eval`] (the interpreter's kernels, so there is one implementation of every
//! op). Eager ops never fold; a result of more than [`MAX_FOLD_ELEMENTS`] elements is not
//! materialized; an op whose evaluation fails (integer division by zero) stays, so the run
//! reports the error for each element as the unoptimized program would.

use crate::Pass;
use crate::util::{const_of, remark};
use pipec_diag::Diagnostic;
use pipec_ir::{Op, OpKind, Program};
use pipec_tensor::Tensor;

/// The largest constant `const-fold` creates, in elements.
pub const MAX_FOLD_ELEMENTS: usize = 100_000;

/// Constant folding.
pub struct ConstFold;

impl Pass for ConstFold {
    fn name(&self) -> &'static str {
        "const-fold"
    }

    fn description(&self) -> &'static str {
        "evaluate pure ops whose operands are all constants"
    }

    fn run(&self, prog: &mut Program, remarks: &mut Vec<Diagnostic>) -> bool {
        let mut changed = false;
        for f in &mut prog.functions {
            let mut new_ops: Vec<Op> = Vec::with_capacity(f.ops.len());
            let mut folded_any = false;
            // Constants folded earlier in this walk, so chains fold in one run.
            let mut known: std::collections::HashMap<pipec_ir::ValueId, Tensor> =
                Default::default();
            for i in 0..f.ops.len() {
                let op = &f.ops[i];
                let foldable = op.kind.is_pure()
                    && !matches!(op.kind, OpKind::Const(_))
                    && !op.inputs.is_empty();
                let inputs: Option<Vec<Tensor>> = if foldable {
                    op.inputs
                        .iter()
                        .map(|v| const_of(f, *v).or(known.get(v)).cloned())
                        .collect()
                } else {
                    None
                };
                let Some(inputs) = inputs else {
                    new_ops.push(op.clone());
                    continue;
                };
                let name = op.kind.mnemonic();
                let static_len: Option<usize> = op
                    .outputs
                    .iter()
                    .map(|o| f.ty(*o).shape.num_elements())
                    .sum::<Option<usize>>();
                if static_len.is_some_and(|n| n > MAX_FOLD_ELEMENTS) {
                    let msg = format!(
                        "kept `{name}` of constants: its result of {} elements is too large to store",
                        static_len.unwrap_or(0)
                    );
                    remark(remarks, self.name(), op.span, msg, "not folded");
                    new_ops.push(op.clone());
                    continue;
                }
                let outs = match op.kind.eval(&inputs) {
                    Ok(outs) => outs,
                    Err(e) => {
                        let msg = format!(
                            "kept `{name}` of constants: evaluating it fails ({e}), so the run reports it"
                        );
                        remark(remarks, self.name(), op.span, msg, "not folded");
                        new_ops.push(op.clone());
                        continue;
                    }
                };
                let len: usize = outs.iter().map(Tensor::len).sum();
                let fits = outs.len() == op.outputs.len()
                    && outs.iter().zip(&op.outputs).all(|(t, o)| {
                        let ty = f.ty(*o);
                        t.dtype() == ty.dtype && ty.shape.admits(t.shape())
                    });
                if len > MAX_FOLD_ELEMENTS || !fits {
                    let msg = format!(
                        "kept `{name}` of constants: its result of {len} elements is too large to store"
                    );
                    if fits {
                        remark(remarks, self.name(), op.span, msg, "not folded");
                    }
                    new_ops.push(op.clone());
                    continue;
                }
                remark(
                    remarks,
                    self.name(),
                    op.span,
                    format!("folded `{name}` of constants"),
                    "computed at compile time",
                );
                for (t, &o) in outs.into_iter().zip(&op.outputs) {
                    known.insert(o, t.clone());
                    new_ops.push(Op {
                        kind: OpKind::Const(t),
                        inputs: vec![],
                        outputs: vec![o],
                        span: op.span,
                    });
                }
                folded_any = true;
            }
            if folded_any {
                // Output k of a multi-result op is now output 0 of its own `const`; the
                // manager's `compact` recomputes every definition from the op list.
                f.ops = new_ops;
                reindex(f);
                changed = true;
            }
        }
        changed
    }
}

/// Recomputes each value's definition after ops were split or removed.
pub(crate) fn reindex(f: &mut pipec_ir::Function) {
    for (oi, op) in f.ops.iter().enumerate() {
        for (k, o) in op.outputs.iter().enumerate() {
            f.values[o.index()].def = pipec_ir::ValueDef::Op(pipec_ir::OpId(oi as u32), k);
        }
    }
}
