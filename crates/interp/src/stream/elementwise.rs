//! Per-element nodes: each output element comes from one input element, with nothing
//! buffered beyond a chunk. `ParMap` (a parallel `map` that cannot run on blocks ahead),
//! `take`, `skip`, `enumerate`, `shard`; every other `map` and `filter` is a
//! `crate::lanes::LaneStage`.

use super::base::{Stream, element_count};
use crate::Element;
use crate::block::{Block, Chunk, Pending};
use crate::func::{CompiledFn, FnState};
use crate::lanes::Crew;
use crate::state::{Marks, NodeState};
use pipec_diag::{Code, Diagnostic};
use pipec_tensor::Tensor;
use pipec_tensor::kernels::SharedRows;
use std::sync::{Arc, OnceLock};

/// A parallel `map`: pulls a chunk, has its lanes (each with its own host instances) take
/// its elements a piece at a time, and emits results in input order. Threads wake once per
/// chunk, never per element. While the consumer works on a chunk's results (a `batch`
/// stacking them), the helpers already compute the next chunk, which the consumer's thread
/// joins when it comes back for it. Errors are kept in place: an error in element k is
/// reported only after elements before k were emitted, and never if the consumer stops
/// before k (`take`); an input error is likewise reported after the chunk read before it.
pub(crate) struct ParMap {
    input: Box<dyn Stream>,
    f: Arc<CompiledFn>,
    states: Vec<FnState>,
    /// Results computed and not yet handed out, and the error after them.
    ready: Pending,
    count: u64,
    /// The node's epoch (for random ops).
    epoch: u64,
    done: bool,
    /// An error from the input, reported once the elements read before it are out.
    input_error: Option<Diagnostic>,
    /// Elements handed out (this node's outputs since it was opened).
    delivered: u64,
    /// The input's state before chunk pulls, by output position (see [`crate::state`]).
    marks: Marks,
    /// Whether to keep marks.
    track: bool,
    /// Chunks run on the consumer's thread (until one takes [`PARALLEL_AFTER`]).
    inline: bool,
    /// The size of the next chunk run on the consumer's thread: from one element, doubled
    /// per chunk, so that an expensive function goes to the lanes after one element.
    inline_len: usize,
    /// The largest result seen, in bytes: what bounds a chunk's results in memory.
    result_bytes: usize,
    /// The chunk the helpers are computing ahead, if any.
    flight: Option<Flight>,
    /// The run's helpers, which run every lane but the consumer's.
    crew: Arc<Crew>,
    /// The rows its consumer stacks at a time (a `batch` over this map): chunks then end on
    /// whole batches, and the lanes stack their results into them ([`SharedRows`]), when
    /// [`ParMap::stacking`] says the batches are small enough.
    stack: Option<usize>,
}

/// Elements handed to each lane per wake-up, at most.
const PER_LANE_CHUNK: usize = 64;

/// ... and at most this many bytes of results per chunk (at least [`MIN_PER_LANE`] elements
/// per lane): W6's 64 decoded images per lane held 77 MB at two threads, and glibc's
/// per-thread heaps then grew and shrank with every chunk (0.2–0.45 s of page faults in a
/// 1.3 s run; 0.1 s with 16 per lane, at half the peak memory).
const CHUNK_BYTES: usize = 16 << 20;
/// The fewest elements per lane in a chunk, whatever their size.
const MIN_PER_LANE: usize = 4;

/// Chunks are stacked on the lanes (cut at whole batches) only for batches of at most this
/// many bytes of results ...
const STACKED_BATCH_BYTES: usize = 64 << 20;
/// ... and this many elements: a chunk is then one batch or more, and two chunks (the one
/// handed out and the one computed ahead) are in memory at once, with their input elements.
const STACKED_BATCH_ROWS: usize = 4096;

/// A chunk that takes this long on one thread is worth splitting over the lanes: handing a
/// part to a helper and waking it costs microseconds to tens of microseconds.
const PARALLEL_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

impl ParMap {
    /// `f` over `input` on `lanes` lanes (the consumer's thread and `crew`'s helpers), whose
    /// next input element has dataset index `count`.
    pub(crate) fn new(
        input: Box<dyn Stream>,
        f: Arc<CompiledFn>,
        (lanes, crew): (usize, Arc<Crew>),
        count: u64,
        epoch: u64,
        track: bool,
    ) -> ParMap {
        ParMap {
            crew,
            input,
            f,
            states: (0..lanes).map(|_| FnState::default()).collect(),
            ready: Pending::default(),
            count,
            epoch,
            done: false,
            input_error: None,
            delivered: 0,
            marks: Marks::default(),
            track,
            inline: true,
            inline_len: 1,
            result_bytes: 0,
            flight: None,
            stack: None,
        }
    }
}

