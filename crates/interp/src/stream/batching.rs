//! `batch`, `padded_batch` and `unbatch`: nodes that regroup rows. `batch` over a
//! stacked block is a reshape (several whole batches at once); a batch of rows is stacked
//! by [`stack_rows`], which `crate::random_access` shares.

use super::base::{Stream, gather_rows};
use crate::Element;
use crate::block::{Block, Chunk, Later, Pending, Pull};
use crate::budget::Budget;
use crate::state::{Marks, NodeState};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_tensor::kernels;
use pipec_tensor::{Scalar, Tensor};

/// `batch(size, drop_remainder)`: consecutive rows stacked along a new first axis.
pub(super) struct Batch {
    input: Box<dyn Stream>,
    size: usize,
    drop_remainder: bool,
    span: Span,
    count: u64,
    /// Input rows read by a block pull beyond its whole batches (and the error after them).
    pending: Pending,
    /// Input rows pulled.
    pulled: u64,
    /// The input's state before pulls, by input row (see [`crate::state`]).
    marks: Marks,
    /// Whether to keep marks.
    track: bool,
    /// The bytes of one row of the last batch stacked from rows: batches of large rows
    /// are then stacked as the rows arrive ([`Batch::next_stacking`]).
    row_bytes: usize,
}

/// One component of a batch stacked as its rows arrive, and its first row of another
/// shape (position in the batch, shape).
type Component = (kernels::RowStacker, Option<(usize, Vec<usize>)>);

/// Batches of at least this many bytes of rows are stacked as the rows arrive: past the
/// cache, stacking rows only once all exist reads them back cold.
const STACK_AS_ROWS_ARRIVE: usize = 4 << 20;
/// Such a batch pulls about this many bytes of rows at a time.
const STACK_PIECE: usize = 1 << 20;
/// Room reserved up front for such a batch (a larger one grows as its rows arrive).
const STACK_RESERVE: usize = 256 << 20;

impl Batch {
    /// `batch(size, drop_remainder)` over `input`, whose next row is row `count` of the
    /// input (0 when opened; when resumed, the rows the batches delivered so far hold).
    pub(super) fn new(
        mut input: Box<dyn Stream>,
        size: usize,
        drop_remainder: bool,
        span: Span,
        count: u64,
        track: bool,
    ) -> Batch {
        input.stacks_rows(size);
        Batch {
            input,
            size,
            drop_remainder,
            span,
            count,
            pending: Pending::default(),
            pulled: count,
            marks: Marks::default(),
            track,
            row_bytes: 0,
        }
    }

    /// The next batch when its rows are large: pulled a piece at a time, each row copied
    /// into the batch as it arrives (`kernels::RowStacker`) and then dropped, so the next
    /// rows can reuse its memory while it is in cache. Rows, errors and their order are
    /// [`stack_rows`]'s: an upstream error before the batch is whole first, then per
    /// component a ragged row, then a batch too large.
    fn next_stacking(&mut self) -> Result<Option<Element>, Diagnostic> {
        let piece = (STACK_PIECE / self.row_bytes.max(1)).max(1);
        let reserve = (STACK_RESERVE / self.row_bytes.max(1)).clamp(1, self.size);
        let mut stacks: Vec<Component> = Vec::new();
        let mut stacked_blocks = false;
        let gathered = self.gather(piece, |block, before| {
            stacked_blocks |= matches!(block, Block::Stacked { .. });
            for (k, row) in block.into_rows().into_iter().enumerate() {
                if stacks.is_empty() {
                    stacks = row
                        .iter()
                        .map(|t| (kernels::RowStacker::new(t, reserve), None))
                        .collect();
                }
                for ((stack, ragged), t) in stacks.iter_mut().zip(&row) {
                    if ragged.is_none() && !stack.push(t) {
                        *ragged = Some((before + k, t.shape().to_vec()));
                    }
                }
            }
        });
        if stacked_blocks {
            // A source of stacked blocks after all: the next batches take them whole
            // ([`Batch::next`]), a view where a block is the batch, not a copy.
            self.row_bytes = 0;
        }
        let Some((first, have)) = gathered? else {
            return Ok(None);
        };
        let n_leaves = stacks.len();
        let mut out = Vec::with_capacity(n_leaves);
        for (leaf, (stack, ragged)) in stacks.into_iter().enumerate() {
            if let Some((k, shape)) = ragged {
                return Err(ragged_batch(
                    stack.row_shape(),
                    &shape,
                    leaf,
                    n_leaves,
                    first,
                    k,
                    self.span,
                ));
            }
            out.push(stack.finish().map_err(|e| {
                Diagnostic::error(size_code(&e), e.to_string()).with_label(self.span, "")
            })?);
        }
        if self.row_bytes != 0 {
            self.row_bytes = out.iter().map(|t| t.nbytes()).sum::<usize>() / have;
        }
        Ok(Some(out))
    }

