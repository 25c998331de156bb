//! Opening a plan: the one place that maps each [`PlanKind`] to its stream kind (with
//! `super::restore` for opening at a saved state), and wraps every stream for
//! `--stats` and for element-at-a-time execution.

use super::base::Stream;
use super::batching::{Batch, PaddedBatch, Unbatch};
use super::buffering::{Prefetch, Record, Replay, Shuffle};
use super::combinators::{Concat, Repeat, Zip};
use super::elementwise::{Enumerate, ParMap, Shard, Skip, Take};
use super::plan::{Plan, PlanKind, next_shuffle_epoch, snapshot_opens};
use super::sources::{Csv, Lines, Range, Slices, Whole, csv_error};
use crate::Element;
use crate::budget::Budget;
use crate::lanes::{LaneStage, Stage, Step};
use crate::rng::Rng;
use crate::state::NodeState;
use crate::stats::Timed;
use pipec_diag::Diagnostic;
use std::sync::Arc;

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

impl Plan {
    /// A fresh stream of this node, from its first element.
    pub(crate) fn open(self: &Arc<Plan>) -> Result<Box<dyn Stream>, Diagnostic> {
        let stream = self.open_stream()?;
        Ok(self.wrap(stream))
    }

    /// What every opened stream of this node is wrapped in: per element without blocks,
    /// timed with `--stats`.
    pub(super) fn wrap(&self, mut stream: Box<dyn Stream>) -> Box<dyn Stream> {
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

    /// The map below this node, a map or a filter on lanes, that runs as an earlier step of
    /// this node's lane jobs (one job per block through both; see "Chained stages" in
    /// docs/architecture.md), if any. Both must have a block form and run on lanes. This
    /// node must take single elements (not a batched map): a job counts each step above the
    /// first one element per row. A filter ends a chain, since only maps go below, so every
    /// function sees the element positions it sees unfused.
    pub(super) fn fused_input(&self) -> Option<&Arc<Plan>> {
        let single = match &self.kind {
            PlanKind::Map {
                f,
                block_f: Some(_),
                ..
            } => !f.func().batched,
            PlanKind::Filter {
                block_f: Some(_), ..
            } => true,
            _ => false,
        };
        let below = self.inputs.first()?;
        // A pure map's `pure_pull` says its own input is pure too: it runs on lanes.
        let fuses = single
            && self.blocks
            && below.blocks
            && below.pure_pull
            && matches!(
                below.kind,
                PlanKind::Map {
                    block_f: Some(_),
                    ..
                }
            );
        fuses.then_some(below)
    }

    /// Whether this node can resume fused at its input's saved state `st`: every fused map
    /// saved no outputs to drop (a build that does not fuse may save a map in the middle of
    /// a block; then the map opens as a stage of its own).
    pub(super) fn fuses_at(&self, st: &NodeState) -> bool {
        let Some(below) = self.fused_input() else {
            return false;
        };
        match st {
            NodeState::Stage { input, skip: 0, .. } => {
                below.fused_input().is_none() || below.fuses_at(input)
            }
            _ => false,
        }
    }

    /// This node, a map fused into the stage above it, as steps (the maps fused below it
    /// first) over the stream under them: from the start, or at `st`, its saved state
    /// (which [`Plan::fuses_at`] accepted).
    pub(super) fn open_fused(
        self: &Arc<Plan>,
        st: Option<&NodeState>,
    ) -> Result<(Box<dyn Stream>, Vec<Step>), Diagnostic> {
        let PlanKind::Map { f, block_f, .. } = &self.kind else {
            unreachable!("only maps are fused below a stage")
        };
        let (input_st, count, epoch) = match st {
            None => (None, 0, self.next_epoch()),
            Some(NodeState::Stage {
                input,
                count,
                epoch,
                ..
            }) => (Some(input.as_ref()), *count, *epoch),
            Some(_) => unreachable!("fuses_at accepts map states only"),
        };
        let (input, mut steps) = match self.fused_input() {
            Some(below) => below.open_fused(input_st)?,
            None => (self.inputs[0].open_at(input_st)?, Vec::new()),
        };
        steps.push(
            Step::new(Stage::Map, f.clone(), block_f.clone(), count, epoch)
                .with_stats(self.timer.clone()),
        );
        Ok((input, steps))
    }

    /// This node, a map or a filter, over `input` (through `below`, the maps fused under it,
    /// if any), whose next input element has dataset index `count` (0 when opened, the saved
    /// count when resumed), drawing with `epoch` ([`Plan::next_epoch`] when opened, the saved
    /// epoch when resumed). On `lanes` lanes (one runs it on the consumer's thread); a
    /// parallel map that cannot run on blocks ahead is a [`ParMap`], lanes per element.
    pub(super) fn open_stage(
        &self,
        input: Box<dyn Stream>,
        below: Vec<Step>,
        count: u64,
        epoch: u64,
    ) -> Box<dyn Stream> {
        let (stage, f, block_f, lanes, crew) = match &self.kind {
            PlanKind::Map {
                f,
                block_f,
                lanes,
                crew,
            } => {
                let on_lanes = block_f.is_some() && self.inputs[0].pure_pull;
                if *lanes > 1 && !on_lanes {
                    // `fused_input` fuses only under a map on lanes.
                    debug_assert!(below.is_empty());
                    return Box::new(ParMap::new(
                        input,
                        f.clone(),
                        (*lanes, crew.clone()),
                        count,
                        epoch,
                        self.track,
                    ));
                }
                (Stage::Map, f, block_f, *lanes, crew)
            }
            PlanKind::Filter {
                f,
                block_f,
                lanes,
                crew,
            } => (Stage::Filter, f, block_f, *lanes, crew),
            _ => unreachable!("open_stage is called on maps and filters only"),
        };
        Box::new(
            LaneStage::new(
                stage,
                input,
                f.clone(),
                block_f.clone(),
                lanes,
                crew.clone(),
            )
            .fusing(below)
            .with_epoch(epoch)
            .with_stats(self.timer.clone())
            .tracking(self.track)
            .at_count(count),
        )
    }

    /// This node, a `batch` or a `padded_batch`, over `input`, whose next row is row
    /// `count` of it (a `padded_batch` counts nothing: its state is its input's).
    pub(super) fn open_batch(&self, input: Box<dyn Stream>, count: u64) -> Box<dyn Stream> {
        match &self.kind {
            PlanKind::Batch {
                size,
                drop_remainder,
            } => Box::new(Batch::new(
                input,
                *size,
                *drop_remainder,
                self.span,
                count,
                self.track,
            )),
            PlanKind::PaddedBatch {
                size,
                shapes,
                values,
                drop_remainder,
            } => Box::new(PaddedBatch {
                input,
                size: *size,
                shapes: shapes.clone(),
                values: values.clone(),
                drop_remainder: *drop_remainder,
                span: self.span,
            }),
            _ => unreachable!("open_batch is called on batches only"),
        }
    }

    /// This node's stream from its start, not yet wrapped (see [`Plan::wrap`]).
    pub(super) fn open_stream(self: &Arc<Plan>) -> Result<Box<dyn Stream>, Diagnostic> {
        let input = |i: usize| self.inputs[i].open();
        Ok(match &self.kind {
            PlanKind::Slices(comps) => {
                Box::new(Slices::at(comps.clone(), 0, self.span).expect("row 0 of any source"))
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
            PlanKind::Map { .. } | PlanKind::Filter { .. } => {
                let epoch = self.next_epoch();
                match self.fused_input() {
                    Some(below) => {
                        let (input, below) = below.open_fused(None)?;
                        self.open_stage(input, below, 0, epoch)
                    }
                    None => self.open_stage(input(0)?, Vec::new(), 0, epoch),
                }
            }
            PlanKind::Batch { .. } | PlanKind::PaddedBatch { .. } => self.open_batch(input(0)?, 0),
            PlanKind::Unbatch => Box::new(Unbatch::new(input(0)?, self.span, self.track)),
            PlanKind::Shuffle {
                buffer,
                seed,
                reshuffle,
                epochs,
            } => {
                let epoch = next_shuffle_epoch(*reshuffle, epochs);
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
                ended: false,
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
            PlanKind::Cache(cell) => {
                let cached = cell.elems.lock().map(|g| g.clone()).unwrap_or(None);
                let earlier = cell.earlier.lock().ok().and_then(|mut g| g.take());
                if let (None, Some(opens)) = (&cached, earlier) {
                    // An earlier run completed the first pass (a resumed run): its elements
                    // again, not a later epoch's.
                    self.rebuild_cache(&opens)?;
                    return self.open_stream();
                }
                match cached {
                    Some(elems) => Box::new(Replay {
                        elems,
                        next: 0,
                        opens: cell
                            .first_opens
                            .lock()
                            .ok()
                            .and_then(|g| g.clone())
                            .unwrap_or_default(),
                    }),
                    None => Box::new(Record {
                        opens: {
                            let now = snapshot_opens(&self.inputs[0].below);
                            if let Ok(mut g) = cell.first_opens.lock() {
                                g.get_or_insert_with(|| now.clone());
                            }
                            now
                        },
                        input: input(0)?,
                        cell: cell.clone(),
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
            PlanKind::Transform { .. } => super::transforms::open(self, Some(input(0)?), None)?,
            PlanKind::GlobalShuffle {
                seed,
                reshuffle,
                epochs,
                crew,
            } => {
                let epoch = next_shuffle_epoch(*reshuffle, epochs);
                crate::global_shuffle::open(&self.inputs[0], *seed, epoch, crew, self.span)?
            }
        })
    }
}
