//! Maps and filters: element by element, or block by block on one lane or several, where a
//! lane's block function runs on helper threads a few blocks ahead of demand.
//!
//! Every `map` and `filter` stream is a [`LaneStage`] (but a parallel map that cannot run on
//! blocks ahead, which is `ParMap`). Without a block form it runs its function per element.
//! With one, it runs the function once per block; with `--threads` above one over a pure
//! input, it pulls a few blocks ahead and queues them as [`Job`]s, and helper threads and
//! the consumer's own thread each take whichever queued block comes first, so both cores
//! compute while the consumer uses the blocks, in order. Nothing else changes: blocks come
//! out in input order, a block that fails (or that is not stacked) is redone per element on
//! the consumer's thread, as element-at-a-time execution would, and an error from the input
//! stays behind the rows read before it.
//!
//! A stage runs a short list of [`Step`]s: its own node's function, and before it the maps
//! on lanes that its node reads (`Plan::fused_input`). Each block is then one job through
//! every step on one lane, with one hand-over instead of one per node; each step keeps its
//! node's element positions, saved state and `--stats` line (see "Chained stages" in
//! docs/architecture.md).
//!
//! Two costs on these machines shape it. Waking a parked thread takes tens of µs, longer than
//! computing a 64 KiB block, so a helper spins for a while before it parks and the consumer
//! only wakes one that parked. And pulling ahead is only unobservable when nothing upstream
//! has an effect (an eager `print`), so the runtime uses lanes only over pure inputs
//! (`pure_pull` in the stream plans).

use crate::Element;
use crate::block::{Block, Chunk, InPlace, Later, Pending, Pull};
use crate::func::{CompiledFn, FnState};
use crate::state::{Marks, NodeState};
use crate::stats::RunStats;
use crate::stream::base::{Stream, element_count, gather_rows};
use pipec_diag::Diagnostic;
use pipec_tensor::Tensor;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What a stage on lanes does with each block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stage {
    /// Its function's results are the block's new rows.
    Map,
    /// Its function's results say which rows to keep.
    Filter,
}

/// A block's computed rows (`None`: the block must run per element).
type Computed = Option<(Vec<Tensor>, usize)>;

/// One node's function in a [`LaneStage`]: the stage's own node (the last step), or a map
/// fused below it (see "Chained stages" in docs/architecture.md).
pub(crate) struct Step {
    stage: Stage,
    /// The per-element function: for `next` and for blocks that must run per element.
    f: Arc<CompiledFn>,
    /// `f` over a block of elements, when it vectorizes; without it every element runs alone.
    block_f: Option<Arc<CompiledFn>>,
    state: FnState,
    /// The consumer thread's lane.
    block_state: FnState,
    /// The dataset index of the next element this step takes.
    count: u64,
    /// How many times this step's node was opened before (what random ops draw with).
    epoch: u64,
    /// Where `--stats` counts this step's node.
    stats: Option<(Arc<RunStats>, usize)>,
}

impl Step {
    /// A step of node kind `stage` with `f` and its block form, whose next element has
    /// dataset index `count`, drawing with `epoch`.
    pub(crate) fn new(
        stage: Stage,
        f: Arc<CompiledFn>,
        block_f: Option<Arc<CompiledFn>>,
        count: u64,
        epoch: u64,
    ) -> Step {
        Step {
            stage,
            f,
            block_f,
            state: FnState::default(),
            block_state: FnState::default(),
            count,
            epoch,
            stats: None,
        }
    }

    /// Counts this step's node into `stats` (`--stats`).
    pub(crate) fn with_stats(mut self, stats: Option<(Arc<RunStats>, usize)>) -> Step {
        self.stats = stats;
        self
    }

    /// How far one input element moves this step's dataset index (a batched map's rows
    /// are batches: the elements inside them).
    fn advance(&self, e: &Element) -> u64 {
        match self.stage {
            Stage::Map => element_count(&self.f, e),
            Stage::Filter => 1,
        }
    }

    /// The step on one element at dataset index `element`: its result (a map), or the
    /// element if it is kept (a filter).
    fn call_one(&mut self, e: Element, element: u64) -> Result<Option<Element>, Diagnostic> {
        match self.stage {
            Stage::Map => self
                .f
                .call(&mut self.state, e, element, self.epoch)
                .map(Some),
            Stage::Filter => {
                let keep = self
                    .f
                    .call(&mut self.state, e.clone(), element, self.epoch)?;
                Ok(passes(&keep).then_some(e))
            }
        }
    }
}

/// What a job runs, bottom step first: each step's kind, block function and epoch.
struct Chain {
    links: Vec<(Stage, Arc<CompiledFn>, u64)>,
    /// Whether each step's time is measured (`--stats` over fused steps).
    timed: bool,
}

/// A map or filter run on lanes: the consumer's thread and the run's [`Crew`] of helpers.
/// Maps fused below it run as earlier steps of the same job (one job per block).
pub(crate) struct LaneStage {
    /// Bottom first; the last is the stage's own node.
    steps: Vec<Step>,
    input: Box<dyn Stream>,
    /// The steps' block functions, when every step has one (what jobs run).
    chain: Option<Arc<Chain>>,
    /// The run's helpers, shared by every stage on lanes (started by the first that needs them).
    crew: Arc<Crew>,
    /// The most lanes this stage uses, the consumer's thread included.
    lanes: usize,
    /// Whether blocks go to the crew yet (after a few large ones: a consumer pulling single
    /// elements, or a short `repeat` epoch, never pays for hand-overs).
    helped: bool,
    /// Blocks pulled from the input and not yet handed out, in order.
    ahead: VecDeque<Ahead>,
    /// The input ended or failed: pull nothing more.
    input_done: bool,
    /// Computed rows not yet handed out (a consumer may ask for fewer than a block).
    pending: Pending,
    /// A running mean of how long a block takes on this thread, in ns (0: none yet).
    block_nanos: u64,
    /// Blocks pulled that were large enough to hand over: lanes start after a few, so a
    /// short stream (a small `repeat` epoch) never pays for them.
    large_blocks: usize,
    /// Whether blocks pulled ahead carry a mark (the input's state before the pull), so the
    /// stage can save its position without what it computed ahead (see [`crate::state`]).
    track: bool,
    /// Marks of blocks whose rows were computed, by output position.
    marks: Marks,
    /// Outputs handed out, and outputs computed (handed out or in `pending`).
    delivered: u64,
    pushed: u64,
    /// With `--stats` over fused steps: time in the input's pulls, and each step's time in
    /// blocks, since the consumer's last call (see [`LaneStage::credit`]).
    input_nanos: u64,
    step_nanos: Vec<u64>,
}

/// One block pulled ahead.
struct Ahead {
    /// The input rows, kept for the per-element fallback; `None` while a lane has yet to
    /// make them (a source's [`Later`] block: they come back with the job's result).
    block: Option<Block>,
    /// The input bytes of the rows.
    bytes: usize,
    /// The input's error right after these rows.
    error: Option<Diagnostic>,
    /// Each step's dataset index of the block's first element.
    starts: Vec<u64>,
    /// Where it is computed.
    work: Work,
    /// The input's state right before this block was pulled, when a mark was due.
    mark: Option<Result<NodeState, Diagnostic>>,
}

/// Where a block pulled ahead is computed.
enum Work {
    /// Per element on the consumer's thread (rows apart).
    Rows,
    /// By the block function on the consumer's thread.
    Here,
    /// By the block function on whichever lane takes it first.
    Queued(Arc<Job>),
}

/// The fewest input elements a filter reads at once in block execution.
const MIN_FILTER_PULL: usize = 4096;

/// Whether a predicate's result says to keep the element.
fn passes(keep: &[Tensor]) -> bool {
    keep.first()
        .and_then(|t| t.as_array::<bool>())
        .and_then(|a| a.iter().next().copied())
        .unwrap_or(false)
}

