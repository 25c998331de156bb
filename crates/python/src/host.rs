//! Python callables as the bodies of `extern eager fn` declarations, and eager `print`.

use crate::convert::{py_to_tensor, tensor_to_py};
use crate::errors::HostErrors;
use pipec::{Compiler, Tensor};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Registers `f` as the body of `extern eager fn NAME`. The runtime calls it with the GIL
/// released; it takes the GIL for the call alone. Arguments arrive as numpy arrays (copies
/// when the runtime still shares the buffer, so the callable may write to them); the result
/// (an array, or a tuple of arrays for a tuple type) keeps its dtype, and the runtime checks
/// it against the declared type as it checks every eager function (E0500). An exception
/// becomes E0506 naming the function and the element, and is chained to the `RunError`.
pub fn register(compiler: &mut Compiler, name: &str, f: Py<PyAny>, errors: HostErrors) {
    compiler.register_host_fn(name, move |args: &[Tensor]| {
        Python::attach(|py| {
            let call = || -> PyResult<Vec<Tensor>> {
                let py_args = args
                    .iter()
                    .map(|t| tensor_to_py(py, t.clone()))
                    .collect::<PyResult<Vec<_>>>()?;
                let out = f.bind(py).call1(PyTuple::new(py, py_args)?)?;
                match out.cast::<PyTuple>() {
                    Ok(parts) => parts.iter().map(|p| py_to_tensor(py, &p)).collect(),
                    Err(_) => Ok(vec![py_to_tensor(py, &out)?]),
                }
            };
            call().map_err(|e| {
                let message = match e.value(py).str() {
                    Ok(s) if !s.to_string_lossy().is_empty() => {
                        format!("{}: {}", type_name(py, &e), s.to_string_lossy())
                    }
                    _ => type_name(py, &e),
                };
                errors.keep(message.clone(), e);
                message
            })
        })
    });
}

fn type_name(py: Python<'_>, e: &PyErr) -> String {
    e.get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".to_string())
}

/// Where `print` in an eager function writes: Python's `sys.stderr` (so notebooks and
/// pytest see it), as the command line writes it to stderr.
pub fn print_to_stderr(line: &str) {
    Python::attach(|py| {
        let write = || -> PyResult<()> {
            let stderr = py.import("sys")?.getattr("stderr")?;
            stderr.call_method1("write", (format!("{line}\n"),))?;
            Ok(())
        };
        if write().is_err() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{line}");
            }
        }
    });
}
