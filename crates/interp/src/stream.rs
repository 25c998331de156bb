//! Dataset nodes as pull-based streams.
//!
//! A pipeline is first turned into a tree of plans (one per node, sharing compiled
//! functions and loaded source data); opening a plan gives a fresh stream, so `repeat`
//! simply reopens its input for every epoch.

use crate::block::{Block, Chunk, Pending};
use crate::budget::Budget;
use crate::func::{CompiledFn, FnState};
use crate::lanes::{Crew, LaneStage, Stage};
use crate::rng::Rng;
use crate::state::{Marks, NodeState, Rows, cannot_save, not_tracked};
use crate::stats::{RunStats, Timed};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{DsKind, DsNodeId, ElemType, Parallelism, Pipeline, Program, Source};
use pipec_tensor::kernels;
use pipec_tensor::{Scalar, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

mod restore;

pub(crate) use restore::plan_states;

/// The seeds of a pipeline's `shuffle`s and `global_shuffle`s, by node index.
pub(crate) type Seeds = std::collections::BTreeMap<u32, crate::state::PlanState>;

/// A pipeline's `shuffle` and `global_shuffle` plans, by node index (their seeds are saved).
pub(crate) type ShufflePlans = Vec<(u32, Arc<Plan>)>;

/// One dataset element: its tensor leaves, flat, in the order of the element type.
pub type Element = Vec<Tensor>;

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
            plans: restore::plan_states(&self.shuffles),
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
    let mut stat_index = HashMap::new();
    let stats = opts.stats.then(|| {
        let lines = pipec_ir::ds_node_lines(prog, pipeline);
        let mut stats = RunStats::default();
        for node in pipeline.topo_order() {
            let inputs = pipeline
                .inputs(node)
                .iter()
                .map(|i| stat_index[i])
                .collect();
            let text = lines.get(&node).cloned().unwrap_or_default();
            stat_index.insert(node, stats.add(text, inputs));
        }
        Arc::new(stats)
    });
    let mut builder = PlanBuilder {
        prog,
        pipeline,
        opts,
        args: Vec::new(),
        fns: HashMap::new(),
        block_fns: HashMap::new(),
        plans: HashMap::new(),
        stats: stats.clone(),
        stat_index,
        crew: Arc::new(Crew::new(
            opts.threads.saturating_sub(1),
            opts.lane_min_bytes,
        )),
        saved: state.map(|s| s.plans.clone()).unwrap_or_default(),
        shuffles: Vec::new(),
        nest: None,
    };
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

/// Opens the inner pipeline of an `interleave`/`flat_map` for one input element, whose
/// function gave `args`; `fns` caches compiled functions between elements, `nest` is what
/// its epochs derive from ([`Plan::nest`]), and `at` a saved position with the seeds its
/// `shuffle`s drew. Returns the stream and its `shuffle` plans (whose seeds a state saves).
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_nested(
    prog: &Program,
    pipeline: &Pipeline,
    opts: &RunOptions,
    args: Vec<Tensor>,
    crew: &Arc<Crew>,
    fns: &mut HashMap<pipec_ir::FuncId, Arc<CompiledFn>>,
    nest: u64,
    at: Option<(&NodeState, &Seeds)>,
) -> Result<(Box<dyn Stream>, ShufflePlans), Diagnostic> {
    let mut builder = PlanBuilder {
        prog,
        pipeline,
        opts,
        args,
        fns: std::mem::take(fns),
        block_fns: HashMap::new(),
        plans: HashMap::new(),
        stats: None,
        stat_index: HashMap::new(),
        crew: crew.clone(),
        saved: at.map(|(_, seeds)| seeds.clone()).unwrap_or_default(),
        shuffles: Vec::new(),
        nest: Some(nest),
    };
    let plan = builder.plan(pipeline.output);
    *fns = std::mem::take(&mut builder.fns);
    let stream = plan?.open_at(at.map(|(st, _)| st))?;
    Ok((stream, builder.shuffles))
}

/// Whether calling `f` has no effect a consumer could see: every eager call in it is to a
/// host function that may run on blocks (pure, stateless).
fn pure_body(f: &CompiledFn) -> bool {
    f.func().ops.iter().all(|op| match &op.kind {
        pipec_ir::OpKind::Eager(host) => host.runs_on_blocks(),
        _ => true,
    })
}

/// Pulls elements one at a time, or a block at a time.
pub(crate) trait Stream: Send {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic>;

    /// Up to `max` (>= 1) next elements; `None` at the end. A node without a block form
    /// gathers elements one by one.
    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        gather_rows(|| self.next(), max)
    }

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

/// Hides a stream's block form: with block execution off, every node moves single elements.
struct PerElement(Box<dyn Stream>);

impl Stream for PerElement {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        self.0.next()
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        self.0.save()
    }
}

