//! Per-node counters for `--stats`: how many elements each dataset node handed out and how
//! long its consumer waited for them.
//!
//! Every opened stream of a node is wrapped in [`Timed`], which adds the wall time of each
//! `next`/`next_block` call (inclusive: the node's inputs run inside it) and the rows it
//! returned. A node's own time is its inclusive time minus its inputs' inclusive time. Work
//! on other threads (a `prefetch` producer, parallel `map` lanes) is seen as the time the
//! consumer waited, so those nodes' shares can be smaller than the CPU they used.

use crate::Element;
use crate::block::Chunk;
use pipec_diag::Diagnostic;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The counters of one dataset node.
#[derive(Debug)]
struct NodeCounters {
    text: String,
    inputs: Vec<usize>,
    elements: AtomicU64,
    nanos: AtomicU64,
    /// Set when the node runs on lanes; then blocks it computed, and those a helper did.
    on_lanes: AtomicBool,
    lane_blocks: AtomicU64,
    helper_blocks: AtomicU64,
}

/// Counters for every node of a running pipeline.
#[derive(Debug, Default)]
pub struct RunStats {
    nodes: Vec<NodeCounters>,
}

/// One node's line of the `--stats` report.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeReport {
    /// The node's IR line, as `--emit-ir` prints it.
    pub text: String,
    /// Elements the node handed to its consumer.
    pub elements: u64,
    /// Seconds spent in the node itself, its inputs' time excluded.
    pub self_secs: f64,
    /// Seconds spent in the node and its inputs.
    pub total_secs: f64,
    /// For a `map` on lanes: the blocks it computed, and how many of them helper threads did.
    pub lanes: Option<LaneReport>,
}

/// How a `map` on lanes shared its blocks out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LaneReport {
    /// Blocks the map computed with its block function.
    pub blocks: u64,
    /// Those a helper thread computed (the rest ran on the consumer's thread).
    pub on_helpers: u64,
}

impl RunStats {
    /// Adds a node (in topological order: inputs first) and returns its index.
    pub(crate) fn add(&mut self, text: String, inputs: Vec<usize>) -> usize {
        self.nodes.push(NodeCounters {
            text,
            inputs,
            elements: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            on_lanes: AtomicBool::new(false),
            lane_blocks: AtomicU64::new(0),
            helper_blocks: AtomicU64::new(0),
        });
        self.nodes.len() - 1
    }

    fn record(&self, node: usize, rows: u64, since: Instant) {
        let n = &self.nodes[node];
        n.elements.fetch_add(rows, Ordering::Relaxed);
        let nanos = since.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        n.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Adds `rows` elements and `nanos` of inclusive time to `node`: for a map fused into the
    /// stage above it, which has no timed stream of its own (see `crate::lanes`).
    pub(crate) fn credit(&self, node: usize, rows: u64, nanos: u64) {
        let n = &self.nodes[node];
        n.elements.fetch_add(rows, Ordering::Relaxed);
        n.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Marks `node` as a map on lanes.
    pub(crate) fn lanes_open(&self, node: usize) {
        self.nodes[node].on_lanes.store(true, Ordering::Relaxed);
    }

    /// Counts a block `node` computed on lanes, by a helper or not.
    pub(crate) fn lane_block(&self, node: usize, by_helper: bool) {
        let n = &self.nodes[node];
        n.lane_blocks.fetch_add(1, Ordering::Relaxed);
        n.helper_blocks
            .fetch_add(u64::from(by_helper), Ordering::Relaxed);
    }

    /// The report, one line per node in topological order (sources first).
    pub fn report(&self) -> Vec<NodeReport> {
        let total = |i: usize| self.nodes[i].nanos.load(Ordering::Relaxed) as f64 * 1e-9;
        (0..self.nodes.len())
            .map(|i| {
                let inputs: f64 = self.nodes[i].inputs.iter().map(|&j| total(j)).sum();
                NodeReport {
                    text: self.nodes[i].text.clone(),
                    elements: self.nodes[i].elements.load(Ordering::Relaxed),
                    self_secs: (total(i) - inputs).max(0.0),
                    total_secs: total(i),
                    lanes: self.nodes[i]
                        .on_lanes
                        .load(Ordering::Relaxed)
                        .then(|| LaneReport {
                            blocks: self.nodes[i].lane_blocks.load(Ordering::Relaxed),
                            on_helpers: self.nodes[i].helper_blocks.load(Ordering::Relaxed),
                        }),
                }
            })
            .collect()
    }
}

/// A stream whose calls are timed and counted into node `node` of `stats`.
pub(crate) struct Timed {
    pub(crate) inner: Box<dyn crate::stream::base::Stream>,
    pub(crate) stats: std::sync::Arc<RunStats>,
    pub(crate) node: usize,
}

impl crate::stream::base::Stream for Timed {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        let t = Instant::now();
        let r = self.inner.next();
        let rows = matches!(r, Ok(Some(_))) as u64;
        self.stats.record(self.node, rows, t);
        r
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        let t = Instant::now();
        let r = self.inner.next_block(max);
        let rows = r.as_ref().map_or(0, |c| c.block.len() as u64);
        self.stats.record(self.node, rows, t);
        r
    }

    fn next_pull(&mut self, max: usize) -> Option<crate::block::Pull> {
        let t = Instant::now();
        let r = self.inner.next_pull(max);
        let rows = match &r {
            Some(crate::block::Pull::Now(c)) => c.block.len() as u64,
            // The rows a lane will make (fewer only if reading them fails, and the run ends).
            Some(crate::block::Pull::Later(l)) => l.rows as u64,
            None => 0,
        };
        self.stats.record(self.node, rows, t);
        r
    }

    fn stacks_rows(&mut self, rows: usize) {
        self.inner.stacks_rows(rows);
    }

    fn save(&mut self) -> Result<crate::state::NodeState, Diagnostic> {
        self.inner.save()
    }
}
