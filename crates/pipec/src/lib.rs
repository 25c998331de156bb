//! pipec as a library: compile `.pipe` programs, inspect their IR, run their pipelines,
//! and register host functions for `extern eager fn` declarations.
//!
//! ```no_run
//! let mut compiler = pipec::Compiler::new();
//! compiler.register_host_fn("double", |args| Ok(vec![pipec::kernels::binary(
//!     pipec::ops::BinaryOp::Add, &args[0], &args[0]).map_err(|e| e.to_string())?]));
//! let source = pipec::SourceFile::from_path("examples/first.pipe".as_ref()).unwrap();
//! let compiled = compiler.compile(&source, &pipec::CompileOptions::default()).unwrap();
//! for element in compiled.run(&pipec::RunOptions::default()).unwrap() {
//!     println!("{}", pipec::format_element(&compiled.element_type(), &element.unwrap()));
//! }
//! ```

#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod checkpoint;
mod exec;
mod host;
mod params;
mod records_out;
mod replace;
mod shard;

pub use exec::{ExecWorker, kill_all_workers};
pub use host::ClosureHost;
pub use params::ParamValue;
pub use pipec_diag::{Code, Diagnostic, Severity, Span, render};
pub use pipec_interp::{
    Block, Chunk, Element, ElementStream, LANE_MIN_BYTES, LaneReport, NodeReport, RunOptions,
    RunStats,
};
pub use pipec_ir::{
    ElemType, HostFn, HostFunction, HostInstance, ParamKind, Program, TRANSFORMS, to_dot,
};
/// Record formats (TFRecord, `tf.train.Example`, Parquet) as a library.
pub use pipec_records as records;
pub use pipec_tensor::kernels::set_kernel_threads;
pub use pipec_tensor::{
    BorrowedTensor, DType, Tensor, TensorRef, busy, format, io, kernels, limits, ops,
};
pub use pipec_trace::{CompileBudget, ExecFactory, ExecSpec, PrintSink};
pub use records_out::{RecordFormat, RecordWriter};
pub use replace::replace_file;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A `.pipe` source file.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name shown in diagnostics.
    pub name: String,
    /// The text.
    pub text: String,
    /// The directory relative paths in the program are resolved against.
    pub dir: PathBuf,
}

impl SourceFile {
    /// Reads a source file from disk.
    pub fn from_path(path: &Path) -> std::io::Result<SourceFile> {
        let text = std::fs::read_to_string(path)?;
        // `foo.pipe` has the empty path as its parent; workers and files need a real directory.
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(SourceFile {
            name: path.display().to_string(),
            text,
            dir,
        })
    }

    /// A source held in memory; relative paths resolve against the current directory.
    pub fn from_text(name: &str, text: &str) -> SourceFile {
        SourceFile {
            name: name.to_string(),
            text: text.to_string(),
            dir: PathBuf::from("."),
        }
    }
}

/// What to compile and how.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// The pipeline to compile (`None`: `main`, or the only one).
    pub pipeline: Option<String>,
    /// Optimization level, 0 to 2.
    pub opt_level: u8,
    /// An explicit pass list (overrides the level).
    pub passes: Option<Vec<String>>,
    /// Whether `exec` workers may be started.
    pub allow_exec: bool,
    /// Values for top-level `let NAME = LITERAL` bindings (`--set NAME=VALUE`), applied
    /// before tracing; see [`ParamValue`].
    pub params: Vec<(String, ParamValue)>,
    /// Run only shard `index` of `num` (`--shard I/N`): `shard(num, index)` is inserted right
    /// after the chosen pipeline's sources (SPEC §15), before the passes run.
    pub shard: Option<(u64, u64)>,
    /// How much work and memory tracing may spend (E0704 past it).
    pub budget: CompileBudget,
    /// Whether to keep a copy of the program after each pass (`Compiled::stages`).
    pub keep_stages: bool,
    /// Whether a top-level call of an `exec` function may start its worker while compiling
    /// (`--check` and `--emit-ir` say no: it is E0502 there).
    pub start_workers: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            pipeline: None,
            opt_level: 2,
            passes: None,
            allow_exec: false,
            params: Vec::new(),
            shard: None,
            budget: CompileBudget::default(),
            keep_stages: true,
            start_workers: true,
        }
    }
}

