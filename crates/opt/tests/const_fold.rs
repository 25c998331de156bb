//! `const-fold` on hand-built IR (tracing already evaluates constant expressions, so
//! constant operands appear only after other rewrites): chains fold in one run, a fold
//! that fails stays with a remark, a result past the size limit stays with a remark.

use pipec_diag::Span;
use pipec_ir::{Function, OpKind, Program, Shape, TensorType};
use pipec_tensor::ops::BinaryOp;
use pipec_tensor::{DType, Tensor};

fn run(build: impl FnOnce(&mut Function)) -> (String, Vec<String>) {
    let mut f = Function::new("f", Span::default(), vec![]);
    build(&mut f);
    let mut prog = Program::default();
    prog.add_function(f);
    let out = pipec_opt::optimize(prog, &["const-fold", "dce"]).expect("passes run");
    (
        out.program.functions[0].to_string(),
        out.remarks.iter().map(|d| d.message.clone()).collect(),
    )
}

fn c(f: &mut Function, t: Tensor) -> pipec_ir::ValueId {
    let ty = TensorType::new(t.dtype(), Shape::known(t.shape()));
    f.push(OpKind::Const(t), vec![], ty, Span::new(0, 1))
}

#[test]
fn chains_fold_to_one_constant() {
    let (ir, remarks) = run(|f| {
        let a = c(f, Tensor::from_vec(&[2], vec![1i32, 2]).expect("shape"));
        let b = c(f, Tensor::scalar(3i32));
        let ty = TensorType::new(DType::I32, Shape::known(&[2]));
        let m = f.push(
            OpKind::Binary(BinaryOp::Mul),
            vec![a, b],
            ty.clone(),
            Span::new(1, 2),
        );
        let s = f.push(
            OpKind::Binary(BinaryOp::Add),
            vec![m, a],
            ty,
            Span::new(2, 3),
        );
        f.results = vec![s];
    });
    assert_eq!(
        ir,
        "func @f() -> i32[2] {\n  %0 = const dense<i32[2]> [4, 8] : i32[2]\n  return %0\n}\n"
    );
    assert_eq!(
        remarks,
        [
            "const-fold: folded `mul` of constants",
            "const-fold: folded `add` of constants"
        ]
    );
}

#[test]
fn a_failing_fold_is_kept_for_the_run_to_report() {
    let (ir, remarks) = run(|f| {
        let a = c(f, Tensor::from_vec(&[2], vec![1i32, 2]).expect("shape"));
        let z = c(f, Tensor::scalar(0i32));
        let ty = TensorType::new(DType::I32, Shape::known(&[2]));
        let d = f.push(
            OpKind::Binary(BinaryOp::FloorDiv),
            vec![a, z],
            ty,
            Span::new(1, 2),
        );
        f.results = vec![d];
    });
    assert!(ir.contains("floordiv"), "{ir}");
    assert_eq!(
        remarks,
        [
            "const-fold: kept `floordiv` of constants: evaluating it fails (integer division by zero at element 0), so the run reports it"
        ]
    );
}

#[test]
fn large_results_are_not_materialized() {
    let n = pipec_opt::MAX_FOLD_ELEMENTS + 1;
    let (ir, remarks) = run(|f| {
        let a = c(f, Tensor::from_vec(&[n], vec![1.0f32; n]).expect("shape"));
        let ty = TensorType::new(DType::F32, Shape::known(&[n]));
        let e = f.push(
            OpKind::Unary(pipec_tensor::ops::UnaryOp::Exp),
            vec![a],
            ty,
            Span::new(1, 2),
        );
        f.results = vec![e];
    });
    assert!(ir.contains("exp"), "{ir}");
    assert_eq!(
        remarks,
        [format!(
            "const-fold: kept `exp` of constants: its result of {n} elements is too large to store"
        )]
    );
}
