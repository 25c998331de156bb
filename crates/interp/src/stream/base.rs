//! What every stream kind and every module around the streams shares: the [`Stream`]
//! trait, the run's [`RunOptions`], and the helpers on elements that nodes and lanes both
//! use. Nothing here knows a particular stream kind or plan, so the modules that define
//! streams (`crate::lanes`, `crate::records`, `crate::interleave`, ...) depend on this one
//! and not on each other.

use crate::Element;
use crate::block::{Block, Chunk, Pull};
use crate::func::CompiledFn;
use crate::state::{NodeState, cannot_save};
use pipec_diag::Diagnostic;
use std::path::PathBuf;

/// How to run a pipeline.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Worker lanes for parallel `map`s (`--threads`).
    pub threads: usize,
    /// The directory of the source file. File paths in the IR were already resolved against
    /// it when tracing (a file's header types it), so the runtime opens them as they are.
    pub base_dir: PathBuf,
    /// Block execution: maps and filters whose functions vectorize run once per block of
    /// consecutive elements, and `batch` takes slices of contiguous sources. Off, every node
    /// moves one element at a time (the reference behaviour; `-O0` runs that way).
    pub blocks: bool,
    /// Count elements and time every node ([`ElementStream::stats`], `--stats`).
    pub stats: bool,
    /// The seed of every `shuffle` written without one; `None` (the default) draws a fresh
    /// seed per run, as tf.data does. Tests that compare two runs fix it.
    pub shuffle_seed: Option<u64>,
    /// With `threads` above one, the smallest block (in input bytes) a map or filter hands to
    /// another thread; lanes start after two such blocks. The default,
    /// [`LANE_MIN_BYTES`](crate::LANE_MIN_BYTES), keeps tiny blocks where a hand-over costs
    /// more than the work; 0 sends every block (the fuzz targets do, to exercise lanes on
    /// small programs).
    pub lane_min_bytes: usize,
    /// Keep what saving the iterator's state needs ([`ElementStream::save`]): nodes that
    /// compute ahead (lanes, `prefetch`, `batch` over blocks) snapshot their input's state
    /// before pulling. Off, a state can be saved only where nothing was computed ahead.
    pub checkpoints: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: 1,
            base_dir: PathBuf::from("."),
            blocks: true,
            stats: false,
            shuffle_seed: None,
            lane_min_bytes: crate::LANE_MIN_BYTES,
            checkpoints: false,
        }
    }
}

/// Pulls elements one at a time, or a block at a time.
pub(crate) trait Stream: Send {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic>;

    /// Up to `max` (>= 1) next elements; `None` at the end. A node without a block form
    /// gathers elements one by one.
    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        gather_rows(|| self.next(), max)
    }

    /// Like [`Stream::next_block`], but a source may hand out a [`Later`](crate::block::Later):
    /// its position is taken now, its rows made by whichever lane takes the block.
    fn next_pull(&mut self, max: usize) -> Option<Pull> {
        self.next_block(max).map(Pull::Now)
    }

    /// Says that the consumer stacks this stream's rows `rows` at a time (a `batch`): a
    /// node that computes rows on several threads may then stack them there, and hand them
    /// out as blocks that end on whole batches (see `ParMap`).
    fn stacks_rows(&mut self, _rows: usize) {}

    /// The stream's position as of the last element it handed out (never counting what it
    /// computed ahead); see [`crate::state`]. A stream kind without a saved form says so
    /// (E0822) instead of saving a position that would resume elsewhere.
    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        let name = std::any::type_name::<Self>();
        Err(cannot_save(name.rsplit("::").next().unwrap_or(name)))
    }
}

/// Up to `max` elements from `next`, as [`Block::Rows`], with the error that stopped it.
pub(crate) fn gather_rows(
    mut next: impl FnMut() -> Result<Option<Element>, Diagnostic>,
    max: usize,
) -> Option<Chunk> {
    let mut rows = Vec::new();
    while rows.len() < max {
        match next() {
            Ok(Some(e)) => rows.push(e),
            Ok(None) => break,
            Err(d) => {
                return Some(Chunk {
                    block: Block::Rows(rows),
                    error: Some(d),
                });
            }
        }
    }
    (!rows.is_empty()).then(|| Chunk::ok(Block::Rows(rows)))
}

/// How many dataset elements one call of `f` on `e` covers.
pub(crate) fn element_count(f: &CompiledFn, e: &Element) -> u64 {
    if f.func().batched {
        e.first()
            .and_then(|t| t.shape().first())
            .map_or(1, |&n| n as u64)
    } else {
        1
    }
}
