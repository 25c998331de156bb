//! `cse`: merges identical pure ops (same kind and attributes, same operands, same result
//! types); uses of the later op's results are redirected to the earlier one and the later
//! op is dropped. Constants merge only when bit-identical (NaN payloads and `-0.0`
//! included); eager ops never merge.

use crate::Pass;
use crate::util::{remark, scalar_bits, tensor_key};
use pipec_diag::Diagnostic;
use pipec_ir::{FusedOp, OpKind, Program, ValueId};
use std::collections::HashMap;

/// Common subexpression elimination.
pub struct Cse;

/// What makes two ops interchangeable.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    kind: String,
    consts: Vec<(String, Vec<usize>, Vec<u64>)>,
    inputs: Vec<ValueId>,
    types: String,
}

fn key(kind: &OpKind, inputs: Vec<ValueId>, types: String) -> Key {
    let (text, consts) = match kind {
        OpKind::Const(t) => ("const".to_string(), vec![tensor_key(t)]),
        // Debug prints NaNs alike; spell scalar constants as bits instead.
        OpKind::Fused(body) => {
            let insts: Vec<String> = body
                .insts
                .iter()
                .map(|i| match i {
                    FusedOp::Const(s) => format!("const {} {:#x}", s.dtype(), scalar_bits(*s)),
                    other => format!("{other:?}"),
                })
                .collect();
            (
                format!("fused {insts:?} {:?} {:?}", body.dtypes, body.results),
                vec![],
            )
        }
        other => (format!("{other:?}"), vec![]),
    };
    Key {
        kind: text,
        consts,
        inputs,
        types,
    }
}

impl Pass for Cse {
    fn name(&self) -> &'static str {
        "cse"
    }

    fn description(&self) -> &'static str {
        "merge identical pure ops (constants when bit-identical)"
    }

    fn run(&self, prog: &mut Program, remarks: &mut Vec<Diagnostic>) -> bool {
        let mut changed = false;
        for f in &mut prog.functions {
            let mut subst: HashMap<ValueId, ValueId> = HashMap::new();
            let mut seen: HashMap<Key, usize> = HashMap::new();
            let mut dead = vec![false; f.ops.len()];
            for (i, is_dead) in dead.iter_mut().enumerate() {
                for v in &mut f.ops[i].inputs {
                    if let Some(&s) = subst.get(v) {
                        *v = s;
                    }
                }
                let op = &f.ops[i];
                if !op.kind.is_pure() {
                    continue;
                }
                let types: Vec<String> = op.outputs.iter().map(|o| f.ty(*o).to_string()).collect();
                let k = key(&op.kind, op.inputs.clone(), types.join(", "));
                match seen.get(&k) {
                    Some(&first) => {
                        for (a, b) in op.outputs.iter().zip(&f.ops[first].outputs) {
                            subst.insert(*a, *b);
                        }
                        *is_dead = true;
                        let msg =
                            format!("merged this `{}` with an identical one", op.kind.mnemonic());
                        remark(remarks, self.name(), op.span, msg, "same op, same operands");
                    }
                    None => {
                        seen.insert(k, i);
                    }
                }
            }
            if !dead.iter().any(|d| *d) {
                continue;
            }
            changed = true;
            for r in &mut f.results {
                if let Some(&s) = subst.get(r) {
                    *r = s;
                }
            }
            let mut i = 0;
            f.ops.retain(|_| {
                i += 1;
                !dead[i - 1]
            });
        }
        changed
    }
}
