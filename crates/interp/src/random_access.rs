//! Random access to a plan: element `i` of a dataset without reading elements `0..i`.
//!
//! A plan has random access when its source has a known length and every node above maps
//! an output position to known input positions (`DsKind::keeps_random_access`, checked
//! when compiling, so [`RandomAccess::build`] failing is an internal error). This is what
//! `global_shuffle` pulls through: element `perm(i)` of its input.
//!
//! Positions seen by functions: a `map` under random access is called with the position
//! of the element in the map's own input, as a streaming `map` is (under `repeat`, the
//! position within the epoch), so errors and stateless random ops see the same index
//! either way. Epochs likewise: a streaming `map` under `repeat(N)` is opened N times per
//! opening of what is above, so building a view takes as many epochs from the map's
//! counter as the `repeat`s above it multiply to, and element `i` of a `repeat` is in
//! epoch `i / len` of it (see [`RandomAccess::get`]).

use crate::Element;
use crate::block::{Block, Chunk};
use crate::func::{CompiledFn, FnState};
use crate::stream::base::element_count;
use crate::stream::batching::stack_rows;
use crate::stream::plan::{Plan, PlanKind};
use crate::stream::sources::Column as SourceColumn;
use pipec_diag::{Code, Diagnostic, Span};
use pipec_tensor::Tensor;
use pipec_tensor::io::FileRows;
use std::path::PathBuf;
use std::sync::Arc;

/// One component of a random-access `from_tensor_slices`: an array in memory, or a mapped
/// file whose rows are copied out as they are asked for (so a file larger than memory can
/// be shuffled globally).
enum Column {
    Array(Tensor),
    Mapped(Arc<FileRows>, PathBuf, Span),
}

impl Column {
    /// Row `i`.
    fn row(&self, i: usize) -> Result<Tensor, Diagnostic> {
        match self {
            Column::Array(t) => Ok(t.index_axis0(i)),
            Column::Mapped(..) => Ok(self.rows(&[i])?.index_axis0(0)),
        }
    }

    /// The rows at `at`, stacked.
    fn rows(&self, at: &[usize]) -> Result<Tensor, Diagnostic> {
        let rows = match self {
            Column::Array(t) => t.take_rows(at),
            Column::Mapped(f, ..) => f.gather(at),
        };
        rows.ok_or_else(|| {
            let (path, span) = match self {
                Column::Mapped(_, path, span) => (path.display().to_string(), *span),
                Column::Array(_) => ("an array".into(), Span::default()),
            };
            Diagnostic::error(
                Code::FileUnreadable,
                format!("cannot read rows of `{path}`: a row is past the end"),
            )
            .with_label(span, "read here")
        })
    }
}

/// Whether reading a file's array whole for random access would take more memory than is
/// wise: over 2^31 elements (a tensor's limit) or over a quarter of the memory cap
/// (`--max-memory`, else the machine's memory). Smaller arrays are read whole: one
/// sequential read beats rows copied out of the map in random order (`global_shuffle` of a
/// 10^7-row `i64` file: 0.17-0.26 s against 0.30-0.32 s).
fn too_large_to_read(f: &FileRows) -> bool {
    let elements: u128 = f.shape().iter().map(|&d| d as u128).product();
    let bytes = elements * f.dtype().size_bytes() as u128;
    elements > 1 << 31
        || pipec_tensor::limits::max_memory().is_some_and(|m| bytes > u128::from(m) / 4)
}

/// A random-access view of a plan, with its length.
pub(crate) struct RandomAccess {
    node: Node,
    len: u64,
}

enum Node {
    Range {
        start: i64,
        step: i64,
    },
    Slices(Vec<Column>),
    Whole(Vec<Tensor>),
    Map {
        input: Box<RandomAccess>,
        f: Arc<CompiledFn>,
        state: FnState,
        /// The plan (for [`Plan::epoch_for`]) and the first epoch this view took from it.
        plan: Arc<Plan>,
        first_epoch: u64,
    },
    Batch {
        input: Box<RandomAccess>,
        size: u64,
        span: Span,
    },
    /// `take`: the first `len` positions.
    Prefix(Box<RandomAccess>),
    Skip {
        input: Box<RandomAccess>,
        skip: u64,
    },
    Repeat {
        input: Box<RandomAccess>,
        count: u64,
    },
    Zip(Vec<RandomAccess>),
    Concat(Box<RandomAccess>, Box<RandomAccess>),
    Enumerate {
        input: Box<RandomAccess>,
        start: i64,
    },
    Shard {
        input: Box<RandomAccess>,
        num: u64,
        index: u64,
    },
}

impl RandomAccess {
    /// The random-access view of `plan`, or an internal error naming the node without one.
    /// Like opening the plan, it takes epochs from the counters of the maps below.
    pub(crate) fn build(plan: &Arc<Plan>) -> Result<RandomAccess, Diagnostic> {
        RandomAccess::build_in(plan, 1)
    }

