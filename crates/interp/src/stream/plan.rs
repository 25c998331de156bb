//! Plans: the nodes of a lowered pipeline, each ready to be opened any number of times.
//!
//! Lowering (`super::lower`) builds them; opening (`super::open`, `super::restore`) and the
//! random-access view (`crate::random_access`) read them. A plan holds what every opening
//! shares (compiled functions, loaded data, drawn seeds) and the epoch counters that make
//! each opening draw anew; a stream holds what one opening has consumed.

use super::base::RunOptions;
use crate::Element;
use crate::func::CompiledFn;
use crate::lanes::Crew;
use crate::state::PlanState;
use crate::stats::RunStats;
use pipec_diag::Span;
use pipec_ir::{Nested, Program};
use pipec_tensor::kernels;
use pipec_tensor::{Scalar, Tensor};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The seeds of a pipeline's `shuffle`s and `global_shuffle`s, by node index.
pub(crate) type Seeds = std::collections::BTreeMap<u32, crate::state::PlanState>;

/// A pipeline's `shuffle` and `global_shuffle` plans, by node index (their seeds are saved).
pub(crate) type ShufflePlans = Vec<(u32, Arc<Plan>)>;

/// A node ready to be opened any number of times.
pub(crate) struct Plan {
    /// What the node does, with what lowering settled for it.
    pub(crate) kind: PlanKind,
    /// The input nodes' plans, in the IR's order.
    pub(crate) inputs: Vec<Arc<Plan>>,
    /// The node's span, for run-time errors.
    pub(crate) span: Span,
    /// Whether this node may hand out blocks (see [`RunOptions::blocks`]).
    pub(super) blocks: bool,
    /// Whether pulling this node's elements ahead of demand cannot be observed: no function
    /// on the way has an effect (an eager `print`). Lanes compute ahead only over such inputs.
    pub(super) pure_pull: bool,
    /// Whether two openings of this node may give different elements: a reshuffling
    /// `shuffle`, a function that draws random numbers or calls the host, an `interleave`
    /// (its inner functions are not looked into), on the way. `repeat` reads it.
    pub(super) varies: bool,
    /// Where `--stats` counts this node.
    pub(super) timer: Option<(Arc<RunStats>, usize)>,
    /// How many times the node was opened: a map's or filter's epoch, which its random
    /// ops draw with (so each `repeat` epoch draws anew). Shared with `below`, so the nodes
    /// that reopen plans save and restore it like a `shuffle`'s counter.
    pub(crate) opens: Arc<std::sync::atomic::AtomicU64>,
    /// Inside an `interleave`'s inner dataset: the hash of the interleave's epoch and the
    /// input element's index that this node's epochs are derived from ([`Plan::epoch_for`]).
    pub(crate) nest: Option<u64>,
    /// Whether streams keep marks for saving the state ([`RunOptions::checkpoints`]).
    pub(super) track: bool,
    /// The epoch counters in this node's subtree (itself included) — of every `shuffle`,
    /// `global_shuffle`, `map`, `filter` and `interleave`: a node that opens plans as it
    /// runs (`repeat`, `concatenate`, `cache`) saves them, so a resumed run that replays it
    /// reopens them with the same epochs.
    pub(crate) below: Vec<(u32, Arc<std::sync::atomic::AtomicU64>)>,
}

/// Epoch counters of `shuffle` plans, by node index.
pub(crate) type Opens = Vec<(u32, u64)>;

/// The counters in `below`, now.
pub(crate) fn snapshot_opens(below: &[(u32, Arc<std::sync::atomic::AtomicU64>)]) -> Opens {
    below
        .iter()
        .map(|(id, c)| (*id, c.load(std::sync::atomic::Ordering::Relaxed)))
        .collect()
}

