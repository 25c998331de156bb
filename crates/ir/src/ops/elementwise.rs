//! Elementwise ops: unary and binary ops (their facts come from the op tables of
//! `pipec_tensor::ops`), `cast`, `where`, `clip`, and fused elementwise programs.

use crate::function::{FusedBody, FusedOp, OpKind};
use crate::types::{Shape, TensorType};
use pipec_tensor::kernels::{self, KernelError};
use pipec_tensor::ops::DTypeRuleError;
use pipec_tensor::{DType, Tensor};

fn rule(op: &str, dtype: DType, e: DTypeRuleError) -> String {
    let why = match e {
        DTypeRuleError::NeedsFloat => "needs a float dtype",
        DTypeRuleError::NeedsBool => "needs bool",
        DTypeRuleError::Unsupported => "is not defined on it",
    };
    format!("`{op}` on {dtype}: it {why}")
}

/// The broadcast of every operand's shape.
fn broadcast_all(op: &str, inputs: &[&TensorType]) -> Result<Shape, String> {
    inputs
        .iter()
        .try_fold(Shape::scalar(), |acc, t| Shape::broadcast(&acc, &t.shape))
        .ok_or_else(|| {
            let shapes: Vec<String> = inputs.iter().map(|t| t.shape.to_string()).collect();
            format!("`{op}` operands {} do not broadcast", shapes.join(", "))
        })
}

fn same_dtype(op: &str, inputs: &[&TensorType]) -> Result<DType, String> {
    let d = inputs[0].dtype;
    match inputs.iter().find(|t| t.dtype != d) {
        Some(t) => Err(format!("`{op}` on {d} and {}", t.dtype)),
        None => Ok(d),
    }
}

pub(super) fn infer(kind: &OpKind, inputs: &[&TensorType]) -> Result<Vec<TensorType>, String> {
    let one = |dtype, shape| Ok(vec![TensorType::new(dtype, shape)]);
    match kind {
        OpKind::Unary(op) => {
            let x = inputs[0];
            let d = op
                .result_dtype(x.dtype)
                .map_err(|e| rule(op.name(), x.dtype, e))?;
            one(d, x.shape.clone())
        }
        OpKind::Binary(op) => {
            let d = same_dtype(op.name(), inputs)?;
            let d = op.result_dtype(d).map_err(|e| rule(op.name(), d, e))?;
            one(d, broadcast_all(op.name(), inputs)?)
        }
        // No cast converts strings: `as_string` and `string_to_number` do.
        OpKind::Cast(to) if to.is_str() != inputs[0].dtype.is_str() => Err(format!(
            "`cast` does not convert {} to {to}",
            inputs[0].dtype
        )),
        OpKind::Cast(to) => one(*to, inputs[0].shape.clone()),
        OpKind::Select => {
            if inputs[0].dtype != DType::Bool {
                return Err(format!("`where` condition is {}", inputs[0].dtype));
            }
            let d = same_dtype("where", &inputs[1..])?;
            one(d, broadcast_all("where", inputs)?)
        }
        OpKind::Clip => {
            let d = same_dtype("clip", inputs)?;
            if d.is_str() {
                return Err(format!("`clip` of {d}"));
            }
            one(d, broadcast_all("clip", inputs)?)
        }
        OpKind::Fused(body) => {
            let shape = broadcast_all("fused_elementwise", inputs)?;
            body.check(inputs)?;
            Ok(body
                .results
                .iter()
                .map(|&r| TensorType::new(body.dtype(r), shape.clone()))
                .collect())
        }
        _ => unreachable!("not an elementwise op"),
    }
}

pub(super) fn eval(kind: &OpKind, inputs: &[Tensor]) -> Result<Vec<Tensor>, KernelError> {
    let one = |t: Tensor| Ok(vec![t]);
    match kind {
        OpKind::Unary(op) => one(kernels::unary(*op, &inputs[0])?),
        OpKind::Binary(op) => one(kernels::binary(*op, &inputs[0], &inputs[1])?),
        OpKind::Cast(to) => one(kernels::cast(&inputs[0], *to)),
        OpKind::Select => one(kernels::select(&inputs[0], &inputs[1], &inputs[2])?),
        OpKind::Clip => one(kernels::clip(&inputs[0], &inputs[1], &inputs[2])?),
        OpKind::Fused(body) => body.eval_chunked(inputs),
        _ => unreachable!("not an elementwise op"),
    }
}

impl FusedBody {
    /// Whether some instruction may fail for some values (an integer `//` or `%` by
    /// zero, a negative integer power).
    pub fn may_fail(&self) -> bool {
        self.insts.iter().any(|inst| match *inst {
            FusedOp::Binary(op, a, _) => op.may_fail(self.dtype(a)),
            _ => false,
        })
    }

    /// The cost of one output element: the sum of its instructions' costs.
    pub fn cost(&self) -> usize {
        self.insts
            .iter()
            .map(|inst| match inst {
                FusedOp::Unary(op, _) => op.cost(),
                FusedOp::Binary(op, ..) => op.cost(),
                FusedOp::Input(_) | FusedOp::Const(_) => 0,
                _ => 1,
            })
            .sum()
    }

    /// Checks the program against operands of types `inputs`: every register typed by its
    /// instruction's rule, operands defined before use.
    pub fn check(&self, inputs: &[&TensorType]) -> Result<(), String> {
        if self.dtypes.len() != self.insts.len() {
            return Err(format!(
                "{} instructions but {} register dtypes",
                self.insts.len(),
                self.dtypes.len()
            ));
        }
        if !self.spans.is_empty() && self.spans.len() != self.insts.len() {
            return Err(format!(
                "{} instructions but {} spans",
                self.insts.len(),
                self.spans.len()
            ));
        }
        for (i, inst) in self.insts.iter().enumerate() {
            let me = self.dtypes[i];
            let operands: &[u32] = match inst {
                FusedOp::Input(_) | FusedOp::Const(_) => &[],
                FusedOp::Unary(_, a) | FusedOp::Cast(a) => std::slice::from_ref(a),
                FusedOp::Binary(_, a, b) => &[*a, *b],
                FusedOp::Select(a, b, c) | FusedOp::Clip(a, b, c) => &[*a, *b, *c],
            };
            if operands.iter().any(|&r| r as usize >= i) {
                return Err(format!("^{i} uses a register not defined before it"));
            }
            let d = |r: u32| self.dtypes[r as usize];
            let ok = match *inst {
                FusedOp::Input(n) => inputs.get(n).is_some_and(|t| t.dtype == me),
                FusedOp::Const(s) => s.dtype() == me,
                FusedOp::Unary(op, a) => op.result_dtype(d(a)) == Ok(me),
                FusedOp::Binary(op, a, b) => d(a) == d(b) && op.result_dtype(d(a)) == Ok(me),
                // A cast's target is its own register's dtype; the kernel has no strings.
                FusedOp::Cast(a) => d(a) != DType::Str && me != DType::Str,
                FusedOp::Select(c, a, b) => d(c) == DType::Bool && d(a) == me && d(b) == me,
                FusedOp::Clip(x, lo, hi) => d(x) == me && d(lo) == me && d(hi) == me,
            };
            if !ok {
                return Err(format!("^{i} is ill-typed"));
            }
        }
        match self
            .results
            .iter()
            .find(|&&r| r as usize >= self.insts.len())
        {
            Some(r) => Err(format!("result ^{r} is not an instruction")),
            None => Ok(()),
        }
    }
}