    /// Pulls the rows of the next batch, at most `piece` at a time, handing each block to
    /// `take` with the number of rows before it. Gives the batch's first row and its row
    /// count; `None` when there is no batch (the input is done, or only a remainder to
    /// drop); or the upstream error met before the batch is whole (one met after it comes
    /// with the next batch).
    fn gather(
        &mut self,
        piece: usize,
        mut take: impl FnMut(Block, usize),
    ) -> Result<Option<(u64, usize)>, Diagnostic> {
        let mut have = 0;
        while have < self.size {
            let Some(Chunk { block, error }) = self.pull(piece.min(self.size - have)) else {
                break;
            };
            let rows = block.len();
            take(block, have);
            have += rows;
            if let Some(d) = error {
                if have < self.size {
                    return Err(d);
                }
                self.pending.push_error(d);
            }
        }
        if have == 0 || (self.drop_remainder && have < self.size) {
            return Ok(None);
        }
        let first = self.count;
        self.count += have as u64;
        Ok(Some((first, have)))
    }

    /// Up to `max` rows: first those left over from a block pull, then the input's.
    fn pull(&mut self, max: usize) -> Option<Chunk> {
        if !self.pending.is_empty() {
            return self.pending.take(max);
        }
        self.pull_input(max)
    }

    /// Marks the input's state before a pull, when one is due.
    fn mark_input(&mut self) {
        if self.track && self.marks.due(self.pulled) {
            self.marks.push(self.pulled, self.input.save(), 0);
        }
    }

    /// Up to `max` rows from the input, marking its state first when one is due.
    fn pull_input(&mut self, max: usize) -> Option<Chunk> {
        self.mark_input();
        let chunk = self.input.next_block(max);
        if let Some(c) = &chunk {
            self.pulled += c.block.len() as u64;
        }
        chunk
    }
}

impl Stream for Batch {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        if self.row_bytes.saturating_mul(self.size) >= STACK_AS_ROWS_ARRIVE {
            return self.next_stacking();
        }
        // A block of exactly the batch size is the batch itself: for a contiguous source,
        // a slice of it, copied nowhere.
        let mut parts = Vec::new();
        let Some((first, _)) = self.gather(self.size, |block, _| parts.push(block))? else {
            return Ok(None);
        };
        match Block::join(parts) {
            Block::Stacked { leaves, .. } => Ok(Some(leaves)),
            Block::Rows(rows) => {
                self.row_bytes = rows
                    .first()
                    .map_or(0, |r| r.iter().map(Tensor::nbytes).sum());
                stack_rows(rows, self.span, first).map(Some)
            }
        }
    }

    /// Several whole batches at once: `k * size` stacked input rows are `k` batches, the
    /// same buffers seen with one more axis (no copy). Rows short of a whole batch wait for
    /// the next pull, which completes them one batch at a time.
    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        if max < 2 {
            return gather_rows(|| self.next(), max);
        }
        if !self.pending.is_empty() {
            // Rows short of a batch are left from the last pull: complete that one batch
            // (the only rows copied), and leave the whole batches after it to the next
            // pull, where they are a view of the input's block again.
            return gather_rows(|| self.next(), 1);
        }
        let chunk = self.pull_input(max.saturating_mul(self.size))?;
        self.whole_batches(chunk, max)
    }

    /// Whole batches of a source's block that a lane reads: the batches' position is taken
    /// now, the rows read and reshaped by the lane ([`batches_made`]). A single batch is
    /// read now unless a map can read its rows in place: a large one is already read in
    /// parallel parts on the kernel threads, faster than by one lane.
    fn next_pull(&mut self, max: usize) -> Option<Pull> {
        if max == 0 || !self.pending.is_empty() {
            return self.next_block(max).map(Pull::Now);
        }
        self.mark_input();
        let later = match self.input.next_pull(max.saturating_mul(self.size))? {
            Pull::Now(chunk) => {
                self.pulled += chunk.block.len() as u64;
                return self.whole_batches(chunk, max).map(Pull::Now);
            }
            Pull::Later(later) => later,
        };
        self.pulled += later.rows as u64;
        if later.rows % self.size != 0 || (max < 2 && later.in_place.is_none()) {
            // The last rows: whole batches, then a part that waits for the next pull.
            return self.whole_batches((later.make)(), max).map(Pull::Now);
        }
        self.count += later.rows as u64;
        let size = self.size;
        let make = later.make;
        Some(Pull::Later(Later {
            rows: later.rows / size,
            lead: later.rows as u64,
            bytes: later.bytes,
            make: Box::new(move || batches_made(make(), size)),
            in_place: later.in_place.map(|p| p.batched(size)),
        }))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        // Rows waiting in `pending` were read ahead: the batches delivered used `count` rows.
        let (input, skip) = if self.pending.is_empty() && self.pulled == self.count {
            (self.input.save()?, 0)
        } else {
            let (st, skip, _) = self.marks.at(self.count)?;
            (st, skip)
        };
        Ok(NodeState::Batch {
            input: Box::new(input),
            skip,
            count: self.count,
        })
    }
}

