//! Host functions registered by an embedding Rust program (`extern eager fn`).

use pipec_diag::{Code, Diagnostic};
use pipec_ir::{HostFunction, HostInstance};
use pipec_tensor::Tensor;
use std::fmt;
use std::sync::Arc;

type HostClosure = dyn Fn(&[Tensor]) -> Result<Vec<Tensor>, String> + Send + Sync;

/// A Rust closure serving an `extern eager fn`.
pub struct ClosureHost {
    name: String,
    f: Arc<HostClosure>,
}

impl ClosureHost {
    /// Wraps `f` under `name`.
    pub fn new(
        name: &str,
        f: impl Fn(&[Tensor]) -> Result<Vec<Tensor>, String> + Send + Sync + 'static,
    ) -> ClosureHost {
        ClosureHost {
            name: name.to_string(),
            f: Arc::new(f),
        }
    }
}

impl fmt::Debug for ClosureHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClosureHost({})", self.name)
    }
}

impl HostFunction for ClosureHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn flavor(&self) -> &'static str {
        "extern"
    }

    fn instantiate(&self) -> Result<Box<dyn HostInstance>, Diagnostic> {
        Ok(Box::new(ClosureInstance {
            name: self.name.clone(),
            f: self.f.clone(),
        }))
    }
}

struct ClosureInstance {
    name: String,
    f: Arc<HostClosure>,
}

impl HostInstance for ClosureInstance {
    fn call(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        (self.f)(args).map_err(|msg| {
            Diagnostic::error(
                Code::HostFunctionFailed,
                format!("host function `{}` failed: {msg}", self.name),
            )
        })
    }
}
