//! Diagnostics as Python exceptions: `CompileError`, `RunError`, and `Diagnostic` objects.

use crate::ProgramInner;
use pipec::{Code, Diagnostic, SourceFile};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

create_exception!(
    pipec,
    CompileError,
    PyException,
    "The program does not compile: `.diagnostics` lists why; str() is pipec's rendered text."
);
create_exception!(
    pipec,
    RunError,
    PyException,
    "A run failed: `.code`, `.element_index`, `.diagnostics`; str() is pipec's rendered text."
);

/// One diagnostic: code, message, where (path, 1-based line and column) and the help.
#[pyclass(frozen, module = "pipec", name = "Diagnostic")]
pub struct PyDiagnostic {
    #[pyo3(get)]
    code: String,
    #[pyo3(get)]
    severity: String,
    #[pyo3(get)]
    message: String,
    #[pyo3(get)]
    path: String,
    #[pyo3(get)]
    line: Option<usize>,
    #[pyo3(get)]
    column: Option<usize>,
    #[pyo3(get)]
    help: Option<String>,
    #[pyo3(get)]
    notes: Vec<String>,
    rendered: String,
}

impl PyDiagnostic {
    /// `d` located in `src`.
    pub fn new(d: &Diagnostic, src: &SourceFile) -> PyDiagnostic {
        let (line, column) = match d.primary_span() {
            Some(span) => {
                let start = (span.start as usize).min(src.text.len());
                let before = src.text.get(..start).unwrap_or("");
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                (Some(line), Some(col))
            }
            None => (None, None),
        };
        PyDiagnostic {
            code: d.code.to_string(),
            severity: format!("{:?}", d.severity).to_lowercase(),
            message: d.message.clone(),
            path: src.name.clone(),
            line,
            column,
            help: d.help.clone(),
            notes: d.notes.clone(),
            rendered: pipec::render(std::slice::from_ref(d), &src.name, &src.text, false),
        }
    }
}

#[pymethods]
impl PyDiagnostic {
    fn __str__(&self) -> String {
        self.rendered.clone()
    }

    fn __repr__(&self) -> String {
        let at = match (self.line, self.column) {
            (Some(l), Some(c)) => format!(" at {}:{l}:{c}", self.path),
            _ => String::new(),
        };
        format!("<pipec.Diagnostic {}{at}: {}>", self.code, self.message)
    }
}

/// `CompileError` for `diags`, with the text the command line prints.
pub fn compile_error(py: Python<'_>, diags: &[Diagnostic], src: &SourceFile) -> PyErr {
    let text = pipec::render(diags, &src.name, &src.text, false);
    let err = CompileError::new_err(text.trim_end().to_string());
    let list: Vec<PyDiagnostic> = diags.iter().map(|d| PyDiagnostic::new(d, src)).collect();
    if let Err(e) = err.value(py).setattr("diagnostics", list) {
        return e;
    }
    err
}

/// The element index a run-time error names ("element 7", "in element 7"), if it names one.
fn element_index(d: &Diagnostic) -> Option<u64> {
    let texts = std::iter::once(&d.message)
        .chain(d.notes.iter())
        .chain(d.labels.iter().map(|l| &l.message));
    for t in texts {
        let mut rest = t.as_str();
        while let Some(at) = rest.find("element ") {
            rest = &rest[at + "element ".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
    }
    None
}

/// `RunError` for `d`; a host function's Python exception becomes its `__cause__`.
pub fn run_error(py: Python<'_>, program: &Arc<ProgramInner>, d: Diagnostic) -> PyErr {
    let src = &program.source;
    let text = pipec::render(std::slice::from_ref(&d), &src.name, &src.text, false);
    let err = RunError::new_err(text.trim_end().to_string());
    let value = err.value(py);
    let set = || -> PyResult<()> {
        value.setattr("code", d.code.to_string())?;
        value.setattr("element_index", element_index(&d))?;
        value.setattr("diagnostics", vec![PyDiagnostic::new(&d, src)])?;
        Ok(())
    };
    if let Err(e) = set() {
        return e;
    }
    if d.code == Code::HostFunctionFailed
        && let Some(cause) = program.host_errors.take(&d.message)
    {
        err.set_cause(py, Some(cause));
    }
    err
}

/// The Python exceptions host functions raised, by the message pipec reports for them, so
/// the `RunError` can chain the original.
#[derive(Clone, Default)]
pub struct HostErrors(Arc<Mutex<Vec<(String, PyErr)>>>);

/// How many raised exceptions are kept for chaining (a run stops at its first error; later
/// ones come from lanes that ran ahead).
const KEPT: usize = 16;

impl HostErrors {
    /// Keeps `err`, reported as `message`.
    pub fn keep(&self, message: String, err: PyErr) {
        if let Ok(mut v) = self.0.lock() {
            if v.len() >= KEPT {
                v.remove(0);
            }
            v.push((message, err));
        }
    }

    /// The exception whose message `reported` contains.
    fn take(&self, reported: &str) -> Option<PyErr> {
        let mut v = self.0.lock().ok()?;
        let i = v.iter().position(|(m, _)| reported.contains(m.as_str()))?;
        Some(v.remove(i).1)
    }
}