/// How many blocks each lane may have pulled ahead.
const AHEAD_PER_LANE: usize = 2;
/// Beyond one block per lane, blocks are pulled ahead only while those already ahead hold
/// less than this (large elements: a batch of images is megabytes).
const AHEAD_BYTES: usize = 4 << 20;
/// The default of [`crate::RunOptions::lane_min_bytes`]: handing a smaller block over and
/// getting its result back costs more than computing it.
pub const LANE_MIN_BYTES: usize = 8 << 10;
/// Large blocks pulled on the consumer's thread alone before lanes start.
const LANES_AFTER: usize = 2;
/// How long an idle helper spins before it parks: longer than the gap between two blocks
/// of a busy pipeline, shorter than a waiting consumer would notice.
const IDLE_SPIN: Duration = Duration::from_micros(200);
/// The least time the consumer waits for a helper's block before computing it itself.
const MIN_PATIENCE: Duration = Duration::from_micros(50);

impl LaneStage {
    /// `stage` with `f` and its block form over `input`, on up to `lanes` lanes: the
    /// consumer's thread and helpers of `crew`.
    pub(crate) fn new(
        stage: Stage,
        input: Box<dyn Stream>,
        f: Arc<CompiledFn>,
        block_f: Option<Arc<CompiledFn>>,
        lanes: usize,
        crew: Arc<Crew>,
    ) -> LaneStage {
        let mut s = LaneStage {
            steps: vec![Step::new(stage, f, block_f, 0, 0)],
            input,
            chain: None,
            crew,
            lanes,
            helped: false,
            ahead: VecDeque::new(),
            input_done: false,
            pending: Pending::default(),
            block_nanos: 0,
            large_blocks: 0,
            track: false,
            marks: Marks::default(),
            delivered: 0,
            pushed: 0,
            input_nanos: 0,
            step_nanos: Vec::new(),
        };
        s.rechain();
        s
    }

    /// Runs `below`, the maps between `input` and this stage's node (bottom first), as
    /// earlier steps of each block's job.
    pub(crate) fn fusing(mut self, below: Vec<Step>) -> LaneStage {
        self.steps.splice(0..0, below);
        self.rechain();
        self
    }

    /// Runs the stage as its node's epoch `epoch` (random ops draw with it).
    pub(crate) fn with_epoch(mut self, epoch: u64) -> LaneStage {
        self.own_mut().epoch = epoch;
        self.rechain();
        self
    }

    /// Keeps marks for saving the state (a run opened with checkpoints).
    pub(crate) fn tracking(mut self, track: bool) -> LaneStage {
        self.track = track;
        self
    }

    /// A stage resumed with `count` as the dataset index of the next input element.
    pub(crate) fn at_count(mut self, count: u64) -> LaneStage {
        self.own_mut().count = count;
        self
    }

    /// Counts this stage's blocks into node `node` of `stats` (`--stats`), and those of
    /// the maps fused below it into theirs.
    pub(crate) fn with_stats(mut self, stats: Option<(Arc<RunStats>, usize)>) -> LaneStage {
        self.own_mut().stats = stats;
        if self.lanes > 1 {
            for (s, node) in self.steps.iter().filter_map(|s| s.stats.as_ref()) {
                s.lanes_open(*node);
            }
        }
        self.rechain();
        self
    }

    /// The step of the stage's own node.
    fn own(&self) -> &Step {
        self.steps.last().expect("a stage has its own step")
    }

    fn own_mut(&mut self) -> &mut Step {
        self.steps.last_mut().expect("a stage has its own step")
    }

    /// Settles what jobs run after the steps changed.
    fn rechain(&mut self) {
        let links: Option<Vec<_>> = self
            .steps
            .iter()
            .map(|s| s.block_f.clone().map(|f| (s.stage, f, s.epoch)))
            .collect();
        let timed = self.steps.len() > 1 && self.steps.iter().any(|s| s.stats.is_some());
        self.chain = links.map(|links| Arc::new(Chain { links, timed }));
        self.step_nanos = vec![0; self.steps.len()];
    }

    /// Whether each step's time is measured (`--stats` over fused steps).
    fn timed(&self) -> bool {
        self.chain.as_ref().is_some_and(|c| c.timed)
    }

    /// Queues computed rows for handing out.
    fn push_out(&mut self, b: Block) {
        self.pushed += b.len() as u64;
        self.pending.push(b);
    }

    /// Elements in `block`, counted as the first step's sequential map or filter counts them
    /// (a batched map's rows are batches: the elements inside them).
    fn elements_in(&self, block: &Block) -> u64 {
        let first = &self.steps[0];
        if first.stage == Stage::Filter {
            return block.len() as u64;
        }
        match block {
            Block::Stacked { leaves, rows } => {
                if first.f.func().batched {
                    leaves
                        .first()
                        .map_or(0, |t| t.shape().iter().take(2).product::<usize>())
                        as u64
                } else {
                    *rows as u64
                }
            }
            Block::Rows(rows) => rows.iter().map(|e| element_count(&first.f, e)).sum(),
        }
    }

    /// The input bytes of the blocks pulled ahead.
    fn ahead_bytes(&self) -> usize {
        self.ahead.iter().map(|a| a.bytes).sum()
    }

    /// Elements in a block not yet made, counted as [`LaneStage::elements_in`] counts.
    fn elements_later(&self, later: &Later) -> u64 {
        let first = &self.steps[0];
        if first.stage == Stage::Map && first.f.func().batched {
            later.lead
        } else {
            later.rows as u64
        }
    }

    /// Moves each step's dataset index past an input block of `rows` rows that holds `lead`
    /// of the first step's elements; returns each step's index of the block's first element.
    fn advance(&mut self, lead: u64, rows: u64) -> Vec<u64> {
        let starts = self.steps.iter().map(|s| s.count).collect();
        for (i, s) in self.steps.iter_mut().enumerate() {
            // The steps above the first are maps of single elements (see
            // `Plan::fused_input`), which take one element per row.
            s.count += if i == 0 { lead } else { rows };
        }
        // A fused map hands each row on (`--stats` counts it when pulled, as a map
        // stage's consumer counts it when pulled ahead).
        let below = self.steps.len() - 1;
        for (stats, node) in self.steps[..below].iter().filter_map(|s| s.stats.as_ref()) {
            stats.credit(*node, rows, 0);
        }
        starts
    }

    /// The input's state as the stage's own node saves its input: the stream under the fused
    /// maps, inside each map's state (a fused map holds nothing between blocks, so its state
    /// is its input's and its count).
    fn input_state(&mut self) -> Result<NodeState, Diagnostic> {
        let mut st = self.input.save()?;
        for s in &self.steps[..self.steps.len() - 1] {
            st = NodeState::Stage {
                input: Box::new(st),
                skip: 0,
                count: s.count,
                epoch: s.epoch,
            };
        }
        Ok(st)
    }

    /// `pull` on the input, its time counted with `--stats` over fused steps.
    fn pull_input<T>(&mut self, pull: impl FnOnce(&mut dyn Stream) -> T) -> T {
        let t = self.timed().then(Instant::now);
        let r = pull(self.input.as_mut());
        if let Some(t) = t {
            self.input_nanos += nanos_since(t);
        }
        r
    }

