//! Blocks: runs of consecutive elements pulled through the pipeline at once.
//!
//! Block execution is how the runtime avoids per-element interpretation: a source hands out
//! rows as one stacked tensor per leaf (a zero-copy slice of `from_tensor_slices` data, an
//! `arange` for `range`), maps and filters run their vectorized function once per block,
//! and `batch` takes a block of exactly its size. Nodes without a block form hand out
//! [`Block::Rows`], so every pipeline still runs; only the speed differs.
//!
//! Exactness: a block pull carries the rows computed before the first error and that error
//! ([`Chunk`]), so what a consumer sees, and which error it sees first, is what pulling
//! element by element gives.

use crate::Element;
use pipec_diag::Diagnostic;
use pipec_tensor::io::FileRows;
use pipec_tensor::kernels;
use pipec_tensor::{BorrowedTensor, Tensor, TensorRef};
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

/// Consecutive elements of a dataset.
#[derive(Clone, Debug)]
pub enum Block {
    /// Every leaf stacked along a new leading axis of length `rows`.
    Stacked {
        /// One tensor per leaf of the element type, each `[rows, ...]`.
        leaves: Vec<Tensor>,
        /// How many elements.
        rows: usize,
    },
    /// Elements kept apart (their shapes may differ, or nothing on the way stacks them).
    Rows(Vec<Element>),
}

impl Block {
    /// How many elements the block holds.
    pub fn len(&self) -> usize {
        match self {
            Block::Stacked { rows, .. } => *rows,
            Block::Rows(r) => r.len(),
        }
    }

    /// Whether the block holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` (its leaves share the block's buffers).
    pub fn row(&self, i: usize) -> Element {
        match self {
            Block::Stacked { leaves, .. } => leaves.iter().map(|t| t.index_axis0(i)).collect(),
            Block::Rows(r) => r[i].clone(),
        }
    }

    /// The elements, one by one.
    pub fn into_rows(self) -> Vec<Element> {
        match self {
            Block::Stacked { rows, .. } => (0..rows).map(|i| self.row(i)).collect(),
            Block::Rows(r) => r,
        }
    }

    /// Splits off the first `n` elements (`n <= len`), keeping the rest in `self`.
    pub(crate) fn split_front(&mut self, n: usize) -> Block {
        match self {
            Block::Stacked { leaves, rows } => {
                let front = Block::Stacked {
                    leaves: leaves.iter().map(|t| t.slice_axis0(0, n)).collect(),
                    rows: n,
                };
                *leaves = leaves.iter().map(|t| t.slice_axis0(n, *rows)).collect();
                *rows -= n;
                front
            }
            Block::Rows(r) => {
                let rest = r.split_off(n);
                Block::Rows(std::mem::replace(r, rest))
            }
        }
    }

    /// Joins consecutive blocks into one, stacked when every part is.
    pub fn join(parts: Vec<Block>) -> Block {
        if parts.len() == 1 {
            return parts.into_iter().next().expect("one part");
        }
        let all_stacked = parts.iter().all(|p| matches!(p, Block::Stacked { .. }));
        if all_stacked && !parts.is_empty() {
            let rows: usize = parts.iter().map(Block::len).sum();
            let n_leaves = match &parts[0] {
                Block::Stacked { leaves, .. } => leaves.len(),
                Block::Rows(_) => 0,
            };
            let mut joined = Vec::with_capacity(n_leaves);
            for leaf in 0..n_leaves {
                let pieces: Vec<Tensor> = parts
                    .iter()
                    .filter(|p| !p.is_empty())
                    .map(|p| match p {
                        Block::Stacked { leaves, .. } => leaves[leaf].clone(),
                        Block::Rows(_) => unreachable!("all parts are stacked"),
                    })
                    .collect();
                match pieces.len() {
                    0 => {}
                    1 => joined.push(pieces.into_iter().next().expect("one piece")),
                    _ => match kernels::concat(&pieces, 0) {
                        Ok(t) => joined.push(t),
                        // Parts of one stream share their row shape; if not, keep rows apart.
                        Err(_) => return Block::Rows(join_rows(parts)),
                    },
                }
            }
            if joined.len() == n_leaves {
                return Block::Stacked {
                    leaves: joined,
                    rows,
                };
            }
        }
        Block::Rows(join_rows(parts))
    }
}

