//! Per-element nodes: each output element comes from one input element, with nothing
//! buffered beyond a chunk. `ParMap` (a parallel `map` that cannot run on blocks ahead),
//! `take`, `skip`, `enumerate`, `shard`; every other `map` and `filter` is a
//! `crate::lanes::LaneStage`.

use super::base::{Stream, element_count};
use crate::Element;
use crate::block::Chunk;
use crate::func::{CompiledFn, FnState};
use crate::lanes::Crew;
use crate::state::{Marks, NodeState};
use pipec_diag::{Code, Diagnostic};
use pipec_tensor::Tensor;
use std::sync::Arc;

/// A parallel `map`: pulls a chunk, splits it over lanes (each with its own host
/// instances), and emits results in input order. Threads wake once per chunk, never per
/// element. Errors are kept in place: an error in element k is reported only after elements
/// before k were emitted, and never if the consumer stops before k (`take`); an input error is
/// likewise reported after the chunk read before it.
pub(crate) struct ParMap {
    input: Box<dyn Stream>,
    f: Arc<CompiledFn>,
    states: Vec<FnState>,
    out: std::vec::IntoIter<Result<Element, Diagnostic>>,
    count: u64,
    /// The node's epoch (for random ops).
    epoch: u64,
    done: bool,
    /// An error from the input, reported once the elements read before it are out.
    pending: Option<Diagnostic>,
    /// Elements handed out (this node's outputs since it was opened).
    delivered: u64,
    /// The input's state before chunk pulls, by output position (see [`crate::state`]).
    marks: Marks,
    /// Whether to keep marks.
    track: bool,
    /// Chunks run on the consumer's thread (until one takes [`PARALLEL_AFTER`]).
    inline: bool,
    /// The run's helpers, which run every lane but the consumer's.
    crew: Arc<Crew>,
}

/// Elements handed to each lane per wake-up.
const PER_LANE_CHUNK: usize = 64;

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
            out: Vec::new().into_iter(),
            count,
            epoch,
            done: false,
            pending: None,
            delivered: 0,
            marks: Marks::default(),
            track,
            inline: true,
        }
    }
}

impl Stream for ParMap {
    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        // Nothing computed ahead: the input's own position is this node's.
        let (input, skip, count) = if self.out.len() == 0 {
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
        let r = self.next_inner();
        if matches!(r, Ok(Some(_))) {
            self.delivered += 1;
        }
        r
    }
}

impl ParMap {
    fn next_inner(&mut self) -> Result<Option<Element>, Diagnostic> {
        if let Some(r) = self.out.next() {
            return r.map(Some);
        }
        if let Some(d) = self.pending.take() {
            return Err(d);
        }
        if self.done {
            return Ok(None);
        }
        let lanes = self.states.len();
        if self.track && self.marks.due(self.delivered) {
            self.marks
                .push(self.delivered, self.input.save(), self.count);
        }
        let mut chunk = Vec::with_capacity(lanes * PER_LANE_CHUNK);
        while chunk.len() < lanes * PER_LANE_CHUNK {
            match self.input.next() {
                Ok(Some(e)) => chunk.push(e),
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(d) => {
                    self.pending = Some(d);
                    self.done = true;
                    break;
                }
            }
        }
        if chunk.is_empty() {
            return self.pending.take().map_or(Ok(None), Err);
        }
        // The dataset index of each item's first element (a batched map's items are batches).
        let mut starts = Vec::with_capacity(chunk.len());
        for e in &chunk {
            starts.push(self.count);
            self.count += element_count(&self.f, e);
        }
        let results: Vec<Vec<Result<Element, Diagnostic>>> = if self.inline {
            // On this thread until a chunk shows that threads pay off (a cheap function
            // would spend more on starting them than on its elements).
            let t = std::time::Instant::now();
            let state = std::mem::take(&mut self.states[0]);
            let (out, state) = run_part(&self.f, state, chunk, &starts, self.epoch);
            self.states[0] = state;
            if t.elapsed() >= PARALLEL_AFTER {
                self.inline = false;
            }
            vec![out]
        } else {
            // No more parts than threads to run them: the consumer's and the helpers'.
            let lanes = lanes.min(self.crew.helpers() + 1);
            let per_lane = chunk.len().div_ceil(lanes);
            let mut parts: Vec<Vec<Element>> = Vec::new();
            let mut it = chunk.into_iter();
            loop {
                let part: Vec<Element> = it.by_ref().take(per_lane).collect();
                if part.is_empty() {
                    break;
                }
                parts.push(part);
            }
            self.run_parts(parts, &starts, per_lane)
        };
        let mut out = Vec::new();
        for lane in results {
            for r in lane {
                let failed = r.is_err();
                out.push(r);
                if failed {
                    // Nothing after the first error in order is ever emitted.
                    self.pending = None;
                    self.done = true;
                    self.out = out.into_iter();
                    return self.next_inner();
                }
            }
        }
        self.out = out.into_iter();
        self.next_inner()
    }
}

impl ParMap {
    /// Runs `parts` (lane `i` holds the elements from `i * per_lane`), the first on this
    /// thread and the others as tasks on the run's helpers, each with its lane's state;
    /// the results by lane. A lane whose helper panicked yields one internal error (and a
    /// fresh state).
    fn run_parts(
        &mut self,
        parts: Vec<Vec<Element>>,
        starts: &[u64],
        per_lane: usize,
    ) -> Vec<Vec<Result<Element, Diagnostic>>> {
        let n = parts.len();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut mine = None;
        for (lane, part) in parts.into_iter().enumerate() {
            let state = std::mem::take(&mut self.states[lane]);
            let (f, epoch, tx) = (self.f.clone(), self.epoch, tx.clone());
            let first = lane * per_lane;
            let starts = starts[first..first + part.len()].to_vec();
            let work = move || {
                let _working = pipec_tensor::busy::Working::begin();
                let done = run_part(&f, state, part, &starts, epoch);
                let _ = tx.send((lane, done));
            };
            if lane == 0 {
                mine = Some(work);
            } else if let Err(work) = self.crew.spawn(Box::new(work)) {
                // No helper thread could start: this lane runs here too.
                work();
            }
        }
        // Only the lanes' senders remain: a lane that panicked drops its sender unsent.
        drop(tx);
        if let Some(work) = mine {
            // A panic here is reported like a helper's: as this lane's internal error.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        }
        let mut results: Vec<Option<Vec<Result<Element, Diagnostic>>>> = vec![None; n];
        {
            let _waiting = pipec_tensor::busy::Waiting::begin();
            while let Ok((lane, (out, state))) = rx.recv() {
                self.states[lane] = state;
                results[lane] = Some(out);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    vec![Err(Diagnostic::error(
                        Code::WrongKind,
                        "internal error: a map lane panicked",
                    ))]
                })
            })
            .collect()
    }
}

/// One lane's elements through `f` with the lane's `state`, stopping at the first error (the
/// elements after it in this lane can never be reported); the results and the state.
fn run_part(
    f: &CompiledFn,
    mut state: FnState,
    part: Vec<Element>,
    starts: &[u64],
    epoch: u64,
) -> (Vec<Result<Element, Diagnostic>>, FnState) {
    let mut out = Vec::with_capacity(part.len());
    for (e, &start) in part.into_iter().zip(starts) {
        let r = f.call(&mut state, e, start, epoch);
        let failed = r.is_err();
        out.push(r);
        if failed {
            break;
        }
    }
    (out, state)
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
