//! The meaning of each op, as a call into the shared kernels: the interpreter, constant
//! folding and trace-time evaluation all go through [`OpKind::eval`], so there is one
//! implementation of every op.

use crate::function::{FusedBody, FusedInst, OpKind, ReshapeDim};
use pipec_tensor::kernels::{self, FusedOp, FusedProgram, KernelError};
use pipec_tensor::{DType, Tensor};

impl OpKind {
    /// Evaluates a pure op on host tensors. Eager ops need a host instance and are run by
    /// the runtime instead.
    pub fn eval(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, KernelError> {
        let one = |t: Tensor| Ok(vec![t]);
        match self {
            OpKind::Const(t) => one(t.clone()),
            OpKind::Unary(op) => one(kernels::unary(*op, &inputs[0])?),
            OpKind::Binary(op) => one(kernels::binary(*op, &inputs[0], &inputs[1])?),
            OpKind::Cast(to) => one(kernels::cast(&inputs[0], *to)),
            OpKind::Select => one(kernels::select(&inputs[0], &inputs[1], &inputs[2])?),
            OpKind::Clip => one(kernels::clip(&inputs[0], &inputs[1], &inputs[2])?),
            OpKind::Reduce { op, axes, keepdims } => {
                one(kernels::reduce(*op, &inputs[0], axes, *keepdims)?)
            }
            OpKind::Reshape(dims) => {
                let x = &inputs[0];
                let fixed: usize = dims
                    .iter()
                    .map(|d| match d {
                        ReshapeDim::Fixed(n) => *n,
                        ReshapeDim::Infer => 1,
                    })
                    .fold(1usize, usize::saturating_mul);
                let shape: Vec<usize> = dims
                    .iter()
                    .map(|d| match d {
                        ReshapeDim::Fixed(n) => Ok(*n),
                        ReshapeDim::Infer if fixed > 0 && x.len().is_multiple_of(fixed) => {
                            Ok(x.len() / fixed)
                        }
                        ReshapeDim::Infer => Err(KernelError::InvalidArgument(format!(
                            "cannot reshape {} elements into a shape with {fixed} elements per -1",
                            x.len()
                        ))),
                    })
                    .collect::<Result<_, _>>()?;
                one(kernels::reshape(x, &shape)?)
            }
            OpKind::Transpose(perm) => one(kernels::transpose(&inputs[0], perm)?),
            OpKind::ExpandDims(axis) => one(kernels::expand_dims(&inputs[0], *axis)?),
            OpKind::Squeeze(axes) => one(kernels::squeeze(&inputs[0], axes)?),
            OpKind::Concat(axis) => one(kernels::concat(inputs, *axis)?),
            OpKind::Stack(axis) => one(kernels::stack(inputs, *axis)?),
            OpKind::BroadcastTo(shape) => one(kernels::broadcast_to(&inputs[0], shape)?),
            OpKind::Tile(reps) => one(kernels::tile(&inputs[0], reps)?),
            OpKind::Reverse(axes) => one(kernels::reverse(&inputs[0], axes)?),
            OpKind::Slice(items) => one(kernels::slice(&inputs[0], items)?),
            OpKind::MatMul => one(kernels::matmul(&inputs[0], &inputs[1])?),
            OpKind::OneHot { depth, dtype } => one(kernels::one_hot(&inputs[0], *depth, *dtype)?),
            OpKind::Sort(axis) => one(kernels::sort(&inputs[0], *axis)?),
            OpKind::EnsureShape(shape) => {
                if shape.admits(inputs[0].shape()) {
                    one(inputs[0].clone())
                } else {
                    Err(KernelError::InvalidArgument(format!(
                        "ensure_shape expected {shape}, found {:?}",
                        inputs[0].shape()
                    )))
                }
            }
            OpKind::Fused(body) => body.eval_chunked(inputs),
            OpKind::Eager(host) => Err(KernelError::InvalidArgument(format!(
                "eager function `{}` cannot be evaluated at compile time",
                host.name()
            ))),
        }
    }
}

impl FusedBody {
    /// Evaluates the scalar program on whole tensors, one instruction at a time: the
    /// reference semantics that the chunked fused kernel must reproduce bit for bit.
    pub fn eval(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, KernelError> {
        self.eval_located(inputs).map_err(|(_, e)| e)
    }

    /// [`FusedBody::eval`], with the index of the failing instruction on error.
    pub fn eval_located(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, (usize, KernelError)> {
        let mut regs: Vec<Tensor> = Vec::with_capacity(self.insts.len());
        for (i, inst) in self.insts.iter().enumerate() {
            let r = |i: &u32| &regs[*i as usize];
            let t = match inst {
                FusedInst::Input(n) => Ok(inputs[*n].clone()),
                FusedInst::Const(s) => Ok(s.to_tensor()),
                FusedInst::Unary(op, a) => kernels::unary(*op, r(a)),
                FusedInst::Binary(op, a, b) => kernels::binary(*op, r(a), r(b)),
                FusedInst::Cast(to, a) => Ok(kernels::cast(r(a), *to)),
                FusedInst::Select(c, a, b) => kernels::select(r(c), r(a), r(b)),
                FusedInst::Clip(x, lo, hi) => kernels::clip(r(x), r(lo), r(hi)),
            };
            regs.push(t.map_err(|e| (i, e))?);
        }
        Ok(self
            .results
            .iter()
            .map(|&i| regs[i as usize].clone())
            .collect())
    }

    /// Evaluates with the chunked kernel (`kernels::run_fused`): no full-size
    /// intermediates. Layouts the kernel declines, and every error, go through the
    /// reference [`FusedBody::eval_located`], so results and error messages (which op,
    /// which element) are exactly those of the unfused ops.
    pub fn eval_chunked_located(
        &self,
        inputs: &[Tensor],
    ) -> Result<Vec<Tensor>, (usize, KernelError)> {
        let ops: Vec<FusedOp> = self
            .insts
            .iter()
            .map(|inst| match *inst {
                FusedInst::Input(n) => FusedOp::Input(n),
                FusedInst::Const(s) => FusedOp::Const(s),
                FusedInst::Unary(op, a) => FusedOp::Unary(op, a),
                FusedInst::Binary(op, a, b) => FusedOp::Binary(op, a, b),
                FusedInst::Cast(_, a) => FusedOp::Cast(a),
                FusedInst::Select(c, a, b) => FusedOp::Select(c, a, b),
                FusedInst::Clip(x, lo, hi) => FusedOp::Clip(x, lo, hi),
            })
            .collect();
        let prog = FusedProgram {
            ops: &ops,
            dtypes: &self.dtypes,
            results: &self.results,
        };
        match kernels::run_fused(&prog, inputs) {
            Ok(Some(outs)) => Ok(outs),
            _ => self.eval_located(inputs),
        }
    }

    /// [`FusedBody::eval_chunked_located`] without the failing instruction.
    pub fn eval_chunked(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, KernelError> {
        self.eval_chunked_located(inputs).map_err(|(_, e)| e)
    }

    /// The dtype of register `reg`.
    pub fn dtype(&self, reg: u32) -> DType {
        self.dtypes[reg as usize]
    }
}