    /// Pulls input blocks until every lane has its share queued.
    fn fill(&mut self, max: usize) {
        loop {
            // Without helpers, one block at a time, as the sequential map and filter pull.
            // A chain keeps as many blocks in flight as its steps did as stages of their own
            // (W3 at 2 threads, medians of 8: 2 per lane 21.9 ms and 37% serial, 4 per lane
            // 19.2 ms and 15%).
            let lanes = self.active_lanes();
            let ahead_max = if lanes > 1 {
                lanes * AHEAD_PER_LANE * self.steps.len()
            } else {
                1
            };
            if self.input_done
                || self.ahead.len() >= ahead_max
                || (self.ahead.len() >= lanes && self.ahead_bytes() >= AHEAD_BYTES)
            {
                break;
            }
            let mark = (self.track && self.marks.due(self.pushed)).then(|| self.input_state());
            let Some(pull) = self.pull_input(|input| input.next_pull(max)) else {
                self.input_done = true;
                break;
            };
            // What the block functions may take: a source's rows not yet made, or rows
            // already stacked.
            let (bytes, computable, later) = match &pull {
                Pull::Later(l) => (l.bytes, l.rows > 0, true),
                Pull::Now(Chunk { block, .. }) => (
                    block_bytes(block),
                    matches!(block, Block::Stacked { rows, .. } if *rows > 0),
                    false,
                ),
            };
            let in_place = matches!(&pull, Pull::Later(l) if l.in_place.is_some());
            let chain = self.chain.clone().filter(|_| computable);
            let large = chain.is_some() && bytes >= self.crew.min_bytes;
            self.large_blocks += usize::from(large);
            if large && later && !self.helped && self.lanes > 1 {
                // A source's block is work of its own (a read, a count), so lanes start
                // with the first large one (measured: W1's and W5's serial share 14-16% ->
                // 8-10%); blocks already in memory wait for `LANES_AFTER`.
                self.helped = true;
            }
            let lanes = self.active_lanes();
            let crew = self.crew.clone();
            let team = (self.helped && lanes > 1 && large)
                .then(|| crew.team())
                .flatten();
            let (block, error, work, starts) = match (pull, chain, team) {
                // A lane reads the source's rows and computes them in one job. Rows a map or
                // filter reads in place go through a job even with no lane to take it: then
                // this thread computes it, never making the rows.
                (Pull::Later(later), Some(chain), team) if team.is_some() || in_place => {
                    let lead = self.elements_later(&later);
                    let starts = self.advance(lead, later.rows as u64);
                    let args = Args::Later(later.make, later.in_place);
                    let job = Arc::new(Job::new(chain, args, starts.clone()));
                    if let Some(team) = team {
                        team.submit(job.clone());
                    }
                    (None, None, Work::Queued(job), starts)
                }
                (pull, chain, team) => {
                    let Chunk { block, error } = pull.now();
                    self.input_done = error.is_some();
                    let lead = self.elements_in(&block);
                    let starts = self.advance(lead, block.len() as u64);
                    let work = match (&block, chain) {
                        (Block::Stacked { leaves, rows }, Some(chain)) if *rows > 0 => match team {
                            Some(team) => {
                                let args = Args::Ready(leaves.clone());
                                let job = Arc::new(Job::new(chain, args, starts.clone()));
                                team.submit(job.clone());
                                Work::Queued(job)
                            }
                            None => Work::Here,
                        },
                        _ => Work::Rows,
                    };
                    (Some(block), error, work, starts)
                }
            };
            self.ahead.push_back(Ahead {
                block,
                bytes,
                error,
                starts,
                work,
                mark,
            });
        }
    }

    /// The lanes blocks are spread over now: one until the stage hands blocks over.
    fn active_lanes(&self) -> usize {
        if self.helped {
            self.lanes.min(1 + self.crew.helpers())
        } else {
            1
        }
    }

