//! `pipec._pipec`, the native part of the `pipec` Python module (SPEC §12).
//!
//! A thin layer over the `pipec` library: compiling, parameters, sharding, the IR text and
//! every run-time check are the library's, exactly as the command line uses them. What
//! lives here is only the crossing into Python: arrays in and out (numpy, without a copy
//! where the runtime's buffer is not shared), exceptions, the GIL (released whenever pipec
//! computes, taken only around Python host functions), and Ctrl-C between pulls.

mod convert;
mod errors;
mod host;

use convert::{element_to_py, spec_to_py, tensor_to_py};
use errors::{CompileError, HostErrors, PyDiagnostic, RunError, compile_error, run_error};
use pipec::{Block, CompileOptions, Compiled, Compiler, ElemType, ElementStream, SourceFile};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};

/// Everything a program was compiled from, shared by its datasets and iterators.
struct ProgramInner {
    compiler: Compiler,
    source: SourceFile,
    /// The program's own options (its default pipeline, level, params, `allow_exec`).
    opts: CompileOptions,
    compiled: Arc<Compiled>,
    names: Vec<String>,
    host_errors: HostErrors,
    /// The arguments `compile` was called with, for pickling (DataLoader workers that spawn).
    args: Py<PyDict>,
}

/// A compiled `.pipe` program: `pipec.compile(...)`.
#[pyclass(frozen, module = "pipec", name = "Program")]
struct Program {
    inner: Arc<ProgramInner>,
}

/// A pipeline of a program, ready to run: iterating it runs it afresh each time.
#[pyclass(frozen, module = "pipec", name = "Dataset")]
struct Dataset {
    program: Arc<ProgramInner>,
    compiled: Arc<Compiled>,
    name: String,
    threads: usize,
    opt_level: u8,
    allow_exec: bool,
    shard: Option<(u64, u64)>,
    take: Option<u64>,
}

/// One run of a dataset (`iter(ds)`).
#[pyclass(frozen, module = "pipec", name = "Iterator")]
struct Iterator {
    state: Mutex<IterState>,
}

/// Rows pulled from the runtime but not yet handed to Python.
enum Pending {
    Nothing,
    /// A stacked block, already numpy arrays (one per leaf); rows are views into them.
    Stacked {
        arrays: Vec<Py<PyAny>>,
        next: usize,
        rows: usize,
    },
    /// Separate elements, converted one by one.
    Rows(VecDeque<pipec::Element>),
}

struct IterState {
    program: Arc<ProgramInner>,
    /// The compiled pipeline, whose fingerprint a saved state carries.
    compiled: Arc<Compiled>,
    stream: Option<ElementStream>,
    /// The state as the run ended (saved before its stream was dropped), for `state()`.
    final_state: Option<Result<Vec<u8>, pipec::Diagnostic>>,
    elem: ElemType,
    pending: Pending,
    /// The error that follows the pending rows.
    error: Option<pipec::Diagnostic>,
    /// How many elements may still be delivered (`take`).
    remaining: Option<u64>,
    /// Whether to pull whole blocks (only when computing ahead cannot be observed).
    read_ahead: bool,
    block_rows: usize,
}

