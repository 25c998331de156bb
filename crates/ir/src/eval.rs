//! The reference and chunked evaluation of fused elementwise programs (every other op's
//! meaning is `OpKind::eval`, declared with the op in `ops/`).

use crate::function::FusedBody;
use pipec_tensor::kernels::{self, FusedOp, FusedProgram, KernelError};
use pipec_tensor::{DType, Tensor, TensorRef};

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
                FusedOp::Input(n) => Ok(inputs[*n].clone()),
                FusedOp::Const(s) => Ok(s.to_tensor()),
                FusedOp::Unary(op, a) => kernels::unary(*op, r(a)),
                FusedOp::Binary(op, a, b) => kernels::binary(*op, r(a), r(b)),
                FusedOp::Cast(a) => Ok(kernels::cast(r(a), self.dtypes[i])),
                FusedOp::Select(c, a, b) => kernels::select(r(c), r(a), r(b)),
                FusedOp::Clip(x, lo, hi) => kernels::clip(r(x), r(lo), r(hi)),
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
        let prog = FusedProgram {
            ops: &self.insts,
            dtypes: &self.dtypes,
            results: &self.results,
        };
        match kernels::run_fused(&prog, inputs) {
            Ok(Some(outs)) => Ok(outs),
            _ => self.eval_located(inputs),
        }
    }

    /// Evaluates with the chunked kernel on inputs that may be borrowed (a mapped file's
    /// rows, read in place); `None` when the kernel declines the layout or an instruction
    /// fails: the caller then evaluates owned inputs, which finds the error exactly.
    pub fn eval_in_place(&self, inputs: &[TensorRef<'_>]) -> Option<Vec<Tensor>> {
        let prog = FusedProgram {
            ops: &self.insts,
            dtypes: &self.dtypes,
            results: &self.results,
        };
        kernels::run_fused_on(&prog, inputs).ok().flatten()
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

/// The diagnostic code of a kernel error whose meaning is the same wherever the op ran (the
/// tracer folding a constant, the interpreter, a batch being stacked); `None` for the errors
/// whose code depends on where (a broadcast that fails is a compile-time mismatch when
/// tracing, a run-time one when a `?` dim turns out wrong), which the caller names.
pub fn kernel_error_code(e: &KernelError) -> Option<pipec_diag::Code> {
    use pipec_diag::Code;
    Some(match e {
        KernelError::DivisionByZero { .. } => Code::DivisionByZero,
        KernelError::NegativePower { .. } => Code::NegativePower,
        KernelError::TooLarge { .. } => Code::TensorTooLarge,
        KernelError::OverMemoryLimit { .. } => Code::MemoryLimit,
        KernelError::BadValue(_) => Code::BadValue,
        KernelError::BadImage(_) => Code::BadImage,
        KernelError::File { .. } => Code::FileUnreadable,
        _ => return None,
    })
}
