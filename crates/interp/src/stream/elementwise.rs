//! Per-element nodes: each output element comes from one input element, with nothing
//! buffered beyond a chunk. `ParMap` (a parallel `map` that cannot run on blocks ahead),
//! `take`, `skip`, `enumerate`, `shard`; every other `map` and `filter` is a
//! `crate::lanes::LaneStage`.

use super::base::{Stream, element_count};
use crate::Element;
use crate::block::Chunk;
use crate::func::{CompiledFn, FnState};
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
}

/// Elements handed to each lane per wake-up.
const PER_LANE_CHUNK: usize = 64;

/// A chunk that takes this long on one thread is worth splitting over the lanes: starting
/// a scoped thread costs tens of microseconds.
const PARALLEL_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

impl ParMap {
    /// `f` over `input` on `lanes` lanes, whose next input element has dataset index `count`.
    pub(crate) fn new(
        input: Box<dyn Stream>,
        f: Arc<CompiledFn>,
        lanes: usize,
        count: u64,
        epoch: u64,
        track: bool,
    ) -> ParMap {
        ParMap {
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
            let mut out = Vec::with_capacity(chunk.len());
            for (k, e) in chunk.into_iter().enumerate() {
                let r = self.f.call(&mut self.states[0], e, starts[k], self.epoch);
                let failed = r.is_err();
                out.push(r);
                if failed {
                    break;
                }
            }
            if t.elapsed() >= PARALLEL_AFTER {
                self.inline = false;
            }
            vec![out]
        } else {
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
            let (f, epoch) = (&self.f, self.epoch);
            let starts = &starts;
            std::thread::scope(|s| {
                let handles: Vec<_> = parts
                    .into_iter()
                    .zip(self.states.iter_mut())
                    .enumerate()
                    .map(|(lane, (part, state))| {
                        s.spawn(move || {
                            let _working = pipec_tensor::busy::Working::begin();
                            let mut out = Vec::with_capacity(part.len());
                            for (k, e) in part.into_iter().enumerate() {
                                let r = f.call(state, e, starts[lane * per_lane + k], epoch);
                                let failed = r.is_err();
                                out.push(r);
                                // Later elements of this lane can never be reported.
                                if failed {
                                    break;
                                }
                            }
                            out
                        })
                    })
                    .collect();
                let _waiting = pipec_tensor::busy::Waiting::begin();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            vec![Err(Diagnostic::error(
                                Code::WrongKind,
                                "internal error: a map lane panicked",
                            ))]
                        })
                    })
                    .collect()
            })
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