fn join_rows(parts: Vec<Block>) -> Vec<Element> {
    parts.into_iter().flat_map(Block::into_rows).collect()
}

/// What one block pull returned: rows, then the error met right after them, if any.
#[derive(Debug)]
pub struct Chunk {
    /// The elements, in order (empty only when `error` is set).
    pub block: Block,
    /// The error the stream met after `block`; the stream ends there.
    pub error: Option<Diagnostic>,
}

impl Chunk {
    /// Rows and no error.
    pub fn ok(block: Block) -> Chunk {
        Chunk { block, error: None }
    }
}

/// What a block pull gives: rows made now, or rows a lane makes later.
pub(crate) enum Pull {
    /// Rows made on the pulling thread.
    Now(Chunk),
    /// Rows whose making waits for whichever thread takes them.
    Later(Later),
}

impl Pull {
    /// The rows, made on this thread if they were not yet.
    pub(crate) fn now(self) -> Chunk {
        match self {
            Pull::Now(c) => c,
            Pull::Later(l) => (l.make)(),
        }
    }
}

/// A source's block whose position is taken but whose rows are not yet read or computed:
/// a lane makes them together with the block function's work, so reading a file's rows or
/// counting a `range` runs in parallel instead of on the consumer's thread.
pub(crate) struct Later {
    /// Elements the block will hold (unless making them fails: then fewer, and an error).
    pub(crate) rows: usize,
    /// The first two dims of its first leaf multiplied: the dataset elements a map over
    /// batches counts for it (`rows` when the leaves are rank 1).
    pub(crate) lead: u64,
    /// The bytes its leaves will hold (what decides whether a lane takes it).
    pub(crate) bytes: usize,
    /// Makes the rows; only ever a pure read or computation.
    pub(crate) make: Box<dyn FnOnce() -> Chunk + Send>,
    /// The same rows where they already are (a mapped file), for a fused map to read in
    /// place instead of calling `make`.
    pub(crate) in_place: Option<InPlace>,
}

/// A source block's rows in the files that hold them: for each leaf, the file, the rows and
/// the leaf's shape in the block.
pub(crate) struct InPlace {
    leaves: Vec<(Arc<FileRows>, Range<usize>, Vec<usize>)>,
}

impl InPlace {
    /// Rows `rows` of every file, one leaf each.
    pub(crate) fn rows(files: impl Iterator<Item = Arc<FileRows>>, rows: Range<usize>) -> InPlace {
        let leaves = files
            .map(|f| {
                let mut shape = f.shape().to_vec();
                shape[0] = rows.len();
                (f, rows.clone(), shape)
            })
            .collect();
        InPlace { leaves }
    }

    /// The rows seen as batches of `size` (their count a multiple of it), as `batch` reshapes
    /// a block.
    pub(crate) fn batched(mut self, size: usize) -> InPlace {
        for (_, _, shape) in &mut self.leaves {
            shape[0] /= size.max(1);
            shape.insert(1, size);
        }
        self
    }

    /// The leaves, borrowed from the files' maps; `None` if a file is not mapped or its rows
    /// are not aligned for their dtype.
    pub(crate) fn leaves(&self) -> Option<Vec<TensorRef<'_>>> {
        self.leaves
            .iter()
            .map(|(file, rows, shape)| {
                let bytes = file.block_in_place(rows.start, rows.end)?;
                BorrowedTensor::new(file.dtype(), shape, bytes).map(TensorRef::Borrowed)
            })
            .collect()
    }
}

/// Elements a node has computed but not yet handed out, with the error that follows them.
#[derive(Default)]
pub(crate) struct Pending {
    parts: VecDeque<Block>,
    rows: usize,
    /// Reported once the rows before it are out.
    error: Option<Diagnostic>,
}

impl Pending {
    /// Rows waiting.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Whether an error waits behind the rows.
    pub(crate) fn has_error(&self) -> bool {
        self.error.is_some()
    }

