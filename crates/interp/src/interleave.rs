//! `interleave(f, cycle_length, block_length)` and `flat_map(f)` (= cycle length 1), in
//! tf.data's order.
//!
//! Up to `cycle_length` inner datasets are open, in slots visited round robin; each visit
//! takes up to `block_length` consecutive elements. A slot whose dataset ends is emptied and
//! the visit moves on; an empty slot is refilled from the next input element (whose inner
//! dataset then gives the slot's next element) until the input ends. This is
//! `InterleaveDatasetOp`'s `GetNext`, so every case of `tests/tfdata` matches tf.data.
//!
//! `num_parallel_calls` does not change the order (tf.data's `deterministic: true`); pipec
//! opens and pulls the inner datasets on the consumer's thread, so a parallel interleave
//! runs as a sequential one (documented in docs/language.md).
//!
//! Random ops: the function draws with the element's index in the input (counted per
//! opening, as a `map`'s) and the node's epoch `E`; an inner dataset built from input
//! element `k` derives its functions' epochs from `op_key(E, [k])` ([`inner_nest`]), so
//! each inner dataset, in each epoch, draws anew.
//!
//! State (for checkpoints): the input's position, the epoch, the slot being visited and how
//! many elements of its block were taken, and per slot the input element it was opened for
//! (its index), the values the function returned for it (so the inner dataset is rebuilt
//! without reading that element again), the seeds its unseeded `shuffle`s drew, and the
//! open inner stream's own position.

use crate::Element;
use crate::func::{CompiledFn, FnState};
use crate::state::{NodeState, Rows, SlotState, mismatch};
use crate::stream::base::Stream;
use crate::stream::lower::open_nested;
use crate::stream::plan::{NestedPlan, ShufflePlans, plan_states};
use pipec_diag::Diagnostic;
use pipec_ir::FuncId;
use pipec_tensor::Tensor;
use pipec_tensor::kernels::random::op_key;
use std::collections::HashMap;
use std::sync::Arc;

/// An open `interleave`.
struct Interleave {
    plan: Arc<NestedPlan>,
    input: Box<dyn Stream>,
    state: FnState,
    fns: HashMap<FuncId, Arc<CompiledFn>>,
    /// How many input elements were read (the index passed to `func`).
    count: u64,
    /// The epoch `func` draws with.
    epoch: u64,
    slots: Vec<Option<Slot>>,
    open: usize,
    cycle_index: usize,
    block_index: usize,
    end_of_input: bool,
}

/// An inner dataset open in a slot, with what rebuilds it.
struct Slot {
    stream: Box<dyn Stream>,
    /// The index of the input element it was built from.
    index: u64,
    /// The function's results for that element.
    args: Vec<Tensor>,
    /// Its `shuffle` plans (their seeds go in the state).
    shuffles: ShufflePlans,
}

/// The [`Plan::nest`] of the inner dataset built from input element `index` in `epoch`.
fn inner_nest(epoch: u64, index: u64) -> u64 {
    op_key(epoch, &[index])
}

/// Opens `interleave` over `input`, in `epoch`.
pub(crate) fn open(
    plan: Arc<NestedPlan>,
    input: Box<dyn Stream>,
    epoch: u64,
) -> Result<Box<dyn Stream>, Diagnostic> {
    let cycle = plan.nested.cycle_length.max(1);
    Ok(Box::new(Interleave {
        plan,
        input,
        state: FnState::default(),
        fns: HashMap::new(),
        count: 0,
        epoch,
        slots: (0..cycle).map(|_| None).collect(),
        open: 0,
        cycle_index: 0,
        block_index: 0,
        end_of_input: false,
    }))
}

impl Interleave {
    fn next_in_cycle(&mut self) {
        self.block_index = 0;
        self.cycle_index = (self.cycle_index + 1) % self.slots.len();
    }

    /// The inner dataset of input element `e`.
    fn open_inner(&mut self, e: Element) -> Result<Slot, Diagnostic> {
        let index = self.count;
        let args = self.plan.func.call(&mut self.state, e, index, self.epoch)?;
        self.count += 1;
        self.slot(index, args, None)
    }