    /// [`build`](Self::build) under `repeat`s whose counts multiply to `epochs`: each map
    /// below stands for that many openings of a streaming one.
    fn build_in(plan: &Arc<Plan>, epochs: u64) -> Result<RandomAccess, Diagnostic> {
        let input = |i: usize| -> Result<Box<RandomAccess>, Diagnostic> {
            Ok(Box::new(RandomAccess::build_in(&plan.inputs[i], epochs)?))
        };
        let (node, len) = match &plan.kind {
            PlanKind::Range { start, stop, step } => {
                let (a, b, s) = (i128::from(*start), i128::from(*stop), i128::from(*step));
                let len = match s {
                    s if s > 0 && a < b => (b - a + s - 1) / s,
                    s if s < 0 && a > b => (a - b - s - 1) / -s,
                    _ => 0,
                };
                (
                    Node::Range {
                        start: *start,
                        step: *step,
                    },
                    len as u64,
                )
            }
            PlanKind::Slices(comps) => {
                let n = comps.first().map_or(0, |c| c.shape()[0]) as u64;
                // A mapped file too large to read whole has its rows copied out as asked
                // for; anything else is read whole first.
                let columns = comps.iter().map(|c| match c {
                    SourceColumn::File(f, path) if f.is_mapped() && too_large_to_read(f) => {
                        f.expect_random_access();
                        Ok(Column::Mapped(f.clone(), path.clone(), plan.span))
                    }
                    c => c.whole(plan.span).map(Column::Array),
                });
                (Node::Slices(columns.collect::<Result<_, _>>()?), n)
            }
            PlanKind::Whole(comps) => (Node::Whole(comps.clone()), 1),
            PlanKind::Map { f, .. } => {
                let i = input(0)?;
                let len = i.len;
                let first_epoch = plan
                    .opens
                    .fetch_add(epochs, std::sync::atomic::Ordering::Relaxed);
                (
                    Node::Map {
                        input: i,
                        f: f.clone(),
                        state: FnState::default(),
                        plan: plan.clone(),
                        first_epoch,
                    },
                    len,
                )
            }
            PlanKind::Batch {
                size,
                drop_remainder: true,
            } => {
                let i = input(0)?;
                let size = (*size as u64).max(1);
                let len = i.len / size;
                (
                    Node::Batch {
                        input: i,
                        size,
                        span: plan.span,
                    },
                    len,
                )
            }
            PlanKind::Take(n) => {
                let i = input(0)?;
                let len = if *n < 0 { i.len } else { i.len.min(*n as u64) };
                (Node::Prefix(i), len)
            }
            PlanKind::Skip(n) => {
                let i = input(0)?;
                let skip = if *n < 0 { u64::MAX } else { *n as u64 };
                let len = i.len.saturating_sub(skip);
                (Node::Skip { input: i, skip }, len)
            }
            PlanKind::Repeat(Some(count)) => {
                let i = Box::new(RandomAccess::build_in(
                    &plan.inputs[0],
                    epochs.saturating_mul(*count),
                )?);
                let len = i.len.saturating_mul(*count);
                (
                    Node::Repeat {
                        input: i,
                        count: *count,
                    },
                    len,
                )
            }
            PlanKind::Zip => {
                let parts = plan
                    .inputs
                    .iter()
                    .map(|p| RandomAccess::build_in(p, epochs))
                    .collect::<Result<Vec<_>, _>>()?;
                let len = parts.iter().map(|p| p.len).min().unwrap_or(0);
                (Node::Zip(parts), len)
            }
            PlanKind::Concatenate => {
                let (a, b) = (input(0)?, input(1)?);
                let len = a.len.saturating_add(b.len);
                (Node::Concat(a, b), len)
            }
            PlanKind::Enumerate(start) => {
                let i = input(0)?;
                let len = i.len;
                (
                    Node::Enumerate {
                        input: i,
                        start: *start,
                    },
                    len,
                )
            }
            PlanKind::Shard { num, index } => {
                let i = input(0)?;
                let len = if i.len > *index {
                    (i.len - index).div_ceil(*num)
                } else {
                    0
                };
                (
                    Node::Shard {
                        input: i,
                        num: *num,
                        index: *index,
                    },
                    len,
                )
            }
            _ => {
                return Err(Diagnostic::error(
                    Code::WrongKind,
                    "internal error: a node under `global_shuffle` has no random access",
                )
                .with_label(plan.span, "this node")
                .with_help("please report this; the compiler should have rejected it (E0410)"));
            }
        };
        Ok(RandomAccess { node, len })
    }

    /// How many elements.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// `(start, step)` when this is a `range`: element `i` is `start + i * step`.
    pub(crate) fn as_range(&self) -> Option<(i64, i64)> {
        match self.node {
            Node::Range { start, step } => Some((start, step)),
            _ => None,
        }
    }

    /// Element `i` (`i < len`).
    pub(crate) fn get(&mut self, i: u64) -> Result<Element, Diagnostic> {
        self.get_in(i, 0)
    }

