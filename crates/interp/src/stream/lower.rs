//! Lowering: the IR's dataset graph becomes a tree of [`Plan`]s.
//!
//! This is where run-time facts are settled once per run, not per opening: source files are
//! loaded and checked against their traced types, functions compiled (and vectorized for
//! blocks), unseeded shuffles given a seed, the number of lanes of each map and filter
//! chosen, and `pure_pull` (may this node be read ahead?) computed bottom up.

use super::base::RunOptions;
use super::base::Stream;
use super::plan::{NestedPlan, Plan, PlanKind, Seeds, ShufflePlans};
use super::sources::{Column, file_error};
use crate::func::CompiledFn;
use crate::lanes::Crew;
use crate::state::NodeState;
use crate::stats::RunStats;
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{DsKind, DsNodeId, ElemType, Parallelism, Pipeline, Program, Source};
use pipec_tensor::Tensor;
use pipec_tensor::io::FileRows;
use pipec_tensor::kernels;
use std::collections::HashMap;
use std::sync::Arc;

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
    let mut builder = PlanBuilder::new(
        prog,
        pipeline,
        opts,
        crew.clone(),
        at.map(|(_, seeds)| seeds.clone()).unwrap_or_default(),
    );
    builder.args = args;
    builder.fns = std::mem::take(fns);
    builder.nest = Some(nest);
    let plan = builder.plan(pipeline.output);
    *fns = std::mem::take(&mut builder.fns);
    let stream = plan?.open_at(at.map(|(st, _)| st))?;
    Ok((stream, builder.shuffles))
}

/// Whether calling `f` has no effect a consumer could see: every eager call in it is to a
/// host function that may run on blocks (pure, stateless).
/// Whether a function's result may depend on the opening it runs in: it draws random
/// numbers (its element position includes the epoch) or calls host code.
fn reads_opening(f: &CompiledFn) -> bool {
    f.func().ops.iter().any(|op| {
        matches!(
            op.kind,
            pipec_ir::OpKind::ElementPosition(_) | pipec_ir::OpKind::Eager(_)
        )
    })
}

fn pure_body(f: &CompiledFn) -> bool {
    f.func().ops.iter().all(|op| match &op.kind {
        pipec_ir::OpKind::Eager(host) => host.runs_on_blocks(),
        _ => true,
    })
}

/// Lowers one pipeline (the run's, or an inner one of an `interleave`) node by node,
/// sharing the plans of nodes with several consumers and the compiled functions.
pub(super) struct PlanBuilder<'a> {
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
    saved: Seeds,
    /// The `shuffle` and `global_shuffle` plans built, by node index.
    pub(super) shuffles: ShufflePlans,
    /// Array files opened for their rows, by path (and `.npz` member): opened once per run.
    files: HashMap<(std::path::PathBuf, Option<String>), Arc<FileRows>>,
    /// Building an `interleave`'s inner dataset: see [`Plan::nest`].
    nest: Option<u64>,
}

impl<'a> PlanBuilder<'a> {
    /// A builder for `pipeline`, whose maps and filters run on `crew` and whose unseeded
    /// `shuffle`s take the seeds in `saved` (a resumed run's; empty draws fresh ones).
    pub(super) fn new(
        prog: &'a Program,
        pipeline: &'a Pipeline,
        opts: &'a RunOptions,
        crew: Arc<Crew>,
        saved: Seeds,
    ) -> Self {
        PlanBuilder {
            prog,
            pipeline,
            opts,
            args: Vec::new(),
            fns: HashMap::new(),
            block_fns: HashMap::new(),
            plans: HashMap::new(),
            stats: None,
            stat_index: HashMap::new(),
            crew,
            saved,
            shuffles: Vec::new(),
            files: HashMap::new(),
            nest: None,
        }
    }

    /// Counts every node of the pipeline for `--stats`; the plans built after this time
    /// their streams into the counters returned.
    pub(super) fn count_stats(&mut self) -> Arc<RunStats> {
        let (prog, pipeline) = (self.prog, self.pipeline);
        let lines = pipec_ir::ds_node_lines(prog, pipeline);
        let mut stats = RunStats::default();
        for node in pipeline.topo_order() {
            let inputs = pipeline
                .inputs(node)
                .iter()
                .map(|i| self.stat_index[i])
                .collect();
            let text = lines.get(&node).cloned().unwrap_or_default();
            self.stat_index.insert(node, stats.add(text, inputs));
        }
        let stats = Arc::new(stats);
        self.stats = Some(stats.clone());
        stats
    }

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