/// A node ready to be opened any number of times.
pub(crate) struct Plan {
    pub(crate) kind: PlanKind,
    pub(crate) inputs: Vec<Arc<Plan>>,
    pub(crate) span: Span,
    /// Whether this node may hand out blocks (see [`RunOptions::blocks`]).
    blocks: bool,
    /// Whether pulling this node's elements ahead of demand cannot be observed: no function
    /// on the way has an effect (an eager `print`). Lanes compute ahead only over such inputs.
    pure_pull: bool,
    /// Where `--stats` counts this node.
    timer: Option<(Arc<RunStats>, usize)>,
    /// How many times the node was opened: a map's or filter's epoch, which its random
    /// ops draw with (so each `repeat` epoch draws anew). Shared with `below`, so the nodes
    /// that reopen plans save and restore it like a `shuffle`'s counter.
    pub(crate) opens: Arc<std::sync::atomic::AtomicU64>,
    /// Inside an `interleave`'s inner dataset: the hash of the interleave's epoch and the
    /// input element's index that this node's epochs are derived from ([`Plan::epoch_for`]).
    pub(crate) nest: Option<u64>,
    /// Whether streams keep marks for saving the state ([`RunOptions::checkpoints`]).
    track: bool,
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

/// Sets the counters in `below` that `opens` names.
pub(crate) fn apply_opens(below: &[(u32, Arc<std::sync::atomic::AtomicU64>)], opens: &Opens) {
    for (id, c) in below {
        if let Some((_, v)) = opens.iter().find(|(i, _)| i == id) {
            c.store(*v, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

pub(crate) enum PlanKind {
    Slices(Vec<Tensor>),
    Whole(Vec<Tensor>),
    Range {
        start: i64,
        stop: i64,
        step: i64,
    },
    ReadCsv {
        path: PathBuf,
        header: bool,
        dtype: pipec_tensor::DType,
        ncols: usize,
    },
    ReadLines(Vec<PathBuf>),
    ReadTfRecord {
        paths: Vec<PathBuf>,
        compression: pipec_records::Compression,
    },
    ReadParquet {
        paths: Vec<PathBuf>,
        columns: Vec<String>,
    },
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
    Filter {
        f: Arc<CompiledFn>,
        block_f: Option<Arc<CompiledFn>>,
        /// Threads computing blocks: the run's, for a pure predicate over a pure input.
        lanes: usize,
        crew: Arc<Crew>,
    },
    Batch {
        size: usize,
        drop_remainder: bool,
    },
    PaddedBatch {
        size: usize,
        shapes: Vec<Option<Vec<Option<usize>>>>,
        values: Vec<Scalar>,
        drop_remainder: bool,
    },
    Unbatch,
    /// `epochs` counts opens, so each `repeat` epoch reshuffles (tf.data's default) unless
    /// `reshuffle` is off, when every epoch uses epoch 0's seed.
    Shuffle {
        buffer: usize,
        seed: u64,
        reshuffle: bool,
        epochs: Arc<std::sync::atomic::AtomicU64>,
    },
    Repeat(Option<u64>),
    Take(i64),
    Skip(i64),
    Zip,
    Concatenate,
    Enumerate(i64),
    Shard {
        num: u64,
        index: u64,
    },
    Passthrough,
    Prefetch(usize),
    /// The elements once the first pass completed, and the `shuffle` counters below as
    /// that first pass began (a resumed run rebuilds the cache with them).
    Cache(
        Arc<Mutex<Option<Arc<Vec<Element>>>>>,
        Arc<Mutex<Option<Opens>>>,
    ),
    /// `interleave`/`flat_map` (`crate::interleave`).
    Interleave(Arc<crate::interleave::NestedPlan>),
    /// `global_shuffle` (`crate::global_shuffle`); `epochs` counts opens as for `Shuffle`.
    GlobalShuffle {
        seed: u64,
        reshuffle: bool,
        epochs: Arc<std::sync::atomic::AtomicU64>,
        /// The run's helpers, which permute blocks ahead.
        crew: Arc<Crew>,
    },
}

struct PlanBuilder<'a> {
    prog: &'a Program,
    pipeline: &'a Pipeline,
    opts: &'a RunOptions,
    /// The values `Source::Arg` sources read: an inner pipeline's, per input element.
    args: Vec<Tensor>,
    fns: HashMap<pipec_ir::FuncId, Arc<CompiledFn>>,
    block_fns: HashMap<pipec_ir::FuncId, Option<Arc<CompiledFn>>>,
    plans: HashMap<DsNodeId, Arc<Plan>>,
    stats: Option<Arc<RunStats>>,
    stat_index: HashMap<DsNodeId, usize>,
    /// Helper threads for every map and filter on lanes in this run.
    crew: Arc<Crew>,
    /// Plan state of a resumed run (the seeds unseeded `shuffle`s drew), by node index.
    saved: std::collections::BTreeMap<u32, crate::state::PlanState>,
    /// The `shuffle` and `global_shuffle` plans built, by node index.
    shuffles: Vec<(u32, Arc<Plan>)>,
    /// Building an `interleave`'s inner dataset: see [`Plan::nest`].
    nest: Option<u64>,
}

impl PlanBuilder<'_> {
    fn func(&mut self, id: pipec_ir::FuncId) -> Arc<CompiledFn> {
        self.fns
            .entry(id)
            .or_insert_with(|| Arc::new(CompiledFn::new(self.prog.func(id).clone())))
            .clone()
    }

    /// The block form of function `id`: vectorized over a leading axis of any length (for a
    /// function that runs per batch, a block of batches). `None` when block execution is
    /// off or the function does not vectorize (an eager call, say).
    fn block_func(&mut self, id: pipec_ir::FuncId) -> Option<Arc<CompiledFn>> {
        if !self.opts.blocks {
            return None;
        }
        let prog = self.prog;
        self.block_fns
            .entry(id)
            .or_insert_with(|| {
                pipec_ir::vmap::vectorize_blocks(prog.func(id), pipec_ir::Dim::Unknown)
                    .ok()
                    .map(|vf| Arc::new(CompiledFn::new(vf)))
            })
            .clone()
    }

    fn plan(&mut self, node: DsNodeId) -> Result<Arc<Plan>, Diagnostic> {
        if let Some(p) = self.plans.get(&node) {
            return Ok(p.clone());
        }
        let n = &self.pipeline.graph[node];
        let inputs = self
            .pipeline
            .inputs(node)
            .into_iter()
            .map(|i| self.plan(i))
            .collect::<Result<Vec<_>, _>>()?;
        let kind = match &n.kind {
            DsKind::Range { start, stop, step } => PlanKind::Range {
                start: *start,
                stop: *stop,
                step: *step,
            },
            DsKind::FromTensorSlices(srcs) => {
                let comps = self.load(srcs, n.span)?;
                // File components are only known now: check what slicing needs.
                let firsts: Vec<Option<usize>> =
                    comps.iter().map(|c| c.shape().first().copied()).collect();
                if firsts.iter().any(Option::is_none) || firsts.windows(2).any(|w| w[0] != w[1]) {
                    let shapes: Vec<String> =
                        comps.iter().map(|c| format!("{:?}", c.shape())).collect();
                    return Err(Diagnostic::error(
                        Code::RuntimeShapeMismatch,
                        format!("`from_tensor_slices` needs components of rank >= 1 and one length along axis 0, found shapes {}", shapes.join(", ")),
                    )
                    .with_label(n.span, "sliced here")
                    .with_help("check the files: every component must have the same number of rows"));
                }
                check_loaded(&comps, &n.elem, true, n.span)?;
                PlanKind::Slices(comps)
            }
            DsKind::FromTensors(srcs) => {
                let comps = self.load(srcs, n.span)?;
                check_loaded(&comps, &n.elem, false, n.span)?;
                PlanKind::Whole(comps)
            }
            DsKind::ReadLines(paths) => PlanKind::ReadLines(paths.clone()),
            DsKind::ReadTfRecord { paths, compression } => PlanKind::ReadTfRecord {
                paths: paths.clone(),
                compression: pipec_records::Compression::from_name(compression).unwrap_or_default(),
            },
            DsKind::ReadParquet { paths, columns } => PlanKind::ReadParquet {
                paths: paths.clone(),
                columns: columns.clone(),
            },
            DsKind::ReadCsv { path, header } => {
                // The element type (fixed at trace time from the first line) gives dtype and width.
                let (dtype, ncols) = match &n.elem {
                    ElemType::Tensor(t) if t.rank() == 1 => (t.dtype, t.shape.0[0].known()),
                    _ => (pipec_tensor::DType::F32, None),
                };
                let Some(ncols) = ncols else {
                    return Err(Diagnostic::error(
                        Code::BadCsvCell,
                        format!(
                            "`read_csv` node has element type {}, expected a known row width",
                            n.elem
                        ),
                    )
                    .with_label(n.span, ""));
                };
                PlanKind::ReadCsv {
                    path: path.clone(),
                    header: *header,
                    dtype,
                    ncols,
                }
            }
            DsKind::Map {
                func, parallelism, ..
            } => {
                let threads = self.opts.threads.max(1);
                let f = self.func(*func);
                let block_f = self.block_func(*func);
                // Blocks computed ahead on every thread when nothing can tell: a sequential
                // map is then as parallel as an `AUTOTUNE` one.
                let ahead_ok = block_f.is_some() && inputs.iter().all(|p| p.pure_pull);
                // A pure function without a block form (one that decodes images: its outputs
                // differ in size) runs per element on every thread when nothing can tell
                // either, as `ParMap`: decoding scales with `--threads`.
                let per_element_ok =
                    block_f.is_none() && inputs.iter().all(|p| p.pure_pull) && pure_body(&f);
                let lanes = match parallelism {
                    Parallelism::Sequential if ahead_ok || per_element_ok => threads,
                    Parallelism::Sequential => 1,
                    Parallelism::Fixed(k) => (*k).clamp(1, threads),
                    Parallelism::Autotune => threads,
                };
                PlanKind::Map {
                    f,
                    block_f,
                    lanes,
                    crew: self.crew.clone(),
                }
            }
            DsKind::Filter { func } => {
                let block_f = self.block_func(*func);
                // As for a sequential map: blocks on every thread when nothing can tell.
                let ahead_ok = block_f.is_some() && inputs.iter().all(|p| p.pure_pull);
                PlanKind::Filter {
                    f: self.func(*func),
                    block_f,
                    lanes: if ahead_ok {
                        self.opts.threads.max(1)
                    } else {
                        1
                    },
                    crew: self.crew.clone(),
                }
            }
            DsKind::Batch {
                size,
                drop_remainder,
            } => PlanKind::Batch {
                size: *size,
                drop_remainder: *drop_remainder,
            },
            DsKind::PaddedBatch {
                size,
                padded_shapes,
                padding_values,
                drop_remainder,
            } => PlanKind::PaddedBatch {
                size: *size,
                shapes: padded_shapes.clone(),
                values: padding_values.clone(),
                drop_remainder: *drop_remainder,
            },
            DsKind::Unbatch => PlanKind::Unbatch,
            DsKind::Shuffle {
                buffer,
                seed,
                reshuffle,
            } => PlanKind::Shuffle {
                buffer: *buffer,
                seed: match self.saved.get(&(node.index() as u32)) {
                    // A resumed run keeps the seed the first run drew.
                    Some(crate::state::PlanState::Shuffle { seed, .. }) => *seed,
                    _ => seed.or(self.opts.shuffle_seed).unwrap_or_else(fresh_seed),
                },
                reshuffle: *reshuffle,
                epochs: Default::default(),
            },
            DsKind::Repeat(c) => PlanKind::Repeat(*c),
            DsKind::Take(k) => PlanKind::Take(*k),
            DsKind::Skip(k) => PlanKind::Skip(*k),
            DsKind::Zip => PlanKind::Zip,
            DsKind::Concatenate => PlanKind::Concatenate,
            DsKind::Enumerate(s) => PlanKind::Enumerate(*s),
            DsKind::Shard { num, index } => PlanKind::Shard {
                num: *num,
                index: *index,
            },
            DsKind::Prefetch(n) => prefetch_plan(*n),
            DsKind::Cache => PlanKind::Cache(Default::default(), Default::default()),
            DsKind::RangeOf(bounds) => {
                let mut v = [0i64; 3];
                for (slot, b) in v.iter_mut().zip(bounds) {
                    let t = self.load(std::slice::from_ref(b), n.span)?.remove(0);
                    let t = kernels::cast(&t, pipec_tensor::DType::I64);
                    *slot = t
                        .as_array::<i64>()
                        .and_then(|a| a.iter().next().copied())
                        .unwrap_or(0);
                }
                if v[2] == 0 {
                    return Err(Diagnostic::error(Code::ZeroStep, "`range` step is zero")
                        .with_label(n.span, "computed from the input element")
                        .with_help("make the step computed by the function non-zero"));
                }
                PlanKind::Range {
                    start: v[0],
                    stop: v[1],
                    step: v[2],
                }
            }
            DsKind::RepeatOf(count) => {
                let t = self.load(std::slice::from_ref(count), n.span)?.remove(0);
                let t = kernels::cast(&t, pipec_tensor::DType::I64);
                let c = t
                    .as_array::<i64>()
                    .and_then(|a| a.iter().next().copied())
                    .unwrap_or(0);
                PlanKind::Repeat(u64::try_from(c).ok())
            }
            DsKind::Interleave(nest) => {
                let func = self.func(nest.func);
                PlanKind::Interleave(Arc::new(crate::interleave::NestedPlan {
                    func,
                    prog: Arc::new(self.prog.clone()),
                    nested: (**nest).clone(),
                    opts: RunOptions {
                        stats: false,
                        ..self.opts.clone()
                    },
                    crew: self.crew.clone(),
                }))
            }
            DsKind::GlobalShuffle { seed, reshuffle } => PlanKind::GlobalShuffle {
                seed: match self.saved.get(&(node.index() as u32)) {
                    // A resumed run keeps the seed the first run drew.
                    Some(crate::state::PlanState::GlobalShuffle { seed }) => *seed,
                    _ => seed.or(self.opts.shuffle_seed).unwrap_or_else(fresh_seed),
                },
                reshuffle: *reshuffle,
                epochs: Default::default(),
                crew: self.crew.clone(),
            },
        };
        let mut below: Vec<(u32, Arc<std::sync::atomic::AtomicU64>)> = Vec::new();
        for p in &inputs {
            for (id, c) in &p.below {
                if !below.iter().any(|(i, _)| i == id) {
                    below.push((*id, c.clone()));
                }
            }
        }
        let opens: Arc<std::sync::atomic::AtomicU64> = Default::default();
        match &kind {
            PlanKind::Shuffle { epochs, .. } | PlanKind::GlobalShuffle { epochs, .. } => {
                below.push((node.index() as u32, epochs.clone()));
            }
            PlanKind::Map { .. } | PlanKind::Filter { .. } | PlanKind::Interleave(_) => {
                below.push((node.index() as u32, opens.clone()));
            }
            _ => {}
        }
        let pure_pull = inputs.iter().all(|p| p.pure_pull)
            && match &kind {
                PlanKind::Map { f, .. } | PlanKind::Filter { f, .. } => pure_body(f),
                // Its inner datasets' functions are not looked into: assume an effect.
                PlanKind::Interleave(_) => false,
                _ => true,
            };
        let plan = Arc::new(Plan {
            kind,
            inputs,
            span: n.span,
            blocks: self.opts.blocks,
            pure_pull,
            timer: self
                .stats
                .clone()
                .and_then(|s| self.stat_index.get(&node).map(|&i| (s, i))),
            opens,
            nest: self.nest,
            track: self.opts.checkpoints,
            below,
        });
        if matches!(
            plan.kind,
            PlanKind::Shuffle { .. } | PlanKind::GlobalShuffle { .. }
        ) {
            self.shuffles.push((node.index() as u32, plan.clone()));
        }
        self.plans.insert(node, plan.clone());
        Ok(plan)
    }

    fn load(&self, srcs: &[Source], span: Span) -> Result<Vec<Tensor>, Diagnostic> {
        srcs.iter()
            .map(|s| match s {
                Source::Const(t) => Ok(t.clone()),
                Source::Npy(path) => {
                    pipec_tensor::io::read_npy(path).map_err(|e| file_error(e, path, span))
                }
                Source::Npz(path, name) => {
                    pipec_tensor::io::read_npz(path, name).map_err(|e| file_error(e, path, span))
                }
                Source::Arg(k) => self.args.get(*k).cloned().ok_or_else(|| {
                    Diagnostic::error(
                        Code::WrongKind,
                        "internal error: an inner dataset reads a value its function does not give",
                    )
                    .with_label(span, "")
                }),
            })
            .collect()
    }
}

/// Checks source data read at run time against the element type traced from the file
/// headers: a file that changed in between must be an error, not a kernel fed the wrong dtype.
fn check_loaded(
    comps: &[Tensor],
    elem: &ElemType,
    slices: bool,
    span: Span,
) -> Result<(), Diagnostic> {
    for (t, want) in comps.iter().zip(elem.leaves()) {
        let shape = if slices { &t.shape()[1..] } else { t.shape() };
        if t.dtype() != want.dtype || !want.shape.admits(shape) {
            return Err(Diagnostic::error(
                Code::BadArrayFile,
                format!(
                    "the data read at run time is {}{:?} per element, but it was traced as {want}",
                    t.dtype(),
                    shape
                ),
            )
            .with_label(span, "read here")
            .with_help("a file changed between compiling and running; run pipec again"));
        }
    }
    Ok(())
}

fn file_error(e: pipec_tensor::io::IoError, path: &std::path::Path, span: Span) -> Diagnostic {
    let code = match e {
        pipec_tensor::io::IoError::Io(_) => Code::FileUnreadable,
        pipec_tensor::io::IoError::OverMemoryLimit { .. } => Code::MemoryLimit,
        _ => Code::BadArrayFile,
    };
    let d = Diagnostic::error(code, format!("cannot read `{}`: {e}", path.display()))
        .with_label(span, "read here");
    if code == Code::MemoryLimit {
        return d.with_help("raise `--max-memory`, or split the array into smaller files");
    }
    d
}

/// A CSV problem at run time: a bad cell or ragged row is E0604 naming file, line, column and cell.
fn csv_error(e: pipec_tensor::io::IoError, path: &std::path::Path, span: Span) -> Diagnostic {
    match e {
        pipec_tensor::io::IoError::Csv { line, column, message, .. } => Diagnostic::error(
            Code::BadCsvCell,
            format!("`{}`, line {line}, column {column}: {message}", path.display()),
        )
        .with_label(span, "rows read here")
        .with_help("fix the cell, or filter the file first; every cell must be a number of the dtype given to `read_csv`"),
        pipec_tensor::io::IoError::Io(_) => {
            Diagnostic::error(Code::FileUnreadable, format!("cannot read `{}`: {e}", path.display())).with_label(span, "read here")
        }
        other => Diagnostic::error(Code::BadCsvCell, format!("cannot read `{}`: {other}", path.display())).with_label(span, "read here"),
    }
}

/// How `prefetch(n)` runs: a background thread filling a buffer of up to `n` elements
/// (capped, so a huge `n` cannot hold the whole dataset); `prefetch(0)` is a pass-through.
fn prefetch_plan(n: usize) -> PlanKind {
    match n {
        0 => PlanKind::Passthrough,
        n => PlanKind::Prefetch(n.min(pipec_ir::MAX_PREFETCH)),
    }
}

/// A seed for `shuffle` without one: differs between runs, as in tf.data.
fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ u64::from(std::process::id()).rotate_left(32)
}

impl Plan {
    pub(crate) fn open(self: &Arc<Plan>) -> Result<Box<dyn Stream>, Diagnostic> {
        let stream = self.open_stream()?;
        Ok(self.wrap(stream))
    }

    /// What every opened stream of this node is wrapped in: per element without blocks,
    /// timed with `--stats`.
    fn wrap(&self, mut stream: Box<dyn Stream>) -> Box<dyn Stream> {
        if !self.blocks {
            stream = Box::new(PerElement(stream));
        }
        if let Some((stats, node)) = &self.timer {
            stream = Box::new(Timed {
                inner: stream,
                stats: stats.clone(),
                node: *node,
            });
        }
        stream
    }

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

    /// A map or filter over `input` (on `lanes` lanes; one runs it on the consumer's thread),
    /// whose next input element has dataset index `count` (0 when opened, the saved count
    /// when resumed), drawing with `epoch` ([`Plan::next_epoch`] when opened, the saved
    /// epoch when resumed).
    #[allow(clippy::too_many_arguments)]
    fn stage(
        &self,
        stage: Stage,
        input: Box<dyn Stream>,
        f: &Arc<CompiledFn>,
        block_f: &Option<Arc<CompiledFn>>,
        lanes: usize,
        crew: &Arc<Crew>,
        count: u64,
        epoch: u64,
    ) -> Box<dyn Stream> {
        Box::new(
            LaneStage::new(
                stage,
                input,
                f.clone(),
                block_f.clone(),
                lanes,
                crew.clone(),
            )
            .with_epoch(epoch)
            .with_stats(self.timer.clone())
            .tracking(self.track)
            .at_count(count),
        )
    }

    fn open_stream(self: &Arc<Plan>) -> Result<Box<dyn Stream>, Diagnostic> {
        let input = |i: usize| self.inputs[i].open();
        Ok(match &self.kind {
            PlanKind::Slices(comps) => {
                let n = comps.first().map_or(0, |c| c.shape()[0]);
                Box::new(Slices {
                    comps: comps.clone(),
                    next: 0,
                    n,
                })
            }
            PlanKind::Whole(comps) => Box::new(Whole(Some(comps.clone()))),
            PlanKind::Range { start, stop, step } => Box::new(Range {
                cur: *start,
                stop: *stop,
                step: *step,
            }),
            PlanKind::ReadCsv {
                path,
                header,
                dtype,
                ncols,
            } => {
                let rows = pipec_tensor::io::CsvRows::open(path, *dtype, *ncols, *header)
                    .map_err(|e| csv_error(e, path, self.span))?;
                Box::new(Csv {
                    rows,
                    path: path.clone(),
                    span: self.span,
                    read: 0,
                })
            }
            PlanKind::ReadLines(paths) => Box::new(Lines {
                reader: pipec_tensor::io::LineReader::new(paths.clone()),
                span: self.span,
                read: 0,
            }),
            PlanKind::ReadTfRecord { paths, compression } => Box::new(
                crate::records::TfRecords::new(paths.clone(), *compression, self.span),
            ),
            PlanKind::ReadParquet { paths, columns } => Box::new(
                crate::records::ParquetSource::new(paths.clone(), columns.clone(), self.span),
            ),
            PlanKind::Map {
                f,
                block_f,
                lanes,
                crew,
            } => {
                let on_lanes = block_f.is_some() && self.inputs[0].pure_pull;
                if *lanes > 1 && !on_lanes {
                    // A parallel map that cannot run on blocks ahead: lanes per element.
                    Box::new(ParMap::new(
                        input(0)?,
                        f.clone(),
                        *lanes,
                        0,
                        self.next_epoch(),
                        self.track,
                    ))
                } else {
                    let epoch = self.next_epoch();
                    self.stage(Stage::Map, input(0)?, f, block_f, *lanes, crew, 0, epoch)
                }
            }
            PlanKind::Filter {
                f,
                block_f,
                lanes,
                crew,
            } => {
                let epoch = self.next_epoch();
                self.stage(Stage::Filter, input(0)?, f, block_f, *lanes, crew, 0, epoch)
            }
            PlanKind::Batch {
                size,
                drop_remainder,
            } => Box::new(Batch {
                input: input(0)?,
                size: *size,
                drop_remainder: *drop_remainder,
                span: self.span,
                count: 0,
                pending: Pending::default(),
                pulled: 0,
                marks: Marks::default(),
                track: self.track,
            }),
            PlanKind::PaddedBatch {
                size,
                shapes,
                values,
                drop_remainder,
            } => Box::new(PaddedBatch {
                input: input(0)?,
                size: *size,
                shapes: shapes.clone(),
                values: values.clone(),
                drop_remainder: *drop_remainder,
                span: self.span,
            }),
            PlanKind::Unbatch => Box::new(Unbatch {
                input: input(0)?,
                current: None,
                next: 0,
                n: 0,
                span: self.span,
                delivered: 0,
                marks: Marks::default(),
                track: self.track,
            }),
            PlanKind::Shuffle {
                buffer,
                seed,
                reshuffle,
                epochs,
            } => {
                let epoch = if *reshuffle {
                    epochs.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                } else {
                    0
                };
                let seed = seed.wrapping_add(epoch.wrapping_mul(0xD1B5_4A32_D192_ED03));
                // A buffer of 0 would emit nothing; 1 keeps the order (tf.data requires >= 1).
                Box::new(Shuffle {
                    input: Some(input(0)?),
                    buffer: Vec::new(),
                    size: (*buffer).max(1),
                    rng: Rng::new(seed),
                    budget: Budget::new(self.span, "shuffle buffer"),
                })
            }
            PlanKind::Repeat(count) => Box::new(Repeat {
                plan: self.inputs[0].clone(),
                current: None,
                epoch: 0,
                count: *count,
                seen: false,
            }),
            PlanKind::Take(n) => Box::new(Take {
                input: input(0)?,
                left: if *n < 0 { u64::MAX } else { *n as u64 },
            }),
            PlanKind::Skip(n) => Box::new(Skip {
                input: input(0)?,
                left: if *n < 0 { u64::MAX } else { *n as u64 },
            }),
            PlanKind::Zip => Box::new(Zip {
                inputs: self
                    .inputs
                    .iter()
                    .map(|p| p.open())
                    .collect::<Result<_, _>>()?,
            }),
            PlanKind::Concatenate => Box::new(Concat {
                first: Some(input(0)?),
                second: self.inputs[1].clone(),
                current: None,
            }),
            PlanKind::Enumerate(start) => Box::new(Enumerate {
                input: input(0)?,
                next: *start,
            }),
            PlanKind::Shard { num, index } => Box::new(Shard {
                input: input(0)?,
                num: *num,
                index: *index,
                pos: 0,
            }),
            PlanKind::Passthrough => input(0)?,
            PlanKind::Prefetch(n) => {
                Box::new(Prefetch::start(input(0)?, *n, self.span, self.track))
            }
            PlanKind::Cache(store, first_opens) => {
                let cached = store.lock().map(|g| g.clone()).unwrap_or(None);
                match cached {
                    Some(elems) => Box::new(Replay {
                        elems,
                        next: 0,
                        opens: first_opens
                            .lock()
                            .ok()
                            .and_then(|g| g.clone())
                            .unwrap_or_default(),
                    }),
                    None => Box::new(Record {
                        opens: {
                            let now = snapshot_opens(&self.inputs[0].below);
                            if let Ok(mut g) = first_opens.lock() {
                                g.get_or_insert_with(|| now.clone());
                            }
                            now
                        },
                        first_opens: first_opens.clone(),
                        input: input(0)?,
                        store: store.clone(),
                        seen: Vec::new(),
                        budget: Budget::new(self.span, "cache"),
                        recorded: 0,
                        ended: false,
                    }),
                }
            }
            PlanKind::Interleave(nested) => {
                crate::interleave::open(nested.clone(), input(0)?, self.next_epoch())?
            }
            PlanKind::GlobalShuffle {
                seed,
                reshuffle,
                epochs,
                crew,
            } => {
                let epoch = if *reshuffle {
                    epochs.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                } else {
                    0
                };
                crate::global_shuffle::open(&self.inputs[0], *seed, epoch, crew, self.span)?
            }
        })
    }
}

struct Slices {
    comps: Vec<Tensor>,
    next: usize,
    n: usize,
}

impl Stream for Slices {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        if self.next >= self.n {
            return Ok(None);
        }
        let i = self.next;
        self.next += 1;
        Ok(Some(self.comps.iter().map(|c| c.index_axis0(i)).collect()))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Slices {
            next: self.next as u64,
        })
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        if self.next >= self.n {
            return None;
        }
        let (start, end) = (self.next, self.n.min(self.next.saturating_add(max)));
        self.next = end;
        Some(Chunk::ok(Block::Stacked {
            leaves: self
                .comps
                .iter()
                .map(|c| c.slice_axis0(start, end))
                .collect(),
            rows: end - start,
        }))
    }
}