impl Drop for IterState {
    fn drop(&mut self) {
        // Dropping a run stops its lanes and reaps its `exec` workers; a lane may be inside
        // a Python host function waiting for the GIL, so let go of the GIL meanwhile.
        if let Some(stream) = self.stream.take() {
            Python::try_attach(|py| py.detach(move || drop(stream)));
        }
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The parameter value a Python object stands for.
fn param_value(name: &str, v: &Bound<'_, PyAny>) -> PyResult<pipec::ParamValue> {
    use pipec::ParamValue as P;
    if let Ok(b) = v.cast::<pyo3::types::PyBool>() {
        return Ok(P::Bool(b.is_true()));
    }
    if v.is_instance_of::<pyo3::types::PyInt>() {
        return v.extract::<i64>().map(P::Int).map_err(|_| {
            PyValueError::new_err(format!("parameter `{name}`: {v} does not fit in 64 bits"))
        });
    }
    if let Ok(f) = v.cast::<pyo3::types::PyFloat>() {
        return Ok(P::Float(f.value()));
    }
    if let Ok(s) = v.cast::<pyo3::types::PyString>() {
        return Ok(P::Str(s.extract::<String>()?));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for item in v.try_iter()? {
            items.push(param_value(name, &item?)?);
        }
        return Ok(P::List(items));
    }
    // numpy arrays and scalars: their Python values (`tolist` of an array is nested lists).
    if v.hasattr("tolist")? {
        let plain = v.call_method0("tolist")?;
        if !plain.is(v) {
            return param_value(name, &plain);
        }
    }
    Err(PyTypeError::new_err(format!(
        "parameter `{name}`: a {} cannot be a .pipe literal; use a number, string, bool or list",
        v.get_type().name()?
    )))
}

/// Compiles `source` with `opts`, with the GIL released (tracing may call host functions).
fn compile_with(
    py: Python<'_>,
    compiler: &Compiler,
    source: &SourceFile,
    opts: &CompileOptions,
) -> PyResult<Compiled> {
    py.detach(|| compiler.compile(source, opts))
        .map_err(|diags| compile_error(py, &diags, source))
}

/// Compiles a `.pipe` program from a file or from text.
#[pyfunction]
#[pyo3(signature = (path=None, *, source=None, params=None, host_functions=None, allow_exec=false, opt_level=2))]
fn compile(
    py: Python<'_>,
    path: Option<PathBuf>,
    source: Option<String>,
    params: Option<Bound<'_, PyDict>>,
    host_functions: Option<Bound<'_, PyDict>>,
    allow_exec: bool,
    opt_level: u8,
) -> PyResult<Program> {
    let args = PyDict::new(py);
    let file = match (&path, source) {
        (Some(p), None) => {
            args.set_item("path", p)?;
            SourceFile::from_path(p)?
        }
        (None, Some(text)) => {
            args.set_item("source", &text)?;
            SourceFile::from_text("<source>", &text)
        }
        _ => {
            return Err(PyTypeError::new_err(
                "compile() takes a path or source=..., not both",
            ));
        }
    };
    if opt_level > 2 {
        return Err(PyValueError::new_err(format!(
            "opt_level is 0, 1 or 2, not {opt_level}"
        )));
    }
    let mut param_list = Vec::new();
    if let Some(p) = &params {
        for (k, v) in p.iter() {
            let name: String = k.extract().map_err(|_| {
                PyTypeError::new_err(format!("parameter names are strings, not {k:?}"))
            })?;
            param_list.push((name.clone(), param_value(&name, &v)?));
        }
        args.set_item("params", p)?;
    }
    let host_errors = HostErrors::default();
    let mut compiler = Compiler::new();
    compiler.set_print_sink(Arc::new(host::print_to_stderr));
    if let Some(h) = &host_functions {
        for (k, v) in h.iter() {
            let name: String = k.extract().map_err(|_| {
                PyTypeError::new_err("host_functions maps names (strings) to callables")
            })?;
            if !v.is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "host function `{name}` is not callable"
                )));
            }
            host::register(&mut compiler, &name, v.unbind(), host_errors.clone());
        }
        args.set_item("host_functions", h)?;
    }
    args.set_item("allow_exec", allow_exec)?;
    args.set_item("opt_level", opt_level)?;
    let names = pipec::pipeline_names(&file);
    // The program's own pipeline: `main`, else the first (every pipeline is traced anyway;
    // this one is what `.ir()` and `.remarks()` compile with).
    let pipeline = if names.iter().any(|n| n == "main") {
        Some("main".to_string())
    } else {
        names.first().cloned()
    };
    let opts = CompileOptions {
        pipeline,
        opt_level,
        passes: None,
        allow_exec,
        params: param_list,
        shard: None,
        // `.ir("all")` and `.ir("after=PASS")` need every stage; nothing runs while compiling
        // a program that `.ir()` may only print.
        ..CompileOptions::default()
    };
    let compiled = compile_with(py, &compiler, &file, &opts)?;
    Ok(Program {
        inner: Arc::new(ProgramInner {
            compiler,
            source: file,
            opts,
            compiled: Arc::new(compiled),
            names,
            host_errors,
            args: args.unbind(),
        }),
    })
}

#[pymethods]
impl Program {
    /// The names of the program's pipelines, in source order.
    #[getter]
    fn pipelines(&self) -> Vec<String> {
        self.inner.names.clone()
    }

