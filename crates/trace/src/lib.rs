//! Tracing: turns a parsed `.pipe` program into pipec IR.
//!
//! One walk over the AST serves two value domains, as in JAX and TF: while tracing, tensors
//! are symbolic (an IR value and its type) and every op appends to the function being
//! traced; inside an eager function at run time, tensors are host arrays and every op calls
//! the kernels directly. Trace-time values (numbers, constants, shapes, loop counters) are
//! computed during tracing in both.
//!
//! Each function given to `map`/`filter` is traced once per distinct element signature
//! (one IR function per signature, like `tf.function`'s concrete functions).

#![warn(clippy::print_stdout, clippy::print_stderr)]

mod budget;
mod builtins;
mod dataset;
mod eager;
mod eval;
mod hints;
mod host_num;
mod infer;
mod literal;
mod nested;
mod reduce;
mod structure;
mod transform;
mod types;
mod value;

use pipec_diag::Diagnostic;
use pipec_ir::{HostFn, Pipeline, Program};
use pipec_syntax::ast;
use pipec_tensor::Tensor;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use budget::CompileBudget;
pub use eager::PrintSink;

/// Runs a dataset while compiling (for `reduce` and `get_single_element`): calls the
/// callback with each element's flat leaves, in order, until it returns false or the
/// dataset ends; a run-time error is returned as it would be reported.
pub type DatasetRunner = Arc<
    dyn Fn(&Program, &Pipeline, &mut dyn FnMut(Vec<Tensor>) -> bool) -> Result<(), Diagnostic>
        + Send
        + Sync,
>;

/// Builds the host function behind `eager fn f(..) -> T = exec(cmd, args..)`.
pub type ExecFactory = Arc<dyn Fn(ExecSpec) -> HostFn + Send + Sync>;

/// What an `exec` declaration asks for.
#[derive(Clone, Debug)]
pub struct ExecSpec {
    /// The function's name.
    pub name: String,
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// The directory of the `.pipe` file (the worker's working directory).
    pub dir: PathBuf,
}

/// Everything tracing needs besides the program itself.
#[derive(Clone, Default)]
pub struct TraceOptions {
    /// Host functions registered by an embedding program, for `extern eager fn`.
    pub externs: BTreeMap<String, HostFn>,
    /// Whether `exec` workers are allowed (`--allow-exec`).
    pub allow_exec: bool,
    /// Builds exec workers; without one, `exec` declarations are reported as unsupported.
    pub exec_factory: Option<ExecFactory>,
    /// The directory relative paths are resolved against (the `.pipe` file's).
    pub base_dir: PathBuf,
    /// Where `print` inside eager functions writes (stderr in the CLI).
    pub print_sink: Option<PrintSink>,
    /// The program's text, for help lines that quote what the user wrote (empty: they
    /// fall back to placeholders such as `x`).
    pub source: Arc<str>,
    /// How much work and memory tracing may spend.
    pub budget: CompileBudget,
    /// Whether a compile-time call of an `exec` function may start its worker (not for
    /// `--check` or `--emit-ir`, which must not run anything).
    pub start_workers: bool,
    /// Runs datasets folded into constants while compiling (`reduce`,
    /// `get_single_element`); without one, those are errors.
    pub dataset_runner: Option<DatasetRunner>,
    /// Whether pure eager bodies run as traced plans, and on blocks (`-O1` and up); when
    /// not, every call runs on the evaluator: the reference the plans are tested against.
    pub plan_eager: bool,
}

/// The result of tracing: the IR (when there were no errors) and every diagnostic.
pub struct Traced {
    /// The program, if it traced without errors.
    pub program: Option<Program>,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// Remarks on how options were honoured (`prefetch(AUTOTUNE)`'s size), for `--remarks`.
    pub remarks: Vec<Diagnostic>,
}

/// Traces every pipeline of `ast` (or only `only`, when given) into IR.
pub fn trace(ast: Arc<ast::Program>, options: &TraceOptions, only: Option<&str>) -> Traced {
    eval::trace_program(ast, options, only)
}
