//! Trace-time values: what a `.pipe` expression evaluates to while tracing (or, in an
//! eager function, while running on host arrays).

use crate::dataset::DsExpr;
use pipec_diag::Span;
use pipec_ir::{TensorType, ValueId};
use pipec_syntax::ast;
use pipec_tensor::{DType, Tensor};
use std::collections::HashMap;

use std::sync::Arc;

/// A weakly typed number literal (or arithmetic on them): takes the dtype of the tensor
/// it meets, as in TF and JAX.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// An integer, exact.
    Int(i128),
    /// A float (Python semantics: f64).
    Float(f64),
}

impl Num {
    /// The value as f64.
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// A tensor: known now (a constant, or any value in an eager function) or symbolic (an IR value).
#[derive(Clone, Debug)]
pub enum TVal {
    /// A value computed at trace time.
    Concrete(Tensor),
    /// A value of the function being traced, known only by its type.
    Symbolic(ValueId, TensorType),
}

/// A function value: something `map`, `filter` or a call can apply.
#[derive(Clone, Debug)]
pub enum FuncVal {
    /// A declared function (index into the program's items).
    Decl(usize),
    /// A lambda with the scope it closed over.
    Lambda(Arc<Lambda>),
    /// A builtin op used as a value (`map(log)`).
    Builtin(String),
}

/// A lambda and its captured variables.
#[derive(Debug)]
pub struct Lambda {
    /// Parameter names.
    pub params: Vec<ast::Ident>,
    /// The body.
    pub body: ast::Expr,
    /// Captured local variables.
    pub captured: HashMap<String, Value>,
    /// The whole lambda.
    pub span: Span,
}

/// Where a dim of unknown size comes from.
#[derive(Clone, Debug)]
pub struct DimOf {
    /// The tensor whose shape holds it.
    pub of: TVal,
    /// Its axis; `None` for the element count (`x.size`), the product of every dim.
    pub axis: Option<usize>,
}

/// Any trace-time value.
#[derive(Clone, Debug)]
pub enum Value {
    /// A weakly typed number.
    Num(Num),
    /// A boolean literal or comparison of numbers.
    Bool(bool),
    /// A string.
    Str(Arc<str>),
    /// A dtype name (`f32`).
    DType(DType),
    /// A tensor.
    Tensor(TVal),
    /// A tuple of values.
    Tuple(Vec<Value>),
    /// A dict with string keys, in the order written (`{"image": x, "label": y}`).
    Dict(Vec<(Arc<str>, Value)>),
    /// A list that is not a constant tensor literal (`[a, b]` with symbolic `a`).
    List(Vec<Value>),
    /// A function.
    Func(FuncVal),
    /// A dataset.
    Dataset(Arc<DsExpr>),
    /// An array stored in a file (`read_npy`): its type is known now, its data at run time.
    FileArray(pipec_ir::Source, TensorType),
    /// A dim of unknown size (`x.shape[0]` when it is `?`): a `-1` where a shape may infer
    /// it (`reshape`), and an `i64[]` tensor computed at run time where a value is needed
    /// (`b.shape[0] == 2`, `len(b) * 2`), as `tf.shape(b)[0]` is.
    SymDim(Arc<DimOf>),
    /// A host number whose value is known only at run time: `item(x)` of a symbolic tensor
    /// while a plan is traced (SPEC's eager `item`). The scalar IR value holds what the
    /// evaluator's [`Num`] would: an `i64` for `Num::Int` (kept exact by guards, see
    /// `Eval::host_binary`), an `f64` for `Num::Float`.
    HostNum(ValueId, DType),
    /// No value (what `print` returns).
    Unit,
    /// The result of an expression that already failed: silently propagates so that one
    /// mistake is reported once.
    Poison,
}

impl Value {
    /// A short description of the kind of value, for "expected X, found Y".
    pub fn kind_name(&self) -> String {
        match self {
            Value::Num(Num::Int(_)) => "an integer".into(),
            Value::Num(Num::Float(_)) => "a float".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Str(_) => "a string".into(),
            Value::DType(_) => "a dtype".into(),
            Value::Tensor(TVal::Concrete(t)) => {
                format!("a constant tensor {}{:?}", t.dtype(), t.shape())
            }
            Value::Tensor(TVal::Symbolic(_, ty)) => format!("a tensor {ty}"),
            Value::Tuple(_) => "a tuple".into(),
            Value::Dict(_) => "a dict".into(),
            Value::List(_) => "a list".into(),
            Value::Func(_) => "a function".into(),
            Value::Dataset(_) => "a dataset".into(),
            Value::SymDim(_) => "a dim of unknown size".into(),
            Value::FileArray(_, ty) => format!("file data {ty} (read at run time)"),
            Value::HostNum(_, DType::F64) => "a float".into(),
            Value::HostNum(..) => "an integer".into(),
            Value::Unit => "no value".into(),
            Value::Poison => "an erroneous value".into(),
        }
    }
}