struct Whole(Option<Vec<Tensor>>);

impl Stream for Whole {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        Ok(self.0.take())
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Whole {
            done: self.0.is_none(),
        })
    }
}

struct Range {
    cur: i64,
    stop: i64,
    step: i64,
}

impl Range {
    /// The next value, advancing (a step that saturates at the i64 range ends the stream).
    #[inline]
    fn advance(&mut self) -> Option<i64> {
        let more = if self.step > 0 {
            self.cur < self.stop
        } else {
            self.cur > self.stop
        };
        if !more {
            return None;
        }
        let v = self.cur;
        self.cur = self.cur.saturating_add(self.step);
        if self.cur == v {
            self.stop = v;
        }
        Some(v)
    }
}

impl Stream for Range {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        Ok(self.advance().map(|v| vec![Tensor::scalar(v)]))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Range {
            cur: self.cur,
            stop: self.stop,
        })
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        let (cur, stop, step) = (
            i128::from(self.cur),
            i128::from(self.stop),
            i128::from(self.step),
        );
        // How many values are left, in exact arithmetic (what `advance` would yield).
        let left = match step {
            0 => 0,
            s if s > 0 && cur < stop => (stop - cur + s - 1) / s,
            s if s < 0 && cur > stop => (cur - stop - s - 1) / -s,
            _ => 0,
        };
        let values: Vec<i64> = if step == 0 {
            // Never traced (`range` rejects a zero step); keep `advance`'s behaviour.
            std::iter::from_fn(|| self.advance()).take(max).collect()
        } else {
            let n = left.min(max as i128);
            // Every value lies between `cur` and `stop`, so it fits in an i64, and wrapping
            // i64 arithmetic (which vectorizes) gives it exactly.
            let (first, stride) = (self.cur, self.step);
            let values = if stride == 1 {
                (0..n as i64).map(|k| first.wrapping_add(k)).collect()
            } else {
                // A 64-bit multiply per value does not vectorize here; a running sum is
                // the same value in wrapping arithmetic.
                let mut v = first;
                (0..n as i64)
                    .map(|_| {
                        let x = v;
                        v = v.wrapping_add(stride);
                        x
                    })
                    .collect()
            };
            let next = cur + n * step;
            self.cur = next.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
            if n == left {
                self.stop = self.cur;
            }
            values
        };
        let rows = values.len();
        (rows > 0).then(|| {
            Chunk::ok(Block::Stacked {
                leaves: vec![Tensor::from_vec(&[rows], values).expect("one value per row")],
                rows,
            })
        })
    }
}

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

