//! The abstract syntax tree of a `.pipe` file. Every node carries its byte span.
//!
//! The parser never fails: where it had to recover, the tree holds `Error` nodes and the
//! errors are returned beside it. Later stages skip `Error` nodes silently, since the
//! problem was already reported.

use pipec_diag::Span;

/// A name with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The name as written.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A whole `.pipe` file: its top-level items in source order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    /// The items, in source order.
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// What the item is.
    pub kind: ItemKind,
    /// The whole item.
    pub span: Span,
}

/// The kinds of top-level item.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemKind {
    /// `let NAME = EXPR`
    Let {
        /// The bound name.
        name: Ident,
        /// The value.
        value: Expr,
    },
    /// `fn`, `eager fn`, `extern eager fn`, or `eager fn ... = exec(...)`.
    Fn(FnDecl),
    /// `pipeline NAME = EXPR`
    Pipeline {
        /// The pipeline's name.
        name: Ident,
        /// The dataset expression.
        value: Expr,
    },
    /// An item the parser could not make sense of (already reported).
    Error,
}

/// A function declaration.
#[derive(Clone, Debug, PartialEq)]
pub struct FnDecl {
    /// Traced, eager, or extern eager.
    pub kind: FnKind,
    /// The function's name.
    pub name: Ident,
    /// The parameters, each maybe typed.
    pub params: Vec<Param>,
    /// The declared return type (required for eager functions).
    pub ret: Option<TypeExpr>,
    /// The body.
    pub body: FnBody,
}

/// Whether a function is traced or runs eagerly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FnKind {
    /// `fn`: traced once per element signature into IR.
    Traced,
    /// `eager fn`: runs per element on host arrays.
    Eager,
    /// `extern eager fn`: a host function registered by the embedding program.
    Extern,
}

/// The body of a function declaration.
#[derive(Clone, Debug, PartialEq)]
pub enum FnBody {
    /// `{ statements }`
    Block(Block),
    /// `= exec(COMMAND, ARGS...)`: served by a worker process.
    Exec {
        /// The command and its arguments (string literals, or any expression the tracer checks).
        args: Vec<Expr>,
        /// The `exec(...)` call.
        span: Span,
    },
    /// No body (`extern eager fn`).
    None,
}

/// A function parameter, maybe with a type.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The parameter's name.
    pub name: Ident,
    /// The declared type, if any.
    pub ty: Option<TypeExpr>,
    /// The whole parameter.
    pub span: Span,
}

/// A written type: `f32[?, 3]`, `f32` (any shape), `(u8[28, 28], i64[])`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    /// What the type is.
    pub kind: TypeExprKind,
    /// The whole type.
    pub span: Span,
}

/// The kinds of written type.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeExprKind {
    /// A tensor type; `dims` is `None` for a bare dtype name (any shape).
    Tensor {
        /// The dtype name as written (resolved later).
        dtype: Ident,
        /// The dims, if a `[...]` followed.
        dims: Option<Vec<DimExpr>>,
    },
    /// A tuple of types.
    Tuple(Vec<TypeExpr>),
    /// A type the parser could not read (already reported).
    Error,
}

/// One dim of a written tensor type.
#[derive(Clone, Debug, PartialEq)]
pub enum DimExpr {
    /// A known size.
    Known(u64, Span),
    /// `?`: unknown until run time.
    Unknown(Span),
}

/// A `{ ... }` block of statements.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// The statements in order.
    pub stmts: Vec<Stmt>,
    /// From `{` to `}`.
    pub span: Span,
}

/// A statement inside a function body.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// What the statement is.
    pub kind: StmtKind,
    /// The whole statement.
    pub span: Span,
}

