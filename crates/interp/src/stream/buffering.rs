//! Nodes that hold elements: `shuffle` (a buffer drawn from at random), `prefetch` (a
//! producer thread ahead of the consumer) and `cache` (a first pass recorded, later passes
//! replayed). What they hold counts against `--max-memory` (`crate::budget`).

use super::base::Stream;
use super::plan::Opens;
use crate::Element;
use crate::budget::Budget;
use crate::rng::Rng;
use crate::state::{Marks, NodeState, Rows, not_tracked};
use pipec_diag::{Code, Diagnostic, Span};
use std::sync::Arc;

/// tf.data's shuffle: fill a buffer, then emit a random slot and refill it from the input.
pub(super) struct Shuffle {
    pub(super) input: Option<Box<dyn Stream>>,
    pub(super) buffer: Vec<Element>,
    pub(super) size: usize,
    pub(super) rng: Rng,
    pub(super) budget: Budget,
}

impl Stream for Shuffle {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        while self.buffer.len() < self.size {
            let Some(input) = self.input.as_mut() else {
                break;
            };
            match input.next()? {
                Some(e) => {
                    self.budget.add(&e)?;
                    self.buffer.push(e);
                }
                None => self.input = None,
            }
        }
        if self.buffer.is_empty() {
            return Ok(None);
        }
        let i = self.rng.below(self.buffer.len());
        let e = self.buffer.swap_remove(i);
        self.budget.remove(&e);
        Ok(Some(e))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Shuffle {
            input: match &mut self.input {
                Some(i) => Some(Box::new(i.save()?)),
                None => None,
            },
            buffer: Rows::Live(self.buffer.clone()),
            rng: self.rng.state(),
        })
    }
}

/// `prefetch(n)`: the input runs on its own thread, up to `n` elements ahead, through a
/// bounded channel. One producer and one consumer keep the order (so determinism holds);
/// an error travels in order like an element and ends the stream. When the consumer stops
/// early the channel closes and the producer ends after at most one more element; elements
/// computed ahead and never pulled are dropped, and so are their errors.
pub(super) struct Prefetch {
    rx: std::sync::mpsc::Receiver<Fetched>,
    span: Span,
    done: bool,
    /// Elements handed out.
    delivered: u64,
    /// The input's state the producer saw before some pulls, by element (see [`crate::state`]).
    marks: Marks,
    /// Whether the producer sends marks.
    track: bool,
}

/// What the producer sends: an element (or the end, or an error), and, when one is due, the
/// input's state right before it was pulled.
type Fetched = (
    Option<Result<NodeState, Diagnostic>>,
    Result<Option<Element>, Diagnostic>,
);

/// The fewest elements between two marks of a `prefetch` producer: a mark per element would
/// cost more than a cheap element.
const PREFETCH_MARK_EVERY: u64 = 64;

impl Prefetch {
    /// Starts the producer thread over `input`, `n` elements ahead at most.
    pub(super) fn start(mut input: Box<dyn Stream>, n: usize, span: Span, track: bool) -> Prefetch {
        // The first mark is taken here: the state is known before anything arrives.
        let mut marks = Marks::default();
        if track {
            marks.push(0, input.save(), 0);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<Fetched>(n.max(1));
        let spawned = std::thread::Builder::new()
            .name("pipec-prefetch".into())
            .spawn(move || {
                let (mut pulled, mut next_mark) = (0u64, PREFETCH_MARK_EVERY);
                loop {
                    let mark = (track && pulled >= next_mark).then(|| {
                        let st = input.save();
                        let weight = st.as_ref().map_or(0, NodeState::weight);
                        next_mark = pulled + (4 * weight).max(PREFETCH_MARK_EVERY);
                        st
                    });
                    let r = {
                        let _working = pipec_tensor::busy::Working::begin();
                        let _lane = pipec_tensor::kernels::LaneWork::begin();
                        input.next()
                    };
                    pulled += 1;
                    let last = !matches!(r, Ok(Some(_)));
                    if tx.send((mark, r)).is_err() || last {
                        break;
                    }
                }
            });
        // Without a thread the receiver sees a closed channel and reports it.
        drop(spawned);
        Prefetch {
            rx,
            span,
            done: false,
            delivered: 0,
            marks,
            track,
        }
    }
}

impl Stream for Prefetch {
    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        if !self.track {
            return Err(not_tracked());
        }
        let (input, skip, _) = self.marks.at(self.delivered)?;
        Ok(NodeState::Prefetch {
            input: Box::new(input),
            skip,
        })
    }

    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        if self.done {
            return Ok(None);
        }
        let got = {
            let _waiting = pipec_tensor::busy::Waiting::begin();
            self.rx.recv()
        };
        let got = got.map(|(mark, r)| {
            if let Some(st) = mark {
                self.marks.push(self.delivered, st, 0);
            }
            r
        });
        match got {
            Ok(Ok(Some(e))) => {
                self.delivered += 1;
                Ok(Some(e))
            }
            Ok(other) => {
                self.done = true;
                other
            }
            Err(_) => {
                self.done = true;
                Err(Diagnostic::error(
                    Code::WrongKind,
                    "internal error: the prefetch thread stopped (it could not start, or panicked)",
                )
                .with_label(self.span, "in this `prefetch`"))
            }
        }
    }
}

/// The first pass through a `cache`: passes elements on and keeps them.
pub(super) struct Record {
    pub(super) input: Box<dyn Stream>,
    /// Where the plan keeps the elements and the first pass's counters.
    pub(super) cell: Arc<super::plan::CacheCell>,
    pub(super) seen: Vec<Element>,
    pub(super) budget: Budget,
    /// Elements recorded, and whether the input ended (then `seen` went to the store).
    pub(super) recorded: u64,
    pub(super) ended: bool,
    /// The `shuffle` counters below as this pass began.
    pub(super) opens: Opens,
}

impl Stream for Record {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        match self.input.next()? {
            Some(e) => {
                self.budget.add(&e)?;
                self.seen.push(e.clone());
                self.recorded += 1;
                Ok(Some(e))
            }
            None => {
                self.ended = true;
                // Only the first end completes the cache (a stream may be polled past its end).
                if let Ok(mut g) = self.cell.elems.lock()
                    && g.is_none()
                {
                    *g = Some(Arc::new(std::mem::take(&mut self.seen)));
                }
                Ok(None)
            }
        }
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(if self.ended {
            // The cache is complete: a resumed run rebuilds it, then is at its end.
            NodeState::CacheReplay {
                next: self.recorded,
                opens: self
                    .cell
                    .first_opens
                    .lock()
                    .ok()
                    .and_then(|g| g.clone())
                    .unwrap_or_default(),
            }
        } else {
            NodeState::CacheRecord {
                seen: self.recorded,
                opens: self.opens.clone(),
            }
        })
    }
}

/// Later passes through a `cache`.
pub(super) struct Replay {
    pub(super) elems: Arc<Vec<Element>>,
    pub(super) next: usize,
    /// The `shuffle` counters below as the first pass began.
    pub(super) opens: Opens,
}

impl Stream for Replay {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        let e = self.elems.get(self.next).cloned();
        // Polled past its end (a `batch` or `flat_map` above may ask again), the position
        // stays at the end: a state saved then must still resume.
        if e.is_some() {
            self.next += 1;
        }
        Ok(e)
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::CacheReplay {
            next: self.next as u64,
            opens: self.opens.clone(),
        })
    }
}
