//! Functions: straight-line SSA over tensor values.
//!
//! Tracing unrolls loops, resolves trace-time `if`s and inlines calls, so a function is a
//! list of ops in execution order with no control flow. Invariant (checked by
//! [`crate::verify`]): every value is defined exactly once, by a parameter or an op output,
//! before any op that uses it.

use crate::host::HostFn;
use crate::ops::ImageOp;
use crate::types::{Shape, TensorType};
use pipec_diag::Span;
use pipec_tensor::DType;
use pipec_tensor::Tensor;
pub use pipec_tensor::kernels::FusedOp;
use pipec_tensor::kernels::SliceItem;
use pipec_tensor::ops::{BinaryOp, ReduceOp, UnaryOp};
use std::fmt;

/// An SSA value; prints as `%N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    /// The index into [`Function::values`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// An op's position in [`Function::ops`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u32);

impl OpId {
    /// The index into [`Function::ops`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueDef {
    /// The n-th parameter.
    Param(usize),
    /// The n-th output of an op.
    Op(OpId, usize),
}

/// The static facts about a value.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    /// Its type.
    pub ty: TensorType,
    /// Its definition.
    pub def: ValueDef,
}

/// One dim of a reshape target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReshapeDim {
    /// A fixed size.
    Fixed(usize),
    /// `-1`: whatever makes the element count match (at most one).
    Infer,
}

/// The operation an [`Op`] performs. Attributes live here; operands are [`Op::inputs`].
#[derive(Clone, Debug)]
pub enum OpKind {
    /// A constant tensor (no inputs).
    Const(Tensor),
    /// Elementwise unary op.
    Unary(UnaryOp),
    /// Elementwise binary op with numpy broadcasting; both inputs share a dtype.
    Binary(BinaryOp),
    /// Elementwise dtype conversion (SPEC §6 rules).
    Cast(DType),
    /// `where(cond, a, b)`, broadcasting all three.
    Select,
    /// `clip(x, lo, hi)`.
    Clip,
    /// A reduction over `axes` (sorted, distinct).
    Reduce {
        /// Which reduction.
        op: ReduceOp,
        /// The reduced axes of the input.
        axes: Vec<usize>,
        /// Whether reduced axes stay as size 1.
        keepdims: bool,
    },
    /// Reshape to `shape` (one dim may be inferred at run time).
    Reshape(Vec<ReshapeDim>),
    /// Permute axes.
    Transpose(Vec<usize>),
    /// Insert a size-1 axis.
    ExpandDims(usize),
    /// Remove the given size-1 axes.
    Squeeze(Vec<usize>),
    /// Concatenate the inputs along an axis.
    Concat(usize),
    /// Stack the inputs along a new axis.
    Stack(usize),
    /// Broadcast to a known shape.
    BroadcastTo(Vec<usize>),
    /// Repeat along each axis.
    Tile(Vec<usize>),
    /// Reverse along the given axes.
    Reverse(Vec<usize>),
    /// Basic indexing and slicing (ellipsis already expanded).
    Slice(Vec<SliceItem>),
    /// `matmul(a, b)` / `a @ b`.
    MatMul,
    /// `one_hot(indices, depth)`.
    OneHot {
        /// The number of classes.
        depth: usize,
        /// The output dtype.
        dtype: DType,
    },
    /// Sort ascending along an axis.
    Sort(usize),
    /// Check the run-time shape against a static one (`ensure_shape`); passes the value on.
    EnsureShape(Shape),
    /// `shape(x)`: the run-time shape of the operand, `i64[rank]` (a symbolic dim used as a
    /// value reads one entry of it).
    Shape,
    /// The element being computed, as `[position, epoch]` (`u64[2]`): its index in the
    /// stream that feeds the map or filter, and how many times that stream was restarted.
    /// The runtime supplies it; with `Some(rows)` (a function run on a block or batch) it is
    /// `u64[rows, 2]`, one row per element. What random ops draw from.
    ElementPosition(Option<crate::types::Dim>),
    /// A stateless random draw (operands: the element position, then the image, if any).
    Random {
        /// What it draws.
        draw: pipec_tensor::kernels::random::Draw,
        /// The seed as written (shown in the IR; `key` already holds it).
        seed: u64,
        /// The op key: the seed and the op's source site, hashed at trace time.
        key: u64,
    },
    /// Elementwise ops fused into one scalar program, run in cache-sized chunks.
    Fused(FusedBody),
    /// An image op (`resize`, `crop`), on `[..., height, width, channels]`.
    Image(ImageOp),
    /// A string op (SPEC §13), with its attributes.
    Str(pipec_tensor::kernels::strings::StrOp),
    /// A call of a host function: opaque, effectful, never folded, fused, merged or removed.
    Eager(HostFn),
}

