//! `fuse-elementwise`: maximal regions of elementwise ops (`cast`, unary, binary, `where`,
//! `clip`, with rank-0 constants folded in) become one `fused_elementwise` op whose body is
//! a scalar program, run by the chunked kernel without full-size intermediates.
//!
//! The region rule:
//! - every op of a region has the same static output shape `S` (dtypes may differ);
//! - every operand coming from outside the region is rank 0, or has exactly the trailing
//!   dims of `S` (`f32[3]` into `f32[?, 3]`): the kernel repeats it cyclically, never
//!   materializing a broadcast. An op with any other operand shape is not fused;
//! - a region never spans an eager op (a barrier), a reduction or a shape op, and no op
//!   outside the region may use a region value before the region's last op (the fused op
//!   takes that op's place);
//! - values used outside the region are the fused op's results (several are allowed);
//! - a region of one op stays as it is.
//!
//! The fused op keeps the span of the region's last op and each instruction keeps the span
//! of the op it came from, so a run-time error still points at the user's line.

use crate::Pass;
use crate::util::remark;
use pipec_diag::{Diagnostic, Span};
use pipec_ir::{Function, FusedBody, FusedOp, Op, OpKind, Program, Shape, ValueDef, ValueId};
use pipec_tensor::DType;
use std::collections::HashMap;

/// Elementwise fusion.
pub struct FuseElementwise;

/// A rank-0 constant's value, if `v` is one.
fn scalar_const(f: &Function, v: ValueId) -> Option<pipec_tensor::Scalar> {
    match f.values[v.index()].def {
        ValueDef::Op(op, _) => match &f.ops[op.index()].kind {
            OpKind::Const(t) if t.rank() == 0 => t.get_flat(0),
            _ => None,
        },
        ValueDef::Param(_) => None,
    }
}

/// Whether an operand of static shape `s` feeds a region of shape `region` without a
/// materialized broadcast: rank 0, or exactly the region's trailing dims.
fn conforms(s: &Shape, region: &Shape) -> bool {
    s.rank() <= region.rank() && region.0[region.rank() - s.rank()..] == s.0[..]
}

fn is_candidate_kind(kind: &OpKind) -> bool {
    matches!(
        kind,
        OpKind::Unary(_) | OpKind::Binary(_) | OpKind::Cast(_) | OpKind::Select | OpKind::Clip
    )
}

struct Region {
    /// Member op positions (sorted only when the fused op is built).
    members: Vec<usize>,
    shape: Shape,
    /// Eager ops seen before the region started (regions never span one).
    epoch: usize,
    /// Ops already placed that use a value of the region without being in it (it may also
    /// hold ops that joined later by a merge; those are skipped when checked).
    outside: Vec<usize>,
    /// The first member that may fail, and how many members may fail.
    first_failing: Option<usize>,
    failing: usize,
    /// An op that may fail between the first failing member and the ops after it, once found.
    overtaker: Option<usize>,
}

/// Regions merge: a union-find over region ids, so that merging moves only the smaller
/// region's lists and no op's region is rewritten (linear time in long chains).
struct Regions {
    regions: Vec<Region>,
    parent: Vec<usize>,
}

impl Regions {
    fn find(&mut self, mut r: usize) -> usize {
        while self.parent[r] != r {
            self.parent[r] = self.parent[self.parent[r]];
            r = self.parent[r];
        }
        r
    }

    /// Merges region `from` into `into` (both roots).
    fn merge(&mut self, into: usize, from: usize) {
        self.parent[from] = into;
        let mut moved = std::mem::replace(
            &mut self.regions[from],
            Region {
                members: Vec::new(),
                shape: Shape(Vec::new()),
                epoch: 0,
                outside: Vec::new(),
                first_failing: None,
                failing: 0,
                overtaker: None,
            },
        );
        let target = &mut self.regions[into];
        if moved.members.len() > target.members.len() {
            std::mem::swap(&mut moved.members, &mut target.members);
        }
        target.members.extend(moved.members);
        if moved.outside.len() > target.outside.len() {
            std::mem::swap(&mut moved.outside, &mut target.outside);
        }
        target.outside.extend(moved.outside);
        target.first_failing = match (target.first_failing, moved.first_failing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        target.failing += moved.failing;
        target.overtaker = None;
    }
}

impl Pass for FuseElementwise {
    fn name(&self) -> &'static str {
        "fuse-elementwise"
    }

    fn description(&self) -> &'static str {
        "fuse regions of elementwise ops into one chunked scalar-program kernel"
    }

    fn run(&self, prog: &mut Program, remarks: &mut Vec<Diagnostic>) -> bool {
        let mut changed = false;
        for f in &mut prog.functions {
            changed |= fuse_function(f, self.name(), remarks);
        }
        changed
    }
}

