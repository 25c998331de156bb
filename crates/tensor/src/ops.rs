//! Op vocabularies shared by the IR, the tracer and the kernels, and their dtype rules.
//!
//! The IR names ops with these enums; the kernels in [`crate::kernels`] implement them;
//! the tracer asks [`UnaryOp::result_dtype`] / [`BinaryOp::result_dtype`] for types, so
//! inference and execution cannot disagree.

use crate::DType;

/// The elementwise unary ops, one row each: the variant, its IR name, the builtin it is
/// called as in source (TF's name: `negative(x)` is `-x`; a program's own names hide it), its domain (which dtypes it takes and what it returns,
/// see [`UnaryDomain`]), its cost per element in units of one simple vector op, and its
/// scalar kernel: a method of the domain's element trait in `kernels/scalar.rs`
/// (`NumElem` for `num`, `FloatElem` for `float` and `float_test`, `BoolElem` for `logic`).
///
/// This table is the only list of unary ops: the enum, its names and dtype rules, the kernel
/// dispatch (`kernels::elementwise`, the fused kernel), the tracer's builtin names and the
/// fuzz grammar are all generated from or iterate over it. Adding an op is a row here, its
/// scalar kernel, and its numpy-oracle rows in `tests/numpy/gen_ops.py`.
macro_rules! for_each_unary_op {
    ($($m:ident)::+; $($args:tt)*) => {
        $($m)::+! { ($($args)*)
            /// `-x`.
            Neg = "neg", call "negative": num, cost 1 => neg;
            /// `!x` on bools.
            Not = "not", call "logical_not": logic, cost 1 => not;
            /// `abs(x)`.
            Abs = "abs", call "abs": num, cost 1 => abs;
            /// `sign(x)`: -1, 0 or 1 (NaN stays NaN).
            Sign = "sign", call "sign": num, cost 1 => sign;
            /// `e^x`.
            Exp = "exp", call "exp": float, cost 8 => exp;
            /// `e^x - 1`.
            Expm1 = "expm1", call "expm1": float, cost 8 => expm1;
            /// Natural logarithm.
            Log = "log", call "log": float, cost 8 => log;
            /// `ln(1 + x)`.
            Log1p = "log1p", call "log1p": float, cost 8 => log1p;
            /// Square root.
            Sqrt = "sqrt", call "sqrt": float, cost 2 => sqrt;
            /// `1 / sqrt(x)`.
            Rsqrt = "rsqrt", call "rsqrt": float, cost 2 => rsqrt;
            /// `x * x`.
            Square = "square", call "square": num, cost 1 => square;
            /// `1 / x`.
            Reciprocal = "reciprocal", call "reciprocal": float, cost 2 => reciprocal;
            /// Sine.
            Sin = "sin", call "sin": float, cost 8 => sin;
            /// Cosine.
            Cos = "cos", call "cos": float, cost 8 => cos;
            /// Tangent.
            Tan = "tan", call "tan": float, cost 8 => tan;
            /// Hyperbolic tangent.
            Tanh = "tanh", call "tanh": float, cost 8 => tanh;
            /// `1 / (1 + e^-x)`.
            Sigmoid = "sigmoid", call "sigmoid": float, cost 8 => sigmoid;
            /// `max(x, 0)`.
            Relu = "relu", call "relu": num, cost 1 => relu;
            /// Round toward -inf.
            Floor = "floor", call "floor": float, cost 1 => floor;
            /// Round toward +inf.
            Ceil = "ceil", call "ceil": float, cost 1 => ceil;
            /// Round half to even.
            Round = "round", call "round": float, cost 1 => round;
            /// `ln(1 + e^x)`, as `np.logaddexp(x, 0)` computes it.
            Softplus = "softplus", call "softplus": float, cost 16 => softplus;
            /// The error function.
            Erf = "erf", call "erf": float, cost 16 => erf;
            /// Whether `x` is NaN.
            IsNan = "isnan", call "isnan": float_test, cost 1 => is_nan;
            /// Whether `x` is finite.
            IsFinite = "isfinite", call "isfinite": float_test, cost 1 => is_finite;
        }
    };
}
pub(crate) use for_each_unary_op;

