//! `global_shuffle`: the whole input in a uniform pseudo-random order, in O(1) memory.
//!
//! Output position `p` is input element `perm(p)`, where `perm` is
//! [`IndexPermutation`] keyed by the seed and the epoch (the how-many-th opening of the
//! node, as for `shuffle`; always 0 with `reshuffle_each_iteration: false`). The input is
//! read through [`RandomAccess`], never streamed, so nothing is buffered.
//!
//! State (for checkpoints): the epoch and the output position `pos`; with the seed from
//! the plan, they rebuild the stream exactly (`perm` is recomputed, nothing else is held).
//! Building the input's random-access view takes epochs from the counters of the maps
//! below (as opening them would), so the state also holds those counters as they were
//! before the build, and a resumed run sets them and builds again.

use crate::block::Chunk;
use crate::random_access::RandomAccess;
use crate::state::{NodeState, mismatch};
use crate::stream::{Element, Opens, Plan, Stream, apply_opens, snapshot_opens};
use pipec_diag::{Diagnostic, Span};
use pipec_tensor::kernels::permute::IndexPermutation;
use std::sync::Arc;

/// An open `global_shuffle`.
pub(crate) struct GlobalShuffle {
    input: RandomAccess,
    perm: IndexPermutation,
    /// The next output position.
    pos: u64,
    /// Scratch for a block's input positions.
    positions: Vec<u64>,
    /// The epoch `perm` is keyed by, and the counters below as of before the input's view
    /// was built (for the state).
    epoch: u64,
    opens: Opens,
}

/// Opens `global_shuffle` over `input` for `epoch`.
pub(crate) fn open(
    input: &Arc<Plan>,
    seed: u64,
    epoch: u64,
    _span: Span,
) -> Result<Box<dyn Stream>, Diagnostic> {
    Ok(Box::new(GlobalShuffle::start(input, seed, epoch)?))
}

/// Opens `global_shuffle` over `input` at the saved `st`.
pub(crate) fn open_at(
    input: &Arc<Plan>,
    seed: u64,
    st: &NodeState,
) -> Result<Box<dyn Stream>, Diagnostic> {
    let NodeState::GlobalShuffle { epoch, pos, opens } = st else {
        return Err(mismatch(
            "another kind of state where the pipeline has a `global_shuffle`",
        ));
    };
    // The maps below take the same epochs the saving run's view took.
    apply_opens(&input.below, opens);
    let mut s = GlobalShuffle::start(input, seed, *epoch)?;
    if *pos > s.perm.len() {
        return Err(mismatch("a `global_shuffle` position past its input"));
    }
    s.pos = *pos;
    Ok(Box::new(s))
}

impl GlobalShuffle {
    /// The stream over `input` for `epoch`, at position 0.
    fn start(input: &Arc<Plan>, seed: u64, epoch: u64) -> Result<GlobalShuffle, Diagnostic> {
        let opens = snapshot_opens(&input.below);
        let input = RandomAccess::build(input)?;
        let perm = IndexPermutation::new(input.len(), seed, epoch);
        Ok(GlobalShuffle {
            input,
            perm,
            pos: 0,
            positions: Vec::new(),
            epoch,
            opens,
        })
    }
}

impl Stream for GlobalShuffle {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        if self.pos >= self.perm.len() {
            return Ok(None);
        }
        let i = self.perm.apply(self.pos);
        self.pos += 1;
        self.input.get(i).map(Some)
    }

    fn next_block(&mut self, max: usize) -> Option<Chunk> {
        let left = self.perm.len() - self.pos.min(self.perm.len());
        let n = (max as u64).min(left) as usize;
        if n == 0 {
            return None;
        }
        self.positions.resize(n, 0);
        self.perm.fill(self.pos, &mut self.positions);
        let chunk = self.input.get_block(&self.positions);
        // The position moves past what was delivered; an error ends the stream anyway.
        self.pos += chunk.block.len() as u64 + u64::from(chunk.error.is_some());
        if chunk.block.is_empty() && chunk.error.is_none() {
            return None;
        }
        Some(chunk)
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        // Nothing is computed ahead: `pos` counts exactly what was handed out.
        Ok(NodeState::GlobalShuffle {
            epoch: self.epoch,
            pos: self.pos,
            opens: self.opens.clone(),
        })
    }
}