    /// The plan of `node`, lowering its inputs first.
    pub(super) fn plan(&mut self, node: DsNodeId) -> Result<Arc<Plan>, Diagnostic> {
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
                let comps = self.columns(srcs, n.span)?;
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
                check_loaded(
                    comps.iter().map(|c| (c.dtype(), &c.shape()[1..])),
                    &n.elem,
                    n.span,
                )?;
                PlanKind::Slices(comps.into())
            }
            DsKind::FromTensors(srcs) => {
                let comps = self.load(srcs, n.span)?;
                check_loaded(
                    comps.iter().map(|c| (c.dtype(), c.shape())),
                    &n.elem,
                    n.span,
                )?;
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
            DsKind::Cache => PlanKind::Cache(Arc::new(super::plan::CacheCell {
                earlier: std::sync::Mutex::new(match self.saved.get(&(node.index() as u32)) {
                    Some(crate::state::PlanState::Cache { opens }) => Some(opens.clone()),
                    _ => None,
                }),
                ..Default::default()
            })),
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
                PlanKind::Interleave(Arc::new(NestedPlan {
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
            DsKind::Transform(t) => PlanKind::Transform {
                t: t.clone(),
                f: t.func().map(|id| self.func(id)),
            },
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
            PlanKind::Map { .. }
            | PlanKind::Filter { .. }
            | PlanKind::Interleave(_)
            | PlanKind::Transform { f: Some(_), .. } => {
                below.push((node.index() as u32, opens.clone()));
            }
            _ => {}
        }
        let pure_pull = inputs.iter().all(|p| p.pure_pull)
            && match &kind {
                PlanKind::Map { f, .. } | PlanKind::Filter { f, .. } => pure_body(f),
                PlanKind::Transform { f: Some(f), .. } => pure_body(f),
                // Its inner datasets' functions are not looked into: assume an effect.
                PlanKind::Interleave(_) => false,
                _ => true,
            };
        let varies = inputs.iter().any(|p| p.varies)
            || match &kind {
                PlanKind::Shuffle { reshuffle, .. } | PlanKind::GlobalShuffle { reshuffle, .. } => {
                    *reshuffle
                }
                PlanKind::Map { f, .. } | PlanKind::Filter { f, .. } => reads_opening(f),
                PlanKind::Transform { f: Some(f), .. } => reads_opening(f),
                PlanKind::Interleave(_) => true,
                _ => false,
            };
        let plan = Arc::new(Plan {
            kind,
            inputs,
            span: n.span,
            blocks: self.opts.blocks,
            pure_pull,
            varies,
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
            PlanKind::Shuffle { .. } | PlanKind::GlobalShuffle { .. } | PlanKind::Cache(..)
        ) {
            self.shuffles.push((node.index() as u32, plan.clone()));
        }
        self.plans.insert(node, plan.clone());
        Ok(plan)
    }

    /// `from_tensor_slices`' components: array files whose layout allows it are read a block
    /// of rows at a time (each file opened once per run, however many nodes slice it), the
    /// rest loaded whole.
    fn columns(&mut self, srcs: &[Source], span: Span) -> Result<Vec<Column>, Diagnostic> {
        let mut comps = Vec::with_capacity(srcs.len());
        for s in srcs {
            let key = match s {
                Source::Npy(path) => (path.clone(), None),
                Source::Npz(path, name) => (path.clone(), Some(name.clone())),
                _ => {
                    comps.push(Column::Memory(self.load_one(s, span)?));
                    continue;
                }
            };
            if let Some(rows) = self.files.get(&key) {
                comps.push(Column::File(rows.clone(), key.0));
                continue;
            }
            let rows = match &key.1 {
                None => FileRows::open_npy(&key.0),
                Some(name) => FileRows::open_npz(&key.0, name),
            }
            .map_err(|e| file_error(e, &key.0, span))?;
            match rows {
                Some(rows) => {
                    let rows = Arc::new(rows);
                    self.files.insert(key.clone(), rows.clone());
                    comps.push(Column::File(rows, key.0));
                }
                None => comps.push(Column::Memory(self.load_one(s, span)?)),
            }
        }
        Ok(comps)
    }

    fn load(&self, srcs: &[Source], span: Span) -> Result<Vec<Tensor>, Diagnostic> {
        srcs.iter().map(|s| self.load_one(s, span)).collect()
    }

    fn load_one(&self, s: &Source, span: Span) -> Result<Tensor, Diagnostic> {
        match s {
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
        }
    }
}

/// Checks source data read at run time against the element type traced from the file
/// headers: a file that changed in between must be an error, not a kernel fed the wrong dtype.
fn check_loaded<'s>(
    comps: impl Iterator<Item = (pipec_tensor::DType, &'s [usize])>,
    elem: &ElemType,
    span: Span,
) -> Result<(), Diagnostic> {
    for ((dtype, shape), want) in comps.zip(elem.leaves()) {
        if dtype != want.dtype || !want.shape.admits(shape) {
            return Err(Diagnostic::error(
                Code::BadArrayFile,
                format!(
                    "the data read at run time is {dtype}{shape:?} per element, but it was traced as {want}"
                ),
            )
            .with_label(span, "read here")
            .with_help("a file changed between compiling and running; run pipec again"));
        }
    }
    Ok(())
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