    /// The IR text `pipec --emit-ir=STAGE` prints: traced, optimized, all, after=PASS.
    #[pyo3(signature = (stage="optimized"))]
    fn ir(&self, stage: &str) -> PyResult<String> {
        self.inner.compiled.ir_text(stage).map_err(|d| {
            let mut msg = d.message.clone();
            if let Some(h) = &d.help {
                msg.push_str(&format!("\nhelp: {h}"));
            }
            PyValueError::new_err(msg)
        })
    }

    /// What the optimizer did and could not do (`--remarks`), as diagnostics.
    fn remarks(&self, py: Python<'_>) -> PyResult<Vec<Py<PyDiagnostic>>> {
        let src = &self.inner.source;
        self.inner
            .compiled
            .remarks
            .iter()
            .map(|d| Py::new(py, PyDiagnostic::new(d, src)))
            .collect()
    }

    /// The Graphviz graph `pipec --emit-dot` prints.
    fn dot(&self) -> String {
        pipec::to_dot(&self.inner.compiled.optimized)
    }

    /// A pipeline to iterate. `threads` defaults to the number of CPUs; `opt_level` and
    /// `allow_exec` to the program's; `shard=(I, N)` runs shard I of N (`--shard I/N`).
    #[pyo3(signature = (name=None, *, threads=None, opt_level=None, allow_exec=None, shard=None))]
    fn pipeline(
        &self,
        py: Python<'_>,
        name: Option<String>,
        threads: Option<usize>,
        opt_level: Option<u8>,
        allow_exec: Option<bool>,
        shard: Option<(u64, u64)>,
    ) -> PyResult<Dataset> {
        let name = match name.or_else(|| self.inner.opts.pipeline.clone()) {
            Some(n) => n,
            None => {
                return Err(PyValueError::new_err("the program declares no pipeline"));
            }
        };
        make_dataset(
            py,
            &self.inner,
            name,
            threads.unwrap_or_else(default_threads),
            opt_level.unwrap_or(self.inner.opts.opt_level),
            allow_exec.unwrap_or(self.inner.opts.allow_exec),
            shard,
        )
    }

    fn __reduce__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let rebuild = py.import("pipec")?.getattr("_rebuild_program")?;
        Ok((rebuild, (self.inner.args.clone_ref(py),))
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }

    fn __repr__(&self) -> String {
        format!(
            "<pipec.Program {} pipelines=[{}]>",
            self.inner.source.name,
            self.inner.names.join(", ")
        )
    }
}

/// The dataset for `name` with these options, compiling again unless the program's own
/// compilation is the same.
fn make_dataset(
    py: Python<'_>,
    inner: &Arc<ProgramInner>,
    name: String,
    threads: usize,
    opt_level: u8,
    allow_exec: bool,
    shard: Option<(u64, u64)>,
) -> PyResult<Dataset> {
    if threads == 0 {
        return Err(PyValueError::new_err("threads is at least 1"));
    }
    if opt_level > 2 {
        return Err(PyValueError::new_err(format!(
            "opt_level is 0, 1 or 2, not {opt_level}"
        )));
    }
    if let Some((i, n)) = shard
        && (n == 0 || i >= n)
    {
        return Err(PyValueError::new_err(format!(
            "shard=({i}, {n}) does not exist: shards count from 0 to N - 1"
        )));
    }
    let opts = CompileOptions {
        pipeline: Some(name.clone()),
        opt_level,
        allow_exec,
        shard,
        ..inner.opts.clone()
    };
    let same = opts.pipeline == inner.opts.pipeline
        && opts.opt_level == inner.opts.opt_level
        && opts.allow_exec == inner.opts.allow_exec
        && shard.is_none();
    let compiled = if same {
        inner.compiled.clone()
    } else {
        Arc::new(compile_with(py, &inner.compiler, &inner.source, &opts)?)
    };
    Ok(Dataset {
        program: inner.clone(),
        compiled,
        name,
        threads,
        opt_level,
        allow_exec,
        shard,
        take: None,
    })
}

#[pymethods]
impl Dataset {
    /// The pipeline's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Threads for this dataset's runs (`--threads`).
    #[getter]
    fn threads(&self) -> usize {
        self.threads
    }

    /// `(I, N)` when this dataset is shard I of N, else None.
    #[getter]
    fn shard(&self) -> Option<(u64, u64)> {
        self.shard
    }