/// The whole batches in `rows` stacked rows: the same buffers seen with one more axis.
fn reshape_batches(leaves: &[Tensor], rows: usize, size: usize) -> Option<Vec<Tensor>> {
    let whole = rows / size;
    leaves
        .iter()
        .map(|t| {
            let mut shape = Vec::with_capacity(t.rank() + 1);
            shape.extend([whole, size]);
            shape.extend_from_slice(&t.shape()[1..]);
            kernels::reshape(t, &shape).ok()
        })
        .collect()
}

/// A lane's batches of a source block it read: the promised whole batches, or, when the read
/// failed part way, the whole batches before the failure and then its error (a batch cut
/// short by an error is never handed out, as pulling element by element gives).
fn batches_made(chunk: Chunk, size: usize) -> Chunk {
    let Chunk { mut block, error } = chunk;
    let whole = block.len() / size;
    if whole * size < block.len() {
        block = block.split_front(whole * size);
    }
    let block = match block {
        Block::Stacked { leaves, rows } if rows > 0 => match reshape_batches(&leaves, rows, size) {
            Some(leaves) => Block::Stacked {
                leaves,
                rows: whole,
            },
            None => Block::Rows(Vec::new()),
        },
        _ => Block::Rows(Vec::new()),
    };
    Chunk { block, error }
}

impl Batch {
    /// Several whole batches out of a pulled `chunk` of input rows (see [`Stream::next_block`]).
    fn whole_batches(&mut self, chunk: Chunk, max: usize) -> Option<Chunk> {
        let Chunk { mut block, error } = chunk;
        let whole = block.len() / self.size;
        if whole == 0 || !matches!(block, Block::Stacked { .. }) {
            self.pending.push(block);
            if let Some(d) = error {
                self.pending.push_error(d);
            }
            return gather_rows(|| self.next(), max);
        }
        let rest = block.len() - whole * self.size;
        let front = if rest > 0 {
            let front = block.split_front(whole * self.size);
            self.pending.push(block);
            front
        } else {
            block
        };
        if let Some(d) = error {
            self.pending.push_error(d);
        }
        let Block::Stacked { leaves, .. } = front else {
            unreachable!("checked stacked above")
        };
        let batches = reshape_batches(&leaves, whole * self.size, self.size);
        let Some(batches) = batches else {
            // Not expected for a stacked block; then batch the rows one batch at a time.
            self.pending.push_front(Block::Stacked {
                leaves,
                rows: whole * self.size,
            });
            return gather_rows(|| self.next(), max);
        };
        self.count += (whole * self.size) as u64;
        Some(Chunk::ok(Block::Stacked {
            leaves: batches,
            rows: whole,
        }))
    }
}

