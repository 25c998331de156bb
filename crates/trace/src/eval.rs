//! The evaluator: one walk over the AST for tracing and for eager execution.

use crate::budget::{Construct, Spent, value_nodes};
use crate::dataset::to_pipeline;
use crate::eager::{EagerBody, PrintSink};
use crate::hints::{Foreign, Pipec};
use crate::types::{TypeSpec, resolve};
use crate::value::{FuncVal, Lambda, Num, TVal, Value};
use crate::{TraceOptions, Traced};
use pipec_diag::{Code, Diagnostic, Span, did_you_mean};
use pipec_ir::{ElemType, FuncId, Function, HostFn, OpKind, Program, TensorType};
use pipec_syntax::ast::{self, ExprKind, FnBody, FnKind, ItemKind, StmtKind};
use pipec_tensor::{DType, Tensor, kernels};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

/// How deep calls of declared functions may nest before it counts as runaway recursion.
const MAX_CALL_DEPTH: usize = 64;
/// How many iterations a trace-time loop may unroll.
pub(crate) const MAX_UNROLL: usize = 10_000;

/// Why evaluation stopped early.
#[derive(Debug)]
pub(crate) enum Abort {
    /// A run-time error in an eager function.
    Error(Box<Diagnostic>),
    /// Tracing an eager body into a plan met a value-dependent condition past the
    /// decisions it was given ([`Guards`]): the path ends there, undecided.
    Undecided,
}

/// While an eager body is traced into a plan: the branch to take at each value-dependent
/// condition, in the order they are met, and where the trace met them. The concrete value
/// of a condition is only known when the plan runs, which checks it (a guard).
pub(crate) struct Guards {
    /// The branch taken at the first, second, ... value-dependent condition.
    pub decisions: Vec<bool>,
    /// Per condition met: how many ops the traced function had then, and the `bool[]`
    /// value it tested.
    pub met: Vec<(usize, pipec_ir::ValueId)>,
    /// Loop iterations unrolled so far, all loops together: a plan's trace is bounded by
    /// [`MAX_UNROLL`] of them (a longer loop runs on the evaluator, in constant memory).
    pub iterations: usize,
    /// The most ops the trace may emit (what is left of its plan's allowance).
    pub max_ops: usize,
}

/// The result of evaluating something.
pub(crate) type Res<T> = Result<T, Abort>;

/// Evaluated call arguments: positional `(value, span)`, then named `(name, value, span)`.
type EvaluatedArgs = (Vec<(Value, Span)>, Vec<(ast::Ident, Value, Span)>);

/// What the evaluator shares with eager functions at run time (so: `Send + Sync`).
pub(crate) struct Shared {
    /// The program.
    pub ast: Arc<ast::Program>,
    /// Top-level names → item index.
    pub items: HashMap<String, usize>,
    /// Top-level `let` values, filled when tracing ends.
    pub globals: OnceLock<HashMap<String, Value>>,
    /// Registered host functions.
    pub externs: BTreeMap<String, HostFn>,
    /// Host functions of `exec` declarations, by item index.
    pub exec_hosts: OnceLock<HashMap<usize, HostFn>>,
    /// Where eager `print` writes.
    pub print_sink: Option<PrintSink>,
    /// The program's text, quoted by help lines.
    pub source: Arc<str>,
    /// [`crate::TraceOptions::plan_eager`].
    pub plan_eager: bool,
}

/// State that exists only while compiling.
pub(crate) struct Compile {
    pub opts: TraceOptions,
    pub diags: Vec<Diagnostic>,
    /// What the compiler chose where the program left it a choice (`prefetch(AUTOTUNE)`),
    /// for `--remarks`; kept apart from `diags`, whose growth signals errors.
    pub remarks: Vec<Diagnostic>,
    pub prog: Program,
    /// Traced functions by (callee identity, parameter types); `None` while being traced.
    pub traces: HashMap<(String, Vec<TensorType>), Option<FuncId>>,
    /// How many signatures each source name has, for `@name.N`.
    pub name_counts: HashMap<String, usize>,
    /// Top-level `let`s: `None` while being evaluated (a cycle), `Some` when done.
    pub globals: HashMap<String, Option<Value>>,
    /// One host function per eager declaration.
    pub eager_hosts: HashMap<usize, HostFn>,
    pub exec_hosts: HashMap<usize, HostFn>,
    /// The element type (tuple structure) each traced function returns.
    pub result_elems: HashMap<FuncId, ElemType>,
    /// `.numpy()` calls reported in traced code (E0300) that tracing went past; their help
    /// is completed once the function's trace shows what else it does.
    pub numpy_calls: Vec<NumpyCall>,
    /// The expression of the statement (or lambda body) being evaluated, which E0300's help
    /// quotes without its `.numpy()`.
    pub context: Option<Span>,
    /// What tracing has spent of its compile budget.
    pub spent: Spent,
    /// While an `interleave`/`flat_map` function is traced: the run-time values its dataset
    /// sources read (`Source::Arg` indexes this list), which become the function's results.
    pub ds_args: Option<Vec<TVal>>,
}

/// A `.numpy()` (or `numpy(x)`) in a traced function, reported as E0300.
#[derive(Clone, Copy)]
pub(crate) struct NumpyCall {
    /// The diagnostic's index in `Compile::diags`.
    diag: usize,
    /// The call, and the tensor it was called on.
    call: Span,
    receiver: Span,
    /// [`Compile::context`] at the call.
    context: Option<Span>,
    /// Whether it was written as a method (`x.numpy()`) rather than `numpy(x)`.
    method: bool,
}

/// One function activation's locals and, while tracing, the function being built.
pub(crate) struct Frame {
    pub scopes: Vec<HashMap<String, Value>>,
    /// The IR function being traced; `None` at top level and in eager code.
    pub func: Option<Function>,
    /// Whether this is eager code running on host arrays.
    pub eager: bool,
    /// The name of the enclosing function, for messages.
    pub fn_name: Option<String>,
    /// Where evaluation is inside the function being traced: the call sites it was inlined
    /// through and the iterations of the unrolled loops around it, outermost first. With a
    /// random op's own line and column it is the op's site, hashed into its key.
    pub site: Vec<u64>,
}

impl Frame {
    pub(crate) fn top() -> Frame {
        Frame {
            scopes: vec![HashMap::new()],
            func: None,
            eager: false,
            fn_name: None,
            site: Vec::new(),
        }
    }
}

/// Control flow out of a statement.
pub(crate) enum Flow {
    Normal,
    Return(Value, Span),
}

/// The evaluator.
pub(crate) struct Eval<'a> {
    pub shared: &'a Arc<Shared>,
    pub comp: Option<&'a mut Compile>,
    pub frame: Frame,
    pub depth: usize,
    /// Set while an eager body is traced into a plan: a symbolic condition then becomes
    /// a guard instead of an error.
    pub guards: Option<Guards>,
}

pub(crate) fn trace_program(
    ast: Arc<ast::Program>,
    opts: &TraceOptions,
    only: Option<&str>,
) -> Traced {
    let mut items = HashMap::new();
    let mut diags = Vec::new();
    for (i, item) in ast.items.iter().enumerate() {
        let Some(name) = item_name(item) else {
            continue;
        };
        if let Some(&prev) = items.get(&name.name) {
            let prev_span = item_name(&ast.items[prev])
                .map(|n| n.span)
                .unwrap_or_default();
            diags.push(
                Diagnostic::error(
                    Code::DuplicateDefinition,
                    format!("`{}` is defined twice", name.name),
                )
                .with_label(name.span, "defined again here")
                .with_label(prev_span, "first defined here")
                .with_help("rename one of them"),
            );
            continue;
        }
        items.insert(name.name.clone(), i);
    }
    let shared = Arc::new(Shared {
        ast: ast.clone(),
        items,
        globals: OnceLock::new(),
        externs: opts.externs.clone(),
        exec_hosts: OnceLock::new(),
        print_sink: opts.print_sink.clone(),
        source: opts.source.clone(),
        plan_eager: opts.plan_eager,
    });
    let mut comp = Compile {
        opts: opts.clone(),
        diags,
        remarks: Vec::new(),
        prog: Program::default(),
        traces: HashMap::new(),
        name_counts: HashMap::new(),
        globals: HashMap::new(),
        eager_hosts: HashMap::new(),
        exec_hosts: HashMap::new(),
        result_elems: HashMap::new(),
        numpy_calls: Vec::new(),
        context: None,
        spent: Spent::new(opts.budget),
        ds_args: None,
    };
    {
        let mut ev = Eval {
            shared: &shared,
            comp: Some(&mut comp),
            frame: Frame::top(),
            depth: 0,
            guards: None,
        };
        ev.check_declarations();
        let pipelines: Vec<&ast::Item> = ast
            .items
            .iter()
            .filter(|i| matches!(i.kind, ItemKind::Pipeline { .. }))
            .collect();
        if let Some(name) = only
            && !pipelines
                .iter()
                .any(|p| matches!(&p.kind, ItemKind::Pipeline { name: n, .. } if n.name == name))
        {
            let names: Vec<&str> = pipelines
                .iter()
                .filter_map(|p| match &p.kind {
                    ItemKind::Pipeline { name, .. } => Some(name.name.as_str()),
                    _ => None,
                })
                .collect();
            let mut d = Diagnostic::error(
                Code::NoPipeline,
                format!("there is no pipeline named `{name}`"),
            );
            d = match did_you_mean(name, names.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None if names.is_empty() => d.with_help("add `pipeline main = ...` to the file"),
                None => d.with_help(format!("the pipelines are: {}", names.join(", "))),
            };
            ev.report(d);
        }
        for item in &ast.items {
            match &item.kind {
                // Every pipeline is traced, not only the one that runs, so that an error in
                // any of them is reported in the same run (as for unused `let`s below).
                ItemKind::Pipeline { name, value } => {
                    let v = ev
                        .within(Construct::Item, item.span, |ev| ev.expr(value))
                        .unwrap_or(Value::Poison);
                    match v {
                        Value::Dataset(ds) => {
                            let p = to_pipeline(&name.name, item.span, &ds);
                            ev.comp().prog.pipelines.push(p);
                        }
                        Value::Poison => {}
                        other => {
                            let d = Diagnostic::error(
                                Code::WrongKind,
                                format!(
                                    "a pipeline must be a dataset, found {}",
                                    other.kind_name()
                                ),
                            )
                            .with_label(value.span, "not a dataset")
                            .with_help(
                                "start from a source such as `from_tensor_slices(x)` or `range(n)`",
                            );
                            ev.report(d);
                        }
                    }
                }
                ItemKind::Let { name, .. } => {
                    // Evaluate every top-level let, so errors in unused ones are reported too.
                    let _ = ev.global(&name.name, name.span);
                }
                _ => {}
            }
        }
    }
    let globals: HashMap<String, Value> = comp
        .globals
        .drain()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let _ = shared.globals.set(globals);
    let _ = shared.exec_hosts.set(std::mem::take(&mut comp.exec_hosts));
    let mut diags = comp.diags;
    diags.sort_by_key(|d| (d.primary_span().map(|s| s.start), d.code));
    diags.dedup();
    let has_errors = diags.iter().any(|d| d.is_error());
    if !has_errors && comp.prog.pipelines.is_empty() && only.is_none() {
        diags.push(
            Diagnostic::error(Code::NoPipeline, "the program defines no pipeline")
                .with_help("add a line such as `pipeline main = range(10)`"),
        );
    }
    let ok = !diags.iter().any(|d| d.is_error());
    Traced {
        program: ok.then_some(comp.prog),
        diagnostics: diags,
        remarks: comp.remarks,
    }
}