    /// The element type: a `TensorSpec` per tensor, tuples as tuples.
    #[getter]
    fn element_spec(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        spec_to_py(py, &self.compiled.element_type())
    }

    /// The first `n` elements (at most) of every run.
    fn take(&self, n: u64) -> Dataset {
        Dataset {
            take: Some(self.take.map_or(n, |t| t.min(n))),
            ..self.clone_ds()
        }
    }

    /// Shard `index` of `count` of this dataset (itself maybe a shard: shard I of N, then
    /// shard i of k of that, is shard I + N*i of N*k). The torch adapter gives each
    /// DataLoader worker its own this way.
    fn subshard(&self, py: Python<'_>, index: u64, count: u64) -> PyResult<Dataset> {
        if count == 0 || index >= count {
            return Err(PyValueError::new_err(format!(
                "subshard({index}, {count}) does not exist: shards count from 0 to count - 1"
            )));
        }
        let (i0, n0) = self.shard.unwrap_or((0, 1));
        let composed = (i0 + n0 * index, n0 * count);
        let mut ds = make_dataset(
            py,
            &self.program,
            self.name.clone(),
            self.threads,
            self.opt_level,
            self.allow_exec,
            Some(composed),
        )?;
        ds.take = self.take;
        Ok(ds)
    }

    /// The same dataset with another thread count.
    fn with_threads(&self, threads: usize) -> PyResult<Dataset> {
        if threads == 0 {
            return Err(PyValueError::new_err("threads is at least 1"));
        }
        Ok(Dataset {
            threads,
            ..self.clone_ds()
        })
    }

    /// The `take` limit, if any.
    #[getter]
    fn limit(&self) -> Option<u64> {
        self.take
    }

