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

    /// Whether calling an instance on a block of elements at once ([`HostInstance::call_rows`])
    /// cannot be told apart from calling it once per element: no side effects, no state kept
    /// between calls, and any error reproduced by the per-element calls the runtime falls back
    /// to. Only such functions run in block execution; the default is no.
    fn runs_on_blocks(&self) -> bool {
        false
    }
}

/// `host` called on blocks: its instances take every argument with a leading axis of rows and
/// return every result stacked the same way (see [`HostInstance::call_rows`]). `None` unless
/// [`HostFunction::runs_on_blocks`].
pub fn on_blocks(host: &HostFn) -> Option<HostFn> {
    host.runs_on_blocks()
        .then(|| Arc::new(OnBlocks(host.clone())) as HostFn)
}

/// See [`on_blocks`].
struct OnBlocks(HostFn);

impl fmt::Debug for OnBlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OnBlocks({:?})", self.0)
    }
}

impl HostFunction for OnBlocks {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn flavor(&self) -> &'static str {
        self.0.flavor()
    }

    fn instantiate(&self) -> Result<Box<dyn HostInstance>, Diagnostic> {
        Ok(Box::new(OnBlocksInstance(self.0.instantiate()?)))
    }
}

struct OnBlocksInstance(Box<dyn HostInstance>);

impl HostInstance for OnBlocksInstance {
    fn call(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        self.0.call_rows(args)
    }
}

/// One lane's instance of a host function; called once per element, never concurrently.
pub trait HostInstance: Send {
    /// Calls the function on one element's arguments; results are checked by the caller.
    fn call(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic>;

    /// Calls the function on a block of elements: row `i` of every argument is element `i`'s
    /// argument, row `i` of every result must be what [`HostInstance::call`] returns for it.
    /// The default calls once per row and stacks the results; an error (or rows whose results
    /// differ in shape) is returned as is, and the runtime then repeats the block per element
    /// to report exactly what per-element calls report.
    fn call_rows(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        let rows = args
            .first()
            .and_then(|a| a.shape().first().copied())
            .unwrap_or(0);
        if rows == 0 || args.iter().any(|a| a.shape().first() != Some(&rows)) {
            return Err(rows_differ());
        }
        let mut per_result: Vec<Vec<Tensor>> = Vec::new();
        for i in 0..rows {
            let row: Vec<Tensor> = args.iter().map(|a| a.index_axis0(i)).collect();
            let outs = self.call(&row)?;
            if per_result.is_empty() {
                per_result = outs.iter().map(|_| Vec::with_capacity(rows)).collect();
            }
            if outs.len() != per_result.len() {
                return Err(rows_differ());
            }
            for (all, o) in per_result.iter_mut().zip(outs) {
                all.push(o);
            }
        }
        per_result
            .iter()
            .map(|parts| pipec_tensor::kernels::stack(parts, 0).map_err(|_| rows_differ()))
            .collect()
    }
}

/// The error of a block whose arguments or results do not line up as rows; never shown, as
/// the runtime re-runs such a block per element.
fn rows_differ() -> Diagnostic {
    Diagnostic::error(
        pipec_diag::Code::EagerResultMismatch,
        "the rows of a block returned results of different shapes",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds one to its argument and returns it with its sum: two results per row.
    struct PlusOne;

    impl HostInstance for PlusOne {
        fn call(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
            let x = args[0].as_array::<i32>().expect("i32").mapv(|v| v + 1);
            let sum = x.sum();
            Ok(vec![
                Tensor::from(x.into_shared()),
                Tensor::from_vec(&[], vec![sum]).expect("scalar"),
            ])
        }
    }

    #[test]
    fn the_default_call_rows_stacks_each_rows_results() {
        let x = Tensor::from_vec(&[3, 2], vec![1, 2, 3, 4, 5, 6]).expect("shape");
        let got = PlusOne.call_rows(&[x]).expect("rows line up");
        assert_eq!(
            got,
            vec![
                Tensor::from_vec(&[3, 2], vec![2, 3, 4, 5, 6, 7]).expect("shape"),
                Tensor::from_vec(&[3], vec![5, 9, 13]).expect("shape"),
            ]
        );
    }

    #[test]
    fn rows_that_do_not_line_up_are_refused() {
        let x = Tensor::from_vec(&[3, 2], vec![1, 2, 3, 4, 5, 6]).expect("shape");
        let short = Tensor::from_vec(&[2], vec![1, 2]).expect("shape");
        let scalar = Tensor::from_vec(&[], vec![1]).expect("shape");
        let empty = Tensor::from_vec::<i32>(&[0, 2], vec![]).expect("shape");
        for args in [vec![x.clone(), short], vec![x, scalar], vec![empty], vec![]] {
            assert!(PlusOne.call_rows(&args).is_err());
        }
    }
}