fn fuse_function(f: &mut Function, pass: &str, remarks: &mut Vec<Diagnostic>) -> bool {
    let n_ops = f.ops.len();
    // Positions of the ops using each value (usize::MAX: a function result).
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); f.values.len()];
    for (i, op) in f.ops.iter().enumerate() {
        for v in &op.inputs {
            users[v.index()].push(i);
        }
    }
    for r in &f.results {
        users[r.index()].push(usize::MAX);
    }
    let def = |v: ValueId| match f.values[v.index()].def {
        ValueDef::Op(op, _) => Some(op.index()),
        ValueDef::Param(_) => None,
    };
    // Which ops may fail, and how many of the ops before each position may.
    let may_fail: Vec<bool> = f
        .ops
        .iter()
        .map(|op| crate::util::op_may_fail(f, op))
        .collect();
    let failing_at: Vec<usize> = (0..n_ops).filter(|&i| may_fail[i]).collect();
    let mut failing_before = Vec::with_capacity(n_ops + 1);
    failing_before.push(0usize);
    for &m in &may_fail {
        failing_before.push(failing_before.last().copied().unwrap_or(0) + m as usize);
    }
    let mut region_of: Vec<Option<usize>> = vec![None; n_ops];
    let mut rs = Regions {
        regions: Vec::new(),
        parent: Vec::new(),
    };
    let mut epoch = 0;
    for i in 0..n_ops {
        let op = &f.ops[i];
        'place: {
            if !op.kind.is_pure() {
                epoch += 1;
                break 'place;
            }
            // The fused kernel computes numbers: `str` values (`+`, `==` on strings) stay
            // separate ops.
            let has_str = || {
                op.inputs
                    .iter()
                    .chain(&op.outputs)
                    .any(|v| f.ty(*v).dtype.is_str())
            };
            if !is_candidate_kind(&op.kind) || op.outputs.len() != 1 || has_str() {
                break 'place;
            }
            let shape = f.ty(op.outputs[0]).shape.clone();
            if let Some(bad) = op
                .inputs
                .iter()
                .find(|v| !conforms(&f.ty(**v).shape, &shape))
            {
                let msg = format!(
                    "did not fuse this `{}`: its operand of shape {} would need a materialized broadcast to {shape}",
                    op.kind.mnemonic(),
                    f.ty(*bad).shape
                );
                remark(remarks, pass, op.span, msg, "not fused");
                break 'place;
            }
            // Regions of the operands this op may join.
            let mut joins: Vec<usize> = Vec::new();
            for &v in &op.inputs {
                let Some(r) = def(v).and_then(|j| region_of[j]) else {
                    continue;
                };
                let r = rs.find(r);
                if joins.contains(&r) || rs.regions[r].shape != shape {
                    continue;
                }
                if rs.regions[r].epoch != epoch {
                    let msg = format!(
                        "did not fuse this `{}` with the ops before an eager call: it is a barrier",
                        op.kind.mnemonic()
                    );
                    remark(remarks, pass, op.span, msg, "not fused");
                    continue;
                }
                // Members move down to the region's last op: one that may fail must not
                // move past another op that may fail, or the first error reported would
                // change. Every member is before `i`, so the failing ops in between that
                // are not members are those ops less the region's own.
                let region = &rs.regions[r];
                let overtaken = region.first_failing.is_some_and(|m| {
                    failing_before[i] - failing_before[m + 1] > region.failing - 1
                });
                if overtaken {
                    let k = match rs.regions[r].overtaker {
                        Some(k) => k,
                        None => {
                            let m = rs.regions[r].first_failing.expect("checked above");
                            let from = failing_at.partition_point(|&k| k <= m);
                            let k = failing_at[from..]
                                .iter()
                                .copied()
                                .find(|&k| region_of[k].map(|x| rs.find(x)) != Some(r))
                                .expect("counted above");
                            rs.regions[r].overtaker = Some(k);
                            k
                        }
                    };
                    let msg = format!(
                        "did not fuse this `{}` with the ops computing its operands: a `{}` that may fail runs in between",
                        op.kind.mnemonic(),
                        f.ops[k].kind.mnemonic()
                    );
                    remark(remarks, pass, op.span, msg, "not fused");
                    continue;
                }
                // An op outside the region using its values before `i` would run before
                // the fused op computes them. Ops that joined by a merge are dropped here.
                let mut outside = std::mem::take(&mut rs.regions[r].outside);
                outside.retain(|&u| region_of[u].map(|x| rs.find(x)) != Some(r));
                let used_early = outside.first().copied();
                rs.regions[r].outside = outside;
                if let Some(u) = used_early {
                    let msg = format!(
                        "did not fuse this `{}` with the ops computing its operands: `{}` uses their values in between",
                        op.kind.mnemonic(),
                        f.ops[u].kind.mnemonic()
                    );
                    remark(remarks, pass, op.span, msg, "not fused");
                    continue;
                }
                joins.push(r);
            }
            let target = match joins.first() {
                Some(&r) => r,
                None => {
                    rs.regions.push(Region {
                        members: Vec::new(),
                        shape,
                        epoch,
                        outside: Vec::new(),
                        first_failing: None,
                        failing: 0,
                        overtaker: None,
                    });
                    rs.parent.push(rs.regions.len() - 1);
                    rs.regions.len() - 1
                }
            };
            for &r in joins.iter().skip(1) {
                rs.merge(target, r);
            }
            let region = &mut rs.regions[target];
            region.members.push(i);
            if may_fail[i] {
                region.failing += 1;
                region.first_failing = Some(region.first_failing.map_or(i, |m| m.min(i)));
            }
            region_of[i] = Some(target);
        }
        // Every op using a region's value without being in it is noted there (only ops
        // before a later candidate matter, and all ops seen so far are).
        let mine = region_of[i].map(|r| rs.find(r));
        for &v in &f.ops[i].inputs {
            if let Some(r) = def(v).and_then(|j| region_of[j]) {
                let r = rs.find(r);
                if mine != Some(r) && rs.regions[r].outside.last() != Some(&i) {
                    rs.regions[r].outside.push(i);
                }
            }
        }
    }

    let mut fused_at: HashMap<usize, Op> = HashMap::new();
    let mut removed = vec![false; n_ops];
    for r in 0..rs.regions.len() {
        if rs.parent[r] != r || rs.regions[r].members.len() < 2 {
            continue;
        }
        rs.regions[r].members.sort_unstable();
        let in_region: Vec<bool> = {
            let mut v = vec![false; n_ops];
            for &m in &rs.regions[r].members {
                v[m] = true;
            }
            v
        };
        let members = &rs.regions[r].members;
        let (op, n) = build(f, members, &users, &in_region);
        remark(
            remarks,
            pass,
            op.span,
            format!("fused {n} elementwise ops into one kernel"),
            "fused",
        );
        for &m in members {
            removed[m] = true;
        }
        fused_at.insert(*members.last().expect("non-empty"), op);
    }
    if fused_at.is_empty() {
        return false;
    }
    let old = std::mem::take(&mut f.ops);
    for (i, op) in old.into_iter().enumerate() {
        if let Some(fused) = fused_at.remove(&i) {
            f.ops.push(fused);
        } else if !removed[i] {
            f.ops.push(op);
        }
    }
    // Scalar constants now inside fused bodies are often dead: drop those here rather
    // than leave them for the next `dce`.
    let used = crate::util::use_counts(f);
    f.ops.retain(|op| {
        !(matches!(op.kind, OpKind::Const(_)) && op.outputs.iter().all(|o| used[o.index()] == 0))
    });
    crate::const_fold::reindex(f);
    true
}