    /// Writes every element to `path`: `.tfrecord` / `.tfrecord.gz` (one `tf.train.Example`
    /// per element) or `.parquet` (one row per element), atomically (a temporary file renamed
    /// into place once the run succeeded). Returns the number of elements written.
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<u64> {
        let Some(format) = pipec::RecordFormat::of_path(&path) else {
            return Err(PyValueError::new_err(format!(
                "save writes .tfrecord, .tfrecord.gz or .parquet files, not `{}`",
                path.display()
            )));
        };
        let opts = pipec::RunOptions {
            threads: self.threads,
            base_dir: self.compiled.dir.clone(),
            ..pipec::RunOptions::default()
        };
        let compiled = self.compiled.clone();
        let take = self.take.unwrap_or(u64::MAX);
        let elem = compiled.element_type();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        enum Failed {
            Run(pipec::Diagnostic),
            Write(String),
        }
        let result = py.detach(|| -> Result<u64, Failed> {
            let file = std::fs::File::create(&tmp).map_err(|e| Failed::Write(e.to_string()))?;
            let mut w = pipec::RecordWriter::new(file, format, &elem).map_err(Failed::Write)?;
            let stream = compiled.run(&opts).map_err(Failed::Run)?;
            let mut n = 0u64;
            for e in stream.take(usize::try_from(take).unwrap_or(usize::MAX)) {
                w.push(&e.map_err(Failed::Run)?).map_err(Failed::Write)?;
                n += 1;
            }
            w.finish().map_err(Failed::Write)?;
            std::fs::rename(&tmp, &path).map_err(|e| Failed::Write(e.to_string()))?;
            Ok(n)
        });
        match result {
            Ok(n) => Ok(n),
            Err(f) => {
                let _ = std::fs::remove_file(&tmp);
                match f {
                    Failed::Run(d) => Err(run_error(py, &self.program, d)),
                    Failed::Write(m) => Err(pyo3::exceptions::PyOSError::new_err(format!(
                        "cannot write `{}`: {m}",
                        path.display()
                    ))),
                }
            }
        }
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<Iterator> {
        self.iterator(py, None)
    }

    /// A run of the pipeline; with `resume=` (bytes from `it.state()`), the run continues
    /// exactly after the last element that state's iterator delivered (`pipec --resume`).
    #[pyo3(signature = (resume=None))]
    fn iterator(&self, py: Python<'_>, resume: Option<Vec<u8>>) -> PyResult<Iterator> {
        static KERNEL_THREADS: Once = Once::new();
        KERNEL_THREADS.call_once(|| pipec::set_kernel_threads(default_threads()));
        let opts = pipec::RunOptions {
            threads: self.threads,
            base_dir: self.compiled.dir.clone(),
            // Any iterator can give its state (`it.state()`).
            checkpoints: true,
            ..pipec::RunOptions::default()
        };
        let compiled = self.compiled.clone();
        let mut stream = py
            .detach(move || match resume {
                Some(bytes) => compiled.resume(&opts, &bytes),
                None => compiled.run(&opts),
            })
            .map_err(|d| run_error(py, &self.program, d))?;
        let read_ahead = stream.pure_pull();
        if read_ahead {
            // Blocks are handed out a row at a time: `state()` may be asked inside one.
            stream.keep_block_marks();
        }
        let block_rows = stream.block_rows();
        Ok(Iterator {
            state: Mutex::new(IterState {
                program: self.program.clone(),
                compiled: self.compiled.clone(),
                final_state: None,
                elem: stream.elem.clone(),
                stream: Some(stream),
                pending: Pending::Nothing,
                error: None,
                remaining: self.take,
                read_ahead,
                block_rows,
            }),
        })
    }

    /// Runs the pipeline to the end and drops the elements, as `pipec --discard` does (a
    /// block at a time, nothing converted for Python); returns how many there were. For
    /// benchmarks: the Python iteration's overhead is the difference.
    fn _discard(&self, py: Python<'_>) -> PyResult<u64> {
        let mut it = self.__iter__(py)?;
        let st = it
            .state
            .get_mut()
            .map_err(|_| PyRuntimeError::new_err("poisoned"))?;
        let Some(mut stream) = st.stream.take() else {
            return Ok(0);
        };
        let rows = stream.block_rows();
        let (count, error) = py.detach(move || {
            let mut count = 0u64;
            while let Some(chunk) = stream.next_block(rows) {
                count += chunk.block.len() as u64;
                if chunk.error.is_some() {
                    return (count, chunk.error);
                }
            }
            (count, None)
        });
        match error {
            Some(d) => Err(run_error(py, &self.program, d)),
            None => Ok(count),
        }
    }

    fn __reduce__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let rebuild = py.import("pipec")?.getattr("_rebuild_dataset")?;
        let program = Py::new(
            py,
            Program {
                inner: self.program.clone(),
            },
        )?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("threads", self.threads)?;
        kwargs.set_item("opt_level", self.opt_level)?;
        kwargs.set_item("allow_exec", self.allow_exec)?;
        kwargs.set_item("shard", self.shard)?;
        Ok((rebuild, (program, &self.name, kwargs, self.take))
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let spec = self.element_spec(py)?;
        let mut extra = String::new();
        if let Some((i, n)) = self.shard {
            extra.push_str(&format!(" shard=({i}, {n})"));
        }
        if let Some(t) = self.take {
            extra.push_str(&format!(" take={t}"));
        }
        Ok(format!(
            "<pipec.Dataset {} element_spec={} threads={}{extra}>",
            self.name,
            spec.bind(py).repr()?,
            self.threads
        ))
    }
}

impl Dataset {
    fn clone_ds(&self) -> Dataset {
        Dataset {
            program: self.program.clone(),
            compiled: self.compiled.clone(),
            name: self.name.clone(),
            threads: self.threads,
            opt_level: self.opt_level,
            allow_exec: self.allow_exec,
            shard: self.shard,
            take: self.take,
        }
    }
}

#[pymethods]
impl Iterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The run's position after the last element this iterator returned, as bytes: pass
    /// them to `ds.iterator(resume=...)` (of the same program, pipeline, params and shard;
    /// any `threads`) to continue exactly there. The same format as `pipec --save-state`.
    fn state(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let Ok(mut st) = self.state.try_lock() else {
            return Err(PyRuntimeError::new_err(
                "this pipec iterator is running in another thread",
            ));
        };
        let saved = match &st.final_state {
            Some(r) => r.clone(),
            None => {
                let unused = st.unused();
                let compiled = st.compiled.clone();
                match st.stream.as_mut() {
                    Some(stream) => py.detach(|| compiled.save_state_within_block(stream, unused)),
                    None => return Err(PyRuntimeError::new_err("this iterator has no run")),
                }
            }
        };
        match saved {
            Ok(bytes) => Ok(PyBytes::new(py, &bytes).unbind()),
            Err(d) => Err(run_error(py, &st.program, d)),
        }
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let Ok(mut st) = self.state.try_lock() else {
            return Err(PyRuntimeError::new_err(
                "this pipec iterator is already running in another thread",
            ));
        };
        loop {
            if st.remaining == Some(0) {
                st.finish(py);
                return Ok(None);
            }
            if let Some(row) = st.next_pending(py)? {
                if let Some(r) = &mut st.remaining {
                    *r -= 1;
                }
                return Ok(Some(row));
            }
            if let Some(d) = st.error.take() {
                st.finish(py);
                return Err(run_error(py, &st.program, d));
            }
            // Ctrl-C (and any other signal handler) runs between pulls.
            py.check_signals()?;
            let max = if st.read_ahead {
                st.remaining
                    .map_or(st.block_rows, |r| r.min(st.block_rows as u64) as usize)
            } else {
                1
            };
            let Some(stream) = st.stream.as_mut() else {
                return Ok(None);
            };
            let chunk = py.detach(|| stream.next_block(max));
            let Some(chunk) = chunk else {
                st.finish(py);
                return Ok(None);
            };
            st.error = chunk.error;
            st.pending = match chunk.block {
                Block::Stacked { leaves, rows } => Pending::Stacked {
                    arrays: leaves
                        .into_iter()
                        .map(|t| tensor_to_py(py, t).map(Bound::unbind))
                        .collect::<PyResult<_>>()?,
                    next: 0,
                    rows,
                },
                Block::Rows(rows) => Pending::Rows(rows.into()),
            };
        }
    }
}