    /// The block functions' result for `job` (whose input is `block`, if made yet): computed
    /// here if no helper took it. While a helper computes it, this thread computes later
    /// queued blocks; if the helper takes much longer than a block takes here (descheduled on
    /// a busy machine) and the input is at hand, this thread computes the block too and the
    /// helper's copy is dropped (the functions are pure: both give the same bits). Also says
    /// whether a helper's result it is.
    fn resolve(&mut self, job: &Job, block: Option<&Block>) -> (Done, bool) {
        let mut waiting_since: Option<Instant> = None;
        // Spinning for a helper's block is waiting, not work (for the serial share).
        let mut waiting: Option<pipec_tensor::busy::Waiting> = None;
        let mut spins = 0u32;
        loop {
            if let Some(args) = job.claim() {
                drop(waiting.take());
                return (self.compute(args, &job.starts), false);
            }
            if let Some(done) = job.take() {
                return (done, job.by_helper.load(Ordering::Acquire));
            }
            let later = self
                .ahead
                .iter()
                .filter_map(|a| match &a.work {
                    Work::Queued(j) => Some(j),
                    _ => None,
                })
                .find_map(|j| j.claim().map(|args| (j.clone(), args)));
            if let Some((other, args)) = later {
                waiting = None;
                let done = self.compute(args, &other.starts);
                other.finish(done);
                waiting_since = None;
                continue;
            }
            let since = *waiting_since.get_or_insert_with(Instant::now);
            if waiting.is_none() {
                waiting = Some(pipec_tensor::busy::Waiting::begin());
            }
            if let Some(Block::Stacked { leaves, .. }) = block
                && since.elapsed() > self.patience()
            {
                drop(waiting.take());
                let leaves = leaves.clone();
                return (self.compute(Args::Ready(leaves), &job.starts), false);
            }
            spins = spins.saturating_add(1);
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Runs the block functions on this thread (making the rows first if a source left that
    /// to the lane), keeping a running mean of their time (which only waiting for helpers
    /// needs).
    fn compute(&mut self, args: Args, starts: &[u64]) -> Done {
        let t = self.helped.then(Instant::now);
        let done = match self.chain.clone() {
            Some(chain) => {
                let states = self.steps.iter_mut().map(|s| &mut s.block_state);
                run_job(&chain, states, args, starts)
            }
            None => Done {
                out: None,
                made: made_input(args).1,
                nanos: Vec::new(),
            },
        };
        if let Some(t) = t {
            let nanos = nanos_since(t);
            self.block_nanos = match self.block_nanos {
                0 => nanos,
                mean => mean / 4 * 3 + nanos / 4,
            };
        }
        done
    }

    /// Counts a block into every step's node (`--stats`).
    fn count_block(&self, by_helper: bool) {
        for (stats, node) in self.steps.iter().filter_map(|s| s.stats.as_ref()) {
            stats.lane_block(*node, by_helper);
        }
    }

    /// Adds a job's time in each step (measured when timed) to what [`LaneStage::credit`]
    /// shares out.
    fn add_step_nanos(&mut self, nanos: &[u64]) {
        for (sum, n) in self.step_nanos.iter_mut().zip(nanos) {
            *sum += n;
        }
    }

    /// How long to wait for a helper's block before computing it here as well.
    fn patience(&self) -> Duration {
        Duration::from_nanos(self.block_nanos.saturating_mul(2)).max(MIN_PATIENCE)
    }

    /// Runs one element through the steps, each at its dataset index in `index` (moved on
    /// past the element): the stage's output for it, if any.
    fn call_steps(
        &mut self,
        mut e: Element,
        index: &mut [u64],
    ) -> Result<Option<Element>, Diagnostic> {
        let timed = self.timed();
        for (i, step) in self.steps.iter_mut().enumerate() {
            let element = index[i];
            index[i] += step.advance(&e);
            let t = timed.then(Instant::now);
            let out = step.call_one(e, element);
            if let Some(t) = t {
                self.step_nanos[i] += nanos_since(t);
            }
            match out? {
                Some(o) => e = o,
                None => return Ok(None),
            }
        }
        Ok(Some(e))
    }

    /// Computes the first block pulled ahead into `pending`; false when nothing was ahead.
    fn deliver(&mut self) -> bool {
        let Some(Ahead {
            block,
            error,
            starts,
            work,
            mark,
            ..
        }) = self.ahead.pop_front()
        else {
            return false;
        };
        if let Some(m) = mark {
            let own_start = starts.last().copied().unwrap_or_default();
            self.marks.push(self.pushed, m, own_start);
        }
        let (out, block, error) = match (work, block) {
            (Work::Queued(job), block) => {
                let (done, by_helper) = self.resolve(&job, block.as_ref());
                self.count_block(done.out.is_some() && by_helper);
                self.add_step_nanos(&done.nanos);
                match (block, done.made) {
                    (Some(block), _) => (done.out, block, error),
                    (None, Some(made)) => (done.out, made.block, made.error),
                    // Computed from rows read in place: there is no block to fall back on.
                    (None, None) if done.out.is_some() => (done.out, Block::Rows(Vec::new()), None),
                    (None, None) => {
                        // Only a panic while making a source's rows loses them.
                        self.pending.push_error(lost_block(starts[0]));
                        self.drop_ahead();
                        self.input_done = true;
                        return true;
                    }
                }
            }
            (Work::Here, Some(block)) => {
                let out = match &block {
                    Block::Stacked { leaves, .. } => {
                        let done = self.compute(Args::Ready(leaves.clone()), &starts);
                        self.add_step_nanos(&done.nanos);
                        done.out
                    }
                    Block::Rows(_) => None,
                };
                self.count_block(false);
                (out, block, error)
            }
            (_, block) => (None, block.unwrap_or(Block::Rows(Vec::new())), error),
        };
        if error.is_some() {
            // A lane's read failed: nothing pulled after it is ever handed out.
            self.drop_ahead();
            self.input_done = true;
        }
        if let Some((leaves, rows)) = out {
            self.push_out(Block::Stacked { leaves, rows });
            if let Some(d) = error {
                self.pending.push_error(d);
            }
            return true;
        }
        // Rows apart, or the block failed in some step: one by one through every step, so
        // the error reported is the one element-at-a-time execution meets first, after the
        // rows before it.
        let mut index = starts;
        let mut outs = Vec::with_capacity(block.len());
        for e in block.into_rows() {
            match self.call_steps(e, &mut index) {
                Ok(Some(o)) => outs.push(o),
                Ok(None) => {}
                Err(d) => {
                    self.push_out(Block::Rows(outs));
                    self.pending.push_error(d);
                    // Nothing after an error is ever handed out.
                    self.drop_ahead();
                    self.input_done = true;
                    return true;
                }
            }
        }
        self.push_out(Block::Rows(outs));
        if let Some(d) = error {
            self.pending.push_error(d);
        }
        true
    }

    /// Shares the consumer's time in the call that began at `since` out to the fused maps'
    /// nodes (`--stats`). The stage's own node is timed around the call, inclusive; each map
    /// below it gets the input's time and its share of the rest by the steps' measured
    /// times up to its own, so that each node's own time is its step's.
    fn credit(&mut self, since: Instant) {
        let total = nanos_since(since);
        let input = std::mem::take(&mut self.input_nanos);
        let own = total.saturating_sub(input);
        let sum: u64 = self.step_nanos.iter().sum();
        let mut up_to = 0u64;
        let below = self.steps.len() - 1;
        for (s, n) in self.steps[..below].iter().zip(&self.step_nanos) {
            up_to += n;
            let share = match sum {
                0 => 0,
                sum => (u128::from(own) * u128::from(up_to) / u128::from(sum)) as u64,
            };
            if let Some((stats, node)) = &s.stats {
                stats.credit(*node, 0, input + share);
            }
        }
        self.step_nanos.iter_mut().for_each(|n| *n = 0);
    }

    fn next_element(&mut self) -> Result<Option<Element>, Diagnostic> {
        loop {
            // Rows a block pull computed come first.
            if !self.pending.is_empty() {
                let next = self.pending.pop_element();
                if matches!(next, Ok(Some(_))) {
                    self.delivered += 1;
                }
                return next;
            }
            // Then blocks pulled ahead (a filter's may keep nothing).
            if self.deliver() {
                continue;
            }
            if self.input_done {
                return Ok(None);
            }
            let Some(e) = self.pull_input(|input| input.next())? else {
                return Ok(None);
            };
            let lead = self.steps[0].advance(&e);
            let mut index = self.advance(lead, 1);
            if let Some(out) = self.call_steps(e, &mut index)? {
                self.delivered += 1;
                self.pushed += 1;
                return Ok(Some(out));
            }
        }
    }

    fn next_chunk(&mut self, max: usize) -> Option<Chunk> {
        if self.chain.is_none() {
            // One element at a time, the function's effects interleaved with the input's.
            return gather_rows(|| self.next_element(), max);
        }
        // A map hands out each block as it comes; a filter gathers kept rows until it has
        // half of `max`, so that a block's kept rows, the usual case, go out as they are
        // (a `batch` after it then copies only the batch that spans two blocks).
        let stage = self.own().stage;
        let wanted = match stage {
            Stage::Map => 1,
            Stage::Filter => max.div_ceil(2),
        };
        while self.pending.rows() < wanted && !self.pending.has_error() {
            if !self.helped && self.lanes > 1 && self.large_blocks >= LANES_AFTER {
                self.helped = true;
            }
            let pull = match stage {
                Stage::Map => max,
                // At least MIN_FILTER_PULL rows: pulling exactly the rows still missing
                // would take ever smaller blocks as the output fills up.
                Stage::Filter => (max - self.pending.rows()).max(MIN_FILTER_PULL),
            };
            self.fill(pull);
            if !self.deliver() {
                break;
            }
        }
        let chunk = self.pending.take_enough(max, wanted);
        if let Some(c) = &chunk {
            self.delivered += c.block.len() as u64;
        }
        chunk
    }
}

impl Stream for LaneStage {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        let t = self.timed().then(Instant::now);
        let r = self.next_element();
        if let Some(t) = t {
            self.credit(t);
        }
        r
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        let t = self.timed().then(Instant::now);
        let r = self.next_chunk(max);
        if let Some(t) = t {
            self.credit(t);
        }
        r
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        let (input, skip, count) = match self.ahead.front() {
            // Nothing computed ahead: the input's own position is this stage's.
            None if self.pending.is_empty() => (self.input_state()?, 0, self.own().count),
            Some(Ahead {
                mark: Some(Ok(st)),
                starts,
                ..
            }) if self.pending.is_empty() => {
                (st.clone(), 0, starts.last().copied().unwrap_or_default())
            }
            _ => self.marks.at(self.delivered)?,
        };
        Ok(NodeState::Stage {
            input: Box::new(input),
            skip,
            count,
            epoch: self.own().epoch,
        })
    }
}

/// Nanoseconds since `t`, saturated.
fn nanos_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl LaneStage {
    /// Forgets the blocks pulled ahead; those still queued are claimed, so helpers skip them.
    fn drop_ahead(&mut self) {
        for a in self.ahead.drain(..) {
            if let Work::Queued(job) = &a.work {
                drop(job.claim());
            }
        }
    }
}

impl Drop for LaneStage {
    fn drop(&mut self) {
        self.drop_ahead();
    }
}

/// A run's share of the helper threads: `--threads` minus the consumer's, taken from the
/// process's [`Team`] when a stage first hands a block over, shared by every stage on lanes in
/// the run.
pub(crate) struct Crew {
    helpers: usize,
    /// Smaller blocks stay on the consumer's thread.
    min_bytes: usize,
    team: OnceLock<Option<Arc<Team>>>,
}

impl Crew {
    /// A crew of `helpers` threads, none started yet, taking blocks of `min_bytes` and up.
    pub(crate) fn new(helpers: usize, min_bytes: usize) -> Crew {
        Crew {
            helpers,
            min_bytes,
            team: OnceLock::new(),
        }
    }

    /// The helpers (the process's team, grown to this run's size on the first call); `None`
    /// without any.
    fn team(&self) -> Option<&Team> {
        if self.helpers == 0 {
            return None;
        }
        self.team
            .get_or_init(|| Team::process(self.helpers))
            .as_deref()
    }

    /// How many helpers this run may keep busy.
    pub(crate) fn helpers(&self) -> usize {
        self.team().map_or(0, |t| t.size().min(self.helpers))
    }

    /// Queues `task` for a helper, or gives it back when the run has none. Streams other
    /// than the lanes' stages (`global_shuffle`'s blocks permuted ahead, a parallel map's
    /// per-element lanes) hand their work to the same threads this way, so a process has
    /// one team of helpers.
    pub(crate) fn spawn(&self, task: Task) -> Result<(), Task> {
        match self.team() {
            Some(team) => {
                team.push(Queued::Task(task));
                Ok(())
            }
            None => Err(task),
        }
    }
}

/// Work a helper runs once; it must return soon (a block's worth), since helpers take work
/// in queue order.
pub(crate) type Task = Box<dyn FnOnce() + Send>;

/// What the team's queue holds.
enum Queued {
    /// A lane stage's block.
    Block(Arc<Job>),
    /// Any other stream's work.
    Task(Task),
}

/// One block's run of the block functions, taken by whichever lane gets to it first.
struct Job {
    /// The steps' block functions.
    chain: Arc<Chain>,
    slot: Mutex<Slot>,
    /// Set once the slot holds the result, so waiting never takes the lock.
    finished: AtomicBool,
    /// Set when a helper (not the consumer's thread) computed the result.
    by_helper: AtomicBool,
    /// Each step's dataset index of the block's first element (for errors and random ops).
    starts: Vec<u64>,
}

/// A job's input block.
enum Args {
    /// Rows already made.
    Ready(Vec<Tensor>),
    /// A source's rows, made by the lane that takes the job, and where they are when a map can
    /// read them in place.
    Later(Box<dyn FnOnce() -> Chunk + Send>, Option<InPlace>),
}

/// A job's result: the block function's rows (`None`: the block must run per element), and
/// the input rows when the lane made them (the consumer needs them for that fallback).
struct Done {
    out: Computed,
    made: Option<Chunk>,
    /// Each step's time, when the chain is timed.
    nanos: Vec<u64>,
}

enum Slot {
    /// Queued with its input.
    Waiting(Args),
    /// A lane is computing it.
    Claimed,
    /// The result.
    Finished(Done),
    /// The result was handed out.
    Taken,
}

impl Job {
    fn new(chain: Arc<Chain>, args: Args, starts: Vec<u64>) -> Job {
        Job {
            chain,
            slot: Mutex::new(Slot::Waiting(args)),
            finished: AtomicBool::new(false),
            by_helper: AtomicBool::new(false),
            starts,
        }
    }

    /// The input, if no lane has taken the job yet; the caller must then [`finish`] it.
    fn claim(&self) -> Option<Args> {
        let mut slot = self.slot.lock().ok()?;
        match std::mem::replace(&mut *slot, Slot::Claimed) {
            Slot::Waiting(args) => Some(args),
            other => {
                *slot = other;
                None
            }
        }
    }

    fn finish(&self, out: Done) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Slot::Finished(out);
        }
        self.finished.store(true, Ordering::Release);
    }

