//! `global_shuffle`: the whole input in a uniform pseudo-random order, in O(1) memory.
//!
//! Output position `p` is input element `perm(p)`, where `perm` is
//! [`IndexPermutation`] keyed by the seed and the epoch (the how-many-th opening of the
//! node, as for `shuffle`; always 0 with `reshuffle_each_iteration: false`). The input is
//! read through [`RandomAccess`], never streamed, so nothing is buffered.
//!
//! State (for checkpoints): the epoch and the output position `pos`; with the seed from
//! the plan, they rebuild the stream exactly (`perm` is recomputed, nothing else is held).

use crate::block::Chunk;
use crate::random_access::RandomAccess;
use crate::stream::{Element, Plan, Stream};
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
}

/// Opens `global_shuffle` over `input` for `epoch`.
pub(crate) fn open(
    input: &Arc<Plan>,
    seed: u64,
    epoch: u64,
    _span: Span,
) -> Result<Box<dyn Stream>, Diagnostic> {
    let input = RandomAccess::build(input)?;
    let perm = IndexPermutation::new(input.len(), seed, epoch);
    Ok(Box::new(GlobalShuffle {
        input,
        perm,
        pos: 0,
        positions: Vec::new(),
    }))
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
}