/// The elementwise binary ops, one row each, as [`for_each_unary_op`] (domains in
/// [`BinaryDomain`]; kernels are `NumElem`/`FloatElem` methods for `arith`/`float_arith`
/// and functions of `kernels::scalar::cmp` / `kernels::scalar::logic` otherwise). `fails`
/// says on which dtypes the op may fail at run time: `int` (integer `//`, `%` by zero),
/// `signed` (a signed integer to a negative power), `never`.
macro_rules! for_each_binary_op {
    ($($m:ident)::+; $($args:tt)*) => {
        $($m)::+! { ($($args)*)
            /// `a + b`.
            Add = "add", call "add": arith, cost 1, fails never => add;
            /// `a - b`.
            Sub = "sub", call "subtract": arith, cost 1, fails never => sub;
            /// `a * b`.
            Mul = "mul", call "multiply": arith, cost 1, fails never => mul;
            /// `a / b` on floats.
            Div = "div", call "divide": float_arith, cost 2, fails never => div;
            /// `a // b` (Python floor semantics).
            FloorDiv = "floordiv", call "floordiv": arith, cost 2, fails int => floor_div;
            /// `a % b` (Python floor semantics: the sign of `b`).
            Mod = "mod", call "floor_mod": arith, cost 2, fails int => rem;
            /// `a ** b`.
            Pow = "pow", call "pow": arith, cost 16, fails signed => pow;
            /// The larger (NaN wins).
            Maximum = "maximum", call "maximum": arith, cost 1, fails never => maximum;
            /// The smaller (NaN wins).
            Minimum = "minimum", call "minimum": arith, cost 1, fails never => minimum;
            /// `atan2(y, x)`: the angle of the point `(x, y)`.
            Atan2 = "atan2", call "atan2": float_arith, cost 16, fails never => atan2;
            /// `a == b`.
            Eq = "eq", call "equal": equality, cost 1, fails never => eq;
            /// `a != b`.
            Ne = "ne", call "not_equal": equality, cost 1, fails never => ne;
            /// `a < b`.
            Lt = "lt", call "less": order, cost 1, fails never => lt;
            /// `a <= b`.
            Le = "le", call "less_equal": order, cost 1, fails never => le;
            /// `a > b`.
            Gt = "gt", call "greater": order, cost 1, fails never => gt;
            /// `a >= b`.
            Ge = "ge", call "greater_equal": order, cost 1, fails never => ge;
            /// `a && b`.
            And = "and", call "logical_and": logic, cost 1, fails never => and;
            /// `a || b`.
            Or = "or", call "logical_or": logic, cost 1, fails never => or;
        }
    };
}
pub(crate) use for_each_binary_op;

/// Which dtypes a unary op takes and what it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryDomain {
    /// Any number to the same dtype (not bool).
    Num,
    /// Floats to the same dtype.
    Float,
    /// Floats to bool (`isnan`).
    FloatTest,
    /// Bool to bool.
    Logic,
}

/// Which dtypes a binary op takes (both operands share one) and what it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryDomain {
    /// Any number to the same dtype (not bool).
    Arith,
    /// Floats to the same dtype.
    FloatArith,
    /// Any dtype to bool (`==`, `!=`).
    Equality,
    /// Numbers to bool (`<` ...).
    Order,
    /// Bools to bool.
    Logic,
}

/// On which dtypes a binary op may fail at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailsOn {
    /// Never.
    Never,
    /// Integer dtypes (a zero divisor).
    Int,
    /// Signed integer dtypes (a negative exponent).
    Signed,
}

macro_rules! unary_domain {
    (num) => {
        UnaryDomain::Num
    };
    (float) => {
        UnaryDomain::Float
    };
    (float_test) => {
        UnaryDomain::FloatTest
    };
    (logic) => {
        UnaryDomain::Logic
    };
}

macro_rules! binary_domain {
    (arith) => {
        BinaryDomain::Arith
    };
    (float_arith) => {
        BinaryDomain::FloatArith
    };
    (equality) => {
        BinaryDomain::Equality
    };
    (order) => {
        BinaryDomain::Order
    };
    (logic) => {
        BinaryDomain::Logic
    };
}

macro_rules! fails_on {
    (never) => {
        FailsOn::Never
    };
    (int) => {
        FailsOn::Int
    };
    (signed) => {
        FailsOn::Signed
    };
}