    /// The result, once a lane finished the job.
    fn take(&self) -> Option<Done> {
        if !self.finished.load(Ordering::Acquire) {
            return None;
        }
        let failed = Done {
            out: None,
            made: None,
            nanos: Vec::new(),
        };
        // A poisoned slot (a helper panicked holding it) runs the block per element.
        let Ok(mut slot) = self.slot.lock() else {
            return Some(failed);
        };
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Finished(done) => Some(done),
            _ => Some(failed),
        }
    }
}

/// The process's helper threads, taking [`Job`]s from one queue. Started as runs first need
/// them and kept for the life of the process, parked while idle: a run does not pay for
/// starting threads, and the threads the scheduler placed stay placed.
struct Team {
    shared: Shared,
    /// Helpers started.
    size: AtomicUsize,
    /// The process whose threads the helpers are (a forked child has none of them).
    pid: u32,
}

struct Shared {
    queue: Mutex<VecDeque<Queued>>,
    /// The queue's length, read without the lock while spinning.
    queued: AtomicUsize,
    /// Helpers parked on `wake` (changed under the queue's lock).
    parked: AtomicUsize,
    wake: Condvar,
}

/// The most helper threads a process starts, whatever `--threads` asks.
const MAX_HELPERS: usize = 63;

/// How many helpers can run at once: one fewer than the cores (at least one). Blocks are pure
/// computation, so a helper beyond that only takes turns with the others, while each lane
/// still holds its blocks in memory.
fn helper_cap() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .clamp(1, MAX_HELPERS)
}

impl Team {
    fn new() -> Team {
        Team {
            shared: Shared::new(),
            size: AtomicUsize::new(0),
            pid: std::process::id(),
        }
    }

    /// The process's team, grown to at least `n` helpers (up to [`helper_cap`]); `None` if
    /// not one thread could start (then the consumer's thread computes every block).
    fn process(n: usize) -> Option<Arc<Team>> {
        // The lock also makes growing one at a time.
        static TEAM: Mutex<Option<Arc<Team>>> = Mutex::new(None);
        let mut slot = TEAM.lock().ok()?;
        // A child forked from the process that started the helpers (a Python DataLoader
        // worker) has none of their threads: it starts a team of its own.
        if slot.as_ref().is_none_or(|t| t.pid != std::process::id()) {
            *slot = Some(Arc::new(Team::new()));
        }
        let team = slot.as_ref()?.clone();
        {
            while team.size() < n.min(helper_cap()) {
                let member = team.clone();
                let started = std::thread::Builder::new()
                    .name(format!("pipec-lane-{}", team.size() + 1))
                    .spawn(move || helper(&member.shared));
                if started.is_err() {
                    break;
                }
                team.size.fetch_add(1, Ordering::Release);
            }
        }
        drop(slot);
        (team.size() > 0).then_some(team)
    }

    fn size(&self) -> usize {
        self.size.load(Ordering::Acquire)
    }

    fn submit(&self, job: Arc<Job>) {
        self.push(Queued::Block(job));
    }

    fn push(&self, work: Queued) {
        let Ok(mut queue) = self.shared.queue.lock() else {
            return;
        };
        queue.push_back(work);
        self.shared.queued.fetch_add(1, Ordering::Release);
        if self.shared.parked.load(Ordering::Relaxed) > 0 {
            self.shared.wake.notify_one();
        }
    }
}

/// What `stage` makes of one block, `args`, with the block function `f`: a map's results,
/// or a filter's kept rows (compacted by the function's mask); `None` when the function
/// fails, and the block must run per element to find which element's error comes first.
fn run_block(
    stage: Stage,
    f: &CompiledFn,
    state: &mut FnState,
    args: Vec<Tensor>,
    start: u64,
    epoch: u64,
) -> Computed {
    let rows = args.first().and_then(|t| t.shape().first().copied())?;
    match stage {
        Stage::Map => Some((f.call(state, args, start, epoch).ok()?, rows)),
        Stage::Filter => {
            let keep = f.call(state, args.clone(), start, epoch).ok()?;
            let mask = row_mask(&keep, rows)?;
            let kept: Vec<Tensor> = args.iter().map(|t| t.compress_rows(mask)).collect();
            let n = kept_count(&kept, mask);
            Some((kept, n))
        }
    }
}

/// A predicate's block result as one keep flag per row (`None` if it is not that).
fn row_mask(keep: &[Tensor], rows: usize) -> Option<&[bool]> {
    let mask = keep.first()?.as_array::<bool>()?.as_slice()?;
    (mask.len() == rows).then_some(mask)
}

/// How many rows `kept` (the compacted leaves) holds: the first leaf's length, else the
/// mask's count (a block with no leaves).
fn kept_count(kept: &[Tensor], mask: &[bool]) -> usize {
    match kept.first().and_then(|t| t.shape().first()) {
        Some(&n) => n,
        None => mask.iter().filter(|&&k| k).count(),
    }
}

/// What the steps of `chain` from step `from` on make of one block, `args` of `rows` rows,
/// each step with its lane state in `states` and its index of the block's first element in
/// `starts` (every step's): the last step's rows (`None` when a function fails), and each
/// step's time when the chain is timed. The block stays on this thread from the first step to
/// the last, while it is in cache.
fn run_chain<'a>(
    chain: &Chain,
    from: usize,
    states: impl Iterator<Item = &'a mut FnState>,
    mut args: Vec<Tensor>,
    mut rows: usize,
    starts: &[u64],
) -> (Computed, Vec<u64>) {
    let mut nanos = Vec::new();
    let links = chain.links.iter().zip(starts).skip(from);
    for (((stage, f, epoch), &start), state) in links.zip(states) {
        let t = chain.timed.then(Instant::now);
        let Some(out) = run_block(*stage, f, state, args, start, *epoch) else {
            return (None, nanos);
        };
        (args, rows) = out;
        if let Some(t) = t {
            nanos.push(nanos_since(t));
        }
    }
    (Some((args, rows)), nanos)
}