impl Stream for ParMap {
    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        // Nothing computed ahead: the input's own position is this node's.
        let (input, skip, count) = if self.ready.is_empty() && self.flight.is_none() {
            (self.input.save()?, 0, self.count)
        } else {
            self.marks.at(self.delivered)?
        };
        Ok(NodeState::Stage {
            input: Box::new(input),
            skip,
            count,
            epoch: self.epoch,
        })
    }

    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        self.fill();
        let next = self.ready.pop_element();
        if matches!(next, Ok(Some(_))) {
            self.delivered += 1;
        }
        next
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        self.fill();
        // A chunk's results go out as they came, never joined to the next chunk's (which
        // would copy both): with a `batch` over the map, a chunk of whole batches.
        let chunk = self.ready.take_enough(max, 1)?;
        self.delivered += chunk.block.len() as u64;
        Some(chunk)
    }

    fn stacks_rows(&mut self, rows: usize) {
        self.stack = Some(rows.max(1));
    }
}

impl ParMap {
    /// Computes results until some (or the error after the last of them) are ready, or
    /// the input is done.
    fn fill(&mut self) {
        while self.ready.is_empty() {
            if let Some(flight) = self.flight.take() {
                let at = self.delivered;
                let (results, rows) = self.join(flight);
                let failed = results.iter().any(|r| matches!(r, Outcome::Failed(_)));
                if !failed && !self.done {
                    // The next chunk goes to the helpers now, while the consumer is busy
                    // with these results; its first element is output number `at`.
                    let at = at + results.len() as u64;
                    if let Some(chunk) = self.pull(at, self.chunk_len(at)) {
                        self.flight = Some(self.launch(chunk));
                    }
                }
                self.keep(results, rows);
                continue;
            }
            if let Some(d) = self.input_error.take() {
                self.ready.push_error(d);
                return;
            }
            if self.done {
                return;
            }
            let want = if self.inline {
                self.inline_len
            } else {
                self.chunk_len(self.delivered)
            };
            let Some((chunk, starts)) = self.pull(self.delivered, want) else {
                continue;
            };
            if self.inline {
                // On this thread until a chunk shows that threads pay off (a cheap function
                // would spend more on starting them than on its elements).
                self.inline_len = (2 * self.inline_len).min(self.chunk_len(self.delivered));
                let t = std::time::Instant::now();
                let out = run_part(
                    &self.f,
                    &mut self.states[0],
                    (chunk, &starts),
                    self.epoch,
                    |_, e| Outcome::Row(e),
                );
                if t.elapsed() >= PARALLEL_AFTER {
                    self.inline = false;
                }
                self.keep(out, None);
            } else {
                self.flight = Some(self.launch((chunk, starts)));
            }
        }
    }

    /// Reads up to `want` elements and their dataset indices; `None` when the input had
    /// none left (an input error is then in `input_error`). `at` is the output position of the
    /// first, where a checkpoint mark (the input's state before them) is due.
    fn pull(&mut self, at: u64, want: usize) -> Option<(Vec<Element>, Vec<u64>)> {
        if self.track && self.marks.due(at) {
            self.marks.push(at, self.input.save(), self.count);
        }
        let mut chunk = Vec::with_capacity(want);
        while chunk.len() < want {
            match self.input.next() {
                Ok(Some(e)) => chunk.push(e),
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(d) => {
                    self.input_error = Some(d);
                    self.done = true;
                    break;
                }
            }
        }
        if chunk.is_empty() {
            return None;
        }
        // The dataset index of each item's first element (a batched map's items are batches).
        let mut starts = Vec::with_capacity(chunk.len());
        for e in &chunk {
            starts.push(self.count);
            self.count += element_count(&self.f, e);
        }
        Some((chunk, starts))
    }

    /// Elements per chunk sent to the lanes, the first being output number `at`:
    /// [`PER_LANE_CHUNK`] per lane, fewer for large results ([`CHUNK_BYTES`]); under a
    /// `batch`, as many as end the chunk on a whole batch (at least the rest of one).
    fn chunk_len(&self, at: u64) -> usize {
        let lanes = self.states.len();
        let by_bytes = CHUNK_BYTES / self.result_bytes.max(1);
        let len = by_bytes.clamp(lanes * MIN_PER_LANE, lanes * PER_LANE_CHUNK);
        match self.stacking() {
            Some(size) => {
                let into_batch = (at % size as u64) as usize;
                (len / size).max(1) * size - into_batch
            }
            None => len,
        }
    }