/// The epoch of a `shuffle`'s or `global_shuffle`'s next opening, counted in `epochs`: each
/// opening (each `repeat` epoch) draws anew, unless `reshuffle` is off and every opening
/// keeps epoch 0's order.
pub(super) fn next_shuffle_epoch(reshuffle: bool, epochs: &std::sync::atomic::AtomicU64) -> u64 {
    if reshuffle {
        epochs.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    } else {
        0
    }
}

/// Sets the counters in `below` that `opens` names.
pub(crate) fn apply_opens(below: &[(u32, Arc<std::sync::atomic::AtomicU64>)], opens: &Opens) {
    for (id, c) in below {
        if let Some((_, v)) = opens.iter().find(|(i, _)| i == id) {
            c.store(*v, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A node's kind as the runtime runs it: the IR's `DsKind` with files loaded, functions
/// compiled, seeds drawn and lanes chosen (see `super::lower`).
pub(crate) enum PlanKind {
    /// `from_tensor_slices`: its components, sliced along axis 0.
    Slices(Arc<[super::sources::Column]>),
    /// `from_tensors`: the loaded components, one element.
    Whole(Vec<Tensor>),
    /// `range`, its bounds constant or computed per input element (`RangeOf`).
    Range { start: i64, stop: i64, step: i64 },
    /// `read_csv`, with the dtype and row width the trace fixed.
    ReadCsv {
        path: PathBuf,
        header: bool,
        dtype: pipec_tensor::DType,
        ncols: usize,
    },
    /// `read_lines`.
    ReadLines(Vec<PathBuf>),
    /// `read_tfrecord`, with its compression parsed.
    ReadTfRecord {
        paths: Vec<PathBuf>,
        compression: pipec_records::Compression,
    },
    /// `read_parquet`.
    ReadParquet {
        paths: Vec<PathBuf>,
        columns: Vec<String>,
    },
    /// `map`: its compiled function, block form and lanes.
    Map {
        f: Arc<CompiledFn>,
        /// `f` vectorized over a block of elements, when block execution applies.
        block_f: Option<Arc<CompiledFn>>,
        /// Threads computing: a parallel map's lanes, or (blocks of a pure map over a pure
        /// input) the run's threads.
        lanes: usize,
        /// The run's helper threads for lanes.
        crew: Arc<Crew>,
    },
    /// `filter`: its compiled predicate, block form and lanes.
    Filter {
        f: Arc<CompiledFn>,
        block_f: Option<Arc<CompiledFn>>,
        /// Threads computing blocks: the run's, for a pure predicate over a pure input.
        lanes: usize,
        crew: Arc<Crew>,
    },
    /// `batch`.
    Batch { size: usize, drop_remainder: bool },
    /// `padded_batch`.
    PaddedBatch {
        size: usize,
        shapes: Vec<Option<Vec<Option<usize>>>>,
        values: Vec<Scalar>,
        drop_remainder: bool,
    },
    /// `unbatch`.
    Unbatch,
    /// `epochs` counts opens, so each `repeat` epoch reshuffles (tf.data's default) unless
    /// `reshuffle` is off, when every epoch uses epoch 0's seed.
    Shuffle {
        buffer: usize,
        seed: u64,
        reshuffle: bool,
        epochs: Arc<std::sync::atomic::AtomicU64>,
    },
    /// `repeat`, its count constant or computed per input element (`RepeatOf`).
    Repeat(Option<u64>),
    /// `take`.
    Take(i64),
    /// `skip`.
    Skip(i64),
    /// `zip`.
    Zip,
    /// `concatenate`.
    Concatenate,
    /// `enumerate`.
    Enumerate(i64),
    /// `shard`.
    Shard { num: u64, index: u64 },
    /// `prefetch(0)`: the input's stream itself.
    Passthrough,
    /// `prefetch(n)`, `n` capped at `MAX_PREFETCH`.
    Prefetch(usize),
    /// `cache`: what it keeps across its openings.
    Cache(Arc<CacheCell>),
    /// `interleave`/`flat_map` (`crate::interleave`).
    Interleave(Arc<NestedPlan>),
    /// A table transformation (`pipec_ir::TRANSFORMS`, streams in `super::transforms`),
    /// with its predicate compiled.
    Transform {
        t: pipec_ir::Transform,
        f: Option<Arc<CompiledFn>>,
    },
    /// `global_shuffle` (`crate::global_shuffle`); `epochs` counts opens as for `Shuffle`.
    GlobalShuffle {
        seed: u64,
        reshuffle: bool,
        epochs: Arc<std::sync::atomic::AtomicU64>,
        /// The run's helpers, which permute blocks ahead.
        crew: Arc<Crew>,
    },
}

impl Plan {
    /// This opening's epoch, for a map's or filter's random ops: how often it was opened.
    pub(crate) fn next_epoch(&self) -> u64 {
        self.epoch_for(
            self.opens
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// The epoch random ops draw with in this node's `n`-th opening: `n` itself, or inside
    /// an `interleave`'s inner dataset `op_key(nest, [n])`, so that each inner dataset
    /// (each input element, each epoch of the interleave) draws anew.
    pub(crate) fn epoch_for(&self, n: u64) -> u64 {
        match self.nest {
            None => n,
            Some(base) => kernels::random::op_key(base, &[n]),
        }
    }
}

/// What a `cache` plan keeps across its openings (shared with the streams it opens).
#[derive(Default)]
pub(crate) struct CacheCell {
    /// The elements, once the first pass completed.
    pub(crate) elems: Mutex<Option<Arc<Vec<Element>>>>,
    /// The `shuffle` counters below as the first pass began (a resumed run rebuilds the
    /// cache with them).
    pub(crate) first_opens: Mutex<Option<Opens>>,
    /// In a resumed run, the counters of a first pass an earlier run completed
    /// (`PlanState::Cache`): the cache is rebuilt from them when it is next opened.
    pub(crate) earlier: Mutex<Option<Opens>>,
}

/// What opening an `interleave` needs.
pub(crate) struct NestedPlan {
    /// The element → inner-source-values function.
    pub(crate) func: Arc<CompiledFn>,
    /// The program the inner pipeline's functions live in.
    pub(crate) prog: Arc<Program>,
    /// The inner pipeline and the node's cycle and block lengths.
    pub(crate) nested: Nested,
    /// The run's options, without `--stats` (inner nodes are not counted).
    pub(crate) opts: RunOptions,
    /// The run's helper threads, shared by the inner maps and filters.
    pub(crate) crew: Arc<Crew>,
}

/// The `shuffle` and `global_shuffle` plans' seeds, and the first-pass counters of each
/// `cache` whose first pass completed. (The shuffles' epoch counters are saved by the nodes
/// that reopen them, `repeat`, `concatenate` and `cache`, as of the position each saved: a
/// global copy taken while a `prefetch` thread runs a `repeat` ahead would be ahead of the
/// position.)
pub(crate) fn plan_states(shuffles: &[(u32, Arc<Plan>)]) -> BTreeMap<u32, PlanState> {
    shuffles
        .iter()
        .filter_map(|(id, plan)| match &plan.kind {
            PlanKind::Shuffle { seed, .. } => Some((*id, PlanState::Shuffle { seed: *seed })),
            PlanKind::GlobalShuffle { seed, .. } => {
                Some((*id, PlanState::GlobalShuffle { seed: *seed }))
            }
            PlanKind::Cache(cell) => {
                let complete = cell.elems.lock().is_ok_and(|g| g.is_some());
                let opens = if complete {
                    cell.first_opens.lock().ok().and_then(|g| g.clone())
                } else {
                    // Not rebuilt yet in this (resumed) run: still the earlier run's.
                    cell.earlier.lock().ok().and_then(|g| g.clone())
                };
                opens.map(|opens| (*id, PlanState::Cache { opens }))
            }
            _ => None,
        })
        .collect()
}