fn item_name(item: &ast::Item) -> Option<&ast::Ident> {
    match &item.kind {
        ItemKind::Let { name, .. } | ItemKind::Pipeline { name, .. } => Some(name),
        ItemKind::Fn(f) => Some(&f.name),
        ItemKind::Error => None,
    }
}

impl<'a> Eval<'a> {
    /// The compile state; only called on compile-time paths.
    pub(crate) fn comp(&mut self) -> &mut Compile {
        self.comp.as_deref_mut().expect("compile-time path")
    }

    /// Whether this is compile time (tracing or top level) rather than an eager run.
    pub(crate) fn compiling(&self) -> bool {
        self.comp.is_some()
    }

    /// Whether the code being evaluated is a traced function body.
    pub(crate) fn tracing(&self) -> bool {
        self.frame.func.is_some()
    }

    /// Records an error at compile time (returning poison), or aborts an eager run.
    pub(crate) fn fail(&mut self, d: Diagnostic) -> Res<Value> {
        match self.comp.as_deref_mut() {
            Some(c) => {
                c.diags.push(d);
                Ok(Value::Poison)
            }
            None => Err(Abort::Error(Box::new(d))),
        }
    }

    /// Records a diagnostic at compile time (no-op at run time).
    pub(crate) fn report(&mut self, d: Diagnostic) {
        if let Some(c) = self.comp.as_deref_mut() {
            c.diags.push(d);
        }
    }

    /// Records a remark (`--remarks`): an option honoured differently from tf.data's letter.
    pub(crate) fn remark(&mut self, span: Span, message: String, help: &str) {
        if let Some(c) = self.comp.as_deref_mut() {
            let d = Diagnostic::remark(Code::PassRemark, message).with_label(span, "this option");
            c.remarks.push(d.with_help(help));
        }
    }

    /// Charges the compile budget (nothing at run time); false once it has run out, and
    /// the caller then returns poison so that tracing ends quickly.
    pub(crate) fn charge(&mut self, work: u64, memory: u64, at: Span) -> bool {
        let Some(c) = self.comp.as_deref_mut() else {
            return true;
        };
        if let Some(d) = c.spent.charge(work, memory, at) {
            c.diags.push(d);
        }
        !c.spent.exhausted
    }

    /// Whether the compile budget has run out.
    pub(crate) fn out_of_budget(&self) -> bool {
        self.comp.as_ref().is_some_and(|c| c.spent.exhausted)
    }

    /// Runs `f` with `construct` at `span` on the stack the budget's message names.
    pub(crate) fn within<T>(
        &mut self,
        construct: Construct,
        span: Span,
        f: impl FnOnce(&mut Self) -> T,
    ) -> T {
        if let Some(c) = self.comp.as_deref_mut() {
            c.spent.constructs.push((construct, span));
        }
        let r = f(self);
        if let Some(c) = self.comp.as_deref_mut() {
            c.spent.constructs.pop();
        }
        r
    }