    /// The batch size its chunks are stacked in, if they are: under a `batch` of at most
    /// [`STACKED_BATCH_ROWS`] results of at most [`STACKED_BATCH_BYTES`] in all (as far
    /// as the results so far tell: chunks go to the lanes only after one ran here).
    fn stacking(&self) -> Option<usize> {
        self.stack.filter(|&size| {
            size <= STACKED_BATCH_ROWS
                && size.saturating_mul(self.result_bytes) <= STACKED_BATCH_BYTES
        })
    }

    /// Queues `results` for output: nothing after the first error, and the rows stacked
    /// on the lanes (`rows`) as one block when they all were.
    fn keep(&mut self, results: Vec<Outcome>, rows: Option<SharedRows>) {
        let mut error = None;
        let mut kept = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Outcome::Failed(d) => {
                    error = Some(d);
                    break;
                }
                r => kept.push(r),
            }
        }
        let n = kept.len();
        let block = match rows {
            Some(rows) if n > 0 && kept.iter().all(|r| matches!(r, Outcome::Stacked)) => rows
                .finish(n)
                .map(|leaves| Block::Stacked { leaves, rows: n }),
            // Rows apart: results of another layout than the stack's (those that fit it
            // copied back out), or no stack at all.
            rows => kept
                .into_iter()
                .enumerate()
                .map(|(k, r)| match r {
                    Outcome::Row(e) => Some(e),
                    _ => rows.as_ref()?.row(k),
                })
                .collect::<Option<Vec<Element>>>()
                .map(Block::Rows),
        };
        match block {
            Some(block) => {
                let bytes = match &block {
                    Block::Stacked { leaves, rows } => {
                        leaves.iter().map(Tensor::nbytes).sum::<usize>() / rows
                    }
                    Block::Rows(elements) => elements
                        .iter()
                        .map(|e| e.iter().map(Tensor::nbytes).sum())
                        .max()
                        .unwrap_or(0),
                };
                self.result_bytes = self.result_bytes.max(bytes);
                self.ready.push(block);
            }
            // Stacked rows whose stack is gone: never expected, since every chunk the
            // lanes stacked into comes back with its stack.
            None => error = Some(lost_rows()),
        }
        if let Some(d) = error {
            // Nothing after the first error in order is ever emitted.
            self.ready.push_error(d);
            self.input_error = None;
            self.done = true;
            if let Some(f) = self.flight.take() {
                f.shared.cancel();
            }
        }
    }

    /// Hands `chunk` to the helpers (every lane but the consumer's), who start on it at once.
    fn launch(&mut self, (chunk, starts): (Vec<Element>, Vec<u64>)) -> Flight {
        let n = chunk.len();
        // No more lanes than threads to run them: the consumer's and the helpers'.
        let lanes = self.states.len().min(self.crew.helpers() + 1);
        let shared = Arc::new(Shared {
            f: self.f.clone(),
            epoch: self.epoch,
            starts,
            items: std::sync::Mutex::new(chunk.into_iter().map(Some).collect()),
            results: std::sync::Mutex::new((0..n).map(|_| None).collect()),
            next: std::sync::atomic::AtomicUsize::new(0),
            failed: std::sync::atomic::AtomicUsize::new(usize::MAX),
            // Pieces small enough that the threads end a chunk together (W6 at 2 threads:
            // with 8 pieces per lane about 20% of the run was serial, with 32 about 16%), large
            // enough that taking one (a lock and an atomic add) costs little next to the
            // calls: a chunk goes to the lanes only once one took a millisecond.
            piece: n.div_ceil(32 * lanes).max(1),
            stack: self.stacking().map(|_| OnceLock::new()),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        for lane in 1..lanes {
            let mut state = std::mem::take(&mut self.states[lane]);
            let (shared, tx) = (shared.clone(), tx.clone());
            let work = Box::new(move || {
                let _working = pipec_tensor::busy::Working::begin();
                shared.work(&mut state);
                // Let go of the chunk before saying so: once every helper has, the consumer
                // owns it, and with it the rows stacked into it (see `join`).
                drop(shared);
                let _ = tx.send((lane, state));
            });
            if self.crew.spawn(work).is_err() {
                // No helper thread could start: the consumer's thread does it all (the
                // lane's state, dropped with the task, starts afresh when next used).
                break;
            }
        }
        Flight { shared, rx }
    }

    /// The consumer's thread takes pieces of `flight` until none are left, then waits for
    /// the helpers; the results in order (up to the first error) and the rows the lanes
    /// stacked. A piece a panicking helper took yields one internal error in its place.
    fn join(&mut self, flight: Flight) -> (Vec<Outcome>, Option<SharedRows>) {
        let Flight { shared, rx } = flight;
        let mut state = std::mem::take(&mut self.states[0]);
        // A panic here is reported like a helper's: as an internal error in its place.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shared.work(&mut state)));
        self.states[0] = state;
        {
            let _waiting = pipec_tensor::busy::Waiting::begin();
            // Every helper's task holds a sender: the channel closes when all are done.
            while let Ok((lane, state)) = rx.recv() {
                self.states[lane] = state;
            }
        }
        // Each helper let go of the chunk before its sender, so it is this thread's alone
        // now; were it not, its stacked rows would be lost (an internal error, in `keep`).
        let (results, rows) = match Arc::try_unwrap(shared) {
            Ok(shared) => (
                shared
                    .results
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                shared.stack.and_then(OnceLock::into_inner).flatten(),
            ),
            Err(shared) => (
                std::mem::take(
                    &mut *shared
                        .results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                ),
                None,
            ),
        };
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Some(r) => {
                    let failed = matches!(r, Outcome::Failed(_));
                    out.push(r);
                    if failed {
                        break;
                    }
                }
                None => {
                    // Skipped after an error (which came before it, so the loop ended
                    // there) or taken by a lane that panicked.
                    out.push(Outcome::Failed(Diagnostic::error(
                        Code::WrongKind,
                        "internal error: a map lane panicked",
                    )));
                    break;
                }
            }
        }
        (out, rows)
    }
}