/// Compiles programs; holds the host functions an embedding program registered.
#[derive(Clone, Default)]
pub struct Compiler {
    externs: BTreeMap<String, HostFn>,
    print_sink: Option<PrintSink>,
    exec_factory: Option<ExecFactory>,
    worker_timeout: Option<std::time::Duration>,
}

/// A compiled program: the IR before and after optimization, and the chosen pipeline.
pub struct Compiled {
    /// The IR straight from tracing.
    pub traced: Program,
    /// The IR after the passes.
    pub optimized: Program,
    /// The IR after each pass that changed something.
    pub stages: Vec<(String, Program)>,
    /// Optimizer remarks.
    pub remarks: Vec<Diagnostic>,
    /// Warnings from compilation.
    pub warnings: Vec<Diagnostic>,
    /// The pipeline that runs.
    pub pipeline: String,
    /// The directory files are read from.
    pub dir: PathBuf,
    /// Whether the runtime may execute in blocks ([`RunOptions::blocks`]): with any
    /// optimization. `-O0` keeps the element-at-a-time reference behaviour, so differential
    /// tests compare the two executions.
    pub block_execution: bool,
    /// What a saved state records about this run and checks on resume ([`checkpoint`]).
    fingerprint: BTreeMap<String, String>,
}

impl Compiler {
    /// A compiler with no host functions registered.
    pub fn new() -> Compiler {
        Compiler::default()
    }

    /// Registers `f` as the body of `extern eager fn NAME(...)`.
    pub fn register_host_fn(
        &mut self,
        name: &str,
        f: impl Fn(&[Tensor]) -> Result<Vec<Tensor>, String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.externs
            .insert(name.to_string(), Arc::new(ClosureHost::new(name, f)));
        self
    }

    /// Sets where `print` in eager functions writes.
    pub fn set_print_sink(&mut self, sink: PrintSink) -> &mut Self {
        self.print_sink = Some(sink);
        self
    }

    /// Sets how long an `exec` worker may take to answer one call (default 30 s).
    pub fn set_worker_timeout(&mut self, timeout: std::time::Duration) -> &mut Self {
        self.worker_timeout = Some(timeout);
        self
    }

    /// Sets how `exec` workers are started.
    pub fn set_exec_factory(&mut self, factory: ExecFactory) -> &mut Self {
        self.exec_factory = Some(factory);
        self
    }

