//! The runtime's entry: [`open`] and [`open_at`] lower a pipeline and open its output
//! node; [`ElementStream`] is what a consumer pulls, one element or one block at a time,
//! and what saves the run's position.

use super::base::{RunOptions, Stream};
use super::lower::PlanBuilder;
use super::plan::{Plan, plan_states};
use super::restore;
use crate::Element;
use crate::block::{Block, Chunk};
use crate::lanes::Crew;
use crate::state::not_tracked;
use crate::stats::RunStats;
use pipec_diag::Diagnostic;
use pipec_ir::{ElemType, Pipeline, Program};
use std::sync::Arc;

/// A running pipeline: an iterator over its elements.
pub struct ElementStream {
    inner: Box<dyn Stream>,
    /// The type of each element.
    pub elem: ElemType,
    done: bool,
    stats: Option<Arc<RunStats>>,
    /// An error met right after the rows of the last block, reported by the next pull.
    deferred: Option<Diagnostic>,
    /// Whether no function on the way has an effect (see [`ElementStream::pure_pull`]).
    pure_pull: bool,
    /// The `shuffle` plans, by node index: their seeds and epoch counters are saved too.
    shuffles: Vec<(u32, Arc<Plan>)>,
    /// Elements handed out, counting those of the runs this one resumes.
    delivered: u64,
    /// With [`ElementStream::keep_block_marks`]: the state before the last block pull and
    /// that block's length, for a consumer that hands a block's rows out one at a time.
    block_mark: Option<Option<(crate::state::RunState, u64)>>,
}

impl ElementStream {
    /// Whether computing elements before the consumer asks for them cannot be observed: no
    /// function of the pipeline has an effect (an eager `print`, an `exec` worker, a host
    /// function). A consumer that may stop early (Python's iterator) pulls whole blocks
    /// only then, as lanes do, and otherwise one element at a time.
    pub fn pure_pull(&self) -> bool {
        self.pure_pull
    }

    /// The run's position after the last element handed out: what `--save-state` writes.
    /// Needs [`RunOptions::checkpoints`] wherever a node computed ahead (E0822 otherwise).
    pub fn save(&mut self) -> Result<crate::state::RunState, Diagnostic> {
        Ok(crate::state::RunState {
            root: self.inner.save()?,
            plans: plan_states(&self.shuffles),
            delivered: self.delivered,
            skip: 0,
        })
    }

    /// Makes every [`next_block`](Self::next_block) first save the state, so that
    /// [`save_within_block`](Self::save_within_block) can give the position inside the last
    /// block (Python's iterator hands a block's rows out one by one).
    pub fn keep_block_marks(&mut self) {
        self.block_mark.get_or_insert(None);
    }

    /// The position after all but the last `unused` rows of the last block were handed out.
    pub fn save_within_block(&mut self, unused: u64) -> Result<crate::state::RunState, Diagnostic> {
        if unused == 0 {
            return self.save();
        }
        match &self.block_mark {
            Some(Some((st, before))) => {
                let used = self
                    .delivered
                    .saturating_sub(unused)
                    .saturating_sub(*before);
                let mut st = st.clone();
                st.skip += used;
                st.delivered = self.delivered - unused;
                Ok(st)
            }
            _ => Err(not_tracked()),
        }
    }

    /// Per-node counters, when the run was opened with [`RunOptions::stats`].
    pub fn stats(&self) -> Option<Arc<RunStats>> {
        self.stats.clone()
    }

