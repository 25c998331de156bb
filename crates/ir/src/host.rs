//! Host functions: what an eager op runs. The front end supplies them (an eager body, a
//! registered Rust closure, an exec worker); the runtime only calls them.

use pipec_diag::Diagnostic;
use pipec_tensor::Tensor;
use std::fmt;
use std::sync::Arc;

/// A shared handle to a host function.
pub type HostFn = Arc<dyn HostFunction>;

/// A function that runs eagerly on host arrays: opaque and effectful to every pass.
pub trait HostFunction: Send + Sync + fmt::Debug {
    /// The name shown in the IR and in errors.
    fn name(&self) -> &str;

    /// What serves it: `"eager"`, `"extern"`, `"exec"` or `"py_function"`.
    fn flavor(&self) -> &'static str;

    /// A fresh instance for one execution lane (an exec worker starts its process here).
    fn instantiate(&self) -> Result<Box<dyn HostInstance>, Diagnostic>;
}

/// One lane's instance of a host function; called once per element, never concurrently.
pub trait HostInstance: Send {
    /// Calls the function on one element's arguments; results are checked by the caller.
    fn call(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic>;
}