struct Batch {
    input: Box<dyn Stream>,
    size: usize,
    drop_remainder: bool,
    span: Span,
    count: u64,
    /// Input rows read by a block pull beyond its whole batches (and the error after them).
    pending: Pending,
    /// Input rows pulled.
    pulled: u64,
    /// The input's state before pulls, by input row (see [`crate::state`]).
    marks: Marks,
    /// Whether to keep marks.
    track: bool,
}

impl Batch {
    /// Up to `max` rows: first those left over from a block pull, then the input's.
    fn pull(&mut self, max: usize) -> Option<Chunk> {
        if !self.pending.is_empty() {
            return self.pending.take(max);
        }
        self.pull_input(max)
    }

    /// Up to `max` rows from the input, marking its state first when one is due.
    fn pull_input(&mut self, max: usize) -> Option<Chunk> {
        if self.track && self.marks.due(self.pulled) {
            self.marks.push(self.pulled, self.input.save(), 0);
        }
        let chunk = self.input.next_block(max);
        if let Some(c) = &chunk {
            self.pulled += c.block.len() as u64;
        }
        chunk
    }
}

impl Stream for Batch {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        // A block of exactly the batch size is the batch itself: for a contiguous source,
        // a slice of it, copied nowhere.
        let mut parts = Vec::new();
        let mut have = 0;
        while have < self.size {
            let Some(Chunk { block, error }) = self.pull(self.size - have) else {
                break;
            };
            have += block.len();
            parts.push(block);
            if let Some(d) = error {
                if have < self.size {
                    return Err(d);
                }
                // The batch is complete before the error: it comes with the next batch.
                self.pending.push_error(d);
            }
        }
        if have == 0 || (self.drop_remainder && have < self.size) {
            return Ok(None);
        }
        let first = self.count;
        self.count += have as u64;
        match Block::join(parts) {
            Block::Stacked { leaves, .. } => Ok(Some(leaves)),
            Block::Rows(rows) => stack_rows(rows, self.span, first).map(Some),
        }
    }

    /// Several whole batches at once: `k * size` stacked input rows are `k` batches, the
    /// same buffers seen with one more axis (no copy). Rows short of a whole batch wait for
    /// the next pull, which completes them one batch at a time.
    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        if max < 2 || !self.pending.is_empty() {
            return gather_rows(|| self.next(), max);
        }
        let Chunk { mut block, error } = self.pull_input(max.saturating_mul(self.size))?;
        let whole = block.len() / self.size;
        if whole == 0 || !matches!(block, Block::Stacked { .. }) {
            self.pending.push(block);
            if let Some(d) = error {
                self.pending.push_error(d);
            }
            return gather_rows(|| self.next(), max);
        }
        let rest = block.len() - whole * self.size;
        let front = if rest > 0 {
            let front = block.split_front(whole * self.size);
            self.pending.push(block);
            front
        } else {
            block
        };
        if let Some(d) = error {
            self.pending.push_error(d);
        }
        let Block::Stacked { leaves, .. } = front else {
            unreachable!("checked stacked above")
        };
        let batches: Option<Vec<Tensor>> = leaves
            .iter()
            .map(|t| {
                let mut shape = Vec::with_capacity(t.rank() + 1);
                shape.extend([whole, self.size]);
                shape.extend_from_slice(&t.shape()[1..]);
                kernels::reshape(t, &shape).ok()
            })
            .collect();
        let Some(batches) = batches else {
            // Not expected for a stacked block; then batch the rows one batch at a time.
            self.pending.push_front(Block::Stacked {
                leaves,
                rows: whole * self.size,
            });
            return gather_rows(|| self.next(), max);
        };
        self.count += (whole * self.size) as u64;
        Some(Chunk::ok(Block::Stacked {
            leaves: batches,
            rows: whole,
        }))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        // Rows waiting in `pending` were read ahead: the batches delivered used `count` rows.
        let (input, skip) = if self.pending.is_empty() && self.pulled == self.count {
            (self.input.save()?, 0)
        } else {
            let (st, skip, _) = self.marks.at(self.count)?;
            (st, skip)
        };
        Ok(NodeState::Batch {
            input: Box::new(input),
            skip,
            count: self.count,
        })
    }
}