    /// Checks declarations that need no call to be found wrong (extern registrations, exec permission).
    fn check_declarations(&mut self) {
        let ast = self.shared.ast.clone();
        for (idx, item) in ast.items.iter().enumerate() {
            let ItemKind::Fn(f) = &item.kind else {
                continue;
            };
            for p in &f.params {
                if let Some(te) = &p.ty
                    && let Err(d) = resolve(te)
                {
                    self.report(d);
                }
            }
            if let Some(te) = &f.ret
                && let Err(d) = resolve(te)
            {
                self.report(d);
            }
            match (&f.kind, &f.body) {
                (FnKind::Extern, _) if !self.shared.externs.contains_key(&f.name.name) => {
                    let registered: Vec<&str> =
                        self.shared.externs.keys().map(|s| s.as_str()).collect();
                    let mut d = Diagnostic::error(
                        Code::MissingHostFunction,
                        format!("no host function is registered for `extern eager fn {}`", f.name.name),
                    )
                    .with_label(f.name.span, "declared here, but the embedding program registered nothing by this name")
                    .with_note("the `pipec` command line registers no host functions; they come from a Rust program embedding pipec");
                    d = match did_you_mean(&f.name.name, registered.iter().copied()) {
                        Some(s) => d.with_help(format!("a function `{s}` is registered: did you mean it?")),
                        None => d.with_help("register it with `Compiler::register_host_fn` before compiling, or write the body as `eager fn`"),
                    };
                    self.report(d);
                }
                (_, FnBody::Exec { args, span }) => {
                    if !self.comp().opts.allow_exec {
                        let d = Diagnostic::error(
                            Code::ExecNotAllowed,
                            format!(
                                "`{}` runs an external worker process, which needs `--allow-exec`",
                                f.name.name
                            ),
                        )
                        .with_label(*span, "this starts a process")
                        .with_help("run again with `--allow-exec` if you trust this command");
                        self.report(d);
                        continue;
                    }
                    let mut argv = Vec::new();
                    for a in args {
                        match &a.kind {
                            ExprKind::Str(s) => argv.push(s.clone()),
                            _ => {
                                let d = Diagnostic::error(Code::WrongKind, "`exec` takes string literals")
                                    .with_label(a.span, "not a string literal")
                                    .with_help("write the command and each argument as a string: exec(\"python3\", \"worker.py\")");
                                self.report(d);
                            }
                        }
                    }
                    if argv.is_empty() {
                        let d = Diagnostic::error(Code::WrongArity, "`exec` needs a command")
                            .with_label(*span, "no command given")
                            .with_help("exec(\"python3\", \"worker.py\")");
                        self.report(d);
                        continue;
                    }
                    let factory = self.comp().opts.exec_factory.clone();
                    let dir = self.comp().opts.base_dir.clone();
                    match factory {
                        Some(factory) => {
                            let host = factory(crate::ExecSpec {
                                name: f.name.name.clone(),
                                argv,
                                dir,
                            });
                            self.comp().exec_hosts.insert(idx, host);
                        }
                        None => {
                            let d = Diagnostic::error(Code::WorkerFailed, format!("`{}` needs an exec worker, which this build of pipec cannot start yet", f.name.name))
                                .with_label(*span, "exec workers are not supported yet")
                                .with_help("write the body as an `eager fn`, or register a host function from Rust (`extern eager fn`)");
                            self.report(d);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    // ---- names ------------------------------------------------------------------------

    fn lookup_local(&self, name: &str) -> Option<&Value> {
        self.frame.scopes.iter().rev().find_map(|s| s.get(name))
    }

    /// Binds `name` in the innermost scope.
    pub(crate) fn bind(&mut self, name: &str, v: Value) {
        self.frame
            .scopes
            .last_mut()
            .expect("a scope")
            .insert(name.to_string(), v);
    }

    /// What the user wrote at `span`, when it is short enough to quote in a help line.
    pub(crate) fn quote(&self, span: Span) -> Option<String> {
        let text = self.shared.source.get(span.range())?;
        (!text.is_empty() && text.len() <= 60 && !text.contains('\n')).then(|| text.to_string())
    }

    /// Whether `name` means something here (a local, an item, a dtype, a builtin).
    fn is_defined(&self, name: &str) -> bool {
        self.lookup_local(name).is_some()
            || self.shared.items.contains_key(name)
            || DType::from_name(name).is_some()
            || name == "AUTOTUNE"
            || crate::builtins::is_builtin(name)
    }

    /// `tf.math.log`, `np.float32`, `float32`: the parts of a dotted path whose first name
    /// is not defined, as written.
    fn undefined_path<'e>(&self, e: &'e ast::Expr) -> Option<Vec<&'e str>> {
        match &e.kind {
            ExprKind::Name(n) => (!self.is_defined(n)).then(|| vec![n.as_str()]),
            ExprKind::Field { receiver, name } => {
                let mut path = self.undefined_path(receiver)?;
                path.push(&name.name);
                Some(path)
            }
            _ => None,
        }
    }

    /// How an argument is written, in pipec's spelling where it has a foreign one
    /// (`tf.float32` → `f32`); `None` when it is too long to quote.
    fn arg_text(&self, arg: &ast::Arg) -> Option<String> {
        let value = match self.respelled(&arg.value) {
            Some(d) => d.to_string(),
            None => self.quote(arg.value.span)?,
        };
        Some(match &arg.name {
            Some(n) => format!("{}: {value}", n.name),
            None => value,
        })
    }

    /// An unknown name written as Python, numpy or TensorFlow spell it (`path`, the whole
    /// expression at `span`, called with `args` when it is a call): E0100 with the pipec
    /// spelling. `None` when the path is no known foreign spelling.
    fn foreign_name(
        &mut self,
        path: &[&str],
        args: Option<&[ast::Arg]>,
        span: Span,
    ) -> Option<Res<Value>> {
        let written = path.join(".");
        let module = path.len() > 1 && matches!(path[0], "tf" | "np" | "numpy" | "jnp");
        let d = Diagnostic::error(Code::UnknownName, format!("unknown name `{written}`"));
        let d = match crate::hints::foreign(path, crate::builtins::is_builtin) {
            Some(f) => {
                let texts: Option<Vec<String>> = match args {
                    Some(a) => a.iter().map(|a| self.arg_text(a)).collect(),
                    None => None,
                };
                let texts: Option<Vec<&str>> = texts
                    .as_ref()
                    .map(|t| t.iter().map(String::as_str).collect());
                d.with_label(span, format!("{}'s spelling", f.whose))
                    .with_help(f.help(&written, texts.as_deref()))
            }
            None if module => d.with_label(span, "not defined").with_help(format!(
                "pipec has no `{}` module: its operations are builtins with plain names \
                 (`log`, `cast`, `reshape`, `mean`, ...)",
                path[0]
            )),
            None => return None,
        };
        let r = self.fail(d);
        // The arguments are still checked: their own mistakes (`cast(x, float32)` inside)
        // are reported now, not after this one is fixed; one the help already respelled
        // (`tf.float32` as `f32`) is not reported again.
        for arg in args.unwrap_or_default() {
            if self.respelled(&arg.value).is_none()
                && let Err(e) = self.expr(&arg.value)
            {
                return Some(Err(e));
            }
        }
        Some(r)
    }

    /// The pipec spelling of an argument that is a foreign dtype or value (`tf.float32`,
    /// `float32`, `tf.data.AUTOTUNE`).
    fn respelled(&self, e: &ast::Expr) -> Option<&'static str> {
        match self
            .undefined_path(e)
            .and_then(|p| crate::hints::foreign(&p, crate::builtins::is_builtin))
        {
            Some(Foreign {
                pipec: Pipec::Dtype(d) | Pipec::Value(d),
                ..
            }) => Some(d),
            _ => None,
        }
    }

    fn lookup(&mut self, name: &str, span: Span) -> Res<Value> {
        if let Some(v) = self.lookup_local(name) {
            let v = v.clone();
            // Copying a tuple or list costs its size (a tuple doubled n times is 2^n).
            if matches!(v, Value::Tuple(_) | Value::List(_))
                && !self.charge(value_nodes(&v), 0, span)
            {
                return Ok(Value::Poison);
            }
            return Ok(v);
        }
        if self.shared.items.contains_key(name) {
            return self.global(name, span);
        }
        if let Some(dt) = DType::from_name(name) {
            return Ok(Value::DType(dt));
        }
        if name == "AUTOTUNE" {
            return Ok(Value::Num(Num::Int(-1)));
        }
        if crate::builtins::is_builtin(name) {
            return Ok(Value::Func(FuncVal::Builtin(name.to_string())));
        }
        let mut candidates: Vec<String> = self
            .frame
            .scopes
            .iter()
            .flat_map(|s| s.keys().cloned())
            .collect();
        candidates.extend(self.shared.items.keys().cloned());
        candidates.extend(crate::builtins::names().map(|s| s.to_string()));
        if let Some(r) = self.foreign_name(&[name], None, span) {
            return r;
        }
        let mut d = Diagnostic::error(Code::UnknownName, format!("unknown name `{name}`"))
            .with_label(span, "not defined");
        if let Some(s) = did_you_mean(name, candidates.iter().map(|s| s.as_str())) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.fail(d)
    }

    /// The value of a top-level name (evaluating a `let` on first use).
    pub(crate) fn global(&mut self, name: &str, span: Span) -> Res<Value> {
        let idx = self.shared.items[name];
        let ast = self.shared.ast.clone();
        let item = &ast.items[idx];
        match &item.kind {
            ItemKind::Fn(_) => Ok(Value::Func(FuncVal::Decl(idx))),
            ItemKind::Pipeline { .. } => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("`{name}` is a pipeline, not a value"),
                )
                .with_label(span, "pipelines cannot be referred to")
                .with_help(format!(
                    "bind the dataset with `let` and use it in both places: `let {name}_ds = ...`"
                ));
                self.fail(d)
            }
            ItemKind::Let { value, .. } => {
                if !self.compiling() {
                    // Set once the whole program is compiled; eager code that runs while
                    // compiling (a dataset run by `reduce`) comes before that.
                    let Some(globals) = self.shared.globals.get() else {
                        let d = Diagnostic::error(
                            Code::NotTraceTime,
                            format!("the eager function reads the top-level value `{name}` while the program is still being compiled"),
                        )
                        .with_label(span, "read here")
                        .with_note("this dataset runs at compile time (for `reduce` or `get_single_element`), before the top-level values are all known")
                        .with_help(format!("pass `{name}` to the function as an argument instead"));
                        return self.fail(d);
                    };
                    return Ok(globals.get(name).cloned().unwrap_or(Value::Poison));
                }
                match self.comp().globals.get(name) {
                    Some(Some(v)) => {
                        let v = v.clone();
                        if matches!(v, Value::Tuple(_) | Value::List(_))
                            && !self.charge(value_nodes(&v), 0, span)
                        {
                            return Ok(Value::Poison);
                        }
                        return Ok(v);
                    }
                    Some(None) => {
                        let d = Diagnostic::error(
                            Code::Recursion,
                            format!("`{name}` is defined in terms of itself"),
                        )
                        .with_label(span, "used while it is being defined");
                        return self.fail(d);
                    }
                    None => {}
                }
                self.comp().globals.insert(name.to_string(), None);
                let saved = std::mem::replace(&mut self.frame, Frame::top());
                let v = self.within(Construct::Item, item.span, |ev| ev.expr(value));
                self.frame = saved;
                let v = v?;
                self.comp()
                    .globals
                    .insert(name.to_string(), Some(v.clone()));
                Ok(v)
            }
            ItemKind::Error => Ok(Value::Poison),
        }
    }

    /// `.numpy()` (or `numpy(x)`, as `what`) at `call` on the tensor `x` written at
    /// `receiver`, inside a traced function: E0300, but tracing goes on with the tensor
    /// itself, so that the rest of the function can show whether dropping the call is the
    /// whole fix ([`Eval::finish_numpy_help`]).
    pub(crate) fn numpy_in_trace(
        &mut self,
        x: Value,
        receiver: Span,
        call: Span,
        what: &str,
    ) -> Res<Value> {
        self.host_only_error(what, call)?;
        let c = self.comp();
        let context = c.context;
        c.numpy_calls.push(NumpyCall {
            diag: c.diags.len() - 1,
            call,
            receiver,
            context,
            method: what.starts_with('.'),
        });
        Ok(x)
    }

    /// Completes the help of the E0300s of `.numpy()` calls in the trace of `fname` that
    /// reported its errors from `errors_before` on and returned `result`. When they are the
    /// trace's only errors and it returns tensors, the function only does tensor math: the
    /// fix is to drop the call, said first; the eager fix follows, with the traced type
    /// for its `TYPE`.
    fn finish_numpy_help(&mut self, errors_before: usize, result: &Value, fname: &str) {
        let calls: Vec<NumpyCall> = self
            .comp()
            .numpy_calls
            .extract_if(.., |n| n.diag >= errors_before)
            .collect();
        if calls.is_empty() {
            return;
        }
        let errors = self.comp().diags.len() - errors_before;
        let returned = self.elem_type_of(result);
        let eager = crate::builtins::eager_fix_help(fname);
        // `eager fn f(...) -> f32[3]`, and `py_function(f, [args], "f32[3]")`, whose `Tout`
        // spells a shaped type as a string.
        let eager = match &returned {
            Some(ty) => eager
                .replace("-> TYPE", &format!("-> {ty}"))
                .replace("], TYPE)", &format!("], {})", tout_text(ty))),
            None => eager,
        };
        for n in &calls {
            let help = match &returned {
                Some(_) if errors == calls.len() => {
                    let receiver = self.quote(n.receiver);
                    let fixed = self.without_call(n);
                    let call = if n.method { ".numpy()" } else { "numpy(...)" };
                    let drop = match (fixed, receiver) {
                        (Some(f), Some(r)) if f != r => {
                            format!("drop `{call}`: `{f}` already works on the tensor")
                        }
                        (_, Some(r)) => format!(
                            "drop `{call}`: `{r}` is already a tensor, and tensor math works on it"
                        ),
                        _ => format!("drop `{call}`: tensor math works on the tensor itself"),
                    };
                    format!("{drop}; otherwise {eager}")
                }
                _ => eager.clone(),
            };
            self.comp().diags[n.diag].help = Some(help);
        }
    }

    /// The statement expression around a `.numpy()` call, with the call replaced by the
    /// tensor it was called on (`x.numpy() * 2.0` → `x * 2.0`), when short enough to quote.
    fn without_call(&self, n: &NumpyCall) -> Option<String> {
        let ctx = n.context?;
        if !(ctx.start <= n.call.start && n.call.end <= ctx.end) {
            return None;
        }
        let src = &self.shared.source;
        let text = format!(
            "{}{}{}",
            src.get(ctx.start as usize..n.call.start as usize)?,
            src.get(n.receiver.range())?,
            src.get(n.call.end as usize..ctx.end as usize)?
        );
        (text.len() <= 60 && !text.contains('\n')).then_some(text)
    }

    /// Current local variables, captured by a lambda.
    fn capture(&self) -> HashMap<String, Value> {
        let mut out = HashMap::new();
        for scope in &self.frame.scopes {
            for (k, v) in scope {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }

    // ---- statements -------------------------------------------------------------------

    pub(crate) fn block(&mut self, block: &ast::Block) -> Res<Flow> {
        self.frame.scopes.push(HashMap::new());
        let r = self.stmts(&block.stmts);
        self.frame.scopes.pop();
        r
    }

    fn stmts(&mut self, stmts: &[ast::Stmt]) -> Res<Flow> {
        for s in stmts {
            if let Flow::Return(v, span) = self.stmt(s)? {
                return Ok(Flow::Return(v, span));
            }
        }
        Ok(Flow::Normal)
    }

    fn stmt(&mut self, s: &ast::Stmt) -> Res<Flow> {
        let value = match &s.kind {
            StmtKind::Let { value, .. } | StmtKind::Assign { value, .. } => Some(value),
            StmtKind::Return(value) => value.as_ref(),
            StmtKind::Expr(e) => Some(e),
            _ => None,
        };
        let Some(value) = value.filter(|_| self.compiling()) else {
            return self.stmt_kind(s);
        };
        let saved = self.comp().context.replace(value.span);
        let r = self.stmt_kind(s);
        self.comp().context = saved;
        r
    }

    fn stmt_kind(&mut self, s: &ast::Stmt) -> Res<Flow> {
        match &s.kind {
            StmtKind::Let { name, value } => {
                let v = self.expr(value)?;
                self.bind(&name.name, v);
            }
            StmtKind::Assign { target, value } => {
                let v = self.expr(value)?;
                match self
                    .frame
                    .scopes
                    .iter_mut()
                    .rev()
                    .find(|sc| sc.contains_key(&target.name))
                {
                    Some(scope) => {
                        scope.insert(target.name.clone(), v);
                    }
                    None => {
                        let d = Diagnostic::error(
                            Code::UnknownName,
                            format!("cannot assign to `{}`: it is not declared", target.name),
                        )
                        .with_label(target.span, "not declared in this function")
                        .with_help(format!("declare it first: `let {} = ...`", target.name));
                        self.fail(d)?;
                    }
                }
            }
            StmtKind::Return(value) => {
                let v = match value {
                    Some(e) => self.expr(e)?,
                    None => Value::Unit,
                };
                return Ok(Flow::Return(v, s.span));
            }
            StmtKind::Expr(e) => {
                self.expr(e)?;
            }
            StmtKind::If {
                cond,
                then_block,
                else_block,
            } => {
                let c = self.expr(cond)?;
                match self.condition(c, cond.span, "if")? {
                    Some(true) => return self.block(then_block),
                    Some(false) => {
                        if let Some(b) = else_block {
                            return self.block(b);
                        }
                    }
                    None => {}
                }
            }
            StmtKind::While { cond, body } => {
                return self.within(Construct::Loop, s.span, |ev| ev.while_loop(cond, body));
            }
            StmtKind::For { var, iter, body } => {
                return self.within(Construct::Loop, s.span, |ev| ev.for_loop(var, iter, body));
            }
            StmtKind::Error => {}
        }
        Ok(Flow::Normal)
    }

    /// Unrolls a `while` loop (its condition known at trace time) or runs it eagerly.
    fn while_loop(&mut self, cond: &ast::Expr, body: &ast::Block) -> Res<Flow> {
        let mut iterations = 0usize;
        while !self.out_of_budget() {
            let c = self.expr(cond)?;
            match self.condition(c, cond.span, "while")? {
                Some(true) => {}
                _ => break,
            }
            self.plan_iteration(cond.span)?;
            self.frame
                .site
                .push(crate::builtins::LOOP_SITE | iterations as u64);
            let r = self.block(body);
            self.frame.site.pop();
            if let Flow::Return(v, span) = r? {
                return Ok(Flow::Return(v, span));
            }
            iterations += 1;
            if !self.frame.eager && iterations >= MAX_UNROLL {
                let d = Diagnostic::error(Code::NotTraceTime, format!("this loop ran {MAX_UNROLL} times at trace time"))
                    .with_label(cond.span, "still true")
                    .with_help("loops in traced functions are unrolled; use tensor ops, or move the loop into an `eager fn`");
                self.fail(d)?;
                break;
            }
        }
        Ok(Flow::Normal)
    }

    /// Unrolls a `for` loop over a range known at trace time (or runs it eagerly).
    fn for_loop(&mut self, var: &ast::Ident, iter: &ast::Expr, body: &ast::Block) -> Res<Flow> {
        let Some((start, end)) = self.for_range(iter)? else {
            return Ok(Flow::Normal);
        };
        let count = end.saturating_sub(start).max(0) as usize;
        if !self.frame.eager && count > MAX_UNROLL {
            let d = Diagnostic::error(
                Code::NotTraceTime,
                format!("this loop would unroll {count} times"),
            )
            .with_label(
                iter.span,
                format!("at most {MAX_UNROLL} iterations are unrolled at trace time"),
            )
            .with_help("use a vectorized tensor op, or move the loop into an `eager fn`");
            self.fail(d)?;
            return Ok(Flow::Normal);
        }
        for i in start..end {
            if self.out_of_budget() {
                break;
            }
            self.plan_iteration(iter.span)?;
            self.frame.scopes.push(HashMap::from([(
                var.name.clone(),
                Value::Num(Num::Int(i as i128)),
            )]));
            let iteration = (i - start) as u64;
            self.frame.site.push(crate::builtins::LOOP_SITE | iteration);
            let r = self.block(body);
            self.frame.site.pop();
            self.frame.scopes.pop();
            if let Flow::Return(v, span) = r? {
                return Ok(Flow::Return(v, span));
            }
        }
        Ok(Flow::Normal)
    }

    /// The bounds of a `for` loop: `A..B` or `range(N)` / `range(A, B)`.
    fn for_range(&mut self, iter: &ast::Expr) -> Res<Option<(i64, i64)>> {
        let (a, b) = match &iter.kind {
            ExprKind::Range { start, end } => (Some(&**start), &**end),
            ExprKind::Call { callee, args }
                if matches!(&callee.kind, ExprKind::Name(n) if n == "range")
                    && (1..=2).contains(&args.len()) =>
            {
                if args.len() == 1 {
                    (None, &args[0].value)
                } else {
                    (Some(&args[0].value), &args[1].value)
                }
            }
            _ => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    "a `for` loop iterates over `A..B` or `range(N)`",
                )
                .with_label(iter.span, "not a range")
                .with_help("write `for i in 0..n { ... }`");
                self.fail(d)?;
                return Ok(None);
            }
        };
        let start = match a {
            Some(e) => self.int_arg(e, "a loop bound")?,
            None => Some(0),
        };
        let end = self.int_arg(b, "a loop bound")?;
        Ok(start.zip(end))
    }

    /// Evaluates `e` to an integer known now.
    pub(crate) fn int_arg(&mut self, e: &ast::Expr, what: &str) -> Res<Option<i64>> {
        let v = self.expr(e)?;
        self.int_value(v, e.span, what)
    }

    /// An integer known now, from a value.
    pub(crate) fn int_value(&mut self, v: Value, span: Span, what: &str) -> Res<Option<i64>> {
        match v {
            Value::Num(Num::Int(i)) => match i64::try_from(i) {
                Ok(i) => Ok(Some(i)),
                Err(_) => {
                    let d = Diagnostic::error(
                        Code::IntegerTooLarge,
                        format!("{what} does not fit in 64 bits"),
                    )
                    .with_label(span, "");
                    self.fail(d)?;
                    Ok(None)
                }
            },
            Value::Tensor(TVal::Concrete(t)) if t.rank() == 0 && t.dtype().is_int() => {
                let i = kernels::cast(&t, DType::I64);
                Ok(i.as_array::<i64>().and_then(|a| a.iter().next().copied()))
            }
            Value::Poison => Ok(None),
            Value::SymDim(_) | Value::Tensor(TVal::Symbolic(..)) => {
                let d = Diagnostic::error(
                    Code::NotTraceTime,
                    format!("{what} must be known at trace time"),
                )
                .with_label(span, "this is only known at run time")
                .with_help("use a constant here, or move the computation into an `eager fn`");
                self.fail(d)?;
                Ok(None)
            }
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("{what} must be an integer, found {}", other.kind_name()),
                )
                .with_label(span, "not an integer");
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    /// The truth of an `if`/`while` condition, `None` when it cannot be decided (already reported).
    fn condition(&mut self, c: Value, span: Span, what: &str) -> Res<Option<bool>> {
        match c {
            Value::Bool(b) => Ok(Some(b)),
            Value::Num(n) => Ok(Some(n.as_f64() != 0.0)),
            Value::HostNum(id, dtype) => self.host_truth(id, dtype, span),
            Value::Tensor(TVal::Concrete(t)) => {
                if t.len() != 1 {
                    let d = Diagnostic::error(
                        Code::WrongKind,
                        format!(
                            "the truth of a tensor of shape {:?} is ambiguous",
                            t.shape()
                        ),
                    )
                    .with_label(span, "more than one value")
                    .with_help("reduce it first: `any(x)` or `all(x)`");
                    self.fail(d)?;
                    return Ok(None);
                }
                let b = kernels::cast(&t, DType::Bool);
                Ok(b.as_array::<bool>().and_then(|a| a.iter().next().copied()))
            }
            Value::Tensor(TVal::Symbolic(v, ty)) if self.guards.is_some() => {
                self.guard(v, ty, span)
            }
            Value::Tensor(TVal::Symbolic(..)) => {
                let fname = self.frame.fn_name.clone().unwrap_or_default();
                let inside = if fname == "lambda" {
                    "a lambda given to `map`/`filter`".to_string()
                } else {
                    format!("traced function `{fname}`")
                };
                let fixes = crate::builtins::eager_fix_help(&fname);
                // `where` replaces an `if` that picks a value; a value-dependent loop has no
                // traced equivalent, so only the eager fixes apply to `while`.
                let help = if what == "if" {
                    format!("compute both branches and pick with `where(cond, a, b)`; or {fixes}")
                } else {
                    fixes
                };
                let d = Diagnostic::error(Code::SymbolicControlFlow, format!("`{what}` on a symbolic tensor inside {inside}"))
                    .with_label(span, "this condition has no value at trace time")
                    .with_note("inside `map` and `filter`, a function is traced once per element signature: its tensors are symbolic and have no values yet")
                    .with_help(help);
                self.fail(d)?;
                Ok(None)
            }
            Value::Poison => Ok(None),
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("a condition must be a bool, found {}", other.kind_name()),
                )
                .with_label(span, "not a bool");
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    /// Counts a loop iteration while tracing a plan, failing the trace past [`MAX_UNROLL`]
    /// of them or past its allowance of ops; nothing otherwise.
    fn plan_iteration(&mut self, span: Span) -> Res<()> {
        let Some(guards) = self.guards.as_mut() else {
            return Ok(());
        };
        let ops = self.frame.func.as_ref().map_or(0, |f| f.ops.len());
        guards.iterations += 1;
        if guards.iterations > MAX_UNROLL || ops > guards.max_ops {
            let d = Diagnostic::error(Code::NotTraceTime, "too long a loop to plan")
                .with_label(span, "");
            self.fail(d)?;
        }
        Ok(())
    }

    /// A value-dependent condition met while tracing a plan: the truth it is cast to, as
    /// the evaluator casts a concrete condition, becomes a guard, and the trace takes the
    /// branch its decisions name (stopping, undecided, past them).
    pub(crate) fn guard(
        &mut self,
        v: pipec_ir::ValueId,
        ty: TensorType,
        span: Span,
    ) -> Res<Option<bool>> {
        if ty.shape.num_elements() != Some(1) {
            // The evaluator reports an ambiguous truth (or an empty tensor); the plan
            // leaves that to it.
            let d = Diagnostic::error(Code::WrongKind, "a condition of more than one value")
                .with_label(span, "");
            self.fail(d)?;
            return Ok(None);
        }
        let cond = if ty.dtype == DType::Bool {
            v
        } else {
            match self.emit(OpKind::Cast(DType::Bool), vec![TVal::Symbolic(v, ty)], span)? {
                Value::Tensor(TVal::Symbolic(c, _)) => c,
                _ => return Ok(None),
            }
        };
        let at = self.frame.func.as_ref().map_or(0, |f| f.ops.len());
        let Some(guards) = self.guards.as_mut() else {
            return Ok(None);
        };
        let k = guards.met.len();
        guards.met.push((at, cond));
        match guards.decisions.get(k) {
            Some(&taken) => Ok(Some(taken)),
            None => Err(Abort::Undecided),
        }
    }

    // ---- expressions ------------------------------------------------------------------

    /// Evaluates an expression, charging the compile budget.
    pub(crate) fn expr(&mut self, e: &ast::Expr) -> Res<Value> {
        if !self.charge(1, 0, e.span) {
            return Ok(Value::Poison);
        }
        let v = self.expr_inner(e)?;
        if matches!(e.kind, ExprKind::Tuple(_) | ExprKind::List(_))
            && matches!(v, Value::Tuple(_) | Value::List(_))
            && let Some(c) = self.comp.as_deref_mut()
        {
            let nodes = value_nodes(&v);
            let d = c.spent.check_value(nodes, e.span);
            let bytes = crate::budget::node_bytes(nodes);
            if let Some(d) = d.or_else(|| c.spent.charge(nodes, bytes, e.span)) {
                c.diags.push(d);
            }
            if c.spent.exhausted {
                return Ok(Value::Poison);
            }
        }
        Ok(v)
    }

    fn expr_inner(&mut self, e: &ast::Expr) -> Res<Value> {
        match &e.kind {
            ExprKind::Int(n) => Ok(Value::Num(Num::Int(*n as i128))),
            ExprKind::Float(f, _) => Ok(Value::Num(Num::Float(*f))),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Str(s) => Ok(Value::Str(s.as_str().into())),
            ExprKind::Name(n) => self.lookup(n, e.span),
            ExprKind::Tuple(items) => {
                let vs = items
                    .iter()
                    .map(|i| self.expr(i))
                    .collect::<Res<Vec<_>>>()?;
                Ok(Value::Tuple(vs))
            }
            ExprKind::List(_) => self.list_literal(e),
            ExprKind::Dict(entries) => self.dict_literal(entries),
            ExprKind::Unary { op, expr } => {
                let v = self.expr(expr)?;
                self.unary_expr(*op, v, e.span)
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                let l = self.expr(lhs)?;
                let r = self.expr(rhs)?;
                self.binary_expr(*op, l, r, e.span, *op_span, lhs.span, rhs.span)
            }
            ExprKind::Call { callee, args } => self.call_expr(callee, args, e.span),
            ExprKind::Method {
                receiver,
                name,
                args,
            } => {
                if let Some(mut path) = self.undefined_path(receiver) {
                    path.push(&name.name);
                    if let Some(r) = self.foreign_name(&path, Some(args), e.span) {
                        return r;
                    }
                }
                let r = self.expr(receiver)?;
                if name.name == "astype" && !matches!(r, Value::Poison) {
                    return self.astype(&r, receiver, args, e.span);
                }
                self.method(r, receiver.span, name, args, e.span)
            }
            ExprKind::Field { receiver, name } => {
                if let Some(path) = self.undefined_path(e)
                    && let Some(r) = self.foreign_name(&path, None, e.span)
                {
                    return r;
                }
                let r = self.expr(receiver)?;
                self.field(r, name, e.span)
            }
            ExprKind::Index { base, indices } => {
                let b = self.expr(base)?;
                if let Value::Dict(fields) = b {
                    return self.dict_index(fields, indices, e.span);
                }
                self.index(b, base.span, indices, e.span)
            }
            ExprKind::Lambda { params, body } => {
                Ok(Value::Func(FuncVal::Lambda(Arc::new(Lambda {
                    params: params.clone(),
                    body: (**body).clone(),
                    captured: self.capture(),
                    span: e.span,
                }))))
            }
            ExprKind::Range { .. } => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    "a range `A..B` is only allowed in a `for` loop",
                )
                .with_label(e.span, "not in a `for` loop")
                .with_help(
                    "for a dataset of numbers use `range(A, B)`; for a tensor use `arange(n)`",
                );
                self.fail(d)
            }
            ExprKind::Error => Ok(Value::Poison),
        }
    }

    /// `[..]`: a constant tensor when every leaf is a literal or constant, else a list.
    fn list_literal(&mut self, e: &ast::Expr) -> Res<Value> {
        let ExprKind::List(items) = &e.kind else {
            unreachable!("called on lists")
        };
        let vs = items
            .iter()
            .map(|i| self.expr(i))
            .collect::<Res<Vec<_>>>()?;
        if vs.iter().any(|v| matches!(v, Value::Poison)) {
            return Ok(Value::Poison);
        }
        if is_str_literal_list(e) {
            return match crate::literal::str_tensor_from_values(&vs) {
                Ok(t) => Ok(Value::Tensor(TVal::Concrete(t))),
                Err(msg) => {
                    let d = Diagnostic::error(Code::RaggedLiteral, msg)
                        .with_label(e.span, "rows of different lengths")
                        .with_help("every row of a tensor literal must have the same length; for ragged data use `padded_batch`");
                    self.fail(d)
                }
            };
        }
        // Only a literal made of literals is a tensor literal; `[a, b]` of named tensors
        // stays a list, so `concat`/`stack` see its parts (and their dtypes) unchanged.
        if !is_literal_list(e) {
            return Ok(Value::List(vs));
        }
        match crate::literal::tensor_from_values(&vs) {
            // A float literal is f32: each number rounded once from its text, and one past
            // f32's range an error, not `inf`.
            Ok(Some(t)) if t.dtype() == DType::F32 => {
                match crate::literal::exact_literal(e, DType::F32) {
                    Ok(Some(exact)) => Ok(Value::Tensor(TVal::Concrete(exact))),
                    Ok(None) => Ok(Value::Tensor(TVal::Concrete(t))),
                    Err(err) => self.literal_out_of_range(err, DType::F32),
                }
            }
            Ok(Some(t)) => Ok(Value::Tensor(TVal::Concrete(t))),
            Ok(None) => Ok(Value::List(vs)),
            Err(msg) => {
                // The label and help name what is wrong with this literal.
                let (label, help) = if msg.starts_with("ragged") {
                    (
                        "rows of different lengths",
                        "every row of a tensor literal must have the same length; for ragged data use `padded_batch`",
                    )
                } else if msg.contains("bools and numbers") {
                    (
                        "bools and numbers in one literal",
                        "a tensor has one dtype: write `1`/`0` for true/false, or `cast` the bools where they are used",
                    )
                } else {
                    (
                        "this literal",
                        "integer literals must fit in i64; write a float (`1e20`) for larger magnitudes",
                    )
                };
                let d = Diagnostic::error(Code::RaggedLiteral, msg)
                    .with_label(e.span, label)
                    .with_help(help);
                self.fail(d)
            }
        }
    }

    fn field(&mut self, r: Value, name: &ast::Ident, span: Span) -> Res<Value> {
        let ty = match &r {
            Value::Poison => return Ok(Value::Poison),
            Value::Tensor(TVal::Concrete(t)) => {
                TensorType::new(t.dtype(), pipec_ir::Shape::known(t.shape()))
            }
            Value::Tensor(TVal::Symbolic(_, ty)) => ty.clone(),
            Value::Dataset(ds) if name.name == "element_spec" => {
                return Ok(Value::Str(ds.elem.to_string().into()));
            }
            Value::Dict(fields) => return self.dict_field(fields.clone(), name),
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("{} has no field `{}`", other.kind_name(), name.name),
                )
                .with_label(name.span, "no such field");
                return self.fail(d);
            }
        };
        let dim_of = |axis| {
            let Value::Tensor(t) = &r else {
                unreachable!("fields are read from tensors")
            };
            Value::SymDim(Arc::new(crate::value::DimOf {
                of: t.clone(),
                axis,
            }))
        };
        match name.name.as_str() {
            "shape" => Ok(Value::Tuple(
                ty.shape
                    .0
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        d.known()
                            .map_or_else(|| dim_of(Some(i)), |n| Value::Num(Num::Int(n as i128)))
                    })
                    .collect(),
            )),
            "dtype" => Ok(Value::DType(ty.dtype)),
            "rank" | "ndim" => Ok(Value::Num(Num::Int(ty.rank() as i128))),
            "size" => match ty.shape.num_elements() {
                Some(n) => Ok(Value::Num(Num::Int(n as i128))),
                None => Ok(dim_of(None)),
            },
            "T" => self.call_builtin("transpose", vec![(r, span)], vec![], span),
            other => {
                let d =
                    Diagnostic::error(Code::WrongKind, format!("tensors have no field `{other}`"))
                        .with_label(name.span, "no such field")
                        .with_help("tensor fields are `shape`, `dtype`, `rank` and `size`");
                self.fail(d)
            }
        }
    }

    // ---- calls ------------------------------------------------------------------------

    /// Evaluated call arguments: positional, then named.
    pub(crate) fn eval_args(&mut self, args: &[ast::Arg]) -> Res<EvaluatedArgs> {
        let mut pos = Vec::new();
        let mut named: Vec<(ast::Ident, Value, Span)> = Vec::new();
        for a in args {
            let v = self.expr(&a.value)?;
            match &a.name {
                Some(n) => {
                    if named.iter().any(|(m, _, _)| m.name == n.name) {
                        let d = Diagnostic::error(
                            Code::BadNamedArgument,
                            format!("argument `{}` is given twice", n.name),
                        )
                        .with_label(n.span, "given again here");
                        self.fail(d)?;
                        continue;
                    }
                    named.push((n.clone(), v, a.value.span));
                }
                None => {
                    if !named.is_empty() {
                        let d = Diagnostic::error(
                            Code::BadNamedArgument,
                            "a positional argument follows a named one",
                        )
                        .with_label(a.value.span, "positional argument after a named one")
                        .with_help("put positional arguments first");
                        self.fail(d)?;
                    }
                    pos.push((v, a.value.span));
                }
            }
        }
        Ok((pos, named))
    }

    /// numpy's `x.astype(T)`: E0100 with `cast(x, T)` in pipec's spelling.
    fn astype(
        &mut self,
        r: &Value,
        receiver: &ast::Expr,
        args: &[ast::Arg],
        span: Span,
    ) -> Res<Value> {
        let x = self.quote(receiver.span).unwrap_or_else(|| "x".into());
        let dtype = match args {
            [arg] if arg.name.is_none() => self.arg_text(arg),
            _ => None,
        };
        let d = Diagnostic::error(
            Code::UnknownName,
            format!("{} has no method `astype`", r.kind_name()),
        )
        .with_label(span, "numpy's spelling")
        .with_help(format!(
            "write `cast({x}, {})`: pipec converts dtypes with `cast`",
            dtype.as_deref().unwrap_or("DTYPE")
        ));
        self.fail(d)
    }

    fn call_expr(&mut self, callee: &ast::Expr, args: &[ast::Arg], span: Span) -> Res<Value> {
        if let Some(path) = self.undefined_path(callee)
            && let Some(r) = self.foreign_name(&path, Some(args), span)
        {
            return r;
        }
        if let ExprKind::Name(name) = &callee.kind {
            // Builtins are looked up only when no local or top-level name shadows them.
            if self.lookup_local(name).is_none()
                && !self.shared.items.contains_key(name)
                && crate::builtins::is_builtin(name)
            {
                if name == "cast"
                    && let Some(v) = self.cast_literal(args)?
                {
                    return Ok(v);
                }
                let (pos, named) = self.eval_args(args)?;
                return self.call_builtin(name, pos, named, span);
            }
        }
        let f = self.expr(callee)?;
        let (pos, named) = self.eval_args(args)?;
        self.call_value(f, callee.span, pos, named, span)
    }

    /// `cast(LITERAL, DTYPE)` of a literal of numbers: each number rounded from its text
    /// straight to the dtype, and one the dtype cannot hold an error (SPEC §4). `None` for
    /// any other `cast`, which takes the ordinary path.
    fn cast_literal(&mut self, args: &[ast::Arg]) -> Res<Option<Value>> {
        let [x, dt] = args else { return Ok(None) };
        if x.name.is_some()
            || !matches!(
                dt.name.as_ref().map(|n| n.name.as_str()),
                None | Some("dtype")
            )
        {
            return Ok(None);
        }
        // Only a literal is taken here, so `dt` is evaluated once either way.
        let probe = crate::literal::exact_literal(&x.value, pipec_tensor::DType::F64);
        if matches!(probe, Ok(None)) {
            return Ok(None);
        }
        let dtype = match self.expr(&dt.value)? {
            Value::DType(d) => d,
            Value::Poison => return Ok(Some(Value::Poison)),
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("`cast` needs a dtype, found {}", other.kind_name()),
                )
                .with_label(dt.value.span, "not a dtype")
                .with_help("write a dtype name such as `f32` or `i64`");
                return self.fail(d).map(Some);
            }
        };
        match crate::literal::exact_literal(&x.value, dtype) {
            Ok(Some(t)) => Ok(Some(Value::Tensor(TVal::Concrete(t)))),
            Ok(None) => Ok(None),
            Err(e) => self.literal_out_of_range(e, dtype).map(Some),
        }
    }

    /// E0121 for a literal number `dtype` cannot hold.
    fn literal_out_of_range(&mut self, e: crate::literal::OutOfRange, dtype: DType) -> Res<Value> {
        let d = Diagnostic::error(
            Code::LiteralOutOfRange,
            format!("the number `{}` {} {dtype}", e.text, e.why),
        )
        .with_label(e.span, format!("not a {dtype} value"))
        .with_help(format!(
            "write a number {dtype} can hold, or cast to a wider dtype (a literal is \
             converted exactly, never wrapped, saturated or rounded to an integer)"
        ));
        self.fail(d)
    }

    /// Calls a function value with evaluated arguments.
    pub(crate) fn call_value(
        &mut self,
        f: Value,
        fspan: Span,
        pos: Vec<(Value, Span)>,
        named: Vec<(ast::Ident, Value, Span)>,
        span: Span,
    ) -> Res<Value> {
        match f {
            Value::Poison => Ok(Value::Poison),
            Value::Func(FuncVal::Builtin(name)) => self.call_builtin(&name, pos, named, span),
            Value::Func(fv) => {
                if let Some((n, _, s)) = named.first() {
                    let d = Diagnostic::error(
                        Code::BadNamedArgument,
                        format!("user functions take no named arguments (`{}`)", n.name),
                    )
                    .with_label(*s, "named argument")
                    .with_help("pass it positionally");
                    return self.fail(d);
                }
                let args: Vec<Value> = pos.into_iter().map(|(v, _)| v).collect();
                self.call_func(&fv, args, span)
            }
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("{} is not callable", other.kind_name()),
                )
                .with_label(fspan, "not a function");
                self.fail(d)
            }
        }
    }

    /// Calls a function value on argument values (inlining traced and eager bodies,
    /// emitting an eager op when traced code calls an eager function).
    pub(crate) fn call_func(&mut self, f: &FuncVal, args: Vec<Value>, span: Span) -> Res<Value> {
        if args.iter().any(|a| matches!(a, Value::Poison)) {
            return Ok(Value::Poison);
        }
        // A call inside the function being traced (not the traced function itself, which
        // `trace_fn` calls at depth 0) is part of the site of the random ops it reaches.
        let nested = !matches!(f, FuncVal::Builtin(_)) && (self.depth > 0 || !self.tracing());
        if nested {
            let word = crate::builtins::CALL_SITE | self.site_word(span);
            self.frame.site.push(word);
        }
        let r = self.call_func_inner(f, args, span);
        if nested {
            self.frame.site.pop();
        }
        r
    }

    fn call_func_inner(&mut self, f: &FuncVal, args: Vec<Value>, span: Span) -> Res<Value> {
        match f {
            FuncVal::Builtin(name) => {
                let pos = args.into_iter().map(|a| (a, span)).collect();
                self.call_builtin(name, pos, vec![], span)
            }
            FuncVal::Lambda(l) => {
                if l.params.len() != args.len() {
                    let d = Diagnostic::error(
                        Code::WrongArity,
                        format!(
                            "this lambda takes {} argument(s) but {} were given",
                            l.params.len(),
                            args.len()
                        ),
                    )
                    .with_label(l.span, "the lambda")
                    .with_label(span, "called here");
                    return self.fail(d);
                }
                self.depth += 1;
                if self.depth > MAX_CALL_DEPTH {
                    self.depth -= 1;
                    let d = Diagnostic::error(Code::Recursion, "calls nest too deeply")
                        .with_label(span, "here");
                    return self.fail(d);
                }
                let mut scope = l.captured.clone();
                for (p, a) in l.params.iter().zip(args) {
                    scope.insert(p.name.clone(), a);
                }
                let saved = std::mem::replace(&mut self.frame.scopes, vec![scope]);
                let context = self
                    .comp
                    .as_deref_mut()
                    .map(|c| c.context.replace(l.body.span));
                let r = self.within(Construct::Call, span, |ev| ev.expr(&l.body));
                if let Some(context) = context {
                    self.comp().context = context;
                }
                self.frame.scopes = saved;
                self.depth -= 1;
                r
            }
            FuncVal::Decl(idx) => {
                let ast = self.shared.ast.clone();
                let ItemKind::Fn(decl) = &ast.items[*idx].kind else {
                    unreachable!("Decl points at a fn")
                };
                if decl.params.len() != args.len() {
                    let d = Diagnostic::error(
                        Code::WrongArity,
                        format!(
                            "`{}` takes {} argument(s) but {} were given",
                            decl.name.name,
                            decl.params.len(),
                            args.len()
                        ),
                    )
                    .with_label(span, "called here")
                    .with_label(decl.name.span, "defined here");
                    return self.fail(d);
                }
                let inline = match decl.kind {
                    FnKind::Traced => true,
                    FnKind::Eager => {
                        matches!(decl.body, FnBody::Block(_))
                            && !self.tracing()
                            && !self.compiling()
                    }
                    FnKind::Extern => false,
                };
                if inline {
                    self.inline_decl(decl, args, span)
                } else {
                    self.call_host(*idx, decl, args, span)
                }
            }
        }
    }

    /// Evaluates a declared function's body in place (tracing inlines; eager code runs).
    pub(crate) fn inline_decl(
        &mut self,
        decl: &ast::FnDecl,
        args: Vec<Value>,
        span: Span,
    ) -> Res<Value> {
        self.depth += 1;
        if self.depth > MAX_CALL_DEPTH {
            self.depth -= 1;
            let d = Diagnostic::error(Code::Recursion, format!("`{}` calls itself (directly or not)", decl.name.name))
                .with_label(span, "this call recurses")
                .with_help("traced functions are inlined, so recursion never ends; use a loop over a constant range");
            return self.fail(d);
        }
        let r = self.within(Construct::Call, span, |ev| {
            ev.inline_decl_inner(decl, args, span)
        });
        self.depth -= 1;
        r
    }

    fn inline_decl_inner(
        &mut self,
        decl: &ast::FnDecl,
        args: Vec<Value>,
        span: Span,
    ) -> Res<Value> {
        let mut scope = HashMap::new();
        for (p, a) in decl.params.iter().zip(args) {
            if let Some(te) = &p.ty
                && let Ok(spec) = resolve(te)
            {
                self.check_param(&spec, &a, p, span)?;
            }
            scope.insert(p.name.name.clone(), a);
        }
        let FnBody::Block(body) = &decl.body else {
            return Ok(Value::Poison);
        };
        let saved_scopes = std::mem::replace(&mut self.frame.scopes, vec![scope]);
        let saved_name = self.frame.fn_name.replace(decl.name.name.clone());
        let errors_before = self.comp.as_ref().map_or(0, |c| c.diags.len());
        let r = self.block(body);
        self.frame.scopes = saved_scopes;
        self.frame.fn_name = saved_name;
        match r? {
            Flow::Return(v, ret_span) => {
                if let (Some(te), false) = (&decl.ret, matches!(v, Value::Poison))
                    && let Ok(spec) = resolve(te)
                    && let Some(elem) = self.elem_type_of(&v)
                    && !spec.admits(&elem)
                {
                    // An eager body runs per element: its sizes vary, so suggest
                    // keeping the declared dims and changing only the dtype.
                    let eager = decl.kind != FnKind::Traced;
                    let suggested = match (&spec, &elem) {
                        (TypeSpec::Tensor { dims: Some(ds), .. }, ElemType::Tensor(t)) if eager => {
                            TypeSpec::Tensor {
                                dtype: t.dtype,
                                dims: Some(ds.clone()),
                            }
                            .to_string()
                        }
                        _ => elem.to_string(),
                    };
                    let fix = match (&spec, &elem) {
                        (TypeSpec::Tensor { dtype, .. }, ElemType::Tensor(t))
                            if *dtype != t.dtype =>
                        {
                            format!(
                                "cast the result (`return cast(..., {dtype})`), or declare `-> {suggested}`"
                            )
                        }
                        _ => format!(
                            "return a value of the declared type (`cast` or `reshape` it), or declare `-> {suggested}`"
                        ),
                    };
                    let (code, message) = if eager {
                        (
                            Code::EagerResultMismatch,
                            format!(
                                "eager function `{}` returned {elem}, but it is declared to return {spec}",
                                decl.name.name
                            ),
                        )
                    } else {
                        (
                            Code::ReturnTypeMismatch,
                            format!(
                                "`{}` returns {elem}, but its declared type is {spec}",
                                decl.name.name
                            ),
                        )
                    };
                    let d = Diagnostic::error(code, message)
                        .with_label(ret_span, format!("this returns {elem}"))
                        .with_label(te.span, "declared here")
                        .with_help(fix);
                    return self.fail(d);
                }
                Ok(v)
            }
            Flow::Normal => {
                let errors_after = self.comp.as_ref().map_or(0, |c| c.diags.len());
                if errors_after > errors_before {
                    return Ok(Value::Poison);
                }
                // Point at the closing brace: that is where the missing `return` would go.
                let end = Span {
                    start: body.span.end.saturating_sub(1),
                    end: body.span.end,
                };
                let d = Diagnostic::error(
                    Code::MissingReturn,
                    format!("`{}` ends without `return`", decl.name.name),
                )
                .with_label(end, "the body ends here without returning a value")
                .with_label(decl.name.span, "in this function")
                .with_help(
                    "end the body with `return EXPR` (every path through an `if` needs one too)",
                );
                self.fail(d)
            }
        }
    }

    /// Checks an argument against a typed parameter.
    fn check_param(&mut self, spec: &TypeSpec, v: &Value, p: &ast::Param, span: Span) -> Res<()> {
        let Some(elem) = self.elem_type_of(v) else {
            return Ok(());
        };
        if !spec.admits(&elem) {
            let d = Diagnostic::error(
                Code::ParamTypeMismatch,
                format!(
                    "parameter `{}` is declared {spec}, but the element is {elem}",
                    p.name.name
                ),
            )
            .with_label(p.span, format!("declared {spec}"))
            .with_label(span, format!("called with {elem}"))
            .with_help("change the declared type, or `cast`/`reshape` the data before this call");
            self.fail(d)?;
        }
        Ok(())
    }

    /// The static element type of a value made of tensors (numbers count as their default dtype).
    pub(crate) fn elem_type_of(&self, v: &Value) -> Option<ElemType> {
        match v {
            Value::Tensor(t) => Some(ElemType::Tensor(tval_type(t))),
            Value::Num(Num::Int(_)) => Some(ElemType::Tensor(TensorType::scalar(DType::I32))),
            Value::Num(Num::Float(_)) => Some(ElemType::Tensor(TensorType::scalar(DType::F32))),
            Value::Bool(_) => Some(ElemType::Tensor(TensorType::scalar(DType::Bool))),
            Value::Tuple(vs) => vs
                .iter()
                .map(|v| self.elem_type_of(v))
                .collect::<Option<Vec<_>>>()
                .map(ElemType::Tuple),
            Value::Dict(fields) => fields
                .iter()
                .map(|(k, v)| Some((k.to_string(), self.elem_type_of(v)?)))
                .collect::<Option<Vec<_>>>()
                .map(ElemType::Dict),
            _ => None,
        }
    }

    /// Calls an eager, extern or exec function: an eager op while tracing, a direct call otherwise.
    fn call_host(
        &mut self,
        idx: usize,
        decl: &ast::FnDecl,
        args: Vec<Value>,
        span: Span,
    ) -> Res<Value> {
        let Some(host) = self.host_for(idx, decl) else {
            return Ok(Value::Poison);
        };
        let ret = match decl.ret.as_ref().map(resolve) {
            Some(Ok(spec)) => spec,
            _ => return Ok(Value::Poison),
        };
        self.host_call(host, &ret, args, span, &decl.name.name)
    }

    /// The host function behind an eager declaration.
    pub(crate) fn host_for(&mut self, idx: usize, decl: &ast::FnDecl) -> Option<HostFn> {
        match (&decl.kind, &decl.body) {
            (FnKind::Extern, _) => self.shared.externs.get(&decl.name.name).cloned(),
            (_, FnBody::Exec { .. }) => match &self.comp {
                Some(c) => c.exec_hosts.get(&idx).cloned(),
                None => self
                    .shared
                    .exec_hosts
                    .get()
                    .and_then(|m| m.get(&idx).cloned()),
            },
            _ => {
                if let Some(c) = &self.comp
                    && let Some(h) = c.eager_hosts.get(&idx)
                {
                    return Some(h.clone());
                }
                let host: HostFn = Arc::new(EagerBody::new(
                    self.shared_arc()?,
                    idx,
                    decl.name.name.clone(),
                ));
                if let Some(c) = self.comp.as_deref_mut() {
                    c.eager_hosts.insert(idx, host.clone());
                }
                Some(host)
            }
        }
    }

    fn shared_arc(&self) -> Option<Arc<Shared>> {
        crate::eager::shared_arc(self.shared)
    }

    /// Flattens argument values to tensors, calls `host` (eagerly or as an IR op) and
    /// rebuilds the declared result structure.
    pub(crate) fn host_call(
        &mut self,
        host: HostFn,
        ret: &TypeSpec,
        args: Vec<Value>,
        span: Span,
        name: &str,
    ) -> Res<Value> {
        // A host function receives flat tensors, one per parameter: a dict's structure
        // would be lost on the way, so its fields are passed instead.
        if let Some(Value::Dict(fields)) = args.iter().find(|a| matches!(a, Value::Dict(_))) {
            let keys: Vec<String> = fields.iter().map(|(k, _)| format!("e[\"{k}\"]")).collect();
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("`{name}` runs eagerly on tensors, and cannot take a dict"),
            )
            .with_label(span, "a dict is passed here")
            .with_help(if name == "py_function" {
                format!(
                    "pass the fields as separate arguments, e.g. `py_function(f, [{}], TYPE)`",
                    keys.join(", ")
                )
            } else {
                format!(
                    "pass the fields as separate arguments, e.g. `|e| {name}({})`",
                    keys.join(", ")
                )
            });
            return self.fail(d);
        }
        let mut flat = Vec::new();
        for a in args {
            if !self.flatten_tensors(a, span, &mut flat)? {
                return Ok(Value::Poison);
            }
        }
        let like = flat.first().map(tval_type);
        let elem = ret.to_elem(like.as_ref());
        let out_types: Vec<TensorType> = elem.leaves().into_iter().cloned().collect();
        if self.tracing() {
            let inputs: Vec<pipec_ir::ValueId> = flat
                .into_iter()
                .map(|t| self.materialize(t, span))
                .collect();
            let bytes =
                crate::budget::op_bytes(inputs.len(), &out_types.iter().collect::<Vec<_>>());
            if !self.charge(1, bytes, span) {
                return Ok(Value::Poison);
            }
            let func = self.frame.func.as_mut().expect("tracing");
            let outs = func.push_multi(OpKind::Eager(host), inputs, out_types.clone(), span);
            let mut it = outs
                .into_iter()
                .zip(out_types)
                .map(|(v, ty)| Value::Tensor(TVal::Symbolic(v, ty)));
            Ok(rebuild(&elem, &mut it))
        } else {
            let tensors: Vec<Tensor> = flat
                .into_iter()
                .map(|t| match t {
                    TVal::Concrete(t) => t,
                    TVal::Symbolic(..) => unreachable!("no symbolic values outside tracing"),
                })
                .collect();
            if host.flavor() == "exec"
                && let Some(c) = self.comp.as_deref()
                && !c.opts.start_workers
            {
                let d = Diagnostic::error(
                    Code::ExecNotAllowed,
                    format!("calling `{name}` here would start its worker while compiling, which `--check`, `--emit-ir` and `--emit-dot` never do"),
                )
                .with_label(span, "called at compile time")
                .with_note("a call outside `map`/`filter` runs while compiling, to compute the value")
                .with_help("run the program (with `--allow-exec`) to evaluate it, or call the worker inside a `map`");
                return self.fail(d);
            }
            let mut inst = match host.instantiate() {
                Ok(i) => i,
                Err(d) => return self.fail(d),
            };
            let outs = match inst.call(&tensors) {
                Ok(o) => o,
                Err(d) => return self.fail(d),
            };
            if let Err(d) = check_host_results(name, &out_types, &outs, span) {
                return self.fail(d);
            }
            let mut it = outs.into_iter().map(|t| Value::Tensor(TVal::Concrete(t)));
            Ok(rebuild(&elem, &mut it))
        }
    }

    /// Appends the tensors of `v` (a tensor, number or tuple of them) to `out`; false if poisoned.
    pub(crate) fn flatten_tensors(
        &mut self,
        v: Value,
        span: Span,
        out: &mut Vec<TVal>,
    ) -> Res<bool> {
        match v {
            Value::Tuple(vs) | Value::List(vs) => {
                for v in vs {
                    if !self.flatten_tensors(v, span, out)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Value::Dict(fields) => {
                for (_, v) in fields {
                    if !self.flatten_tensors(v, span, out)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Value::Poison => Ok(false),
            other => match self.tensor_operand(other, span)? {
                Some(t) => {
                    out.push(t);
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    /// A tensor operand: tensors as they are, numbers with their default dtype, lists packed.
    pub(crate) fn tensor_operand(&mut self, v: Value, span: Span) -> Res<Option<TVal>> {
        match v {
            Value::Tensor(t) => Ok(Some(t)),
            Value::Num(Num::Int(i)) => match i32::try_from(i) {
                Ok(x) => Ok(Some(TVal::Concrete(Tensor::scalar(x)))),
                Err(_) => match i64::try_from(i) {
                    Ok(x) => Ok(Some(TVal::Concrete(Tensor::scalar(x)))),
                    Err(_) => {
                        let d = Diagnostic::error(
                            Code::IntegerTooLarge,
                            "this integer does not fit in i64",
                        )
                        .with_label(span, "");
                        self.fail(d)?;
                        Ok(None)
                    }
                },
            },
            Value::Num(Num::Float(f)) if f.is_finite() && (f as f32).is_infinite() => {
                let d = Diagnostic::error(
                    Code::LiteralOutOfRange,
                    format!("the number `{f:e}` is too large for f32"),
                )
                .with_label(span, "not a f32 value")
                .with_help(
                    "a float literal is f32: write a smaller number, or `cast(LITERAL, f64)`",
                );
                self.fail(d)?;
                Ok(None)
            }
            Value::Num(Num::Float(f)) => Ok(Some(TVal::Concrete(Tensor::scalar(f as f32)))),
            Value::Bool(b) => Ok(Some(TVal::Concrete(Tensor::scalar(b)))),
            Value::Str(s) => Ok(Some(TVal::Concrete(Tensor::scalar(
                pipec_tensor::Bytes::copy_from_slice(s.as_bytes()),
            )))),
            Value::SymDim(d) => match self.dim_value(&d, span)? {
                Value::Tensor(t) => Ok(Some(t)),
                _ => Ok(None),
            },
            Value::List(vs) => {
                let v = self.call_builtin("stack", vec![(Value::List(vs), span)], vec![], span)?;
                match v {
                    Value::Tensor(t) => Ok(Some(t)),
                    _ => Ok(None),
                }
            }
            Value::Poison => Ok(None),
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("expected a tensor, found {}", other.kind_name()),
                )
                .with_label(span, "not a tensor");
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    /// The IR value for a tensor operand, emitting a constant for a trace-time tensor.
    pub(crate) fn materialize(&mut self, t: TVal, span: Span) -> pipec_ir::ValueId {
        match t {
            TVal::Symbolic(v, _) => v,
            TVal::Concrete(t) => {
                let ty = TensorType::new(t.dtype(), pipec_ir::Shape::known(t.shape()));
                self.frame
                    .func
                    .as_mut()
                    .expect("tracing")
                    .push(OpKind::Const(t), vec![], ty, span)
            }
        }
    }

    // ---- tracing a function for map/filter --------------------------------------------

    /// Traces `f` for an element of type `elem`, once per signature; returns the IR function
    /// and the element type it returns.
    pub(crate) fn trace_fn(
        &mut self,
        f: &FuncVal,
        elem: &ElemType,
        span: Span,
        what: &str,
    ) -> Option<(FuncId, ElemType)> {
        let (key_name, base_name) = match f {
            FuncVal::Decl(idx) => {
                let ItemKind::Fn(d) = &self.shared.ast.items[*idx].kind else {
                    return None;
                };
                (format!("fn:{}", d.name.name), d.name.name.clone())
            }
            FuncVal::Lambda(l) => (format!("lambda:{}", l.span.start), "lambda".to_string()),
            FuncVal::Builtin(b) => (format!("builtin:{b}"), b.clone()),
        };
        if let FuncVal::Lambda(l) = f
            && let Some(name) = crate::nested::symbolic_capture(l, &self.shared.source.clone())
        {
            self.report(crate::nested::capture_error(&name, l.span, span, what));
            return None;
        }
        let leaves: Vec<TensorType> = elem.leaves().into_iter().cloned().collect();
        let key = (key_name, leaves.clone());
        match self.comp().traces.get(&key) {
            Some(Some(id)) => {
                let id = *id;
                let out = self.comp().result_elems[&id].clone();
                return Some((id, out));
            }
            Some(None) => {
                let d = Diagnostic::error(
                    Code::Recursion,
                    format!("`{base_name}` is traced while it is being traced"),
                )
                .with_label(span, "recursive use");
                self.report(d);
                return None;
            }
            None => {}
        }
        self.comp().traces.insert(key.clone(), None);
        let n = {
            let c = self
                .comp()
                .name_counts
                .entry(base_name.clone())
                .or_insert(0);
            *c += 1;
            *c - 1
        };
        let fspan = match f {
            FuncVal::Decl(idx) => self.shared.ast.items[*idx].span,
            FuncVal::Lambda(l) => l.span,
            FuncVal::Builtin(_) => span,
        };
        let func = Function::new(format!("{base_name}.{n}"), fspan, leaves.clone());
        // Parameters: one per tuple component when the function takes as many, else the whole element.
        let mut params = func
            .params
            .clone()
            .into_iter()
            .zip(leaves)
            .map(|(v, ty)| Value::Tensor(TVal::Symbolic(v, ty)));
        let whole = rebuild(elem, &mut params);
        let arity = match f {
            FuncVal::Decl(idx) => match &self.shared.ast.items[*idx].kind {
                ItemKind::Fn(d) => d.params.len(),
                _ => 1,
            },
            FuncVal::Lambda(l) => l.params.len(),
            FuncVal::Builtin(_) => 1,
        };
        let args = match (&whole, arity) {
            (Value::Tuple(parts), n) if n == parts.len() && n != 1 => parts.clone(),
            (Value::Tuple(parts), 1) if parts.len() == 1 => parts.clone(),
            _ => vec![whole.clone()],
        };
        if args.len() != arity {
            let d = Diagnostic::error(
                Code::WrongArity,
                format!("the function given to `{what}` takes {arity} parameter(s), but the elements are {elem}"),
            )
            .with_label(span, format!("elements of type {elem}"))
            .with_label(fspan, "the function")
            .with_help(if matches!(elem, ElemType::Dict(_)) {
                "a dict element is passed as one parameter: `|e| e[\"key\"]`"
            } else {
                "a tuple element is passed as one parameter per component"
            });
            self.report(d);
            self.comp().traces.remove(&key);
            return None;
        }
        let saved = std::mem::replace(
            &mut self.frame,
            Frame {
                scopes: vec![HashMap::new()],
                func: Some(func),
                eager: false,
                fn_name: Some(base_name.clone()),
                site: Vec::new(),
            },
        );
        let saved_depth = std::mem::replace(&mut self.depth, 0);
        let errors_before = self.comp().diags.len();
        let result = self.call_func(f, args, span);
        self.depth = saved_depth;
        let frame = std::mem::replace(&mut self.frame, saved);
        let mut func = frame.func.expect("tracing frame");
        let result = match result {
            Ok(v) => v,
            Err(Abort::Error(d)) => {
                self.report(*d);
                Value::Poison
            }
            // Only plan tracing sets guards, and it never traces through here.
            Err(Abort::Undecided) => Value::Poison,
        };
        self.finish_numpy_help(errors_before, &result, &base_name);
        // A poisoned part of the result was reported where it failed (perhaps outside this
        // function, in a captured top-level value): nothing more to say here.
        if self.comp().diags.len() > errors_before || has_poison(&result) {
            self.comp().traces.remove(&key);
            return None;
        }
        // Flatten the result into IR values; a list of tensors is one stacked tensor, as
        // tf.data makes of a returned Python list.
        let saved_func = self.frame.func.replace(func);
        let errors_before = self.comp().diags.len();
        let result = self.stack_lists(result, span).unwrap_or(Value::Poison);
        let mut flat = Vec::new();
        let ok = !has_poison(&result)
            && self
                .flatten_tensors(result.clone(), span, &mut flat)
                .unwrap_or(false);
        let mut results = Vec::new();
        let mut result_types = Vec::new();
        if ok {
            for t in flat {
                result_types.push(tval_type(&t));
                results.push(self.materialize(t, span));
            }
        }
        func = std::mem::replace(&mut self.frame.func, saved_func).expect("tracing frame");
        if !ok && self.comp().diags.len() > errors_before {
            self.comp().traces.remove(&key);
            return None;
        }
        if !ok {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!(
                    "the function given to `{what}` must return tensors, found {}",
                    result.kind_name()
                ),
            )
            .with_label(fspan, "returns something else");
            self.report(d);
            self.comp().traces.remove(&key);
            return None;
        }
        func.results = results;
        let out_elem = structure_of(&result, &mut result_types.into_iter());
        let id = self.comp().prog.add_function(func);
        self.comp().traces.insert(key, Some(id));
        self.comp().result_elems.insert(id, out_elem.clone());
        Some((id, out_elem))
    }
}

/// `ty` as `py_function`'s `Tout` spells it: `"f32[3]"`, `("f32[3]", "i64[]")`.
fn tout_text(ty: &ElemType) -> String {
    match ty {
        ElemType::Tensor(t) => format!("\"{t}\""),
        ElemType::Tuple(parts) => {
            let parts: Vec<String> = parts.iter().map(tout_text).collect();
            format!("({})", parts.join(", "))
        }
        // An eager function takes no dicts: the E0502 help names the fields instead.
        ElemType::Dict(fields) => {
            let parts: Vec<String> = fields.iter().map(|(_, t)| tout_text(t)).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Whether `e` is a list written only with number/bool literals (and nested such lists).
/// A (nested) list literal of string literals only: a `str` tensor literal.
fn is_str_literal_list(e: &ast::Expr) -> bool {
    fn leaves_are_str(e: &ast::Expr) -> bool {
        match &e.kind {
            ExprKind::Str(_) => true,
            ExprKind::List(items) => items.iter().all(leaves_are_str),
            _ => false,
        }
    }
    fn has_str(e: &ast::Expr) -> bool {
        match &e.kind {
            ExprKind::Str(_) => true,
            ExprKind::List(items) => items.iter().any(has_str),
            _ => false,
        }
    }
    matches!(e.kind, ExprKind::List(_)) && leaves_are_str(e) && has_str(e)
}

fn is_literal_list(e: &ast::Expr) -> bool {
    match &e.kind {
        ExprKind::Int(_) | ExprKind::Float(..) | ExprKind::Bool(_) => true,
        ExprKind::Unary {
            op: ast::UnaryOp::Neg,
            expr,
        } => matches!(expr.kind, ExprKind::Int(_) | ExprKind::Float(..)),
        ExprKind::List(items) => items.iter().all(is_literal_list),
        _ => false,
    }
}

/// The static type of a tensor operand.
pub(crate) fn tval_type(t: &TVal) -> TensorType {
    match t {
        TVal::Concrete(t) => TensorType::new(t.dtype(), pipec_ir::Shape::known(t.shape())),
        TVal::Symbolic(_, ty) => ty.clone(),
    }
}

/// Rebuilds a value of `elem`'s structure from its flat leaves.
pub(crate) fn rebuild(elem: &ElemType, leaves: &mut impl Iterator<Item = Value>) -> Value {
    match elem {
        ElemType::Tensor(_) => leaves.next().unwrap_or(Value::Poison),
        ElemType::Tuple(parts) => Value::Tuple(parts.iter().map(|p| rebuild(p, leaves)).collect()),
        ElemType::Dict(fields) => Value::Dict(
            fields
                .iter()
                .map(|(k, p)| (Arc::from(k.as_str()), rebuild(p, leaves)))
                .collect(),
        ),
    }
}

/// The element type of a result value, given the types of its flat leaves (lists were
/// stacked into tensors before, so every other value is one leaf).
fn structure_of(v: &Value, types: &mut impl Iterator<Item = TensorType>) -> ElemType {
    match v {
        Value::Tuple(vs) => ElemType::Tuple(vs.iter().map(|v| structure_of(v, types)).collect()),
        Value::Dict(fields) => ElemType::Dict(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), structure_of(v, types)))
                .collect(),
        ),
        _ => ElemType::Tensor(types.next().expect("one type per leaf")),
    }
}

/// Whether an erroneous value hides anywhere in `v` (its error was reported already).
pub(crate) fn has_poison(v: &Value) -> bool {
    match v {
        Value::Poison => true,
        Value::Tuple(vs) | Value::List(vs) => vs.iter().any(has_poison),
        Value::Dict(fields) => fields.iter().any(|(_, v)| has_poison(v)),
        _ => false,
    }
}

/// Checks what a host function returned against its declared types.
pub(crate) fn check_host_results(
    name: &str,
    want: &[TensorType],
    got: &[Tensor],
    span: Span,
) -> Result<(), Diagnostic> {
    let describe = |ts: &[Tensor]| {
        let parts: Vec<String> = ts
            .iter()
            .map(|t| TensorType::new(t.dtype(), pipec_ir::Shape::known(t.shape())).to_string())
            .collect();
        if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("({})", parts.join(", "))
        }
    };
    let declared = {
        let parts: Vec<String> = want.iter().map(|t| t.to_string()).collect();
        if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("({})", parts.join(", "))
        }
    };
    let ok = want.len() == got.len()
        && want
            .iter()
            .zip(got)
            .all(|(w, g)| w.dtype == g.dtype() && w.shape.admits(g.shape()));
    if ok {
        return Ok(());
    }
    Err(Diagnostic::error(
        Code::EagerResultMismatch,
        format!("eager function `{name}` returned {}, but it is declared to return {declared}", describe(got)),
    )
    .with_label(span, "called here")
    .with_help("return a value of the declared type (`cast` it, or `reshape` it), or change the declared type"))
}