    /// Up to `max` next elements at once (fewer at the end, or before an error, which then
    /// comes in the same [`Chunk`]). Consumers that take every element anyway (writing a
    /// file, discarding, printing) pull this way so that block execution can run.
    pub fn next_block(&mut self, max: usize) -> Option<Chunk> {
        if let Some(d) = self.deferred.take() {
            self.done = true;
            return Some(Chunk {
                block: Block::Rows(Vec::new()),
                error: Some(d),
            });
        }
        if self.done {
            return None;
        }
        if let Some(mark) = &self.block_mark {
            // A mark per block, but over a large `shuffle` buffer (weight W) one per 4 W
            // elements: `save_within_block` then adds the elements since to its skip.
            let due = match mark {
                Some((st, at)) => self.delivered >= at + st.root.weight().saturating_mul(4),
                None => true,
            };
            if due {
                let before = self.delivered;
                self.block_mark = Some(self.save().ok().map(|st| (st, before)));
            }
        }
        let mut chunk = self.inner.next_block(max.max(1));
        if let Some(c) = &chunk {
            self.delivered += c.block.len() as u64;
        }
        // An error right after a full block belongs to the next pull: a consumer that stops
        // here (`--take`) must never see it, as element by element it would not.
        if let Some(c) = &mut chunk
            && c.block.len() >= max
            && c.error.is_some()
        {
            self.deferred = c.error.take();
            return chunk;
        }
        match &chunk {
            None => self.done = true,
            Some(c) if c.error.is_some() => self.done = true,
            Some(_) => {}
        }
        chunk
    }

    /// A good `max` for [`next_block`](Self::next_block): about 64 KiB of elements (at
    /// most 8192), so blocks stay cache-sized however large the elements are. An unknown
    /// dim (a batch's, usually) is guessed at 256.
    pub fn block_rows(&self) -> usize {
        let bytes: usize = self
            .elem
            .leaves()
            .iter()
            .map(|t| {
                t.shape.0.iter().fold(t.dtype.size_bytes(), |acc, d| {
                    acc.saturating_mul(d.known().unwrap_or(UNKNOWN_DIM_GUESS))
                })
            })
            .fold(0usize, usize::saturating_add);
        (BLOCK_BYTES / bytes.max(1)).clamp(1, MAX_BLOCK_ROWS)
    }
}

/// Target size of a consumer's block, in bytes: small enough that a block's output is
/// still in L2 when the consumer reads it, large enough that a function call per block
/// costs little (W5 measured 32 KiB to 4 MiB; 64 KiB was fastest).
const BLOCK_BYTES: usize = 64 * 1024;
/// The most elements in one block (small elements: enough work per block for the
/// kernels' parallel tasks).
const MAX_BLOCK_ROWS: usize = 8192;
/// What [`ElementStream::block_rows`] assumes for a dim it does not know.
const UNKNOWN_DIM_GUESS: usize = 256;

impl Iterator for ElementStream {
    type Item = Result<Element, Diagnostic>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.inner.next() {
            Ok(Some(e)) => {
                self.delivered += 1;
                Some(Ok(e))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(d) => {
                self.done = true;
                Some(Err(d))
            }
        }
    }
}

/// Starts running `pipeline` of `prog`.
pub fn open(
    prog: &Program,
    pipeline: &Pipeline,
    opts: &RunOptions,
) -> Result<ElementStream, Diagnostic> {
    open_at(prog, pipeline, opts, None)
}

/// Starts running `pipeline` of `prog` at a saved position (`None`: from the start). The
/// caller checks that the state belongs to this program (the library's fingerprint); a
/// state whose tree does not fit the pipeline is E0820.
pub fn open_at(
    prog: &Program,
    pipeline: &Pipeline,
    opts: &RunOptions,
    state: Option<&crate::state::RunState>,
) -> Result<ElementStream, Diagnostic> {
    let mut builder = PlanBuilder::new(
        prog,
        pipeline,
        opts,
        Arc::new(Crew::new(
            opts.threads.saturating_sub(1),
            opts.lane_min_bytes,
        )),
        state.map(|s| s.plans.clone()).unwrap_or_default(),
    );
    let stats = opts.stats.then(|| builder.count_stats());
    let plan = builder.plan(pipeline.output)?;
    let inner = match state {
        None => plan.open()?,
        Some(st) => {
            let mut inner = plan.open_at(Some(&st.root))?;
            restore::drop_outputs(inner.as_mut(), st.skip)?;
            inner
        }
    };
    Ok(ElementStream {
        inner,
        elem: pipeline.graph[pipeline.output].elem.clone(),
        done: false,
        stats,
        deferred: None,
        pure_pull: plan.pure_pull,
        shuffles: builder.shuffles,
        delivered: state.map_or(0, |s| s.delivered),
        block_mark: None,
    })
}