/// The next `size` elements, fewer at the end; `None` when there are none, or when a short
/// final batch is to be dropped.
fn pull_rows(
    input: &mut dyn Stream,
    size: usize,
    drop_remainder: bool,
    span: Span,
) -> Result<Option<Vec<Element>>, Diagnostic> {
    // The size is the user's: reserve only what a small batch needs, grow with the data.
    let mut rows: Vec<Element> = Vec::with_capacity(size.min(1024));
    let mut budget = Budget::new(span, "batch");
    while rows.len() < size {
        match input.next()? {
            Some(e) => {
                budget.add(&e)?;
                rows.push(e);
            }
            None => break,
        }
    }
    if rows.is_empty() || (drop_remainder && rows.len() < size) {
        return Ok(None);
    }
    Ok(Some(rows))
}

/// The code for a kernel failure while batching: the size limits, else a ragged batch.
fn size_code(e: &kernels::KernelError) -> Code {
    match e {
        kernels::KernelError::TooLarge { .. } => Code::TensorTooLarge,
        kernels::KernelError::OverMemoryLimit { .. } => Code::MemoryLimit,
        _ => Code::RaggedBatch,
    }
}

/// Stacks each leaf of `rows` along a new first axis; a ragged leaf is a diagnostic.
pub(crate) fn stack_rows(
    rows: Vec<Element>,
    span: Span,
    first: u64,
) -> Result<Element, Diagnostic> {
    let n_leaves = rows[0].len();
    let mut out = Vec::with_capacity(n_leaves);
    for leaf in 0..n_leaves {
        let parts: Vec<Tensor> = rows.iter().map(|r| r[leaf].clone()).collect();
        if let Some(k) = parts.iter().position(|p| p.shape() != parts[0].shape()) {
            let which = if n_leaves > 1 {
                format!("component {leaf} of ")
            } else {
                String::new()
            };
            return Err(Diagnostic::error(
                Code::RaggedBatch,
                format!(
                    "cannot batch {which}elements of different shapes: {:?} (element {first}) and {:?} (element {})",
                    parts[0].shape(),
                    parts[k].shape(),
                    first + k as u64
                ),
            )
            .with_label(span, "this batch")
            .with_help("use `padded_batch(n)` to pad each batch to its longest element"));
        }
        out.push(
            kernels::stack(&parts, 0).map_err(|e| {
                Diagnostic::error(size_code(&e), e.to_string()).with_label(span, "")
            })?,
        );
    }
    Ok(out)
}

