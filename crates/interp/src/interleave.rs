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
//! State (for checkpoints): the input's position, the slot being visited and how many
//! elements of its block were taken, and per slot the input element it was opened for (its
//! index) and the open inner stream's own position.

use crate::func::{CompiledFn, FnState};
use crate::lanes::Crew;
use crate::stream::{Element, RunOptions, Stream, open_nested};
use pipec_diag::Diagnostic;
use pipec_ir::{FuncId, Nested, Program};
use std::collections::HashMap;
use std::sync::Arc;

/// What opening an `interleave` needs.
pub(crate) struct NestedPlan {
    /// The element → inner-source-values function.
    pub(crate) func: Arc<CompiledFn>,
    /// The program the inner pipeline's functions live in.
    pub(crate) prog: Arc<Program>,
    pub(crate) nested: Nested,
    pub(crate) opts: RunOptions,
    pub(crate) crew: Arc<Crew>,
}

/// An open `interleave`.
struct Interleave {
    plan: Arc<NestedPlan>,
    input: Box<dyn Stream>,
    state: FnState,
    fns: HashMap<FuncId, Arc<CompiledFn>>,
    /// How many input elements were read (the index passed to `func`).
    count: u64,
    slots: Vec<Option<Box<dyn Stream>>>,
    open: usize,
    cycle_index: usize,
    block_index: usize,
    end_of_input: bool,
}

/// Opens `interleave` over `input`.
pub(crate) fn open(
    plan: Arc<NestedPlan>,
    input: Box<dyn Stream>,
) -> Result<Box<dyn Stream>, Diagnostic> {
    let cycle = plan.nested.cycle_length.max(1);
    Ok(Box::new(Interleave {
        plan,
        input,
        state: FnState::default(),
        fns: HashMap::new(),
        count: 0,
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
    fn open_inner(&mut self, e: Element) -> Result<Box<dyn Stream>, Diagnostic> {
        let args = self.plan.func.call(&mut self.state, e, self.count, 0)?;
        self.count += 1;
        let plan = &self.plan;
        open_nested(
            &plan.prog,
            &plan.nested.inner,
            &plan.opts,
            args,
            &plan.crew,
            &mut self.fns,
        )
    }
}

impl Stream for Interleave {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        while !self.end_of_input || self.open > 0 {
            let i = self.cycle_index;
            if let Some(inner) = self.slots[i].as_mut() {
                if let Some(e) = inner.next()? {
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
}
