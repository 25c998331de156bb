//! The pipec IR: straight-line SSA functions of tensor ops, and dataset pipelines as a
//! petgraph graph whose `map`/`filter` nodes point at those functions.
//!
//! Tracing produces a [`Program`]; passes rewrite it; the interpreter runs it. The IR knows
//! nothing of syntax: it holds spans only so that errors found later still point at the
//! user's source. One printer ([`Program`]'s `Display`) serves `--emit-ir` and every
//! snapshot, and [`verify`] checks the invariants after tracing and after every pass.

#![warn(clippy::print_stdout, clippy::print_stderr)]

mod dot;
mod eval;
mod function;
mod host;
mod ops;
mod pipeline;
mod print;
mod transform;
mod types;
mod verify;
pub mod vmap;

pub use dot::to_dot;
pub use eval::kernel_error_code;
pub use function::{
    Function, FusedBody, FusedOp, Op, OpId, OpKind, ReshapeDim, ValueDef, ValueId, ValueInfo,
};
pub use host::{HostFn, HostFunction, HostInstance, on_blocks};
pub use ops::{BatchRule, ImageOp, brightness_dtype, resolve_reshape};
pub use pipeline::{DsKind, DsNode, DsNodeId, MAX_PREFETCH, Nested, Parallelism, Pipeline, Source};
pub use print::{ds_node_lines, elem_text};
pub use transform::{Arg, Param, ParamKind, TRANSFORMS, Transform, TransformDecl, transform_decl};
pub use types::{Dim, ElemType, Shape, TensorType};
pub use verify::{VerifyError, verify};

/// Index of a function in [`Program::functions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(pub u32);

impl FuncId {
    /// The index into [`Program::functions`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A whole compiled program: every traced function and every named pipeline.
#[derive(Clone, Debug, Default)]
pub struct Program {
    /// All functions, addressed by [`FuncId`]; printed in this order.
    pub functions: Vec<Function>,
    /// The named pipelines, in source order.
    pub pipelines: Vec<Pipeline>,
}

impl Program {
    /// The function with id `id`.
    pub fn func(&self, id: FuncId) -> &Function {
        &self.functions[id.index()]
    }

    /// The function with id `id`, mutably.
    pub fn func_mut(&mut self, id: FuncId) -> &mut Function {
        &mut self.functions[id.index()]
    }

    /// Adds a function and returns its id.
    pub fn add_function(&mut self, func: Function) -> FuncId {
        self.functions.push(func);
        FuncId(self.functions.len() as u32 - 1)
    }

    /// The pipeline called `name`.
    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.name == name)
    }
}