struct PaddedBatch {
    input: Box<dyn Stream>,
    size: usize,
    shapes: Vec<Option<Vec<Option<usize>>>>,
    values: Vec<Scalar>,
    drop_remainder: bool,
    span: Span,
}

impl Stream for PaddedBatch {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        let Some(rows) = pull_rows(
            self.input.as_mut(),
            self.size,
            self.drop_remainder,
            self.span,
        )?
        else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for leaf in 0..rows[0].len() {
            let rank = rows[0][leaf].rank();
            let longest: Vec<usize> = (0..rank)
                .map(|ax| rows.iter().map(|r| r[leaf].shape()[ax]).max().unwrap_or(0))
                .collect();
            let target: Vec<usize> = match &self.shapes[leaf] {
                None => longest.clone(),
                Some(dims) => dims
                    .iter()
                    .zip(&longest)
                    .map(|(d, l)| d.unwrap_or(*l))
                    .collect(),
            };
            // The padded rows are all held before they are stacked: count them first.
            let padded_bytes = target.iter().fold(
                (rows.len() as u128) * rows[0][leaf].dtype().size_bytes() as u128,
                |acc, d| acc.saturating_mul(*d as u128),
            );
            if let Err(limit) = pipec_tensor::limits::check_bytes(padded_bytes.saturating_mul(2)) {
                return Err(Diagnostic::error(
                    Code::MemoryLimit,
                    format!("padding this batch takes {padded_bytes} bytes twice (the padded rows, then the batch), more than the memory limit of {limit} bytes (--max-memory)"),
                )
                .with_label(self.span, "this padded batch outgrew the limit")
                .with_help("make the batch or the padded shape smaller, or raise `--max-memory`"));
            }
            let mut padded = Vec::new();
            for r in &rows {
                let t = &r[leaf];
                if t.shape()
                    .iter()
                    .zip(&target)
                    .any(|(have, want)| have > want)
                {
                    return Err(Diagnostic::error(
                        Code::RaggedBatch,
                        format!("an element of shape {:?} does not fit the padded shape {target:?}", t.shape()),
                    )
                    .with_label(self.span, "")
                    .with_help("make the padded shape larger, or leave it out to pad to the longest element"));
                }
                // Strings pad with "" (as TF's `padded_batch`); a number has a scalar.
                let base = if t.dtype().is_str() {
                    kernels::zeros(&target, t.dtype())
                } else {
                    kernels::fill(&target, self.values[leaf])
                };
                let mut base = base.map_err(|e| {
                    Diagnostic::error(size_code(&e), e.to_string()).with_label(self.span, "")
                })?;
                base = pipec_tensor::kernels::paste(&base, t);
                padded.push(base);
            }
            out.push(kernels::stack(&padded, 0).map_err(|e| {
                Diagnostic::error(size_code(&e), e.to_string()).with_label(self.span, "")
            })?);
        }
        Ok(Some(out))
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::PaddedBatch {
            input: Box::new(self.input.save()?),
        })
    }
}

