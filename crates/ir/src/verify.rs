//! The IR verifier: run after tracing and after every pass. It re-runs the type rule of
//! every op ([`OpKind::infer`], the same rule the tracer typed it with) and compares, and
//! checks SSA form and each dataset node's element type, and does the same for the nested
//! pipeline of every `interleave`/`flat_map` (whose function must take the input element
//! and return what the inner sources read, typed as they read it). A failure is a compiler bug,
//! reported as an internal error naming the stage, never a panic.

use crate::Program;
use crate::function::{Function, OpKind, ValueDef};
use crate::pipeline::{DsKind, Nested, Pipeline, Source};
use crate::types::{ElemType, TensorType};
use pipec_diag::Span;
use pipec_tensor::DType;
use std::fmt;

/// One violated invariant: where (function and op, with the op's source span) and what.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyError {
    /// The function (without `@`), or the pipeline for a dataset-graph error.
    pub function: String,
    /// The op's position in the function, if an op is concerned.
    pub op: Option<usize>,
    /// The source the op or node came from.
    pub span: Option<Span>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Some(op) => write!(f, "@{}: op {op}: {}", self.function, self.message),
            None => write!(f, "@{}: {}", self.function, self.message),
        }
    }
}

/// Checks every invariant of `prog`; returns every violation.
pub fn verify(prog: &Program) -> Result<(), Vec<VerifyError>> {
    let mut errs = Vec::new();
    for func in &prog.functions {
        verify_function(func, &mut errs);
    }
    for p in &prog.pipelines {
        verify_pipeline(prog, p, &mut errs);
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

fn verify_pipeline(prog: &Program, p: &Pipeline, errs: &mut Vec<VerifyError>) {
    let mut nested_errs = Vec::new();
    verify_graph(prog, p, errs, &mut nested_errs);
    errs.extend(nested_errs);
}

fn verify_graph(
    prog: &Program,
    p: &Pipeline,
    errs: &mut Vec<VerifyError>,
    nested_errs: &mut Vec<VerifyError>,
) {
    let mut bad = |span: Option<Span>, message: String| {
        errs.push(VerifyError {
            function: p.name.clone(),
            op: None,
            span,
            message,
        })
    };
    let order = p.topo_order();
    if order.len() != p.graph.node_count() {
        bad(
            None,
            format!(
                "{} nodes unreachable from the output",
                p.graph.node_count() - order.len()
            ),
        );
    }
    if petgraph::algo::is_cyclic_directed(&p.graph) {
        bad(None, "the dataset graph has a cycle".into());
        return;
    }
    for node in order {
        let n = &p.graph[node];
        let span = Some(n.span);
        let inputs = p.inputs(node);
        let arity_ok = match n.kind.arity() {
            Some(k) => inputs.len() == k,
            None => !inputs.is_empty(),
        };
        if !arity_ok {
            bad(
                span,
                format!("{} has {} inputs", n.kind.mnemonic(), inputs.len()),
            );
            continue;
        }
        let in_elems: Vec<&ElemType> = inputs.iter().map(|&i| &p.graph[i].elem).collect();
        if let Some(rule) = n.kind.elem_rule(&in_elems) {
            match rule {
                Ok(want) if want != n.elem => bad(
                    span,
                    format!("{} records {}, inferred {want}", n.kind.mnemonic(), n.elem),
                ),
                Ok(_) => {}
                Err(e) => bad(span, format!("{}: {e}", n.kind.mnemonic())),
            }
        }
        let (func, returns) = match &n.kind {
            DsKind::Map { func, .. } => (*func, n.elem.leaves().into_iter().cloned().collect()),
            DsKind::Filter { func } => (*func, vec![TensorType::scalar(DType::Bool)]),
            DsKind::Transform(t) => match t.func() {
                Some(func) => (func, crate::Transform::predicate_results()),
                None => continue,
            },
            DsKind::Interleave(nest) => {
                verify_nested(prog, &p.name, nest, in_elems[0], n.span, nested_errs);
                continue;
            }
            _ => continue,
        };
        let Some(f) = prog.functions.get(func.index()) else {
            bad(
                span,
                format!("{} refers to a missing function", n.kind.mnemonic()),
            );
            continue;
        };
        let takes: Vec<TensorType> = in_elems[0].leaves().into_iter().cloned().collect();
        if f.param_types() != takes {
            bad(
                span,
                format!(
                    "@{} takes parameters that do not match its input elements",
                    f.name
                ),
            );
        }
        if f.result_types() != returns {
            bad(
                span,
                format!(
                    "@{} returns ({}), but the {} needs ({})",
                    f.name,
                    type_list(&f.result_types()),
                    n.kind.mnemonic(),
                    type_list(&returns)
                ),
            );
        }
    }
}

/// An `interleave`'s function and nested pipeline: the function takes the input element;
/// each `%argK` an inner source reads is a result of it, of the type that source reads (the
/// leaf itself for `from_tensors`, rows of it for `from_tensor_slices`, an integer scalar
/// for a `range` bound or a `repeat` count); the nested pipeline verifies as any other.
fn verify_nested(
    prog: &Program,
    outer: &str,
    nest: &Nested,
    input: &ElemType,
    span: Span,
    errs: &mut Vec<VerifyError>,
) {
    let mut bad = |span: Span, message: String| {
        errs.push(VerifyError {
            function: outer.to_string(),
            op: None,
            span: Some(span),
            message,
        })
    };
    let Some(f) = prog.functions.get(nest.func.index()) else {
        bad(span, "interleave refers to a missing function".into());
        return;
    };
    let takes: Vec<TensorType> = input.leaves().into_iter().cloned().collect();
    if f.param_types() != takes {
        bad(
            span,
            format!(
                "@{} takes parameters that do not match the interleave's input elements",
                f.name
            ),
        );
    }
    let results = f.result_types();
    for node in nest.inner.graph.node_indices() {
        let n = &nest.inner.graph[node];
        let leaves = n.elem.leaves();
        // (source, what it needs, the leaf it gives if any)
        let reads: Vec<(&Source, Need, Option<&TensorType>)> = match &n.kind {
            DsKind::FromTensors(srcs) => srcs
                .iter()
                .enumerate()
                .map(|(i, s)| (s, Need::Whole, leaves.get(i).copied()))
                .collect(),
            DsKind::FromTensorSlices(srcs) => srcs
                .iter()
                .enumerate()
                .map(|(i, s)| (s, Need::Rows, leaves.get(i).copied()))
                .collect(),
            DsKind::RangeOf(srcs) => srcs.iter().map(|s| (s, Need::Count, None)).collect(),
            DsKind::RepeatOf(s) => vec![(s, Need::Count, None)],
            _ => Vec::new(),
        };
        for (src, need, leaf) in reads {
            let Source::Arg(k) = src else { continue };
            let Some(got) = results.get(*k) else {
                bad(
                    n.span,
                    format!(
                        "{} reads %arg{k}, but @{} returns {} values",
                        n.kind.mnemonic(),
                        f.name,
                        results.len()
                    ),
                );
                continue;
            };
            let fits = match (need, leaf) {
                (Need::Whole, Some(l)) => got == l,
                (Need::Rows, Some(l)) => {
                    got.dtype == l.dtype
                        && got.rank() == l.rank() + 1
                        && got.shape.0[1..] == l.shape.0[..]
                }
                (Need::Count, _) => got.rank() == 0 && got.dtype.is_int(),
                (_, None) => false,
            };
            if !fits {
                bad(
                    n.span,
                    format!(
                        "{} reads %arg{k}, but @{} returns {got} there",
                        n.kind.mnemonic(),
                        f.name
                    ),
                );
            }
        }
    }
    let mut deeper = Vec::new();
    verify_graph(prog, &nest.inner, errs, &mut deeper);
    errs.extend(deeper);
}

/// What an inner source needs of the value it reads.
#[derive(Clone, Copy)]
enum Need {
    /// The element's leaf itself.
    Whole,
    /// A stack of the leaf's rows.
    Rows,
    /// An integer scalar.
    Count,
}

fn type_list(tys: &[TensorType]) -> String {
    tys.iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn verify_function(func: &Function, errs: &mut Vec<VerifyError>) {
    let mut defined = vec![false; func.values.len()];
    let mut bad = |op: Option<usize>, span: Option<Span>, message: String| {
        errs.push(VerifyError {
            function: func.name.clone(),
            op,
            span,
            message,
        })
    };
    for (i, &p) in func.params.iter().enumerate() {
        match func.values.get(p.index()) {
            Some(info) if info.def == ValueDef::Param(i) => defined[p.index()] = true,
            _ => bad(
                None,
                None,
                format!("parameter {i} ({p}) is not defined as that parameter"),
            ),
        }
    }
    for (oi, op) in func.ops.iter().enumerate() {
        let (at, span) = (Some(oi), Some(op.span));
        let name = op.kind.mnemonic();
        let mut operands_ok = true;
        for &input in &op.inputs {
            if !defined.get(input.index()).copied().unwrap_or(false) {
                bad(
                    at,
                    span,
                    format!("{name} uses {input} before its definition"),
                );
                operands_ok = false;
            }
        }
        for (k, &out) in op.outputs.iter().enumerate() {
            match func.values.get(out.index()) {
                Some(info) if info.def == ValueDef::Op(crate::OpId(oi as u32), k) => {
                    if std::mem::replace(&mut defined[out.index()], true) {
                        bad(at, span, format!("{out} is defined twice"));
                    }
                }
                _ => bad(
                    at,
                    span,
                    format!("{name} output {k} ({out}) has a wrong definition"),
                ),
            }
        }
        if !operands_ok {
            continue;
        }
        let in_tys: Vec<&TensorType> = op.inputs.iter().map(|v| func.ty(*v)).collect();
        let recorded: Vec<TensorType> = op.outputs.iter().map(|v| func.ty(*v).clone()).collect();
        match op.kind.infer(&in_tys) {
            // An eager call's results are its declaration's; a fused op kept only because
            // it may fail has no outputs.
            None => {}
            Some(Err(e)) => bad(at, span, format!("{name}: {e}")),
            Some(Ok(_)) if recorded.is_empty() && matches!(op.kind, OpKind::Fused(_)) => {}
            Some(Ok(inferred)) if inferred != recorded => bad(
                at,
                span,
                format!(
                    "{name}: recorded ({}), inferred ({})",
                    type_list(&recorded),
                    type_list(&inferred)
                ),
            ),
            Some(Ok(_)) => {}
        }
    }
    for &r in &func.results {
        if !defined.get(r.index()).copied().unwrap_or(false) {
            bad(None, None, format!("result {r} is not defined"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Shape, ValueId};
    use pipec_tensor::ops::{BinaryOp, UnaryOp};

    fn f32s(n: usize) -> TensorType {
        TensorType::new(DType::F32, Shape::known(&[n]))
    }

    fn program(func: Function) -> Program {
        Program {
            functions: vec![func],
            pipelines: vec![],
        }
    }

    /// `range(4).flat_map(|n| range(n))` by hand, its inner `range` reading `arg`; the
    /// function `f(n) = n` returns `ret`.
    fn nested_program(arg: usize, ret: DType) -> Program {
        use crate::pipeline::{DsNode, Parallelism};
        let i64s = TensorType::scalar(DType::I64);
        let mut f = Function::new("f.0", Span::new(0, 1), vec![i64s.clone()]);
        let n = f.params[0];
        f.results = vec![if ret == DType::I64 {
            n
        } else {
            f.push(
                OpKind::Cast(ret),
                vec![n],
                TensorType::scalar(ret),
                Span::new(1, 2),
            )
        }];
        let node = |kind, span| DsNode {
            kind,
            elem: ElemType::Tensor(i64s.clone()),
            span,
        };
        let mut inner = Pipeline {
            name: "main".into(),
            span: Span::new(0, 1),
            graph: Default::default(),
            output: Default::default(),
        };
        let zero = Source::Const(pipec_tensor::Tensor::scalar(0i64));
        let one = Source::Const(pipec_tensor::Tensor::scalar(1i64));
        inner.output = inner.graph.add_node(node(
            DsKind::RangeOf(vec![zero, Source::Arg(arg), one]),
            Span::new(5, 6),
        ));
        let mut outer = Pipeline {
            name: "main".into(),
            span: Span::new(0, 1),
            graph: Default::default(),
            output: Default::default(),
        };
        let src = outer.graph.add_node(node(
            DsKind::Range {
                start: 0,
                stop: 4,
                step: 1,
            },
            Span::new(1, 2),
        ));
        let nest = Nested {
            func: crate::FuncId(0),
            inner,
            cycle_length: 1,
            block_length: 1,
            parallelism: Parallelism::Sequential,
            deterministic: true,
            flat: true,
        };
        outer.output = outer
            .graph
            .add_node(node(DsKind::Interleave(Box::new(nest)), Span::new(3, 4)));
        outer.graph.add_edge(src, outer.output, 0);
        Program {
            functions: vec![f],
            pipelines: vec![outer],
        }
    }

    #[test]
    fn a_nested_pipeline_is_verified_against_its_function() {
        assert_eq!(verify(&nested_program(0, DType::I64)), Ok(()));
        let errs = verify(&nested_program(1, DType::I64)).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].span, Some(Span::new(5, 6)));
        assert_eq!(
            errs[0].message,
            "range reads %arg1, but @f.0 returns 1 values"
        );
        let errs = verify(&nested_program(0, DType::F32)).unwrap_err();
        assert_eq!(
            errs.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["range reads %arg0, but @f.0 returns f32[] there"]
        );
    }

    #[test]
    fn a_well_typed_function_verifies() {
        let mut f = Function::new("f.0", Span::new(0, 1), vec![f32s(3)]);
        let x = f.params[0];
        let y = f.push(
            OpKind::Unary(UnaryOp::Exp),
            vec![x],
            f32s(3),
            Span::new(2, 5),
        );
        let z = f.push(
            OpKind::Binary(BinaryOp::Add),
            vec![x, y],
            f32s(3),
            Span::new(6, 9),
        );
        f.results = vec![z];
        assert_eq!(verify(&program(f)), Ok(()));
    }

    #[test]
    fn a_recorded_type_that_the_rule_does_not_give_is_reported_at_its_op() {
        let mut f = Function::new("f.0", Span::new(0, 1), vec![f32s(3)]);
        let x = f.params[0];
        // exp keeps the shape: recording [4] is what a buggy pass would leave behind.
        let y = f.push(
            OpKind::Unary(UnaryOp::Exp),
            vec![x],
            f32s(4),
            Span::new(2, 5),
        );
        f.results = vec![y];
        let errs = verify(&program(f)).unwrap_err();
        assert_eq!(
            errs,
            vec![VerifyError {
                function: "f.0".into(),
                op: Some(0),
                span: Some(Span::new(2, 5)),
                message: "exp: recorded (f32[4]), inferred (f32[3])".into(),
            }]
        );
        assert_eq!(
            errs[0].to_string(),
            "@f.0: op 0: exp: recorded (f32[4]), inferred (f32[3])"
        );
    }

    #[test]
    fn an_op_whose_rule_rejects_its_operands_is_reported() {
        let mut f = Function::new("f.0", Span::new(0, 1), vec![f32s(3), f32s(2)]);
        let (a, b) = (f.params[0], f.params[1]);
        let y = f.push(
            OpKind::Binary(BinaryOp::Add),
            vec![a, b],
            f32s(3),
            Span::new(2, 5),
        );
        f.results = vec![y];
        let errs = verify(&program(f)).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].message,
            "add: `add` operands [3], [2] do not broadcast"
        );
    }

    #[test]
    fn a_use_before_definition_is_reported_and_not_typed() {
        let mut f = Function::new("f.0", Span::new(0, 1), vec![f32s(3)]);
        let y = f.push(
            OpKind::Unary(UnaryOp::Neg),
            vec![ValueId(7)],
            f32s(3),
            Span::new(2, 5),
        );
        f.results = vec![y];
        let errs = verify(&program(f)).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].message, "neg uses %7 before its definition");
    }
}