impl OpKind {
    /// The mnemonic printed in the IR.
    pub fn mnemonic(&self) -> &'static str {
        match self {
            OpKind::Const(_) => "const",
            OpKind::Unary(op) => op.name(),
            OpKind::Binary(op) => op.name(),
            OpKind::Cast(_) => "cast",
            OpKind::Select => "where",
            OpKind::Clip => "clip",
            OpKind::Reduce { op, .. } => op.name(),
            OpKind::Reshape(_) => "reshape",
            OpKind::Transpose(_) => "transpose",
            OpKind::ExpandDims(_) => "expand_dims",
            OpKind::Squeeze(_) => "squeeze",
            OpKind::Concat(_) => "concat",
            OpKind::Stack(_) => "stack",
            OpKind::BroadcastTo(_) => "broadcast_to",
            OpKind::Tile(_) => "tile",
            OpKind::Reverse(_) => "reverse",
            OpKind::Slice(_) => "slice",
            OpKind::MatMul => "matmul",
            OpKind::OneHot { .. } => "one_hot",
            OpKind::Sort(_) => "sort",
            OpKind::EnsureShape(_) => "ensure_shape",
            OpKind::Shape => "shape",
            OpKind::ElementPosition(_) => "element_position",
            OpKind::Random { draw, .. } => draw.name(),
            OpKind::Fused(_) => "fused_elementwise",
            OpKind::Image(op) => op.name(),
            OpKind::Str(op) => op.name(),
            OpKind::Eager(_) => "call_eager",
        }
    }
}

/// The scalar program of a fused elementwise op.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedBody {
    /// The instructions, in the form the chunked kernel runs (converted once, by
    /// `fuse-elementwise`); instruction `i` defines register `i`, and a `Cast` casts to
    /// that register's dtype.
    pub insts: Vec<FusedOp>,
    /// The dtype of each register.
    pub dtypes: Vec<DType>,
    /// The registers that are the op's outputs, in order.
    pub results: Vec<u32>,
    /// The source span of each instruction (the op it came from), so a run-time error
    /// inside the fused op points at the user's line; empty if unknown.
    pub spans: Vec<Span>,
}

/// One operation in a function.
#[derive(Clone, Debug)]
pub struct Op {
    /// What it does.
    pub kind: OpKind,
    /// Its operands.
    pub inputs: Vec<ValueId>,
    /// The values it defines (one, except for eager calls returning tuples).
    pub outputs: Vec<ValueId>,
    /// The source it came from; rewrites keep the span of what they replace.
    pub span: Span,
}

/// A traced function: typed parameters, ops in execution order, results.
#[derive(Clone, Debug)]
pub struct Function {
    /// The IR name without `@`: the source name and the signature number (`normalize.0`).
    pub name: String,
    /// The declaration (or lambda) it was traced from.
    pub span: Span,
    /// One value per flat parameter leaf.
    pub params: Vec<ValueId>,
    /// Every value, indexed by [`ValueId`].
    pub values: Vec<ValueInfo>,
    /// The ops in execution order.
    pub ops: Vec<Op>,
    /// The returned values (flat leaves of the result element type).
    pub results: Vec<ValueId>,
    /// Whether axis 0 of every parameter and result indexes dataset elements (a map that
    /// `vectorize-map` made run once per batch), so errors can name the element itself.
    pub batched: bool,
}

impl Function {
    /// An empty function named `name` with parameters of the given types.
    pub fn new(name: impl Into<String>, span: Span, param_types: Vec<TensorType>) -> Function {
        let mut func = Function {
            name: name.into(),
            span,
            params: Vec::new(),
            values: Vec::new(),
            ops: Vec::new(),
            results: Vec::new(),
            batched: false,
        };
        for (i, ty) in param_types.into_iter().enumerate() {
            let id = func.new_value(ty, ValueDef::Param(i));
            func.params.push(id);
        }
        func
    }