/// The chain's first step run on a source's rows read in place (never copied into a block),
/// when that step's function is constants and one fused op and the kernel takes the rows'
/// layout: a map's results, or a filter's kept rows (the only rows copied); how many; and
/// its time when the chain is timed.
fn first_in_place(chain: &Chain, place: &InPlace) -> Option<(Vec<Tensor>, usize, Option<u64>)> {
    let (stage, f, _) = chain.links.first()?;
    let t = chain.timed.then(Instant::now);
    let leaves = place.leaves()?;
    let rows = *leaves.first()?.shape().first()?;
    let out = f.call_in_place(&leaves)?;
    let (out, rows) = match stage {
        Stage::Map => (out, rows),
        // Only the kept rows are copied out of the file.
        Stage::Filter => {
            let mask = row_mask(&out, rows)?;
            let kept: Vec<Tensor> = leaves.iter().map(|l| l.compress_rows(mask)).collect();
            let n = kept_count(&kept, mask);
            (kept, n)
        }
    };
    Some((out, rows, t.map(nanos_since)))
}

/// What the steps of `chain` (their lane states in `states`, their block starts in `starts`)
/// make of a job's input: the first step reads a source's rows in place when it can
/// ([`first_in_place`]); otherwise the rows are made first. The rows made come back for the
/// consumer's per-element fallback.
fn run_job<'a>(
    chain: &Chain,
    mut states: impl Iterator<Item = &'a mut FnState>,
    args: Args,
    starts: &[u64],
) -> Done {
    if let Args::Later(_, Some(place)) = &args
        && let Some((first, rows, first_nanos)) = first_in_place(chain, place)
    {
        // An in-place step is constants and one fused op: its lane state holds nothing.
        states.next();
        let (out, nanos) = run_chain(chain, 1, states, first, rows, starts);
        // A later step failed: the consumer runs the block per element, from rows made after
        // all.
        let made = match out {
            Some(_) => None,
            None => made_input(args_made_later(args)).1,
        };
        let nanos = first_nanos.into_iter().chain(nanos).collect();
        return Done { out, made, nanos };
    }
    let (args, made) = made_input(args);
    let (out, nanos) = match args {
        Some(args) => run_chain(chain, 0, states, args, 0, starts),
        None => (None, Vec::new()),
    };
    Done { out, made, nanos }
}

/// `args` with the rows left to be made (dropping where they are in place).
fn args_made_later(args: Args) -> Args {
    match args {
        Args::Later(make, _) => Args::Later(make, None),
        ready => ready,
    }
}

/// A job's input rows, made first when a source left that to the lane: the block function's
/// arguments (`None` for rows made short by a failed read, which the consumer hands out one
/// by one, then the error) and the rows made.
fn made_input(args: Args) -> (Option<Vec<Tensor>>, Option<Chunk>) {
    match args {
        Args::Ready(args) => (Some(args), None),
        Args::Later(make, _) => {
            let chunk = make();
            let args = match &chunk {
                Chunk {
                    block: Block::Stacked { leaves, rows },
                    error: None,
                } if *rows > 0 => Some(leaves.clone()),
                _ => None,
            };
            (args, Some(chunk))
        }
    }
}

/// The input bytes of a block's leaves.
fn block_bytes(block: &Block) -> usize {
    match block {
        Block::Stacked { leaves, .. } => leaves.iter().map(Tensor::nbytes).sum(),
        Block::Rows(rows) => rows.iter().flatten().map(Tensor::nbytes).sum(),
    }
}

/// The error for a block whose rows were lost making them (a bug: an internal error).
fn lost_block(start: u64) -> Diagnostic {
    Diagnostic::error(
        pipec_diag::Code::InternalError,
        format!("internal error: the block from element {start} on was lost while reading it"),
    )
    .with_help("this is a bug in pipec: please report it with the program")
}

/// A helper's life: take queued jobs, with a lane state per function, until the queue's
/// lock is poisoned (a panic while holding it: never, short of a bug).
fn helper(shared: &Shared) {
    let mut states: Vec<(Arc<CompiledFn>, FnState)> = Vec::new();
    while let Some(work) = shared.next_job() {
        let _lane = pipec_tensor::kernels::LaneWork::begin();
        let job = match work {
            Queued::Block(job) => job,
            Queued::Task(task) => {
                // A task that panics has failed its own stream, which finds out (its
                // results never arrive and it computes them itself); the helper goes on.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
                continue;
            }
        };
        // The states of functions no run holds any more go (their host instances with them).
        states.retain(|(f, _)| Arc::strong_count(f) > 1);
        let Some(args) = job.claim() else {
            continue;
        };
        // Each step's state: one function twice in a chain (`.map(f).map(f)`) gets two, so
        // neither step starts its host instances anew each block.
        let mut slots: Vec<usize> = Vec::with_capacity(job.chain.links.len());
        for (_, f, _) in &job.chain.links {
            let free =
                (0..states.len()).find(|&i| Arc::ptr_eq(&states[i].0, f) && !slots.contains(&i));
            slots.push(free.unwrap_or_else(|| {
                states.push((f.clone(), FnState::default()));
                states.len() - 1
            }));
        }
        // Lent to the job, and given back after it.
        let mut lent: Vec<FnState> = slots
            .iter()
            .map(|&i| std::mem::take(&mut states[i].1))
            .collect();
        let working = pipec_tensor::busy::Working::begin();
        // Should a job panic all the same, the consumer reruns a block it holds per element,
        // and reports a block a lane was to make lost, instead of waiting for it forever.
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_job(&job.chain, lent.iter_mut(), args, &job.starts)
        }))
        .unwrap_or_else(|_| {
            // The states may be half-updated.
            lent.iter_mut().for_each(|s| *s = FnState::default());
            Done {
                out: None,
                made: None,
                nanos: Vec::new(),
            }
        });
        for (&i, st) in slots.iter().zip(lent) {
            states[i].1 = st;
        }
        drop(working);
        job.by_helper.store(true, Ordering::Relaxed);
        job.finish(done);
    }
}

impl Shared {
    fn new() -> Shared {
        Shared {
            queue: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            wake: Condvar::new(),
        }
    }