    /// Whether nothing waits: no rows and no error.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0 && self.error.is_none()
    }

    /// Queues rows (nothing may be queued after an error).
    pub(crate) fn push(&mut self, b: Block) {
        debug_assert!(self.error.is_none());
        if !b.is_empty() {
            self.rows += b.len();
            self.parts.push_back(b);
        }
    }

    /// Puts rows back in front of everything queued.
    pub(crate) fn push_front(&mut self, b: Block) {
        if !b.is_empty() {
            self.rows += b.len();
            self.parts.push_front(b);
        }
    }

    /// Queues the error that follows the queued rows.
    pub(crate) fn push_error(&mut self, d: Diagnostic) {
        self.error.get_or_insert(d);
    }

    /// The next queued element; once none is left before it, the queued error (`Ok(None)`:
    /// nothing is queued). An element's error comes with the next call, as pulling element
    /// by element gives.
    pub(crate) fn pop_element(&mut self) -> Result<Option<Element>, Diagnostic> {
        let Some(Chunk { block, error }) = self.take(1) else {
            return Ok(None);
        };
        match block.into_rows().pop() {
            Some(e) => {
                if let Some(d) = error {
                    self.push_error(d);
                }
                Ok(Some(e))
            }
            None => error.map_or(Ok(None), Err),
        }
    }

    /// Up to `max` queued rows, and the error if everything before it is out.
    pub(crate) fn take(&mut self, max: usize) -> Option<Chunk> {
        self.take_enough(max, max)
    }

    /// Up to `max` queued rows, joining parts only while fewer than `enough` are taken; and
    /// the error if everything before it is out. A part that already holds `enough` rows is
    /// handed out alone: joining the next one to fill `max` would copy both on the
    /// consumer's thread, for a consumer that takes short blocks as well.
    pub(crate) fn take_enough(&mut self, max: usize, enough: usize) -> Option<Chunk> {
        // Usually one part fills the pull: it is handed out as it is, with no list to join.
        let mut first: Option<Block> = None;
        let mut more = Vec::new();
        let mut n = 0;
        while n < enough.min(max) {
            let Some(mut p) = self.parts.pop_front() else {
                break;
            };
            if n + p.len() > max {
                let front = p.split_front(max - n);
                self.parts.push_front(p);
                p = front;
            }
            n += p.len();
            match first {
                None => first = Some(p),
                Some(_) => more.push(p),
            }
        }
        self.rows -= n;
        let error = if self.rows == 0 {
            self.error.take()
        } else {
            None
        };
        if n == 0 && error.is_none() {
            return None;
        }
        let block = match first {
            None => Block::Rows(Vec::new()),
            Some(only) if more.is_empty() => only,
            Some(first) => {
                more.insert(0, first);
                Block::join(more)
            }
        };
        Some(Chunk { block, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(values: std::ops::Range<i64>) -> Block {
        let rows = values.end as usize - values.start as usize;
        Block::Stacked {
            leaves: vec![Tensor::from_vec(&[rows], values.collect::<Vec<i64>>()).unwrap()],
            rows,
        }
    }

    fn values(chunk: &Chunk) -> Vec<i64> {
        match &chunk.block {
            Block::Stacked { leaves, .. } => leaves[0]
                .as_array::<i64>()
                .unwrap()
                .iter()
                .copied()
                .collect(),
            Block::Rows(_) => panic!("expected stacked rows"),
        }
    }

    #[test]
    fn a_part_with_enough_rows_goes_out_alone_and_short_ones_are_joined() {
        let mut pending = Pending::default();
        pending.push(part(0..5));
        pending.push(part(5..10));
        pending.push(part(10..12));
        // Five rows are enough for a pull of up to 8 that asks for 4: no join.
        let c = pending.take_enough(8, 4).unwrap();
        assert_eq!(values(&c), (0..5).collect::<Vec<_>>());
        // Asking for 8 joins: the second part and the front of the third.
        let c = pending.take_enough(7, 7).unwrap();
        assert_eq!(values(&c), (5..12).collect::<Vec<_>>());
        assert!(pending.is_empty());
        pending.push(part(0..3));
        pending.push(part(3..9));
        // Fewer than `enough` in the first part: joined with the next, cut at `max`.
        let c = pending.take_enough(6, 4).unwrap();
        assert_eq!(values(&c), (0..6).collect::<Vec<_>>());
        assert_eq!(pending.rows(), 3);
    }
}