    /// Element `i` in epoch `ep` of the `repeat`s above (0 at the top; a `repeat(N)` makes
    /// its input's epoch `ep * N + i / len`): a map's `first_epoch + ep` is the epoch of
    /// the streaming map that would have computed the element.
    fn get_in(&mut self, i: u64, ep: u64) -> Result<Element, Diagnostic> {
        Ok(match &mut self.node {
            Node::Range { start, step } => {
                // The value lies between start and stop, so wrapping arithmetic is exact.
                vec![Tensor::scalar(
                    start.wrapping_add((i as i64).wrapping_mul(*step)),
                )]
            }
            Node::Slices(comps) => comps
                .iter()
                .map(|c| c.row(i as usize))
                .collect::<Result<_, _>>()?,
            Node::Whole(comps) => comps.clone(),
            Node::Map {
                input,
                f,
                state,
                plan,
                first_epoch,
            } => {
                let e = input.get_in(i, ep)?;
                // A batched function (a map moved after its batch) counts the batch's
                // first element, as the streaming map does.
                let at = i.saturating_mul(element_count(f, &e));
                f.call(state, e, at, plan.epoch_for(first_epoch.wrapping_add(ep)))?
            }
            Node::Batch { input, size, span } => {
                let first = i * *size;
                let rows = (first..first + *size)
                    .map(|k| input.get_in(k, ep))
                    .collect::<Result<Vec<_>, _>>()?;
                stack_rows(rows, *span, first)?
            }
            Node::Prefix(input) => input.get_in(i, ep)?,
            Node::Skip { input, skip } => input.get_in(i + *skip, ep)?,
            Node::Repeat { input, count } => {
                let n = input.len;
                input.get_in(i % n, ep.wrapping_mul(*count).wrapping_add(i / n))?
            }
            Node::Zip(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    out.extend(p.get_in(i, ep)?);
                }
                out
            }
            Node::Concat(a, b) => {
                if i < a.len {
                    a.get_in(i, ep)?
                } else {
                    let k = i - a.len;
                    b.get_in(k, ep)?
                }
            }
            Node::Enumerate { input, start } => {
                // Past i64::MAX the count wraps, as the streaming `enumerate` does.
                let mut out = vec![Tensor::scalar(start.wrapping_add(i as i64))];
                out.extend(input.get_in(i, ep)?);
                out
            }
            Node::Shard { input, num, index } => input.get_in(i * *num + *index, ep)?,
        })
    }

    /// The elements at `positions`, as a block; the rows before an error come with it.
    pub(crate) fn get_block(&mut self, positions: &[u64]) -> Chunk {
        if let Some(leaves) = self.gather(positions) {
            return Chunk::ok(Block::Stacked {
                leaves,
                rows: positions.len(),
            });
        }
        let mut rows = Vec::with_capacity(positions.len());
        for &i in positions {
            match self.get(i) {
                Ok(e) => rows.push(e),
                Err(d) => {
                    return Chunk {
                        block: Block::Rows(rows),
                        error: Some(d),
                    };
                }
            }
        }
        Chunk::ok(Block::Rows(rows))
    }

    /// The elements at `positions` stacked, one tensor per leaf, when every node on the way
    /// moves data without computing (sources, `zip`, `enumerate`, `skip`, `take`, `shard`):
    /// one gather per leaf instead of an element each. `None` where a node computes (a
    /// `map`, whose positions and epochs are per element, a `batch`) or cannot fail-free
    /// gather; the caller then goes element by element.
    fn gather(&self, positions: &[u64]) -> Option<Vec<Tensor>> {
        let rows = positions.len();
        match &self.node {
            Node::Range { start, step } => {
                // The value lies between start and stop, so wrapping arithmetic is exact.
                let values: Vec<i64> = positions
                    .iter()
                    .map(|&i| start.wrapping_add((i as i64).wrapping_mul(*step)))
                    .collect();
                Some(vec![Tensor::from_vec(&[rows], values)?])
            }
            Node::Slices(comps) => {
                let at: Vec<usize> = positions
                    .iter()
                    .map(|&i| usize::try_from(i).ok())
                    .collect::<Option<_>>()?;
                comps.iter().map(|c| c.rows(&at).ok()).collect()
            }
            Node::Zip(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    out.extend(p.gather(positions)?);
                }
                Some(out)
            }
            Node::Enumerate { input, start } => {
                // Past i64::MAX the count wraps, as the streaming `enumerate` does.
                let counts: Vec<i64> = positions
                    .iter()
                    .map(|&i| start.wrapping_add(i as i64))
                    .collect();
                let mut out = vec![Tensor::from_vec(&[rows], counts)?];
                out.extend(input.gather(positions)?);
                Some(out)
            }
            Node::Prefix(input) => input.gather(positions),
            Node::Skip { input, skip } => {
                let moved: Vec<u64> = positions.iter().map(|&i| i + *skip).collect();
                input.gather(&moved)
            }
            Node::Shard { input, num, index } => {
                let moved: Vec<u64> = positions.iter().map(|&i| i * *num + *index).collect();
                input.gather(&moved)
            }
            _ => None,
        }
    }
}