    /// The next queued job: spins while a pipeline is busy, parks once idle for a while.
    fn next_job(&self) -> Option<Queued> {
        let mut spun_since = None;
        loop {
            if self.queued.load(Ordering::Acquire) > 0 {
                let mut queue = self.queue.lock().ok()?;
                if let Some(job) = queue.pop_front() {
                    self.queued.fetch_sub(1, Ordering::Release);
                    return Some(job);
                }
                continue;
            }
            let since = *spun_since.get_or_insert_with(Instant::now);
            if since.elapsed() < IDLE_SPIN {
                // Yield rather than spin: on a busy machine the scheduler may put a helper
                // on the consumer's core, and spinning there takes the time the consumer
                // needs to queue the next job (global_shuffle measured two threads slower
                // than one that way).
                std::thread::yield_now();
                continue;
            }
            let mut queue = self.queue.lock().ok()?;
            self.parked.fetch_add(1, Ordering::Relaxed);
            while queue.is_empty() {
                queue = match self.wake.wait(queue) {
                    Ok(q) => q,
                    Err(_) => {
                        self.parked.fetch_sub(1, Ordering::Relaxed);
                        return None;
                    }
                };
            }
            self.parked.fetch_sub(1, Ordering::Relaxed);
            spun_since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipec_ir::{Dim, Function, OpKind, TensorType, ValueId};
    use pipec_tensor::DType;
    use pipec_tensor::ops::BinaryOp;

    /// An `i64` function of `x` built by `body` (given the function, `x`, and a way to add
    /// binary ops and constants), with its block form.
    fn i64_fn(
        name: &str,
        body: impl FnOnce(&mut Ops<'_>, ValueId) -> ValueId,
    ) -> (Arc<CompiledFn>, Arc<CompiledFn>) {
        let span = pipec_diag::Span::default();
        let mut f = Function::new(name, span, vec![TensorType::scalar(DType::I64)]);
        let x = f.params[0];
        let result = body(&mut Ops(&mut f), x);
        f.results = vec![result];
        let vf = pipec_ir::vmap::vectorize_blocks(&f, Dim::Unknown).expect("vectorizes");
        (Arc::new(CompiledFn::new(f)), Arc::new(CompiledFn::new(vf)))
    }

    /// Adds ops to a test function.
    struct Ops<'a>(&'a mut Function);

    impl Ops<'_> {
        fn konst(&mut self, v: i64) -> ValueId {
            let ty = TensorType::scalar(DType::I64);
            self.0.push(
                OpKind::Const(Tensor::scalar(v)),
                vec![],
                ty,
                Default::default(),
            )
        }

        fn binary(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> ValueId {
            let dtype = if op == BinaryOp::Eq {
                DType::Bool
            } else {
                DType::I64
            };
            let ty = TensorType::scalar(dtype);
            self.0
                .push(OpKind::Binary(op), vec![a, b], ty, Default::default())
        }

        /// `n // (x - 10)`: fails on the value 10.
        fn over_x_minus_10(&mut self, n: i64, x: ValueId) -> ValueId {
            let (ten, n) = (self.konst(10), self.konst(n));
            let d = self.binary(BinaryOp::Sub, x, ten);
            self.binary(BinaryOp::FloorDiv, n, d)
        }
    }

    /// `x -> 100 // (x - 10)`: fails on element 10 (its value is its index).
    fn divide() -> (Arc<CompiledFn>, Arc<CompiledFn>) {
        i64_fn("divide", |ops, x| ops.over_x_minus_10(100, x))
    }

    /// A source handing out the given chunks as blocks (or their rows one by one).
    struct Chunks(VecDeque<Chunk>);

    fn range(lo: i64, hi: i64) -> Block {
        let values: Vec<i64> = (lo..hi).collect();
        let rows = values.len();
        Block::Stacked {
            leaves: vec![Tensor::from_vec(&[rows], values).expect("shape")],
            rows,
        }
    }

    /// `n` blocks of 1100 consecutive values from `first`: large enough to hand over.
    fn blocks_of_1100(first: i64, n: i64) -> Vec<Chunk> {
        (0..n)
            .map(|k| Chunk::ok(range(first + k * 1100, first + (k + 1) * 1100)))
            .collect()
    }

    fn source(chunks: Vec<Chunk>) -> Box<dyn Stream> {
        Box::new(Chunks(chunks.into()))
    }

    impl Stream for Chunks {
        fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
            let Some(mut c) = self.0.pop_front() else {
                return Ok(None);
            };
            if c.block.is_empty() {
                return c.error.map_or(Ok(None), Err);
            }
            let first = c.block.split_front(1);
            if !c.block.is_empty() || c.error.is_some() {
                self.0.push_front(c);
            }
            Ok(first.into_rows().pop())
        }

        fn next_block(&mut self, _max: usize) -> Option<Chunk> {
            self.0.pop_front()
        }

        /// How many chunks are left, as a `range` state (what a state holds is not read).
        fn save(&mut self) -> Result<NodeState, Diagnostic> {
            Ok(NodeState::Range {
                cur: self.0.len() as i64,
                stop: 0,
            })
        }
    }

    /// Every value handed out, then the error's message, pulling with `pull`.
    fn drain(
        map: &mut LaneStage,
        mut pull: impl FnMut(&mut LaneStage) -> Option<Chunk>,
    ) -> (Vec<i64>, Option<String>) {
        let mut values = Vec::new();
        while let Some(c) = pull(map) {
            for e in c.block.into_rows() {
                values.push(e[0].as_array::<i64>().expect("i64")[[]]);
            }
            if let Some(d) = c.error {
                return (values, Some(d.message));
            }
        }
        (values, None)
    }

    fn expected(range: std::ops::Range<i64>) -> Vec<i64> {
        // Floor division, as `//` rounds.
        range
            .map(|x| {
                let (a, b) = (100i64, x - 10);
                a / b - i64::from(a % b != 0 && (a < 0) != (b < 0))
            })
            .collect()
    }

    #[test]
    fn blocks_a_helper_computed_come_out_in_order() {
        // Blocks of at least LANE_MIN_BYTES (1024 values), or they stay on this thread.
        let chunks = vec![
            Chunk::ok(range(11, 1100)),
            Chunk::ok(range(1100, 2200)),
            Chunk::ok(range(2200, 3300)),
        ];
        let mut map = map_stage(chunks, 2);
        map.helped = true;
        map.steps[0].count = 11;
        map.fill(64);
        assert_eq!(map.ahead.len(), 3);
        // Nothing on this thread claims them: the helper must take every one.
        let deadline = Instant::now() + Duration::from_secs(30);
        let finished = |a: &Ahead| match &a.work {
            Work::Queued(j) => j.finished.load(Ordering::Acquire),
            _ => panic!("a large block is queued"),
        };
        while !map.ahead.iter().all(finished) {
            assert!(
                Instant::now() < deadline,
                "the helper never finished the queued blocks"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let (values, error) = drain(&mut map, |m| m.next_block(64));
        assert_eq!(values, expected(11..3300));
        assert_eq!(error, None);
    }

    #[test]
    fn a_failing_block_reruns_per_element_and_stops_at_its_error() {
        for helpers in [0, 1, 2] {
            // Large blocks (lanes start after two), the last holding the value 10.
            let mut chunks: Vec<Chunk> = blocks_of_1100(20, 5);
            chunks.push(Chunk::ok(range(5, 1200)));
            chunks.push(Chunk::ok(range(20, 1200)));
            let mut map = map_stage(chunks, helpers + 1);
            let (values, error) = drain(&mut map, |m| m.next_block(64));
            let mut want = expected(20..5520);
            want.extend(expected(5..10));
            assert_eq!(values, want, "{helpers} helpers");
            let error = error.expect("division by zero");
            assert!(error.contains("element 5505"), "{error}");
            assert!(map.next_block(64).is_none());
        }
    }

    #[test]
    fn an_input_error_stays_behind_the_rows_read_before_it() {
        let input_error = Diagnostic::error(pipec_diag::Code::WrongKind, "the input broke");
        let chunks = vec![
            Chunk::ok(range(11, 1100)),
            Chunk::ok(range(1100, 2200)),
            Chunk::ok(range(2200, 3300)),
            Chunk {
                block: range(3300, 4400),
                error: Some(input_error),
            },
            Chunk::ok(range(4400, 5500)),
        ];
        let mut map = map_stage(chunks, 2);
        let (values, error) = drain(&mut map, |m| m.next_block(4));
        assert_eq!(values, expected(11..4400));
        assert_eq!(error.as_deref(), Some("the input broke"));
    }

    #[test]
    fn single_pulls_continue_where_block_pulls_stopped() {
        let chunks: Vec<Chunk> = blocks_of_1100(11, 6);
        let mut map = map_stage(chunks, 2);
        let mut k = 0;
        let (values, error) = drain(&mut map, |m| {
            k += 1;
            if k % 2 == 0 {
                m.next()
                    .expect("no error")
                    .map(|e| Chunk::ok(Block::Rows(vec![e])))
            } else {
                m.next_block(3)
            }
        });
        assert_eq!(values, expected(11..6611));
        assert_eq!(error, None);
    }

    #[test]
    fn a_block_a_stalled_helper_holds_is_computed_here() {
        let (f, block_f) = divide();
        let chunks = vec![Chunk::ok(range(11, 1100)), Chunk::ok(range(1100, 2200))];
        // A helper that takes nothing: blocks are queued, and only the test takes them.
        let idle = Team::new();
        idle.size.store(1, Ordering::Release);
        let crew = Crew {
            helpers: 1,
            min_bytes: LANE_MIN_BYTES,
            team: OnceLock::from(Some(Arc::new(idle))),
        };
        let mut map = LaneStage::new(
            Stage::Map,
            source(chunks),
            f,
            Some(block_f),
            2,
            Arc::new(crew),
        );
        map.helped = true;
        map.fill(64);
        // A "helper" claims the first block and never finishes it.
        let Work::Queued(stalled) = &map.ahead[0].work else {
            panic!("a large block is queued");
        };
        assert!(stalled.claim().is_some());
        let (values, error) = drain(&mut map, |m| m.next_block(64));
        assert_eq!(values, expected(11..2200));
        assert_eq!(error, None);
    }

    /// `x -> (1000 // (x - 10)) % 2 == 0` as a filter: drops some rows, fails on the value 10.
    fn parity() -> (Arc<CompiledFn>, Arc<CompiledFn>) {
        i64_fn("parity", |ops, x| {
            let q = ops.over_x_minus_10(1000, x);
            let (two, zero) = (ops.konst(2), ops.konst(0));
            let m = ops.binary(BinaryOp::Mod, q, two);
            ops.binary(BinaryOp::Eq, m, zero)
        })
    }

    fn kept(range: std::ops::Range<i64>) -> Vec<i64> {
        range
            .filter(|&x| {
                let (a, b) = (1000i64, x - 10);
                let q = a / b - i64::from(a % b != 0 && (a < 0) != (b < 0));
                q.rem_euclid(2) == 0
            })
            .collect()
    }

    /// [`divide`] as a map over `chunks`, on `lanes` lanes.
    fn map_stage(chunks: Vec<Chunk>, lanes: usize) -> LaneStage {
        let (f, block_f) = divide();
        let crew = Arc::new(Crew::new(lanes - 1, LANE_MIN_BYTES));
        LaneStage::new(Stage::Map, source(chunks), f, Some(block_f), lanes, crew)
    }

    /// [`parity`] as a filter over `chunks`, on `lanes` lanes.
    fn filter_stage(chunks: Vec<Chunk>, lanes: usize) -> LaneStage {
        let (f, block_f) = parity();
        let crew = Arc::new(Crew::new(lanes - 1, LANE_MIN_BYTES));
        LaneStage::new(Stage::Filter, source(chunks), f, Some(block_f), lanes, crew)
    }

    #[test]
    fn a_filter_on_lanes_keeps_what_its_predicate_keeps() {
        for lanes in [1, 2, 3] {
            let chunks: Vec<Chunk> = blocks_of_1100(11, 6);
            let mut stage = filter_stage(chunks, lanes);
            let (values, error) = drain(&mut stage, |m| m.next_block(500));
            assert_eq!(values, kept(11..6611), "{lanes} lanes");
            assert_eq!(error, None);
        }
    }

    #[test]
    fn a_failing_filter_block_keeps_the_rows_before_the_error() {
        for lanes in [1, 2, 3] {
            let mut chunks: Vec<Chunk> = blocks_of_1100(11, 4);
            chunks.push(Chunk::ok(range(-1000, 100)));
            chunks.push(Chunk::ok(range(11, 1111)));
            let mut stage = filter_stage(chunks, lanes);
            let (values, error) = drain(&mut stage, |m| m.next_block(700));
            let mut want = kept(11..4411);
            want.extend(kept(-1000..10));
            assert_eq!(values, want, "{lanes} lanes");
            // 4400 elements before the block, then -1000..10 is 1010 more.
            let error = error.expect("division by zero");
            assert!(error.contains("element 5410"), "{error}");
            assert!(stage.next_block(64).is_none());
        }
    }

    #[test]
    fn single_pulls_of_a_filter_continue_where_block_pulls_stopped() {
        let chunks: Vec<Chunk> = blocks_of_1100(11, 5);
        let mut stage = filter_stage(chunks, 2);
        let mut k = 0;
        let (values, error) = drain(&mut stage, |m| {
            k += 1;
            if k % 3 == 0 {
                m.next_block(7)
            } else {
                m.next()
                    .expect("no error")
                    .map(|e| Chunk::ok(Block::Rows(vec![e])))
            }
        });
        assert_eq!(values, kept(11..5511));
        assert_eq!(error, None);
    }

    /// [`divide`] fused below [`parity`] on `lanes` lanes, as one job per block: `y = 100 //
    /// (x - 10)` kept when `(1000 // (y - 10)) % 2 == 0`. The map fails on the value 10, the
    /// filter where `y` is 10 (at the value 20).
    fn fused_stage(chunks: Vec<Chunk>, lanes: usize) -> LaneStage {
        let (f, block_f) = divide();
        let below = Step::new(Stage::Map, f, Some(block_f), 0, 0);
        filter_stage(chunks, lanes).fusing(vec![below])
    }

    /// What `fused_stage` keeps of `range`, element at a time, or the value it fails on.
    fn fused_kept(range: std::ops::Range<i64>) -> Result<Vec<i64>, i64> {
        let floor_div = |a: i64, b: i64| a / b - i64::from(a % b != 0 && (a < 0) != (b < 0));
        let mut out = Vec::new();
        for x in range {
            if x == 10 {
                return Err(x);
            }
            let y = floor_div(100, x - 10);
            if y == 10 {
                return Err(x);
            }
            if floor_div(1000, y - 10).rem_euclid(2) == 0 {
                out.push(y);
            }
        }
        Ok(out)
    }

    #[test]
    fn a_fused_map_and_filter_keep_what_the_two_keep_apart() {
        for lanes in [1, 2, 3] {
            let chunks: Vec<Chunk> = blocks_of_1100(30, 6);
            let mut stage = fused_stage(chunks, lanes);
            let (values, error) = drain(&mut stage, |m| m.next_block(500));
            assert_eq!(Ok(values), fused_kept(30..6630), "{lanes} lanes");
            assert_eq!(error, None);
            // The map's dataset index moved with the filter's.
            assert_eq!(stage.steps[0].count, 6600);
            assert_eq!(stage.steps[1].count, 6600);
        }
    }

    #[test]
    fn a_failing_fused_block_stops_at_the_first_error_of_either_step() {
        // The map fails on 10, the filter on 20: whichever an element meets first.
        for (lo, bad) in [(0, 10), (15, 20)] {
            for lanes in [1, 2, 3] {
                let mut chunks: Vec<Chunk> = blocks_of_1100(30, 3);
                chunks.push(Chunk::ok(range(lo, lo + 1100)));
                chunks.push(Chunk::ok(range(30, 1130)));
                let mut stage = fused_stage(chunks, lanes);
                let (values, error) = drain(&mut stage, |m| m.next_block(300));
                let mut want = fused_kept(30..3330).expect("no error");
                assert_eq!(fused_kept(lo..lo + 1100), Err(bad));
                want.extend(fused_kept(lo..bad).expect("no error before"));
                assert_eq!(values, want, "{lanes} lanes");
                let error = error.expect("division by zero");
                // 3300 elements before the block; the filter counts the same positions.
                let at = 3300 + bad - lo;
                assert!(error.contains(&format!("element {at}")), "{error}");
                assert!(stage.next_block(64).is_none());
            }
        }
    }

    #[test]
    fn a_fused_stage_saves_the_map_state_a_map_stage_saves() {
        let mut stage = fused_stage(blocks_of_1100(30, 2), 1).with_epoch(4);
        stage.steps[0].epoch = 9;
        drop(stage.next_block(4096));
        let Ok(NodeState::Stage {
            input,
            skip,
            count,
            epoch,
        }) = stage.save()
        else {
            panic!("a stage state");
        };
        assert_eq!((skip, epoch), (0, 4));
        assert_eq!(count, 2200);
        let NodeState::Stage {
            skip, count, epoch, ..
        } = *input
        else {
            panic!("the fused map's state inside");
        };
        assert_eq!((skip, count, epoch), (0, 2200, 9));
    }
}