struct Unbatch {
    input: Box<dyn Stream>,
    current: Option<Element>,
    next: usize,
    n: usize,
    span: Span,
    /// Rows handed out.
    delivered: u64,
    /// The input's state before each batch pulled, by output row (see [`crate::state`]).
    marks: Marks,
    /// Whether to keep marks.
    track: bool,
}

impl Stream for Unbatch {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        loop {
            if let Some(cur) = &self.current
                && self.next < self.n
            {
                let i = self.next;
                self.next += 1;
                self.delivered += 1;
                return Ok(Some(cur.iter().map(|t| t.index_axis0(i)).collect()));
            }
            self.current = None;
            if self.track && self.marks.due(self.delivered) {
                self.marks.push(self.delivered, self.input.save(), 0);
            }
            let Some(e) = self.input.next()? else {
                return Ok(None);
            };
            let firsts: Vec<Option<usize>> = e.iter().map(|t| t.shape().first().copied()).collect();
            if firsts.iter().any(Option::is_none) || firsts.windows(2).any(|w| w[0] != w[1]) {
                let shapes: Vec<String> = e.iter().map(|t| format!("{:?}", t.shape())).collect();
                return Err(Diagnostic::error(
                    Code::RuntimeShapeMismatch,
                    format!(
                        "`unbatch` needs components with one length along axis 0, found shapes {}",
                        shapes.join(", ")
                    ),
                )
                .with_label(self.span, "in this `unbatch`"));
            }
            self.n = firsts.first().copied().flatten().unwrap_or(0);
            self.next = 0;
            self.current = Some(e);
        }
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        let (input, skip) = if self.current.is_none() {
            (self.input.save()?, 0)
        } else {
            let (st, skip, _) = self.marks.at(self.delivered)?;
            (st, skip)
        };
        Ok(NodeState::Unbatch {
            input: Box::new(input),
            skip,
        })
    }
}

