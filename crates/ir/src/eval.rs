//! The meaning of each op, as a call into the shared kernels: the interpreter, constant
//! folding and trace-time evaluation all go through [`OpKind::eval`], so there is one
//! implementation of every op.

use crate::function::{FusedBody, FusedInst, OpKind, ReshapeDim};
use pipec_tensor::kernels::{self, KernelError};
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
            OpKind::Reduce { op, axes, keepdims } => one(kernels::reduce(*op, &inputs[0], axes, *keepdims)?),
            OpKind::Reshape(dims) => {
                let x = &inputs[0];
                let fixed: usize = dims
                    .iter()
                    .map(|d| match d {
                        ReshapeDim::Fixed(n) => *n,
                        ReshapeDim::Infer => 1,
                    })
                    .product();
                let shape: Vec<usize> = dims
                    .iter()
                    .map(|d| match d {
                        ReshapeDim::Fixed(n) => Ok(*n),
                        ReshapeDim::Infer if fixed > 0 && x.len() % fixed == 0 => Ok(x.len() / fixed),
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
            OpKind::Fused(body) => body.eval(inputs),
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
        let mut regs: Vec<Tensor> = Vec::with_capacity(self.insts.len());
        for inst in &self.insts {
            let r = |i: &u32| &regs[*i as usize];
            let t = match inst {
                FusedInst::Input(n) => inputs[*n].clone(),
                FusedInst::Const(s) => s.to_tensor(),
                FusedInst::Unary(op, a) => kernels::unary(*op, r(a))?,
                FusedInst::Binary(op, a, b) => kernels::binary(*op, r(a), r(b))?,
                FusedInst::Cast(to, a) => kernels::cast(r(a), *to),
                FusedInst::Select(c, a, b) => kernels::select(r(c), r(a), r(b))?,
                FusedInst::Clip(x, lo, hi) => kernels::clip(r(x), r(lo), r(hi))?,
            };
            regs.push(t);
        }
        Ok(self.results.iter().map(|&i| regs[i as usize].clone()).collect())
    }

    /// The dtype of register `reg`.
    pub fn dtype(&self, reg: u32) -> DType {
        self.dtypes[reg as usize]
    }
}