    fn new_value(&mut self, ty: TensorType, def: ValueDef) -> ValueId {
        self.values.push(ValueInfo { ty, def });
        ValueId(self.values.len() as u32 - 1)
    }

    /// The type of `value`.
    pub fn ty(&self, value: ValueId) -> &TensorType {
        &self.values[value.index()].ty
    }

    /// Appends an op with one output of type `ty` and returns that output.
    pub fn push(
        &mut self,
        kind: OpKind,
        inputs: Vec<ValueId>,
        ty: TensorType,
        span: Span,
    ) -> ValueId {
        self.push_multi(kind, inputs, vec![ty], span)[0]
    }

    /// Appends an op with several outputs and returns them.
    pub fn push_multi(
        &mut self,
        kind: OpKind,
        inputs: Vec<ValueId>,
        tys: Vec<TensorType>,
        span: Span,
    ) -> Vec<ValueId> {
        let op_id = OpId(self.ops.len() as u32);
        let outputs: Vec<ValueId> = tys
            .into_iter()
            .enumerate()
            .map(|(i, ty)| self.new_value(ty, ValueDef::Op(op_id, i)))
            .collect();
        self.ops.push(Op {
            kind,
            inputs,
            outputs: outputs.clone(),
            span,
        });
        outputs
    }

    /// For each op and each of its input positions: whether that is the value's last use
    /// (and the value is not a result), where a runner can move the value into the op
    /// instead of cloning it. Once every such move is done, no dead value is left behind.
    pub fn last_uses(&self) -> Vec<Vec<bool>> {
        let mut last = vec![None; self.values.len()];
        for (i, op) in self.ops.iter().enumerate() {
            for (j, v) in op.inputs.iter().enumerate() {
                last[v.index()] = Some((i, j));
            }
        }
        for r in &self.results {
            last[r.index()] = None;
        }
        self.ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                (0..op.inputs.len())
                    .map(|j| last[op.inputs[j].index()] == Some((i, j)))
                    .collect()
            })
            .collect()
    }

    /// Whether the results are exactly the last op's outputs, in order (a runner can return
    /// what that op made without storing it).
    pub fn results_are_last_outputs(&self) -> bool {
        self.ops.last().is_some_and(|op| op.outputs == self.results)
    }

    /// The types of the parameters.
    pub fn param_types(&self) -> Vec<TensorType> {
        self.params.iter().map(|&p| self.ty(p).clone()).collect()
    }

    /// The types of the results.
    pub fn result_types(&self) -> Vec<TensorType> {
        self.results.iter().map(|&r| self.ty(r).clone()).collect()
    }

    /// Whether the function reads the element's position (it has random ops): its results
    /// then depend on where the element is in the stream that feeds it.
    pub fn reads_position(&self) -> bool {
        self.ops.iter().any(|op| op.kind.varies_per_element())
    }

    /// Whether the function contains an eager call.
    pub fn has_eager(&self) -> bool {
        self.ops.iter().any(|op| !op.kind.is_pure())
    }

    /// Renumbers values densely in definition order and drops unused value slots,
    /// so printed IR stays stable across rewrites (naga's `compact`).
    pub fn compact(&mut self) {
        let mut map = vec![None; self.values.len()];
        let mut values = Vec::with_capacity(self.values.len());
        let mut assign =
            |old: ValueId, values: &mut Vec<ValueInfo>, src: &[ValueInfo], def: ValueDef| {
                let new = ValueId(values.len() as u32);
                values.push(ValueInfo {
                    ty: src[old.index()].ty.clone(),
                    def,
                });
                map[old.index()] = Some(new);
            };
        for (i, &p) in self.params.iter().enumerate() {
            assign(p, &mut values, &self.values, ValueDef::Param(i));
        }
        for (oi, op) in self.ops.iter().enumerate() {
            for (k, &o) in op.outputs.iter().enumerate() {
                assign(
                    o,
                    &mut values,
                    &self.values,
                    ValueDef::Op(OpId(oi as u32), k),
                );
            }
        }
        let remap = |v: &mut ValueId| *v = map[v.index()].expect("every used value is defined");
        self.params.iter_mut().for_each(remap);
        for op in &mut self.ops {
            op.inputs.iter_mut().for_each(remap);
            op.outputs.iter_mut().for_each(remap);
        }
        self.results.iter_mut().for_each(remap);
        self.values = values;
    }
}