    /// The inner dataset built from input element `index`, whose function results were
    /// `args`, from its start or at a saved state (with the seeds its `shuffle`s drew).
    fn slot(
        &mut self,
        index: u64,
        args: Vec<Tensor>,
        at: Option<(&NodeState, &crate::stream::plan::Seeds)>,
    ) -> Result<Slot, Diagnostic> {
        let plan = &self.plan;
        let (stream, shuffles) = open_nested(
            &plan.prog,
            &plan.nested.inner,
            &plan.opts,
            args.clone(),
            &plan.crew,
            &mut self.fns,
            inner_nest(self.epoch, index),
            at,
        )?;
        Ok(Slot {
            stream,
            index,
            args,
            shuffles,
        })
    }
}

/// Opens `interleave` at the saved `st`, over `input` already restored to its position.
pub(crate) fn open_at(
    plan: Arc<NestedPlan>,
    input: Box<dyn Stream>,
    st: &NodeState,
) -> Result<Box<dyn Stream>, Diagnostic> {
    let NodeState::Interleave {
        epoch,
        count,
        cycle,
        block,
        ended,
        slots,
        ..
    } = st
    else {
        return Err(mismatch(
            "another kind of state where the pipeline has an `interleave`",
        ));
    };
    let n = plan.nested.cycle_length.max(1);
    if slots.len() != n || *cycle >= n as u64 || *block >= plan.nested.block_length.max(1) as u64 {
        return Err(mismatch(
            "an `interleave` state with another cycle or block length",
        ));
    }
    let mut s = Interleave {
        plan,
        input,
        state: FnState::default(),
        fns: HashMap::new(),
        count: *count,
        epoch: *epoch,
        slots: (0..n).map(|_| None).collect(),
        open: 0,
        cycle_index: *cycle as usize,
        block_index: *block as usize,
        end_of_input: *ended,
    };
    for (i, saved) in slots.iter().enumerate() {
        let Some(saved) = saved else { continue };
        let args = match &saved.args {
            Rows::Live(v) if v.len() == 1 => v[0].clone(),
            Rows::Live(v) if v.is_empty() => Vec::new(),
            Rows::Empty => Vec::new(),
            _ => return Err(mismatch("an `interleave` slot without its one element")),
        };
        if args.len() != s.plan.func.func().results.len() {
            return Err(mismatch(
                "an `interleave` slot whose values do not fit its function",
            ));
        }
        let seeds = saved.plans.iter().cloned().collect();
        s.slots[i] = Some(s.slot(saved.index, args, Some((&saved.state, &seeds)))?);
        s.open += 1;
    }
    Ok(Box::new(s))
}

impl Stream for Interleave {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        while !self.end_of_input || self.open > 0 {
            let i = self.cycle_index;
            if let Some(inner) = self.slots[i].as_mut() {
                if let Some(e) = inner.stream.next()? {
                    self.block_index += 1;
                    if self.block_index >= self.plan.nested.block_length.max(1) {
                        self.next_in_cycle();
                    }
                    return Ok(Some(e));
                }
                self.slots[i] = None;
                self.open -= 1;
                self.next_in_cycle();
            } else if !self.end_of_input {
                match self.input.next()? {
                    Some(e) => {
                        self.slots[i] = Some(self.open_inner(e)?);
                        self.open += 1;
                    }
                    None => self.end_of_input = true,
                }
            } else {
                self.next_in_cycle();
            }
        }
        Ok(None)
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        let mut slots = Vec::with_capacity(self.slots.len());
        for slot in &mut self.slots {
            slots.push(match slot {
                None => None,
                Some(s) => Some(SlotState {
                    index: s.index,
                    // No values (a function whose dataset reads none) is no element at all.
                    args: if s.args.is_empty() {
                        Rows::Empty
                    } else {
                        Rows::Live(vec![s.args.clone()])
                    },
                    plans: plan_states(&s.shuffles).into_iter().collect(),
                    state: Box::new(s.stream.save()?),
                }),
            });
        }
        Ok(NodeState::Interleave {
            input: Box::new(self.input.save()?),
            epoch: self.epoch,
            count: self.count,
            cycle: self.cycle_index as u64,
            block: self.block_index as u64,
            ended: self.end_of_input,
            slots,
        })
    }
}