/// tf.data's shuffle: fill a buffer, then emit a random slot and refill it from the input.
struct Shuffle {
    input: Option<Box<dyn Stream>>,
    buffer: Vec<Element>,
    size: usize,
    rng: Rng,
    budget: Budget,
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

struct Repeat {
    plan: Arc<Plan>,
    current: Option<Box<dyn Stream>>,
    epoch: u64,
    count: Option<u64>,
    /// Whether the current epoch produced anything (an empty input would otherwise loop forever).
    seen: bool,
}

impl Stream for Repeat {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        loop {
            if self.count.is_some_and(|c| self.epoch >= c) {
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
                    if !self.seen {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        loop {
            if self.count.is_some_and(|c| self.epoch >= c) {
                return None;
            }
            if self.current.is_none() {
                match self.plan.open() {
                    Ok(s) => self.current = Some(s),
                    Err(d) => {
                        return Some(Chunk {
                            block: Block::Rows(Vec::new()),
                            error: Some(d),
                        });
                    }
                }
                self.seen = false;
            }
            match self.current.as_mut().expect("opened above").next_block(max) {
                Some(chunk) => {
                    self.seen |= !chunk.block.is_empty();
                    return Some(chunk);
                }
                None => {
                    self.current = None;
                    self.epoch += 1;
                    if !self.seen {
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
            opens: snapshot_opens(&self.plan.below),
            current: match &mut self.current {
                Some(c) => Some(Box::new(c.save()?)),
                None => None,
            },
        })
    }
}

struct Take {
    input: Box<dyn Stream>,
    left: u64,
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

struct Skip {
    input: Box<dyn Stream>,
    left: u64,
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

struct Zip {
    inputs: Vec<Box<dyn Stream>>,
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

struct Concat {
    first: Option<Box<dyn Stream>>,
    second: Arc<Plan>,
    current: Option<Box<dyn Stream>>,
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

struct Enumerate {
    input: Box<dyn Stream>,
    next: i64,
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

struct Shard {
    input: Box<dyn Stream>,
    num: u64,
    index: u64,
    pos: u64,
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

/// Rows of a CSV file, read one line at a time.
struct Csv {
    rows: pipec_tensor::io::CsvRows,
    path: PathBuf,
    span: Span,
    /// Rows delivered.
    read: u64,
}

impl Stream for Csv {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        match self.rows.next_row() {
            Ok(Some(t)) => {
                self.read += 1;
                Ok(Some(vec![t]))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(csv_error(e, &self.path, self.span)),
        }
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Csv { rows: self.read })
    }
}

/// `read_lines`: one `str[]` element per line of the files, in order.
struct Lines {
    reader: pipec_tensor::io::LineReader,
    span: Span,
    /// Lines delivered.
    read: u64,
}

impl Stream for Lines {
    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Lines { rows: self.read })
    }

    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        match self.reader.next_line() {
            Ok(l) => {
                self.read += u64::from(l.is_some());
                Ok(l.map(|b| vec![Tensor::scalar(b)]))
            }
            Err((path, e)) => {
                let code = match e {
                    pipec_tensor::io::IoError::OverMemoryLimit { .. } => Code::MemoryLimit,
                    _ => Code::FileUnreadable,
                };
                Err(
                    Diagnostic::error(code, format!("cannot read `{}`: {e}", path.display()))
                        .with_label(self.span, "lines read here"),
                )
            }
        }
    }
}

/// `prefetch(n)`: the input runs on its own thread, up to `n` elements ahead, through a
/// bounded channel. One producer and one consumer keep the order (so determinism holds);
/// an error travels in order like an element and ends the stream. When the consumer stops
/// early the channel closes and the producer ends after at most one more element; elements
/// computed ahead and never pulled are dropped, and so are their errors.
struct Prefetch {
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
    fn start(mut input: Box<dyn Stream>, n: usize, span: Span, track: bool) -> Prefetch {
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
struct Record {
    input: Box<dyn Stream>,
    store: Arc<Mutex<Option<Arc<Vec<Element>>>>>,
    seen: Vec<Element>,
    budget: Budget,
    /// Elements recorded, and whether the input ended (then `seen` went to the store).
    recorded: u64,
    ended: bool,
    /// The `shuffle` counters below as this pass began, and where the cache keeps the
    /// first pass's.
    opens: Opens,
    first_opens: Arc<Mutex<Option<Opens>>>,
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
                if let Ok(mut g) = self.store.lock()
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
struct Replay {
    elems: Arc<Vec<Element>>,
    next: usize,
    /// The `shuffle` counters below as the first pass began.
    opens: Opens,
}

impl Stream for Replay {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        let e = self.elems.get(self.next).cloned();
        self.next += 1;
        Ok(e)
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::CacheReplay {
            next: self.next as u64,
            opens: self.opens.clone(),
        })
    }
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