impl Drop for ParMap {
    fn drop(&mut self) {
        // A chunk being computed ahead is no longer wanted.
        if let Some(f) = &self.flight {
            f.shared.cancel();
        }
    }
}

/// Rows the lanes stacked that are gone: an internal error, never expected.
fn lost_rows() -> Diagnostic {
    Diagnostic::error(
        Code::WrongKind,
        "internal error: rows a map lane stacked were lost",
    )
}

/// A chunk on its way through the lanes.
struct Flight {
    shared: Arc<Shared>,
    /// Each helper's lane and state, sent back when it finds no piece left.
    rx: std::sync::mpsc::Receiver<(usize, FnState)>,
}

/// One element's result.
enum Outcome {
    /// Kept apart.
    Row(Element),
    /// Written into the chunk's [`SharedRows`], at its position in the chunk.
    Stacked,
    /// Its call failed.
    Failed(Diagnostic),
}

/// A chunk's elements and results, shared by the threads computing it.
struct Shared {
    f: Arc<CompiledFn>,
    epoch: u64,
    starts: Vec<u64>,
    items: std::sync::Mutex<Vec<Option<Element>>>,
    results: std::sync::Mutex<Vec<Option<Outcome>>>,
    /// The first element no thread has taken yet.
    next: std::sync::atomic::AtomicUsize,
    /// The first element whose call failed (`usize::MAX`: none yet): pieces after it are
    /// never computed, since nothing after an error is emitted.
    failed: std::sync::atomic::AtomicUsize,
    /// Elements taken at a time.
    piece: usize,
    /// Under a `batch`: the chunk's rows stacked, laid out like its first result (made by
    /// the lane that has it; `None` inside when they cannot be: `str` leaves).
    stack: Option<OnceLock<Option<SharedRows>>>,
}

impl Shared {
    /// Takes pieces and computes them with `state` until none are left, each result
    /// stacked, when the chunk is, by the lane that computed it.
    fn work(&self, state: &mut FnState) {
        use std::sync::atomic::Ordering::SeqCst;
        let n = self.starts.len();
        loop {
            let from = self.next.fetch_add(self.piece, SeqCst);
            if from >= n || from > self.failed.load(SeqCst) {
                return;
            }
            let to = (from + self.piece).min(n);
            let items: Vec<Element> = {
                let mut items = self
                    .items
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                items[from..to]
                    .iter_mut()
                    .map(|e| e.take().expect("each piece is taken once"))
                    .collect()
            };
            let out = run_part(
                &self.f,
                state,
                (items, &self.starts[from..to]),
                self.epoch,
                |k, e| self.stacked(from + k, e),
            );
            if out.last().is_some_and(|r| matches!(r, Outcome::Failed(_))) {
                self.failed.fetch_min(from + out.len() - 1, SeqCst);
            }
            let mut results = self
                .results
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (slot, r) in results[from..].iter_mut().zip(out) {
                *slot = Some(r);
            }
        }
    }