    /// Parses, traces and optimizes `source`. Errors come back as diagnostics.
    pub fn compile(
        &self,
        source: &SourceFile,
        opts: &CompileOptions,
    ) -> Result<Compiled, Vec<Diagnostic>> {
        // Tracing recurses over the program (nested expressions, inlined calls); run it on a
        // thread with a generous stack so that embedding programs, whose threads may have
        // small stacks, get diagnostics rather than a stack overflow.
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("pipec-compile".into())
                .stack_size(COMPILE_STACK)
                .spawn_scoped(s, || self.compile_here(source, opts))
                .map_err(|e| {
                    vec![Diagnostic::error(
                        Code::BadUsage,
                        format!("cannot start the compiler thread: {e}"),
                    )]
                })?
                .join()
                .unwrap_or_else(|_| Err(vec![internal_error("a panic in the compiler", &[])]))
        })
    }

    fn compile_here(
        &self,
        source: &SourceFile,
        opts: &CompileOptions,
    ) -> Result<Compiled, Vec<Diagnostic>> {
        let (mut ast, mut diags) = pipec_syntax::parse(&source.text);
        if diags.iter().any(|d| d.is_error()) {
            return Err(diags);
        }
        if let Some((index, num)) = opts.shard {
            shard::check(index, num).map_err(|d| vec![d])?;
        }
        let param_errors = params::apply(&mut ast, &opts.params);
        if !param_errors.is_empty() {
            return Err(param_errors);
        }
        let trace_opts = pipec_trace::TraceOptions {
            externs: self.externs.clone(),
            allow_exec: opts.allow_exec,
            exec_factory: Some(self.exec_factory.clone().unwrap_or_else(|| {
                let timeout = self
                    .worker_timeout
                    .unwrap_or(std::time::Duration::from_secs(30));
                Arc::new(move |spec: ExecSpec| -> HostFn {
                    Arc::new(ExecWorker::new(&spec.name, spec.argv, spec.dir, timeout))
                })
            })),
            base_dir: source.dir.clone(),
            print_sink: self.print_sink.clone(),
            source: source.text.as_str().into(),
            budget: opts.budget,
            start_workers: opts.start_workers,
            dataset_runner: Some(dataset_runner(source.dir.clone())),
            plan_eager: opts.opt_level >= 1,
        };
        let ast = Arc::new(ast);
        let pipelines: Vec<String> = ast
            .items
            .iter()
            .filter_map(|i| match &i.kind {
                pipec_syntax::ast::ItemKind::Pipeline { name, .. } => Some(name.name.clone()),
                _ => None,
            })
            .collect();
        let chosen = match &opts.pipeline {
            Some(p) => p.clone(),
            None if pipelines.iter().any(|p| p == "main") => "main".to_string(),
            None if pipelines.len() == 1 => pipelines[0].clone(),
            None if pipelines.is_empty() => String::new(),
            None => {
                return Err(vec![
                    Diagnostic::error(
                        Code::NoPipeline,
                        format!(
                            "the program has {} pipelines and none is called `main`",
                            pipelines.len()
                        ),
                    )
                    .with_help(format!(
                        "choose one with `--pipeline NAME`: {}",
                        pipelines.join(", ")
                    )),
                ]);
            }
        };
        // A named pipeline must exist, even when the name is empty (`--pipeline ""`).
        let only = match &opts.pipeline {
            Some(p) => Some(p.as_str()),
            None => (!chosen.is_empty()).then_some(chosen.as_str()),
        };
        let traced = pipec_trace::trace(ast, &trace_opts, only);
        diags.extend(traced.diagnostics);
        let trace_remarks = traced.remarks;
        let Some(mut program) = traced.program else {
            return Err(diags);
        };
        if let Some((index, num)) = opts.shard
            && let Some(p) = program.pipelines.iter_mut().find(|p| p.name == chosen)
        {
            shard::insert(p, index, num).map_err(|d| vec![d])?;
        }
        if let Err(errs) = pipec_ir::verify(&program) {
            return Err(vec![internal_error("tracing", &errs)]);
        }
        let names: Vec<String> = match &opts.passes {
            Some(list) => list.clone(),
            None => pipec_opt::passes_for_level(opts.opt_level)
                .into_iter()
                .map(String::from)
                .collect(),
        };
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let optimized =
            match pipec_opt::optimize_with(program.clone(), &name_refs, opts.keep_stages) {
                Ok(o) => o,
                Err(pipec_opt::OptError::UnknownPass(name, valid)) => {
                    let mut d = Diagnostic::error(Code::BadUsage, format!("unknown pass `{name}`"));
                    if let Some(s) = pipec_diag::did_you_mean(&name, valid.iter().copied()) {
                        d = d.with_note(format!("did you mean `{s}`?"));
                    }
                    return Err(vec![
                        d.with_help(format!("the passes are: {}", valid.join(", "))),
                    ]);
                }
                Err(pipec_opt::OptError::Verify(pass, errs)) => {
                    return Err(vec![internal_error(&format!("pass `{pass}`"), &errs)]);
                }
            };
        // Passes run to a fixed point and may repeat a remark in later rounds.
        let mut remarks: Vec<Diagnostic> = trace_remarks;
        remarks.extend(optimized.remarks);
        pipec_opt::dedup_remarks(&mut remarks);
        let fingerprint = checkpoint::fingerprint(source, opts, &chosen, &names);
        Ok(Compiled {
            traced: program,
            optimized: optimized.program,
            stages: optimized.stages,
            remarks,
            warnings: diags,
            pipeline: chosen,
            dir: source.dir.clone(),
            block_execution: !names.is_empty(),
            fingerprint,
        })
    }
}

