//! Opening a plan at a saved position (the other half of every stream's `save`).
//!
//! Sources seek: `range` and `from_tensor_slices` start at the saved index, `from_tensors`
//! knows whether its element went out; `read_csv` reads and drops the rows before (a CSV
//! file has no index). Stateless nodes restore their input; counters come back as saved.
//! A node that saved "the input at mark M, then drop K of my outputs" restores the input at
//! M and pulls K outputs through itself, so a resumed run recomputes at most the rows
//! between the mark and the position (about one block). `cache` rebuilds its contents by
//! running its input's first pass again.

use super::base::Stream;
use super::batching::Unbatch;
use super::buffering::{Prefetch, Replay, Shuffle};
use super::combinators::{Concat, Repeat, Zip};
use super::elementwise::{Enumerate, Shard, Skip, Take};
use super::plan::{Opens, Plan, PlanKind, apply_opens, snapshot_opens};
use super::sources::{Range, Slices, Whole};
use crate::budget::Budget;
use crate::rng::Rng;
use crate::state::{NodeState, Rows, mismatch};
use pipec_diag::Diagnostic;
use std::sync::Arc;

/// The most rows pulled at once while dropping outputs a resumed node already delivered.
const DROP_BLOCK: u64 = 8192;

/// Pulls and drops the next `n` elements of `s` (the ones the saving run had delivered).
pub(super) fn drop_outputs(s: &mut dyn Stream, mut n: u64) -> Result<(), Diagnostic> {
    while n > 0 {
        let Some(chunk) = s.next_block(n.min(DROP_BLOCK) as usize) else {
            return Err(mismatch(
                "a node ended before the position the state records",
            ));
        };
        n = n.saturating_sub(chunk.block.len() as u64);
        if let Some(d) = chunk.error {
            return Err(d);
        }
    }
    Ok(())
}

/// The name a state kind is shown by in a mismatch.
fn state_name(st: &NodeState) -> &'static str {
    match st {
        NodeState::Slices { .. } => "from_tensor_slices",
        NodeState::Whole { .. } => "from_tensors",
        NodeState::Range { .. } => "range",
        NodeState::Csv { .. } => "read_csv",
        NodeState::Lines { .. } => "read_lines",
        NodeState::Stage { .. } => "map/filter",
        NodeState::Batch { .. } => "batch",
        NodeState::PaddedBatch { .. } => "padded_batch",
        NodeState::Unbatch { .. } => "unbatch",
        NodeState::Shuffle { .. } => "shuffle",
        NodeState::Repeat { .. } => "repeat",
        NodeState::Take { .. } => "take",
        NodeState::Skip { .. } => "skip",
        NodeState::Zip { .. } => "zip",
        NodeState::Concat { .. } => "concatenate",
        NodeState::Enumerate { .. } => "enumerate",
        NodeState::Shard { .. } => "shard",
        NodeState::Prefetch { .. } => "prefetch",
        NodeState::CacheRecord { .. } | NodeState::CacheReplay { .. } => "cache",
        NodeState::GlobalShuffle { .. } => "global_shuffle",
        NodeState::Interleave { .. } => "interleave",
        NodeState::TfRecord { .. } => "read_tfrecord",
        NodeState::Parquet { .. } => "read_parquet",
        NodeState::Transform { .. } => "a table transformation",
    }
}

impl Plan {
    /// Opens this node at `st` (`None`: from the start).
    pub(super) fn open_at(
        self: &Arc<Plan>,
        st: Option<&NodeState>,
    ) -> Result<Box<dyn Stream>, Diagnostic> {
        match st {
            None => self.open(),
            Some(st) => {
                let s = self.open_stream_at(st)?;
                Ok(self.wrap(s))
            }
        }
    }

    fn input_at(self: &Arc<Plan>, i: usize, st: &NodeState) -> Result<Box<dyn Stream>, Diagnostic> {
        match self.inputs.get(i) {
            Some(p) => p.open_at(Some(st)),
            None => Err(mismatch("a node has fewer inputs than the state")),
        }
    }

    /// Fills a `cache` plan's elements as an earlier run recorded them: its first pass, run
    /// to the end with the counters it began with, which are then set back to what they
    /// were.
    pub(super) fn rebuild_cache(self: &Arc<Plan>, opens: &Opens) -> Result<(), Diagnostic> {
        let now = snapshot_opens(&self.inputs[0].below);
        apply_opens(&self.inputs[0].below, opens);
        let mut s = self.open_stream()?;
        while let Some(chunk) = s.next_block(DROP_BLOCK as usize) {
            if let Some(d) = chunk.error {
                return Err(d);
            }
        }
        apply_opens(&self.inputs[0].below, &now);
        Ok(())
    }

