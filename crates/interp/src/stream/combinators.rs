//! Nodes over several streams or several openings of one: `zip`, `concatenate` and
//! `repeat`. `concatenate` and `repeat` open a plan as they run, so their states carry the
//! epoch counters below them (`super::plan::Opens`).

use super::base::Stream;
use super::plan::{Plan, snapshot_opens};
use crate::Element;
use crate::block::{Block, Chunk, Pull};
use crate::state::NodeState;
use pipec_diag::Diagnostic;
use std::sync::Arc;

/// `repeat(count)`: the input plan reopened for each epoch (`None`: forever).
pub(super) struct Repeat {
    pub(super) plan: Arc<Plan>,
    pub(super) current: Option<Box<dyn Stream>>,
    pub(super) epoch: u64,
    pub(super) count: Option<u64>,
    /// Whether the current epoch produced anything.
    pub(super) seen: bool,
    /// Whether an empty epoch ended it early (see [`Repeat::ends_after_empty_epoch`]); kept
    /// so that a pull after its end does not open another epoch.
    pub(super) ended: bool,
}

impl Repeat {
    /// Whether the epoch that just ended, having produced nothing, ends the `repeat`.
    /// tf.data's rule: `repeat()` forever stops at an empty epoch (else it would spin),
    /// `repeat(n)` runs all `n`, since a later epoch may differ (a reshuffle, a random
    /// filter). When no two openings can differ, an empty epoch means the rest are empty
    /// too, and stopping gives the same elements without spinning through them.
    fn ends_after_empty_epoch(&self) -> bool {
        self.count.is_none() || !self.plan.varies
    }
}

impl Stream for Repeat {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        loop {
            if self.ended || self.count.is_some_and(|c| self.epoch >= c) {
                return Ok(None);
            }
            if self.current.is_none() {
                self.current = Some(self.plan.open()?);
                self.seen = false;
            }
            match self.current.as_mut().expect("opened above").next()? {
                Some(e) => {
                    self.seen = true;
                    return Ok(Some(e));
                }
                None => {
                    self.current = None;
                    self.epoch += 1;
                    if !self.seen && self.ends_after_empty_epoch() {
                        self.ended = true;
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        self.next_pull(max).map(Pull::now)
    }

    fn next_pull(&mut self, max: usize) -> Option<Pull> {
        loop {
            if self.ended || self.count.is_some_and(|c| self.epoch >= c) {
                return None;
            }
            if self.current.is_none() {
                match self.plan.open() {
                    Ok(s) => self.current = Some(s),
                    Err(d) => {
                        return Some(Pull::Now(Chunk {
                            block: Block::Rows(Vec::new()),
                            error: Some(d),
                        }));
                    }
                }
                self.seen = false;
            }
            match self.current.as_mut().expect("opened above").next_pull(max) {
                Some(pull) => {
                    self.seen |= match &pull {
                        Pull::Now(chunk) => !chunk.block.is_empty(),
                        Pull::Later(later) => later.rows > 0,
                    };
                    return Some(pull);
                }
                None => {
                    self.current = None;
                    self.epoch += 1;
                    if !self.seen && self.ends_after_empty_epoch() {
                        self.ended = true;
                        return None;
                    }
                }
            }
        }
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Repeat {
            epoch: self.epoch,
            seen: self.seen,
            ended: self.ended,
            opens: snapshot_opens(&self.plan.below),
            current: match &mut self.current {
                Some(c) => Some(Box::new(c.save()?)),
                None => None,
            },
        })
    }
}

/// `zip(a, b, ...)`: one element of each input, leaves concatenated; ends with the shortest.
pub(super) struct Zip {
    pub(super) inputs: Vec<Box<dyn Stream>>,
}

impl Stream for Zip {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        let mut out = Vec::new();
        for i in &mut self.inputs {
            match i.next()? {
                Some(e) => out.extend(e),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Zip {
            inputs: self
                .inputs
                .iter_mut()
                .map(|i| i.save())
                .collect::<Result<_, _>>()?,
        })
    }
}

/// `concatenate(other)`: the first input to its end, then the second plan, opened then.
pub(super) struct Concat {
    pub(super) first: Option<Box<dyn Stream>>,
    pub(super) second: Arc<Plan>,
    pub(super) current: Option<Box<dyn Stream>>,
}

impl Stream for Concat {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        if let Some(f) = self.first.as_mut() {
            if let Some(e) = f.next()? {
                return Ok(Some(e));
            }
            self.first = None;
        }
        if self.current.is_none() {
            self.current = Some(self.second.open()?);
        }
        self.current.as_mut().expect("opened above").next()
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Concat {
            opens: snapshot_opens(&self.second.below),
            first: match &mut self.first {
                Some(f) => Some(Box::new(f.save()?)),
                None => None,
            },
            second: match &mut self.current {
                Some(c) => Some(Box::new(c.save()?)),
                None => None,
            },
        })
    }
}