macro_rules! define_unary_ops {
    (() $( $(#[$doc:meta])* $v:ident = $name:literal, call $call:literal : $dom:ident, cost $cost:literal => $k:ident; )*) => {
        /// Elementwise unary ops (SPEC §6), declared in [`for_each_unary_op`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum UnaryOp {
            $( $(#[$doc])* $v, )*
        }

        impl UnaryOp {
            /// Every unary op, in table order.
            pub const ALL: &'static [UnaryOp] = &[ $( UnaryOp::$v, )* ];

            /// The name in the IR.
            pub fn name(self) -> &'static str {
                match self { $( UnaryOp::$v => $name, )* }
            }

            /// The builtin function it is called as in source (TF's name).
            pub fn call_name(self) -> &'static str {
                match self { $( UnaryOp::$v => $call, )* }
            }

            /// Which dtypes it takes and what it gives.
            pub fn domain(self) -> UnaryDomain {
                match self { $( UnaryOp::$v => unary_domain!($dom), )* }
            }

            /// Its cost per element, in units of one simple vector op.
            pub fn cost(self) -> usize {
                match self { $( UnaryOp::$v => $cost, )* }
            }
        }
    };
}

macro_rules! define_binary_ops {
    (() $( $(#[$doc:meta])* $v:ident = $name:literal, call $call:literal : $dom:ident, cost $cost:literal, fails $fails:ident => $k:ident; )*) => {
        /// Elementwise binary ops (SPEC §6), declared in [`for_each_binary_op`]. Both
        /// operands have one dtype; shapes broadcast.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum BinaryOp {
            $( $(#[$doc])* $v, )*
        }

        impl BinaryOp {
            /// Every binary op, in table order.
            pub const ALL: &'static [BinaryOp] = &[ $( BinaryOp::$v, )* ];

            /// The name in the IR (`add`, `floordiv`, ...).
            pub fn name(self) -> &'static str {
                match self { $( BinaryOp::$v => $name, )* }
            }

            /// The builtin function it is called as in source (`maximum(a, b)`, TF's name).
            pub fn call_name(self) -> &'static str {
                match self { $( BinaryOp::$v => $call, )* }
            }

            /// Which dtypes it takes and what it gives.
            pub fn domain(self) -> BinaryDomain {
                match self { $( BinaryOp::$v => binary_domain!($dom), )* }
            }

            /// Its cost per element, in units of one simple vector op.
            pub fn cost(self) -> usize {
                match self { $( BinaryOp::$v => $cost, )* }
            }

            /// On which dtypes it may fail at run time.
            pub fn fails_on(self) -> FailsOn {
                match self { $( BinaryOp::$v => fails_on!($fails), )* }
            }
        }
    };
}

for_each_unary_op!(define_unary_ops;);
for_each_binary_op!(define_binary_ops;);

impl UnaryOp {
    /// The op called `name` in the IR, if any.
    pub fn from_name(name: &str) -> Option<UnaryOp> {
        UnaryOp::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// The op whose builtin function is `name`, if any.
    pub fn from_call_name(name: &str) -> Option<UnaryOp> {
        UnaryOp::ALL
            .iter()
            .copied()
            .find(|op| op.call_name() == name)
    }

    /// Whether the op takes only floats (`log`, `exp`, `isnan`, ...).
    pub fn is_float_only(self) -> bool {
        matches!(self.domain(), UnaryDomain::Float | UnaryDomain::FloatTest)
    }

    /// The result dtype for an operand of dtype `x`.
    pub fn result_dtype(self, x: DType) -> Result<DType, DTypeRuleError> {
        match self.domain() {
            _ if x.is_str() => Err(DTypeRuleError::Unsupported),
            UnaryDomain::Logic if x == DType::Bool => Ok(DType::Bool),
            UnaryDomain::Logic => Err(DTypeRuleError::NeedsBool),
            UnaryDomain::Float | UnaryDomain::FloatTest if !x.is_float() => {
                Err(DTypeRuleError::NeedsFloat)
            }
            UnaryDomain::FloatTest => Ok(DType::Bool),
            _ if x == DType::Bool => Err(DTypeRuleError::Unsupported),
            _ => Ok(x),
        }
    }
}

impl BinaryOp {
    /// The op called `name` in the IR, if any.
    pub fn from_name(name: &str) -> Option<BinaryOp> {
        BinaryOp::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// The op whose builtin function is `name`, if any.
    pub fn from_call_name(name: &str) -> Option<BinaryOp> {
        BinaryOp::ALL
            .iter()
            .copied()
            .find(|op| op.call_name() == name)
    }

    /// Whether the result is `bool` from non-bool operands (comparisons).
    pub fn is_comparison(self) -> bool {
        matches!(self.domain(), BinaryDomain::Equality | BinaryDomain::Order)
    }

    /// Whether evaluating it on operands of dtype `x` may fail for some values.
    pub fn may_fail(self, x: DType) -> bool {
        match self.fails_on() {
            FailsOn::Never => false,
            FailsOn::Int => x.is_int(),
            FailsOn::Signed => x.is_signed_int(),
        }
    }

    /// The result dtype when both operands have dtype `x`.
    pub fn result_dtype(self, x: DType) -> Result<DType, DTypeRuleError> {
        match self.domain() {
            // Strings compare for equality and concatenate with `+`, as in TF.
            BinaryDomain::Equality if x.is_str() => Ok(DType::Bool),
            _ if x.is_str() && self == BinaryOp::Add => Ok(DType::Str),
            _ if x.is_str() => Err(DTypeRuleError::Unsupported),
            BinaryDomain::Logic if x == DType::Bool => Ok(DType::Bool),
            BinaryDomain::Logic => Err(DTypeRuleError::NeedsBool),
            BinaryDomain::Equality => Ok(DType::Bool),
            BinaryDomain::Order if x == DType::Bool => Err(DTypeRuleError::Unsupported),
            BinaryDomain::Order => Ok(DType::Bool),
            BinaryDomain::FloatArith if !x.is_float() => Err(DTypeRuleError::NeedsFloat),
            _ if x == DType::Bool => Err(DTypeRuleError::Unsupported),
            _ => Ok(x),
        }
    }
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
            _ if x.is_str() => Err(DTypeRuleError::Unsupported),
            Any | All if x == DType::Bool => Ok(DType::Bool),
            Any | All => Err(DTypeRuleError::NeedsBool),
            ArgMax | ArgMin => Ok(DType::I64),
            Mean if !x.is_float() => Err(DTypeRuleError::NeedsFloat),
            _ if x == DType::Bool => Err(DTypeRuleError::Unsupported),
            _ => Ok(x),
        }
    }
}