    fn open_stream_at(self: &Arc<Plan>, st: &NodeState) -> Result<Box<dyn Stream>, Diagnostic> {
        let wrong = || {
            mismatch(&format!(
                "a `{}` state where the pipeline has another kind of node",
                state_name(st)
            ))
        };
        Ok(match (&self.kind, st) {
            (PlanKind::Slices(comps), NodeState::Slices { next }) => Box::new(
                usize::try_from(*next)
                    .ok()
                    .and_then(|next| Slices::at(comps.clone(), next, self.span))
                    .ok_or_else(|| mismatch("a `from_tensor_slices` position past its rows"))?,
            ),
            (PlanKind::Whole(comps), NodeState::Whole { done }) => {
                Box::new(Whole((!done).then(|| comps.clone())))
            }
            (PlanKind::Range { step, .. }, NodeState::Range { cur, stop }) => Box::new(Range {
                cur: *cur,
                stop: *stop,
                step: *step,
            }),
            (PlanKind::ReadCsv { .. }, NodeState::Csv { rows })
            | (PlanKind::ReadLines(_), NodeState::Lines { rows }) => {
                let mut s = self.open_stream()?;
                drop_outputs(s.as_mut(), *rows)?;
                s
            }
            (
                PlanKind::Map { .. } | PlanKind::Filter { .. },
                NodeState::Stage {
                    input,
                    skip,
                    count,
                    epoch,
                },
            ) => {
                let mut s = match self.fused_input().filter(|_| self.fuses_at(input)) {
                    Some(below) => {
                        let (input, below) = below.open_fused(Some(input))?;
                        self.open_stage(input, below, *count, *epoch)
                    }
                    None => self.open_stage(self.input_at(0, input)?, Vec::new(), *count, *epoch),
                };
                drop_outputs(s.as_mut(), *skip)?;
                s
            }
            (PlanKind::Batch { .. }, NodeState::Batch { input, skip, count }) => {
                let mut input = self.input_at(0, input)?;
                drop_outputs(input.as_mut(), *skip)?;
                self.open_batch(input, *count)
            }
            (PlanKind::PaddedBatch { .. }, NodeState::PaddedBatch { input }) => {
                self.open_batch(self.input_at(0, input)?, 0)
            }
            (PlanKind::Unbatch, NodeState::Unbatch { input, skip }) => {
                let mut s: Box<dyn Stream> = Box::new(Unbatch::new(
                    self.input_at(0, input)?,
                    self.span,
                    self.track,
                ));
                drop_outputs(s.as_mut(), *skip)?;
                s
            }
            (PlanKind::Shuffle { buffer: size, .. }, NodeState::Shuffle { input, buffer, rng }) => {
                let input = match input {
                    Some(i) => Some(self.input_at(0, i)?),
                    None => None,
                };
                let rows = match buffer {
                    Rows::Live(v) => v.clone(),
                    _ => Vec::new(),
                };
                let mut budget = Budget::new(self.span, "shuffle buffer");
                for e in &rows {
                    budget.add(e)?;
                }
                Box::new(Shuffle {
                    input,
                    buffer: rows,
                    size: (*size).max(1),
                    rng: Rng::from_state(*rng),
                    budget,
                })
            }
            (
                PlanKind::Repeat(count),
                NodeState::Repeat {
                    epoch,
                    seen,
                    ended,
                    current,
                    opens,
                },
            ) => {
                // Epochs it opens later (also while an ancestor replays) reshuffle as they
                // did. Set first: a node below that computed ahead (a `prefetch` running a
                // `repeat` of its own) restores its older counters over these, then replays.
                apply_opens(&self.inputs[0].below, opens);
                let current = match current {
                    Some(c) => Some(self.input_at(0, c)?),
                    None => None,
                };
                Box::new(Repeat {
                    plan: self.inputs[0].clone(),
                    current,
                    epoch: *epoch,
                    count: *count,
                    seen: *seen,
                    ended: *ended,
                })
            }
            (PlanKind::Take(_), NodeState::Take { input, left }) => Box::new(Take {
                input: self.input_at(0, input)?,
                left: *left,
            }),
            (PlanKind::Skip(_), NodeState::Skip { input, left }) => Box::new(Skip {
                input: self.input_at(0, input)?,
                left: *left,
            }),
            (PlanKind::Zip, NodeState::Zip { inputs }) => {
                if inputs.len() != self.inputs.len() {
                    return Err(mismatch("a `zip` state with another number of inputs"));
                }
                Box::new(Zip {
                    inputs: inputs
                        .iter()
                        .enumerate()
                        .map(|(i, st)| self.input_at(i, st))
                        .collect::<Result<_, _>>()?,
                })
            }
            (
                PlanKind::Concatenate,
                NodeState::Concat {
                    first,
                    second,
                    opens,
                },
            ) => {
                apply_opens(&self.inputs[1].below, opens);
                let s = Concat {
                    first: match first {
                        Some(f) => Some(self.input_at(0, f)?),
                        None => None,
                    },
                    second: self.inputs[1].clone(),
                    current: match second {
                        Some(c) => Some(self.input_at(1, c)?),
                        None => None,
                    },
                };
                Box::new(s)
            }
            (PlanKind::Enumerate(_), NodeState::Enumerate { input, next }) => Box::new(Enumerate {
                input: self.input_at(0, input)?,
                next: *next,
            }),
            (PlanKind::Shard { num, index }, NodeState::Shard { input, pos }) => Box::new(Shard {
                input: self.input_at(0, input)?,
                num: *num,
                index: *index,
                pos: *pos,
            }),
            // `prefetch(0)` has no stream of its own: the state is its input's.
            (PlanKind::Passthrough, st) => self.input_at(0, st)?,
            (PlanKind::Prefetch(n), NodeState::Prefetch { input, skip }) => {
                let mut input = self.input_at(0, input)?;
                drop_outputs(input.as_mut(), *skip)?;
                Box::new(Prefetch::start(input, *n, self.span, self.track))
            }
            (PlanKind::Cache(..), NodeState::CacheRecord { seen, opens }) => {
                // The first pass so far, recorded again from the input's start.
                apply_opens(&self.inputs[0].below, opens);
                let mut s = self.open_stream()?;
                drop_outputs(s.as_mut(), *seen)?;
                s
            }
            (PlanKind::Cache(cell), NodeState::CacheReplay { next, opens }) => {
                let complete = cell.elems.lock().map(|g| g.is_some()).unwrap_or(false);
                if !complete {
                    self.rebuild_cache(opens)?;
                }
                let elems = cell
                    .elems
                    .lock()
                    .ok()
                    .and_then(|g| g.clone())
                    .ok_or_else(|| mismatch("the `cache` could not be rebuilt"))?;
                let next = usize::try_from(*next)
                    .ok()
                    .filter(|&i| i <= elems.len())
                    .ok_or_else(|| mismatch("a `cache` position past its elements"))?;
                Box::new(Replay {
                    elems,
                    next,
                    opens: opens.clone(),
                })
            }
            (PlanKind::GlobalShuffle { seed, crew, .. }, st @ NodeState::GlobalShuffle { .. }) => {
                crate::global_shuffle::open_at(&self.inputs[0], *seed, crew, st)?
            }
            (PlanKind::Interleave(nested), st @ NodeState::Interleave { input, .. }) => {
                let input = self.input_at(0, input)?;
                crate::interleave::open_at(nested.clone(), input, st)?
            }
            (PlanKind::ReadTfRecord { .. }, NodeState::TfRecord { file, record })
            | (PlanKind::ReadParquet { .. }, NodeState::Parquet { file, row: record }) => {
                self.open_record_source(*file, *record)?
            }
            (
                PlanKind::Transform { t, .. },
                NodeState::Transform {
                    name,
                    input,
                    counters,
                },
            ) if name == t.decl.name => {
                let input = match input {
                    Some(i) => Some(self.input_at(0, i)?),
                    None => None,
                };
                super::transforms::open(self, input, Some(counters))?
            }
            _ => return Err(wrong()),
        })
    }
}

impl Plan {
    /// A record source at file `file` of its list, after `at` records (TFRecord) or rows
    /// (Parquet) of it; a file index past the list does not fit this pipeline.
    fn open_record_source(&self, file: u64, at: u64) -> Result<Box<dyn Stream>, Diagnostic> {
        let fits = |len: usize| {
            usize::try_from(file)
                .ok()
                .filter(|&f| f < len || (f == len && at == 0))
                .ok_or_else(|| mismatch("a record source's position is past its files"))
        };
        Ok(match &self.kind {
            PlanKind::ReadTfRecord { paths, compression } => {
                Box::new(crate::records::TfRecords::at(
                    paths.clone(),
                    *compression,
                    self.span,
                    fits(paths.len())?,
                    at,
                ))
            }
            PlanKind::ReadParquet { paths, columns } => {
                Box::new(crate::records::ParquetSource::at(
                    paths.clone(),
                    columns.clone(),
                    self.span,
                    fits(paths.len())?,
                    at,
                ))
            }
            _ => return Err(mismatch("a record source's state on another node")),
        })
    }
}