/// The next `size` elements, fewer at the end; `None` when there are none, or when a short
/// final batch is to be dropped.
fn pull_rows(
    input: &mut dyn Stream,
    size: usize,
    drop_remainder: bool,
    span: Span,
) -> Result<Option<Vec<Element>>, Diagnostic> {
    // The size is the user's: reserve only what a small batch needs, grow with the data.
    let mut rows: Vec<Element> = Vec::with_capacity(size.min(1024));
    let mut budget = Budget::new(span, "batch");
    while rows.len() < size {
        match input.next()? {
            Some(e) => {
                budget.add(&e)?;
                rows.push(e);
            }
            None => break,
        }
    }
    if rows.is_empty() || (drop_remainder && rows.len() < size) {
        return Ok(None);
    }
    Ok(Some(rows))
}

/// The code for a kernel failure while batching: the size limits, else a ragged batch.
fn size_code(e: &kernels::KernelError) -> Code {
    pipec_ir::kernel_error_code(e).unwrap_or(Code::RaggedBatch)
}

/// Stacks each leaf of `rows` along a new first axis; a ragged leaf is a diagnostic.
pub(crate) fn stack_rows(
    rows: Vec<Element>,
    span: Span,
    first: u64,
) -> Result<Element, Diagnostic> {
    let n_leaves = rows[0].len();
    let mut out = Vec::with_capacity(n_leaves);
    for leaf in 0..n_leaves {
        let parts: Vec<Tensor> = rows.iter().map(|r| r[leaf].clone()).collect();
        if let Some(k) = parts.iter().position(|p| p.shape() != parts[0].shape()) {
            return Err(ragged_batch(
                parts[0].shape(),
                parts[k].shape(),
                leaf,
                n_leaves,
                first,
                k,
                span,
            ));
        }
        out.push(
            kernels::stack(&parts, 0).map_err(|e| {
                Diagnostic::error(size_code(&e), e.to_string()).with_label(span, "")
            })?,
        );
    }
    Ok(out)
}

/// A batch's row `k` of component `leaf` has `shape`, not the first row's `expected`.
fn ragged_batch(
    expected: &[usize],
    shape: &[usize],
    leaf: usize,
    n_leaves: usize,
    first: u64,
    k: usize,
    span: Span,
) -> Diagnostic {
    let which = if n_leaves > 1 {
        format!("component {leaf} of ")
    } else {
        String::new()
    };
    Diagnostic::error(
        Code::RaggedBatch,
        format!(
            "cannot batch {which}elements of different shapes: {expected:?} (element {first}) and {shape:?} (element {})",
            first + k as u64
        ),
    )
    .with_label(span, "this batch")
    .with_help("use `padded_batch(n)` to pad each batch to its longest element")
}

/// `padded_batch(size, padded_shapes, padding_values, drop_remainder)`: rows padded to a
/// common shape, then stacked.
pub(super) struct PaddedBatch {
    pub(super) input: Box<dyn Stream>,
    pub(super) size: usize,
    pub(super) shapes: Vec<Option<Vec<Option<usize>>>>,
    pub(super) values: Vec<Scalar>,
    pub(super) drop_remainder: bool,
    pub(super) span: Span,
}