impl IterState {
    /// Rows pulled from the runtime and not handed to Python yet.
    fn unused(&self) -> u64 {
        match &self.pending {
            Pending::Nothing => 0,
            Pending::Stacked { next, rows, .. } => rows.saturating_sub(*next) as u64,
            Pending::Rows(r) => r.len() as u64,
        }
    }

    /// Keeps the state as of now, for `state()` once the stream is gone.
    fn save_final(&mut self, py: Python<'_>) {
        if self.final_state.is_some() {
            return;
        }
        let unused = self.unused();
        let compiled = self.compiled.clone();
        if let Some(stream) = self.stream.as_mut() {
            self.final_state = Some(py.detach(|| compiled.save_state_within_block(stream, unused)));
        }
    }

    /// The next pulled row as a Python element.
    fn next_pending(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let leaves: Vec<Bound<'_, PyAny>> = match &mut self.pending {
            Pending::Nothing => return Ok(None),
            Pending::Stacked { arrays, next, rows } => {
                if *next >= *rows {
                    self.pending = Pending::Nothing;
                    return Ok(None);
                }
                let i = *next;
                *next += 1;
                // A view of row i: no copy, and rows are disjoint parts of a buffer that
                // nothing else holds (see `tensor_to_py`), so they are safely writable.
                arrays
                    .iter()
                    .map(|a| a.bind(py).get_item(i))
                    .collect::<PyResult<_>>()?
            }
            Pending::Rows(rows) => match rows.pop_front() {
                None => {
                    self.pending = Pending::Nothing;
                    return Ok(None);
                }
                Some(e) => e
                    .into_iter()
                    .map(|t| {
                        let a = tensor_to_py(py, t)?;
                        // A rank-0 tensor is a numpy scalar, as a row of a stacked block is.
                        if a.getattr("ndim")?.extract::<usize>()? == 0 {
                            a.get_item(())
                        } else {
                            Ok(a)
                        }
                    })
                    .collect::<PyResult<_>>()?,
            },
        };
        element_to_py(py, &self.elem, leaves).map(Some)
    }

    /// Ends the run now: its threads stop and its workers are reaped.
    fn finish(&mut self, py: Python<'_>) {
        self.save_final(py);
        self.pending = Pending::Nothing;
        if let Some(stream) = self.stream.take() {
            py.detach(move || drop(stream));
        }
    }
}

/// The module `pipec._pipec`.
#[pymodule]
fn _pipec(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    pipec::limits::set_max_memory(pipec::physical_memory());
    pipec::limits::tune_allocator();
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_class::<Program>()?;
    m.add_class::<Dataset>()?;
    m.add_class::<Iterator>()?;
    m.add_class::<PyDiagnostic>()?;
    m.add_class::<convert::TensorSpec>()?;
    m.add("CompileError", py.get_type::<CompileError>())?;
    m.add("RunError", py.get_type::<RunError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