/// Stack for the compiler thread: deep enough for every program the parser accepts.
const COMPILE_STACK: usize = 256 << 20;

fn internal_error(stage: &str, errs: &[pipec_ir::VerifyError]) -> Diagnostic {
    let mut d = Diagnostic::error(
        Code::InternalError,
        format!("internal compiler error: the IR is invalid after {stage}"),
    )
    .with_help("this is a bug in pipec; please report it with the program that triggers it");
    if let Some(span) = errs.iter().find_map(|e| e.span) {
        d = d.with_label(span, "the IR made from this failed verification");
    }
    for e in errs {
        d = d.with_note(e.to_string());
    }
    d
}

/// The machine's memory (Linux's `MemTotal`), the ceiling for [`limits::set_max_memory`] when
/// the user gives none: a tensor or buffer larger than that cannot be allocated anyway, and
/// an E0701 beats an allocation abort.
pub fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// The names of the pipelines `source` declares, in order (none if it does not parse).
pub fn pipeline_names(source: &SourceFile) -> Vec<String> {
    let (ast, _) = pipec_syntax::parse(&source.text);
    ast.items
        .iter()
        .filter_map(|i| match &i.kind {
            pipec_syntax::ast::ItemKind::Pipeline { name, .. } => Some(name.name.clone()),
            _ => None,
        })
        .collect()
}

/// The passes, with one line each, for `--list-passes`.
pub fn list_passes() -> Vec<(&'static str, &'static str)> {
    pipec_opt::all_passes()
        .iter()
        .map(|p| (p.name(), p.description()))
        .collect()
}

/// Runs a dataset while compiling, for `reduce` and `get_single_element`: the traced
/// (unoptimized) program on one thread, element by element, with a fixed seed for a
/// `shuffle` without one, so the constant is the same in every compile.
fn dataset_runner(base_dir: PathBuf) -> pipec_trace::DatasetRunner {
    Arc::new(move |prog, pipeline, each| {
        let opts = RunOptions {
            threads: 1,
            base_dir: base_dir.clone(),
            blocks: false,
            shuffle_seed: Some(0),
            ..RunOptions::default()
        };
        for e in pipec_interp::open(prog, pipeline, &opts)? {
            if !each(e?) {
                break;
            }
        }
        Ok(())
    })
}

impl Compiled {
    /// The element type of the chosen pipeline.
    pub fn element_type(&self) -> ElemType {
        let p = self
            .optimized
            .pipeline(&self.pipeline)
            .expect("compiled pipeline exists");
        p.graph[p.output].elem.clone()
    }