impl Stream for PaddedBatch {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        let Some(rows) = pull_rows(
            self.input.as_mut(),
            self.size,
            self.drop_remainder,
            self.span,
        )?
        else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for leaf in 0..rows[0].len() {
            let rank = rows[0][leaf].rank();
            let longest: Vec<usize> = (0..rank)
                .map(|ax| rows.iter().map(|r| r[leaf].shape()[ax]).max().unwrap_or(0))
                .collect();
            let target: Vec<usize> = match &self.shapes[leaf] {
                None => longest.clone(),
                Some(dims) => dims
                    .iter()
                    .zip(&longest)
                    .map(|(d, l)| d.unwrap_or(*l))
                    .collect(),
            };
            // The padded rows are all held before they are stacked: count them first.
            let padded_bytes = target.iter().fold(
                (rows.len() as u128) * rows[0][leaf].dtype().size_bytes() as u128,
                |acc, d| acc.saturating_mul(*d as u128),
            );
            if let Err(limit) = pipec_tensor::limits::check_bytes(padded_bytes.saturating_mul(2)) {
                return Err(Diagnostic::error(
                    Code::MemoryLimit,
                    format!("padding this batch takes {padded_bytes} bytes twice (the padded rows, then the batch), more than the memory limit of {limit} bytes (--max-memory)"),
                )
                .with_label(self.span, "this padded batch outgrew the limit")
                .with_help("make the batch or the padded shape smaller, or raise `--max-memory`"));
            }
            let mut padded = Vec::new();
            for r in &rows {
                let t = &r[leaf];
                if t.shape()
                    .iter()
                    .zip(&target)
                    .any(|(have, want)| have > want)
                {
                    return Err(Diagnostic::error(
                        Code::RaggedBatch,
                        format!("an element of shape {:?} does not fit the padded shape {target:?}", t.shape()),
                    )
                    .with_label(self.span, "")
                    .with_help("make the padded shape larger, or leave it out to pad to the longest element"));
                }
                // Strings pad with "" (as TF's `padded_batch`); a number has a scalar.
                let base = if t.dtype().is_str() {
                    kernels::zeros(&target, t.dtype())
                } else {
                    kernels::fill(&target, self.values[leaf])
                };
                let mut base = base.map_err(|e| {
                    Diagnostic::error(size_code(&e), e.to_string()).with_label(self.span, "")
                })?;
                base = pipec_tensor::kernels::paste(&base, t);
                padded.push(base);
            }
            out.push(kernels::stack(&padded, 0).map_err(|e| {
                Diagnostic::error(size_code(&e), e.to_string()).with_label(self.span, "")
            })?);
        }
        Ok(Some(out))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::PaddedBatch {
            input: Box::new(self.input.save()?),
        })
    }
}

/// `unbatch()`: each input element's rows along its first axis, one by one.
pub(super) struct Unbatch {
    input: Box<dyn Stream>,
    current: Option<Element>,
    next: usize,
    n: usize,
    span: Span,
    /// Rows handed out.
    delivered: u64,
    /// The input's state before each batch pulled, by output row (see [`crate::state`]).
    marks: Marks,
    /// Whether to keep marks.
    track: bool,
}

impl Unbatch {
    /// `unbatch()` over `input`, before its first batch.
    pub(super) fn new(input: Box<dyn Stream>, span: Span, track: bool) -> Unbatch {
        Unbatch {
            input,
            current: None,
            next: 0,
            n: 0,
            span,
            delivered: 0,
            marks: Marks::default(),
            track,
        }
    }
}

impl Stream for Unbatch {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        loop {
            if let Some(cur) = &self.current
                && self.next < self.n
            {
                let i = self.next;
                self.next += 1;
                self.delivered += 1;
                return Ok(Some(cur.iter().map(|t| t.index_axis0(i)).collect()));
            }
            self.current = None;
            if self.track && self.marks.due(self.delivered) {
                self.marks.push(self.delivered, self.input.save(), 0);
            }
            let Some(e) = self.input.next()? else {
                return Ok(None);
            };
            let firsts: Vec<Option<usize>> = e.iter().map(|t| t.shape().first().copied()).collect();
            if firsts.iter().any(Option::is_none) || firsts.windows(2).any(|w| w[0] != w[1]) {
                let shapes: Vec<String> = e.iter().map(|t| format!("{:?}", t.shape())).collect();
                return Err(Diagnostic::error(
                    Code::RuntimeShapeMismatch,
                    format!(
                        "`unbatch` needs components with one length along axis 0, found shapes {}",
                        shapes.join(", ")
                    ),
                )
                .with_label(self.span, "in this `unbatch`"));
            }
            self.n = firsts.first().copied().flatten().unwrap_or(0);
            self.next = 0;
            self.current = Some(e);
        }
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        let (input, skip) = if self.current.is_none() {
            (self.input.save()?, 0)
        } else {
            let (st, skip, _) = self.marks.at(self.delivered)?;
            (st, skip)
        };
        Ok(NodeState::Unbatch {
            input: Box::new(input),
            skip,
        })
    }
}