/// The fused op of a region (members ascending) and its number of ops.
fn build(f: &Function, members: &[usize], users: &[Vec<usize>], in_region: &[bool]) -> (Op, usize) {
    let mut insts: Vec<FusedOp> = Vec::new();
    let mut dtypes: Vec<DType> = Vec::new();
    let mut spans: Vec<Span> = Vec::new();
    let mut inputs: Vec<ValueId> = Vec::new();
    let mut reg: HashMap<ValueId, u32> = HashMap::new();
    let mut push = |insts: &mut Vec<FusedOp>, inst: FusedOp, dtype: DType, span: Span| {
        insts.push(inst);
        dtypes.push(dtype);
        spans.push(span);
        (insts.len() - 1) as u32
    };
    for &m in members {
        let op = &f.ops[m];
        let mut operands = Vec::with_capacity(op.inputs.len());
        for &v in &op.inputs {
            let r = match reg.get(&v) {
                Some(&r) => r,
                None => {
                    let inst = match scalar_const(f, v) {
                        Some(s) => FusedOp::Const(s),
                        None => {
                            inputs.push(v);
                            FusedOp::Input(inputs.len() - 1)
                        }
                    };
                    let r = push(&mut insts, inst, f.ty(v).dtype, op.span);
                    reg.insert(v, r);
                    r
                }
            };
            operands.push(r);
        }
        let out = op.outputs[0];
        let inst = match (&op.kind, operands.as_slice()) {
            (OpKind::Unary(u), [a]) => FusedOp::Unary(*u, *a),
            (OpKind::Binary(b), [a, c]) => FusedOp::Binary(*b, *a, *c),
            (OpKind::Cast(_), [a]) => FusedOp::Cast(*a),
            (OpKind::Select, [c, a, b]) => FusedOp::Select(*c, *a, *b),
            (OpKind::Clip, [x, lo, hi]) => FusedOp::Clip(*x, *lo, *hi),
            _ => unreachable!("only elementwise ops with their arity are region members"),
        };
        let r = push(&mut insts, inst, f.ty(out).dtype, op.span);
        reg.insert(out, r);
    }
    // Results: member values used by an op outside the region or returned.
    let mut outputs = Vec::new();
    let mut results = Vec::new();
    for &m in members {
        let out = f.ops[m].outputs[0];
        if users[out.index()]
            .iter()
            .any(|u| *u == usize::MAX || !in_region[*u])
        {
            outputs.push(out);
            results.push(reg[&out]);
        }
    }
    let root = &f.ops[*members.last().expect("non-empty")];
    let body = FusedBody {
        insts,
        dtypes,
        results,
        spans,
    };
    (
        Op {
            kind: OpKind::Fused(body),
            inputs,
            outputs,
            span: root.span,
        },
        members.len(),
    )
}