    /// The `batch(n)` without `drop_remainder: true` that the chosen pipeline's elements
    /// come out of, as written (its size and span), looking back through the
    /// transformations that pass a batch on whole or mapped. A short batch from it, such as
    /// the last one, explains elements whose first dim differs (one `.npy` cannot hold them).
    pub fn remainder_batch(&self) -> Option<(usize, Span)> {
        use pipec_ir::DsKind;
        let p = self.traced.pipeline(&self.pipeline)?;
        let mut node = p.output;
        loop {
            let n = &p.graph[node];
            match &n.kind {
                DsKind::Batch {
                    size,
                    drop_remainder: false,
                }
                | DsKind::PaddedBatch {
                    size,
                    drop_remainder: false,
                    ..
                } => return Some((*size, n.span)),
                DsKind::Map { .. }
                | DsKind::Filter { .. }
                | DsKind::Shuffle { .. }
                | DsKind::GlobalShuffle { .. }
                | DsKind::Repeat(_)
                | DsKind::Take(_)
                | DsKind::Skip(_)
                | DsKind::Shard { .. }
                | DsKind::Prefetch(_)
                | DsKind::Cache => match p.inputs(node).as_slice() {
                    [input] => node = *input,
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// The IR text `--emit-ir=STAGE` prints: `traced`, `optimized`, `all` (traced, then after
    /// each pass that changed something) or `after=PASS`. An unknown stage or pass is a
    /// usage error (E0800).
    pub fn ir_text(&self, stage: &str) -> Result<String, Diagnostic> {
        let mut out = String::new();
        match stage {
            "traced" => out = self.traced.to_string(),
            "optimized" => out = self.optimized.to_string(),
            "all" => {
                out.push_str("// ----- traced -----\n");
                out.push_str(&self.traced.to_string());
                for (pass, prog) in &self.stages {
                    out.push_str(&format!("\n// ----- after {pass} -----\n"));
                    out.push_str(&prog.to_string());
                }
            }
            other => match other.strip_prefix("after=") {
                Some(pass) => {
                    let valid: Vec<&str> = list_passes().into_iter().map(|(n, _)| n).collect();
                    if !valid.contains(&pass) {
                        return Err(Diagnostic::error(
                            Code::BadUsage,
                            format!("unknown pass `{pass}`"),
                        )
                        .with_help(format!("the passes are: {}", valid.join(", "))));
                    }
                    match self.stages.iter().rev().find(|(p, _)| p == pass) {
                        Some((_, prog)) => out = prog.to_string(),
                        None => {
                            out.push_str(&format!(
                                "// pass `{pass}` changed nothing (or did not run)\n"
                            ));
                            out.push_str(&self.traced.to_string());
                        }
                    }
                }
                None => {
                    return Err(Diagnostic::error(
                        Code::BadUsage,
                        format!("unknown IR stage `{other}`"),
                    )
                    .with_help("the stages are: traced, optimized, all, after=PASS"));
                }
            },
        }
        Ok(out)
    }

    /// Starts running the chosen pipeline.
    pub fn run(&self, opts: &RunOptions) -> Result<ElementStream, Diagnostic> {
        self.run_at(opts, None)
    }

    /// Starts running the chosen pipeline at a decoded state (`None`: from the start).
    fn run_at(
        &self,
        opts: &RunOptions,
        state: Option<&checkpoint::RunState>,
    ) -> Result<ElementStream, Diagnostic> {
        let p = self
            .optimized
            .pipeline(&self.pipeline)
            .expect("compiled pipeline exists");
        let mut opts = opts.clone();
        opts.blocks &= self.block_execution;
        if opts.base_dir.as_os_str().is_empty() || opts.base_dir == Path::new(".") {
            opts.base_dir = self.dir.clone();
        }
        pipec_interp::open_at(&self.optimized, p, &opts, state)
    }
}

/// Prints one element as numpy would: a tensor as `print(arr)`, a tuple as `(A, B)`, a
/// dict as `{'a': A, 'b': B}` (SPEC §11).
pub fn format_element(elem: &ElemType, leaves: &[Tensor]) -> String {
    let mut it = leaves.iter();
    format_tree(elem, &mut it)
}

fn format_tree<'a>(elem: &ElemType, leaves: &mut impl Iterator<Item = &'a Tensor>) -> String {
    match elem {
        ElemType::Tensor(_) => leaves.next().map(format::format_tensor).unwrap_or_default(),
        ElemType::Tuple(parts) => {
            let texts: Vec<String> = parts.iter().map(|p| format_tree(p, leaves)).collect();
            if texts.len() == 1 {
                format!("({},)", texts[0])
            } else {
                format!("({})", texts.join(", "))
            }
        }
        ElemType::Dict(fields) => {
            let texts: Vec<(&str, String)> = fields
                .iter()
                .map(|(k, p)| (k.as_str(), format_tree(p, leaves)))
                .collect();
            format::format_dict(texts)
        }
    }
}
