//! Op vocabularies shared by the IR, the tracer and the kernels, and their dtype rules.
//!
//! The IR names ops with these enums; the kernels in [`crate::kernels`] implement them;
//! the tracer asks [`UnaryOp::result_dtype`] / [`BinaryOp::result_dtype`] for types, so
//! inference and execution cannot disagree.

use crate::DType;

/// Elementwise unary ops (SPEC §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum UnaryOp {
    Neg,
    Not,
    Abs,
    Sign,
    Exp,
    Expm1,
    Log,
    Log1p,
    Sqrt,
    Rsqrt,
    Square,
    Reciprocal,
    Sin,
    Cos,
    Tan,
    Tanh,
    Sigmoid,
    Relu,
    Floor,
    Ceil,
    Round,
    IsNan,
    IsFinite,
}

/// Elementwise binary ops (SPEC §6). Both operands have one dtype; shapes broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Maximum,
    Minimum,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

/// Reductions (SPEC §6), over a set of axes with or without `keepdims`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    Any,
    All,
    ArgMax,
    ArgMin,
}

/// Why an op does not accept a dtype.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DTypeRuleError {
    /// The op needs floats (`log`, `/`, ...).
    NeedsFloat,
    /// The op needs bools (`!`, `&&`, `||`).
    NeedsBool,
    /// The op is not defined on this dtype (e.g. `-` on bool).
    Unsupported,
}

impl UnaryOp {
    /// Every unary op.
    pub const ALL: [UnaryOp; 23] = [
        UnaryOp::Neg,
        UnaryOp::Not,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Exp,
        UnaryOp::Expm1,
        UnaryOp::Log,
        UnaryOp::Log1p,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Square,
        UnaryOp::Reciprocal,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Tan,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::Floor,
        UnaryOp::Ceil,
        UnaryOp::Round,
        UnaryOp::IsNan,
        UnaryOp::IsFinite,
    ];

    /// The name in source (for function-call forms) and in the IR.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Not => "not",
            UnaryOp::Abs => "abs",
            UnaryOp::Sign => "sign",
            UnaryOp::Exp => "exp",
            UnaryOp::Expm1 => "expm1",
            UnaryOp::Log => "log",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Square => "square",
            UnaryOp::Reciprocal => "reciprocal",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Tan => "tan",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Round => "round",
            UnaryOp::IsNan => "isnan",
            UnaryOp::IsFinite => "isfinite",
        }
    }

    /// The op called `name`, if any.
    pub fn from_name(name: &str) -> Option<UnaryOp> {
        UnaryOp::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Whether the op is only defined on floats (`log`, `exp`, ...).
    pub fn is_float_only(self) -> bool {
        use UnaryOp::*;
        matches!(
            self,
            Exp | Expm1
                | Log
                | Log1p
                | Sqrt
                | Rsqrt
                | Reciprocal
                | Sin
                | Cos
                | Tan
                | Tanh
                | Sigmoid
                | Floor
                | Ceil
                | Round
        )
    }

    /// The result dtype for an operand of dtype `x`.
    pub fn result_dtype(self, x: DType) -> Result<DType, DTypeRuleError> {
        use UnaryOp::*;
        match self {
            Not if x == DType::Bool => Ok(DType::Bool),
            Not => Err(DTypeRuleError::NeedsBool),
            IsNan | IsFinite if x.is_float() => Ok(DType::Bool),
            IsNan | IsFinite => Err(DTypeRuleError::NeedsFloat),
            _ if self.is_float_only() && !x.is_float() => Err(DTypeRuleError::NeedsFloat),
            _ if x == DType::Bool => Err(DTypeRuleError::Unsupported),
            _ => Ok(x),
        }
    }
}

impl BinaryOp {
    /// Every binary op.
    pub const ALL: [BinaryOp; 17] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::FloorDiv,
        BinaryOp::Mod,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::And,
        BinaryOp::Or,
    ];

    /// The name in the IR (`add`, `floordiv`, ...).
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::FloorDiv => "floordiv",
            BinaryOp::Mod => "mod",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
        }
    }

    /// Whether the result is `bool` (comparisons and logic).
    pub fn is_comparison(self) -> bool {
        use BinaryOp::*;
        matches!(self, Eq | Ne | Lt | Le | Gt | Ge)
    }

    /// The result dtype when both operands have dtype `x`.
    pub fn result_dtype(self, x: DType) -> Result<DType, DTypeRuleError> {
        use BinaryOp::*;
        match self {
            And | Or if x == DType::Bool => Ok(DType::Bool),
            And | Or => Err(DTypeRuleError::NeedsBool),
            Eq | Ne => Ok(DType::Bool),
            Lt | Le | Gt | Ge if x == DType::Bool => Err(DTypeRuleError::Unsupported),
            Lt | Le | Gt | Ge => Ok(DType::Bool),
            Div if !x.is_float() => Err(DTypeRuleError::NeedsFloat),
            _ if x == DType::Bool => Err(DTypeRuleError::Unsupported),
            _ => Ok(x),
        }
    }
}

impl ReduceOp {
    /// Every reduction.
    pub const ALL: [ReduceOp; 9] = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::Prod,
        ReduceOp::Any,
        ReduceOp::All,
        ReduceOp::ArgMax,
        ReduceOp::ArgMin,
    ];

    /// The name in source and in the IR.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::Prod => "prod",
            ReduceOp::Any => "any",
            ReduceOp::All => "all",
            ReduceOp::ArgMax => "argmax",
            ReduceOp::ArgMin => "argmin",
        }
    }

    /// The reduction called `name`, if any.
    pub fn from_name(name: &str) -> Option<ReduceOp> {
        ReduceOp::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The result dtype for an operand of dtype `x`.
    ///
    /// `sum`/`prod` keep the dtype (TF's rule, not numpy's widening); `mean` needs floats
    /// for an exact answer, so integer means are an error suggesting a cast;
    /// `any`/`all` need bools; `argmax`/`argmin` give `i64`.
    pub fn result_dtype(self, x: DType) -> Result<DType, DTypeRuleError> {
        use ReduceOp::*;
        match self {
            Any | All if x == DType::Bool => Ok(DType::Bool),
            Any | All => Err(DTypeRuleError::NeedsBool),
            ArgMax | ArgMin => Ok(DType::I64),
            Mean if !x.is_float() => Err(DTypeRuleError::NeedsFloat),
            _ if x == DType::Bool => Err(DTypeRuleError::Unsupported),
            _ => Ok(x),
        }
    }
}