    /// Result `e` of element `at`, stacked into the chunk's rows when it is stacked and
    /// `e` fits them: copied while it is in this lane's cache, and dropped, so the lane's
    /// next result reuses its memory.
    fn stacked(&self, at: usize, e: Element) -> Outcome {
        let Some(stack) = &self.stack else {
            return Outcome::Row(e);
        };
        match stack.get_or_init(|| SharedRows::new(&e, self.starts.len())) {
            Some(rows) if rows.put(at, &e) => Outcome::Stacked,
            _ => Outcome::Row(e),
        }
    }

    /// No piece is taken from now on (the ones being computed finish).
    fn cancel(&self) {
        self.next
            .store(usize::MAX / 2, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Elements through `f` with a lane's `state`, stopping at the first error (the elements
/// after it in this lane can never be reported); each result becomes an [`Outcome`] by
/// `kept` (given its position in `part`).
fn run_part(
    f: &CompiledFn,
    state: &mut FnState,
    (part, starts): (Vec<Element>, &[u64]),
    epoch: u64,
    mut kept: impl FnMut(usize, Element) -> Outcome,
) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(part.len());
    for (k, (e, &start)) in part.into_iter().zip(starts).enumerate() {
        let outcome = match f.call(state, e, start, epoch) {
            Ok(e) => kept(k, e),
            Err(d) => Outcome::Failed(d),
        };
        let failed = matches!(outcome, Outcome::Failed(_));
        out.push(outcome);
        if failed {
            break;
        }
    }
    out
}

/// `take(n)`: the first `left` elements (all for a negative `n`).
pub(super) struct Take {
    pub(super) input: Box<dyn Stream>,
    pub(super) left: u64,
}

impl Stream for Take {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.input.next()
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        if self.left == 0 {
            return None;
        }
        let want = (max as u64).min(self.left) as usize;
        let mut chunk = self.input.next_block(want)?;
        self.left = self.left.saturating_sub(chunk.block.len() as u64);
        if self.left == 0 {
            // Element by element, `take` would stop before reaching the error.
            chunk.error = None;
        }
        Some(chunk)
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Take {
            input: Box::new(self.input.save()?),
            left: self.left,
        })
    }
}

/// `skip(n)`: the elements after the first `left` (none for a negative `n`).
pub(super) struct Skip {
    pub(super) input: Box<dyn Stream>,
    pub(super) left: u64,
}

impl Stream for Skip {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        while self.left > 0 {
            self.left -= 1;
            if self.input.next()?.is_none() {
                self.left = 0;
                return Ok(None);
            }
        }
        self.input.next()
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Skip {
            input: Box::new(self.input.save()?),
            left: self.left,
        })
    }
}

/// `enumerate(start)`: each element behind its `i64[]` index.
pub(super) struct Enumerate {
    pub(super) input: Box<dyn Stream>,
    pub(super) next: i64,
}

impl Stream for Enumerate {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        let Some(e) = self.input.next()? else {
            return Ok(None);
        };
        let mut out = vec![Tensor::scalar(self.next)];
        // Past i64::MAX the count wraps, as int64 arithmetic does in TensorFlow.
        self.next = self.next.wrapping_add(1);
        out.extend(e);
        Ok(Some(out))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Enumerate {
            input: Box::new(self.input.save()?),
            next: self.next,
        })
    }
}

/// `shard(num, index)`: the elements at positions `index`, `index + num`, ...
pub(super) struct Shard {
    pub(super) input: Box<dyn Stream>,
    pub(super) num: u64,
    pub(super) index: u64,
    pub(super) pos: u64,
}

impl Stream for Shard {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        loop {
            let Some(e) = self.input.next()? else {
                return Ok(None);
            };
            let p = self.pos;
            self.pos += 1;
            if p % self.num == self.index {
                return Ok(Some(e));
            }
        }
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Shard {
            input: Box::new(self.input.save()?),
            pos: self.pos,
        })
    }
}
