//! The IR verifier: run after tracing and after every pass. A failure is a compiler bug,
//! reported as an internal error naming the stage, never a panic.

use crate::Program;
use crate::function::{Function, FusedBody, FusedInst, OpKind, ValueDef};
use crate::pipeline::DsKind;
use crate::types::{ElemType, TensorType};
use pipec_tensor::DType;

/// Checks every invariant of `prog`; returns one line per violation.
pub fn verify(prog: &Program) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    for func in &prog.functions {
        verify_function(func, &mut errs);
    }
    for p in &prog.pipelines {
        let order = p.topo_order();
        if order.len() != p.graph.node_count() {
            errs.push(format!(
                "pipeline @{}: {} nodes unreachable from the output",
                p.name,
                p.graph.node_count() - order.len()
            ));
        }
        if petgraph::algo::is_cyclic_directed(&p.graph) {
            errs.push(format!(
                "pipeline @{}: the dataset graph has a cycle",
                p.name
            ));
        }
        for node in order {
            let n = &p.graph[node];
            let inputs = p.inputs(node);
            let arity_ok = match n.kind {
                DsKind::Range { .. }
                | DsKind::FromTensorSlices(_)
                | DsKind::FromTensors(_)
                | DsKind::ReadCsv { .. } => inputs.is_empty(),
                DsKind::Zip => !inputs.is_empty(),
                DsKind::Concatenate => inputs.len() == 2,
                _ => inputs.len() == 1,
            };
            if !arity_ok {
                errs.push(format!(
                    "pipeline @{}: {} has {} inputs",
                    p.name,
                    n.kind.mnemonic(),
                    inputs.len()
                ));
                continue;
            }
            let check_func = |func: crate::FuncId,
                              out: Option<&ElemType>,
                              errs: &mut Vec<String>| {
                let Some(f) = prog.functions.get(func.index()) else {
                    errs.push(format!(
                        "pipeline @{}: {} refers to a missing function",
                        p.name,
                        n.kind.mnemonic()
                    ));
                    return;
                };
                let input_elem = &p.graph[inputs[0]].elem;
                let want: Vec<TensorType> = input_elem.leaves().into_iter().cloned().collect();
                if f.param_types() != want {
                    errs.push(format!(
                        "pipeline @{}: @{} takes parameters that do not match its input elements",
                        p.name, f.name
                    ));
                }
                let got = f.result_types();
                match out {
                    Some(elem) => {
                        let want: Vec<TensorType> = elem.leaves().into_iter().cloned().collect();
                        if got != want {
                            errs.push(format!("pipeline @{}: @{} returns types that differ from the map's elements", p.name, f.name));
                        }
                    }
                    None => {
                        if got != [TensorType::scalar(DType::Bool)] {
                            errs.push(format!(
                                "pipeline @{}: filter predicate @{} does not return bool[]",
                                p.name, f.name
                            ));
                        }
                    }
                }
            };
            match &n.kind {
                DsKind::Map { func, .. } => check_func(*func, Some(&n.elem), &mut errs),
                DsKind::Filter { func } => {
                    check_func(*func, None, &mut errs);
                    if p.graph[inputs[0]].elem != n.elem {
                        errs.push(format!(
                            "pipeline @{}: filter changes the element type",
                            p.name
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

fn verify_function(func: &Function, errs: &mut Vec<String>) {
    let mut defined = vec![false; func.values.len()];
    let mut bad = |msg: String| errs.push(format!("@{}: {msg}", func.name));
    for (i, &p) in func.params.iter().enumerate() {
        match func.values.get(p.index()) {
            Some(info) if info.def == ValueDef::Param(i) => defined[p.index()] = true,
            _ => bad(format!(
                "parameter {i} ({p}) is not defined as that parameter"
            )),
        }
    }
    for (oi, op) in func.ops.iter().enumerate() {
        for &input in &op.inputs {
            if !defined.get(input.index()).copied().unwrap_or(false) {
                bad(format!(
                    "op {oi} ({}) uses {input} before its definition",
                    op.kind.mnemonic()
                ));
            }
        }
        for (k, &out) in op.outputs.iter().enumerate() {
            match func.values.get(out.index()) {
                Some(info) if info.def == ValueDef::Op(crate::OpId(oi as u32), k) => {
                    if std::mem::replace(&mut defined[out.index()], true) {
                        bad(format!("{out} is defined twice"));
                    }
                }
                _ => bad(format!(
                    "op {oi} ({}) output {k} ({out}) has a wrong definition",
                    op.kind.mnemonic()
                )),
            }
        }
        let ty = |v: crate::ValueId| func.values.get(v.index()).map(|i| &i.ty);
        match &op.kind {
            OpKind::Binary(b) if op.inputs.len() == 2 => {
                if let (Some(a), Some(c)) = (ty(op.inputs[0]), ty(op.inputs[1]))
                    && a.dtype != c.dtype
                {
                    bad(format!("{} on {} and {}", b.name(), a.dtype, c.dtype));
                }
            }
            OpKind::Cast(to)
                if op.outputs.first().and_then(|&o| ty(o)).map(|t| t.dtype) != Some(*to) =>
            {
                bad(format!("cast to {to} produces another dtype"));
            }
            OpKind::Fused(body) => {
                let out_dtypes: Vec<Option<DType>> =
                    op.outputs.iter().map(|&o| ty(o).map(|t| t.dtype)).collect();
                for e in fused_errors(body, op.inputs.len(), &out_dtypes) {
                    bad(format!("op {oi} (fused_elementwise): {e}"));
                }
            }
            OpKind::Const(t) => {
                if let Some(out) = op.outputs.first().and_then(|&o| ty(o))
                    && (out.dtype != t.dtype() || !out.shape.admits(t.shape()))
                {
                    bad(format!("const of {}{:?} typed {out}", t.dtype(), t.shape()));
                }
            }
            _ => {}
        }
    }
    for &r in &func.results {
        if !defined.get(r.index()).copied().unwrap_or(false) {
            bad(format!("result {r} is not defined"));
        }
    }
}

/// What is wrong with a fused body taking `n_inputs` inputs and producing `outputs`.
fn fused_errors(body: &FusedBody, n_inputs: usize, outputs: &[Option<DType>]) -> Vec<String> {
    let mut errs = Vec::new();
    if body.dtypes.len() != body.insts.len() {
        errs.push(format!(
            "{} instructions but {} register dtypes",
            body.insts.len(),
            body.dtypes.len()
        ));
        return errs;
    }
    if !body.spans.is_empty() && body.spans.len() != body.insts.len() {
        errs.push(format!(
            "{} instructions but {} spans",
            body.insts.len(),
            body.spans.len()
        ));
    }
    for (i, inst) in body.insts.iter().enumerate() {
        let me = body.dtypes[i];
        let operands: Vec<u32> = match *inst {
            FusedInst::Input(_) | FusedInst::Const(_) => vec![],
            FusedInst::Unary(_, a) | FusedInst::Cast(_, a) => vec![a],
            FusedInst::Binary(_, a, b) => vec![a, b],
            FusedInst::Select(a, b, c) | FusedInst::Clip(a, b, c) => vec![a, b, c],
        };
        if operands.iter().any(|&r| r as usize >= i) {
            errs.push(format!("^{i} uses a register not defined before it"));
            continue;
        }
        let d = |r: u32| body.dtypes[r as usize];
        let ok = match *inst {
            FusedInst::Input(n) => n < n_inputs,
            FusedInst::Const(s) => s.dtype() == me,
            FusedInst::Unary(op, a) => op.result_dtype(d(a)) == Ok(me),
            FusedInst::Binary(op, a, b) => d(a) == d(b) && op.result_dtype(d(a)) == Ok(me),
            FusedInst::Cast(to, _) => to == me,
            FusedInst::Select(c, a, b) => d(c) == DType::Bool && d(a) == me && d(b) == me,
            FusedInst::Clip(x, lo, hi) => d(x) == me && d(lo) == me && d(hi) == me,
        };
        if !ok {
            errs.push(format!("^{i} is ill-typed"));
        }
    }
    if body.results.len() != outputs.len() {
        errs.push(format!(
            "{} results for {} outputs",
            body.results.len(),
            outputs.len()
        ));
    }
    for (k, (&r, out)) in body.results.iter().zip(outputs).enumerate() {
        match body.dtypes.get(r as usize) {
            Some(d) if Some(*d) == *out => {}
            _ => errs.push(format!("result {k} (^{r}) does not match the output dtype")),
        }
    }
    errs
}