/// The kinds of statement.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `let NAME = EXPR`
    Let {
        /// The bound name.
        name: Ident,
        /// The value.
        value: Expr,
    },
    /// `NAME = EXPR`
    Assign {
        /// The assigned name.
        target: Ident,
        /// The new value.
        value: Expr,
    },
    /// `return EXPR` or `return`.
    Return(Option<Expr>),
    /// `if COND { ... } else { ... }` (`else if` nests an `If` in the else block).
    If {
        /// The condition.
        cond: Expr,
        /// Taken when the condition holds.
        then_block: Block,
        /// Taken otherwise.
        else_block: Option<Block>,
    },
    /// `for VAR in START..END { ... }` or `for VAR in range(N) { ... }`.
    For {
        /// The loop variable.
        var: Ident,
        /// What is iterated: a `Range` expression or a call such as `range(N)`.
        iter: Expr,
        /// The body.
        body: Block,
    },
    /// `while COND { ... }` (eager functions only; the tracer reports it otherwise).
    While {
        /// The condition.
        cond: Expr,
        /// The body.
        body: Block,
    },
    /// An expression evaluated for its effect (`print(x)`).
    Expr(Expr),
    /// A statement the parser could not make sense of (already reported).
    Error,
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What the expression is.
    pub kind: ExprKind,
    /// The whole expression.
    pub span: Span,
}

/// The kinds of expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal (non-negative; `-` is a unary op).
    Int(u64),
    /// A float literal: its value as f64 and its text as written (for exact casts).
    Float(f64, String),
    /// `true` or `false`.
    Bool(bool),
    /// A string literal, escapes resolved.
    Str(String),
    /// A name.
    Name(String),
    /// `(a, b)` or `(a,)`; `()` is the empty tuple.
    Tuple(Vec<Expr>),
    /// `[a, b, ...]`: a tensor literal or a list of values.
    List(Vec<Expr>),
    /// `{"a": x, "b": y}`: a dict with string keys, in the order written (each key's
    /// span is that of its string literal).
    Dict(Vec<(Ident, Expr)>),
    /// A prefix operator.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        expr: Box<Expr>,
    },
    /// A binary operator.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Its span (the operator token alone).
        op_span: Span,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `callee(args)`.
    Call {
        /// What is called (usually a `Name`).
        callee: Box<Expr>,
        /// The arguments, positional then named.
        args: Vec<Arg>,
    },
    /// `receiver.name(args)`.
    Method {
        /// The value the method is called on.
        receiver: Box<Expr>,
        /// The method's name.
        name: Ident,
        /// The arguments.
        args: Vec<Arg>,
    },
    /// `receiver.name` (`x.shape`, `x.dtype`, `x.rank`).
    Field {
        /// The value whose field is read.
        receiver: Box<Expr>,
        /// The field's name.
        name: Ident,
    },
    /// `base[i, j:k, ..., ::2]`.
    Index {
        /// The indexed value.
        base: Box<Expr>,
        /// One entry per comma-separated index.
        indices: Vec<IndexItem>,
    },
    /// `|x, y| body`.
    Lambda {
        /// The parameters.
        params: Vec<Ident>,
        /// The body expression.
        body: Box<Expr>,
    },
    /// `start..end` (in `for` loops).
    Range {
        /// First value.
        start: Box<Expr>,
        /// One past the last value.
        end: Box<Expr>,
    },
    /// An expression the parser could not make sense of (already reported).
    Error,
}

/// A call argument, maybe named (`axis: 0`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The name, for a named argument.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
}

/// One comma-separated part of an index expression.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    /// A single index (or a mask, or an index tensor).
    Expr(Expr),
    /// `start:stop:step`, each part optional.
    Slice {
        /// Start, if written.
        start: Option<Expr>,
        /// Stop, if written.
        stop: Option<Expr>,
        /// Step, if written.
        step: Option<Expr>,
        /// The whole slice.
        span: Span,
    },
    /// `...`
    Ellipsis(Span),
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `!x`
    Not,
}

/// Binary operators, with Python's precedence (see the parser).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `//`
    FloorDiv,
    /// `%`
    Mod,
    /// `**` (right-associative)
    Pow,
    /// `@`
    MatMul,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`
    And,
    /// `||`
    Or,
}

impl BinaryOp {
    /// The operator as written in source.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::FloorDiv => "//",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "**",
            BinaryOp::MatMul => "@",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
        }
    }
}
