//! The streams of the table transformations (`pipec_ir::TRANSFORMS`): one stream type per
//! row, and the one match from a row's name to its stream, opened fresh or at a saved
//! [`NodeState::Transform`]. Lowering, opening, restoring and the state's encoding handle
//! every row alike, so a new row's runtime is this file alone.

use super::base::Stream;
use super::plan::{Plan, PlanKind};
use crate::Element;
use crate::func::{CompiledFn, FnState};
use crate::state::{NodeState, mismatch};
use pipec_diag::{Code, Diagnostic};
use std::sync::Arc;

/// This node, a table transformation, over `input`: from its start, or at `saved` (the
/// counters its stream saved; its input is already restored).
pub(super) fn open(
    plan: &Arc<Plan>,
    input: Option<Box<dyn Stream>>,
    saved: Option<&[u64]>,
) -> Result<Box<dyn Stream>, Diagnostic> {
    let PlanKind::Transform { t, f } = &plan.kind else {
        unreachable!("transforms::open is called on table transformations only")
    };
    let counter = |i: usize| -> Result<Option<u64>, Diagnostic> {
        match saved {
            None => Ok(None),
            Some(c) => c.get(i).copied().map(Some).ok_or_else(|| {
                mismatch(&format!("a `{}` state without its counters", t.decl.name))
            }),
        }
    };
    match t.decl.name {
        "take_while" => {
            let f = f.clone().ok_or_else(|| missing(t.decl.name))?;
            let epoch = match counter(1)? {
                Some(e) => e,
                None => plan.next_epoch(),
            };
            Ok(Box::new(TakeWhile {
                input,
                f,
                state: FnState::default(),
                count: counter(0)?.unwrap_or(0),
                epoch,
            }))
        }
        name => Err(missing(name)),
    }
}

/// A table row without a stream here: a compiler bug, not the user's.
fn missing(name: &str) -> Diagnostic {
    Diagnostic::error(
        Code::InternalError,
        format!("internal compiler error: the transformation `{name}` has no stream"),
    )
    .with_help("this is a bug in pipec; please report it with the program")
}

/// Whether a predicate's result (one `bool[]`) says yes.
fn says_yes(result: &[pipec_tensor::Tensor]) -> bool {
    result
        .first()
        .and_then(|t| t.as_array::<bool>())
        .and_then(|a| a.iter().next().copied())
        .unwrap_or(false)
}

/// `take_while(pred)`: the elements before the first one `pred` rejects. Once it rejects
/// one, the input is dropped: nothing more is pulled (tf.data's order of calls).
struct TakeWhile {
    /// `None` once the predicate said no (or the input ended).
    input: Option<Box<dyn Stream>>,
    f: Arc<CompiledFn>,
    state: FnState,
    /// Input elements read: the next one's index, which the predicate's random ops read.
    count: u64,
    /// The opening's epoch, for the predicate's random ops.
    epoch: u64,
}

impl Stream for TakeWhile {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        let Some(input) = self.input.as_mut() else {
            return Ok(None);
        };
        let Some(e) = input.next()? else {
            self.input = None;
            return Ok(None);
        };
        let index = self.count;
        self.count += 1;
        let keep = self.f.call(&mut self.state, e.clone(), index, self.epoch)?;
        if says_yes(&keep) {
            Ok(Some(e))
        } else {
            self.input = None;
            Ok(None)
        }
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        Ok(NodeState::Transform {
            name: "take_while".into(),
            input: match self.input.as_mut() {
                Some(i) => Some(Box::new(i.save()?)),
                None => None,
            },
            counters: vec![self.count, self.epoch],
        })
    }
}
