//! The pipec runtime: evaluates IR functions on host tensors and streams a pipeline's
//! elements through a pull-based graph of dataset iterators.
//!
//! Memory does not grow with dataset length: every node holds at most what its semantics
//! need (a batch, a shuffle buffer, a `cache`). Errors are diagnostics that name the
//! pipeline node, the source span and the element index.

#![warn(clippy::print_stdout, clippy::print_stderr)]

mod block;
mod budget;
mod func;
mod global_shuffle;
mod interleave;
mod lanes;
mod random_access;
mod records;
mod rng;
pub mod state;
mod stats;
mod stream;

pub use block::{Block, Chunk};
pub use func::{CompiledFn, FnState};
pub use lanes::LANE_MIN_BYTES;
pub use stats::{LaneReport, NodeReport, RunStats};
pub use stream::{ElementStream, RunOptions, open, open_at};

/// One dataset element: its tensor leaves, flat, in the order of the element type.
pub type Element = Vec<pipec_tensor::Tensor>;
