//! `global_shuffle`: the whole input in a uniform pseudo-random order, in O(1) memory.
//!
//! Output position `p` is input element `perm(p)`, where `perm` is
//! [`IndexPermutation`] keyed by the seed and the epoch (the how-many-th opening of the
//! node, as for `shuffle`; always 0 with `reshuffle_each_iteration: false`). The input is
//! read through [`RandomAccess`], never streamed, so nothing is buffered.
//!
//! Blocks: the permutation of a block of positions is one vectorized pass
//! (`IndexPermutation::fill_vec`); over a `range` the same pass writes the values (element
//! `i` of a range is `start + i * step`), otherwise the positions, which the input then
//! gathers. With `--threads` above one over a large input, helper threads permute the
//! blocks ahead of the consumer ([`Ahead`]), which takes them in order (or computes a block
//! itself when no helper has started on it): the permutation is a pure function of the
//! position, so which thread computes a block cannot be seen. Only the gather from a
//! non-`range` input (which may run a `map`'s function) stays on the consumer's thread.
//!
//! State (for checkpoints): the epoch and the output position `pos`; with the seed from
//! the plan, they rebuild the stream exactly (`perm` is recomputed, nothing else is held;
//! blocks permuted ahead are not part of it). Building the input's random-access view takes
//! epochs from the counters of the maps below (as opening them would), so the state also
//! holds those counters as they were before the build, and a resumed run sets them and
//! builds again.

use crate::Element;
use crate::block::{Block, Chunk};
use crate::lanes::Crew;
use crate::random_access::RandomAccess;
use crate::state::{NodeState, mismatch};
use crate::stream::base::Stream;
use crate::stream::plan::{Opens, Plan, apply_opens, snapshot_opens};
use pipec_diag::{Diagnostic, Span};
use pipec_tensor::Tensor;
use pipec_tensor::kernels::permute::IndexPermutation;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// The run's helper threads.
    crew: Arc<Crew>,
    /// Blocks permuted ahead on helper threads, once started.
    ahead: Option<Ahead>,
    /// Values of a block permuted ahead that the consumer did not take yet (it asked for
    /// fewer), from `rest.1` on.
    rest: Option<(Vec<i64>, usize)>,
}

/// Inputs shorter than this are permuted on the consumer's thread alone: starting helpers
/// costs more than they would save.
const AHEAD_MIN_LEN: u64 = 1 << 18;

/// Opens `global_shuffle` over `input` for `epoch`, permuting ahead on `crew`'s helpers.
pub(crate) fn open(
    input: &Arc<Plan>,
    seed: u64,
    epoch: u64,
    crew: &Arc<Crew>,
    _span: Span,
) -> Result<Box<dyn Stream>, Diagnostic> {
    Ok(Box::new(GlobalShuffle::start(input, seed, epoch, crew)?))
}

/// Opens `global_shuffle` over `input` at the saved `st`.
pub(crate) fn open_at(
    input: &Arc<Plan>,
    seed: u64,
    crew: &Arc<Crew>,
    st: &NodeState,
) -> Result<Box<dyn Stream>, Diagnostic> {
    let NodeState::GlobalShuffle { epoch, pos, opens } = st else {
        return Err(mismatch(
            "another kind of state where the pipeline has a `global_shuffle`",
        ));
    };
    // The maps below take the same epochs the saving run's view took.
    apply_opens(&input.below, opens);
    let mut s = GlobalShuffle::start(input, seed, *epoch, crew)?;
    if *pos > s.perm.len() {
        return Err(mismatch("a `global_shuffle` position past its input"));
    }
    s.pos = *pos;
    Ok(Box::new(s))
}

impl GlobalShuffle {
    /// The stream over `input` for `epoch`, at position 0.
    fn start(
        input: &Arc<Plan>,
        seed: u64,
        epoch: u64,
        crew: &Arc<Crew>,
    ) -> Result<GlobalShuffle, Diagnostic> {
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
            crew: crew.clone(),
            ahead: None,
            rest: None,
        })
    }
}

impl GlobalShuffle {
    /// What a block of values is over this input: a range's values, or positions.
    fn block_fn(&self) -> BlockFn {
        BlockFn {
            perm: self.perm.clone(),
            range: self.input.as_range(),
        }
    }

    /// The next `n` values (range) or positions (as `i64`) from the blocks permuted ahead.
    fn take_ahead(&mut self, max: usize) -> Option<Vec<i64>> {
        if let Some((vals, at)) = &mut self.rest {
            let n = max.min(vals.len() - *at);
            let out = vals[*at..*at + n].to_vec();
            *at += n;
            if *at == vals.len() {
                self.rest = None;
            }
            return Some(out);
        }
        let ahead = self.ahead.as_mut()?;
        let mut vals = ahead.next_block()?;
        if vals.len() > max {
            let front = vals[..max].to_vec();
            self.rest = Some((vals, max));
            vals = front;
        }
        Some(vals)
    }

    /// Hands blocks to the run's helpers when this stream is worth them.
    fn start_ahead(&mut self, max: usize) {
        let left = self.perm.len() - self.pos;
        // Positions travel as i64 between threads.
        if left < AHEAD_MIN_LEN || max < 1024 || self.perm.len() > i64::MAX as u64 {
            return;
        }
        self.ahead = Ahead::start(
            self.block_fn(),
            self.pos,
            self.perm.len(),
            max,
            self.crew.clone(),
        );
    }
}

impl Stream for GlobalShuffle {
    fn next(&mut self) -> Result<Option<Element>, Diagnostic> {
        if self.ahead.is_some() || self.rest.is_some() {
            // Blocks are out ahead: an element is the next block's first row.
            return match self.next_block(1) {
                None => Ok(None),
                Some(Chunk { error: Some(d), .. }) => Err(d),
                Some(c) => Ok(c.block.into_rows().into_iter().next()),
            };
        }
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
        if self.ahead.is_none() && self.rest.is_none() {
            self.start_ahead(n);
        }
        let ahead = self.take_ahead(n);
        if let Some((start, step)) = self.input.as_range() {
            let values = ahead
                .unwrap_or_else(|| BlockFn::range_values(&self.perm, start, step, self.pos, n));
            self.pos += values.len() as u64;
            let rows = values.len();
            return Some(Chunk::ok(Block::Stacked {
                leaves: vec![Tensor::from_vec(&[rows], values).expect("one value per row")],
                rows,
            }));
        }
        match ahead {
            Some(p) => {
                self.positions.clear();
                self.positions.extend(p.iter().map(|&i| i as u64));
            }
            None => {
                self.positions.resize(n, 0);
                self.perm.fill(self.pos, &mut self.positions);
            }
        }
        let chunk = self.input.get_block(&self.positions);
        // The position moves past what was delivered; an error ends the stream anyway.
        self.pos += chunk.block.len() as u64 + u64::from(chunk.error.is_some());
        if chunk.block.is_empty() && chunk.error.is_none() {
            return None;
        }
        Some(chunk)
    }

    fn save(&mut self) -> Result<NodeState, Diagnostic> {
        // `pos` counts exactly what was handed out; blocks permuted ahead are recomputed.
        Ok(NodeState::GlobalShuffle {
            epoch: self.epoch,
            pos: self.pos,
            opens: self.opens.clone(),
        })
    }
}

/// What one block of the stream is, computed on any thread.
struct BlockFn {
    perm: IndexPermutation,
    range: Option<(i64, i64)>,
}

impl BlockFn {
    /// Element `start + j` of the stream for `j < len`: a range's value, or a position.
    fn run(&self, start: u64, len: usize) -> Vec<i64> {
        match self.range {
            Some((a, s)) => Self::range_values(&self.perm, a, s, start, len),
            None => self.perm.fill_vec(start, len, |i| i as i64),
        }
    }

    fn range_values(
        perm: &IndexPermutation,
        start: i64,
        step: i64,
        pos: u64,
        len: usize,
    ) -> Vec<i64> {
        // The value lies between start and stop, so wrapping arithmetic is exact.
        if step == 1 {
            perm.fill_vec(pos, len, |i| start.wrapping_add(i as i64))
        } else {
            perm.fill_vec(pos, len, |i| {
                start.wrapping_add((i as i64).wrapping_mul(step))
            })
        }
    }
}

/// Blocks the helpers may permute ahead of the consumer, per thread.
const SLOTS_PER_LANE: usize = 3;

/// A slot's state, in the low two bits of its word (the block it holds is in the rest, so
/// that claiming, finishing and handing on a slot are each one compare-and-swap of both).
const FREE: u64 = 0;
const CLAIMED: u64 = 1;
const DONE: u64 = 2;

fn word(block: u64, state: u64) -> u64 {
    (block << 2) | state
}

/// Blocks of the stream permuted ahead on the run's helpers (the team the lanes use): block
/// `k` (positions `base + k * size ..`, up to `len`) lives in slot `k % slots`, which
/// whichever thread claims it first computes. Each free slot has one task queued for its
/// block; the consumer takes block after block, hands each slot on to the block `slots`
/// further and queues that block's task.
struct Ahead {
    shared: Arc<Shared>,
    crew: Arc<Crew>,
    /// The block the consumer takes next.
    next: u64,
    /// A running mean of how long a block takes the consumer, in ns (0: none yet).
    block_nanos: u64,
}

struct Shared {
    f: BlockFn,
    base: u64,
    len: u64,
    size: usize,
    slots: Vec<Slot>,
    /// Set when the stream is dropped: tasks still queued return at once.
    stop: AtomicBool,
}

struct Slot {
    /// `word(block, state)`.
    word: AtomicU64,
    /// The block's values once `DONE`; written under this lock together with the `DONE`.
    out: Mutex<Option<Vec<i64>>>,
}

impl Shared {
    /// How many values block `k` holds (0 past the end).
    fn block_len(&self, k: u64) -> usize {
        let start = self.base.saturating_add(k.saturating_mul(self.size as u64));
        self.len.saturating_sub(start).min(self.size as u64) as usize
    }

    fn compute(&self, k: u64) -> Vec<i64> {
        let start = self.base + k * self.size as u64;
        self.f.run(start, self.block_len(k))
    }

    fn slot(&self, k: u64) -> &Slot {
        &self.slots[(k % self.slots.len() as u64) as usize]
    }

    /// Claims block `k` for the calling thread: `false` if another thread did first (or
    /// its slot holds another block).
    fn claim(&self, k: u64) -> bool {
        self.slot(k)
            .word
            .compare_exchange(
                word(k, FREE),
                word(k, CLAIMED),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// A helper's task: permute block `k` unless the stream ended or a thread claimed it.
    fn permute_ahead(&self, k: u64) {
        if self.stop.load(Ordering::Acquire) || !self.claim(k) {
            return;
        }
        let slot = self.slot(k);
        let out = {
            let _working = pipec_tensor::busy::Working::begin();
            self.compute(k)
        };
        if let Ok(mut o) = slot.out.lock() {
            // A consumer that stopped waiting computed the block itself and moved the slot
            // on: then this copy is dropped.
            if slot
                .word
                .compare_exchange(
                    word(k, CLAIMED),
                    word(k, DONE),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                *o = Some(out);
            }
        }
    }
}

impl Ahead {
    /// Blocks of `size` from position `base` of `len` permuted ahead on `crew`'s helpers;
    /// `None` if the run has none.
    fn start(f: BlockFn, base: u64, len: u64, size: usize, crew: Arc<Crew>) -> Option<Ahead> {
        let helpers = crew.helpers();
        if helpers == 0 {
            return None;
        }
        let slots = (helpers + 1) * SLOTS_PER_LANE;
        let shared = Arc::new(Shared {
            f,
            base,
            len,
            size,
            slots: (0..slots as u64)
                .map(|k| Slot {
                    word: AtomicU64::new(word(k, FREE)),
                    out: Mutex::new(None),
                })
                .collect(),
            stop: AtomicBool::new(false),
        });
        let ahead = Ahead {
            shared,
            crew,
            next: 0,
            block_nanos: 0,
        };
        // Block 0 is the consumer's at once; the helpers start on the ones after it.
        for k in 1..slots as u64 {
            ahead.queue(k);
        }
        Some(ahead)
    }

    /// Queues block `k`'s task, if there is such a block.
    fn queue(&self, k: u64) {
        if self.shared.block_len(k) > 0 {
            let shared = self.shared.clone();
            // Without helpers (never, once started) the consumer permutes the block itself.
            let _ = self.crew.spawn(Box::new(move || shared.permute_ahead(k)));
        }
    }

    /// Block `k` computed on this thread, timed.
    fn compute_here(&mut self, k: u64) -> Vec<i64> {
        let t = Instant::now();
        let vals = self.shared.compute(k);
        let ns = t.elapsed().as_nanos().min(u128::from(u64::MAX / 2)) as u64;
        self.block_nanos = if self.block_nanos == 0 {
            ns
        } else {
            (self.block_nanos * 7 + ns) / 8
        };
        vals
    }

    /// Claims the first block after `k` within the ring that is free, if any.
    fn claim_later(&self, k: u64) -> Option<u64> {
        let sh = &self.shared;
        (k + 1..k + sh.slots.len() as u64)
            .take_while(|&j| sh.block_len(j) > 0)
            .find(|&j| sh.claim(j))
    }

    /// The next block's values, in order; `None` at the end.
    fn next_block(&mut self) -> Option<Vec<i64>> {
        let sh = self.shared.clone();
        let k = self.next;
        if sh.block_len(k) == 0 {
            return None;
        }
        let slot = sh.slot(k);
        let moved_on = word(k + sh.slots.len() as u64, FREE);
        let vals = if sh.claim(k) {
            let vals = self.compute_here(k);
            slot.word.store(moved_on, Ordering::Release);
            vals
        } else {
            // A helper has it. Wait, but not more than twice what a block takes here (a
            // helper descheduled on a busy machine would hold the stream up): then compute
            // it here too and move the slot on, which makes the helper drop its copy.
            let patience = Duration::from_nanos(self.block_nanos.max(20_000) * 2);
            let mut since = Instant::now();
            let mut spins = 0u32;
            // Spinning for the helper's block is waiting, not work (for the serial share).
            let mut waiting: Option<pipec_tensor::busy::Waiting> = None;
            loop {
                if slot.word.load(Ordering::Acquire) == word(k, DONE) {
                    let out = slot.out.lock().ok().and_then(|mut o| o.take());
                    slot.word.store(moved_on, Ordering::Release);
                    break out.unwrap_or_else(|| sh.compute(k));
                }
                // Rather than spin, permute one later block nobody has claimed, then look
                // at block `k` again: the two threads then share the blocks. (Claiming every
                // free block before looking again filled the ring with the consumer's
                // blocks and left the helpers idle: they did 2-30% of the blocks.)
                if let Some(j) = self.claim_later(k) {
                    drop(waiting.take());
                    let vals = self.compute_here(j);
                    let later = sh.slot(j);
                    if let Ok(mut o) = later.out.lock() {
                        *o = Some(vals);
                    }
                    later.word.store(word(j, DONE), Ordering::Release);
                    since = Instant::now();
                    continue;
                }
                spins += 1;
                if spins.is_multiple_of(64) && since.elapsed() > patience {
                    drop(waiting.take());
                    let vals = self.compute_here(k);
                    // Under the lock a helper finishing now either already stored its copy
                    // (dropped here) or finds the slot moved on.
                    if let Ok(mut o) = slot.out.lock() {
                        *o = None;
                        slot.word.store(moved_on, Ordering::Release);
                    } else {
                        slot.word.store(moved_on, Ordering::Release);
                    }
                    break vals;
                }
                if waiting.is_none() {
                    waiting = Some(pipec_tensor::busy::Waiting::begin());
                }
                // The helper may share this core: let it run.
                std::thread::yield_now();
            }
        };
        self.next = k + 1;
        // Slot `k`'s next block is free: a helper may take it.
        self.queue(k + sh.slots.len() as u64);
        Some(vals)
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        // Tasks still queued hold the shared state until a helper runs them: make that quick.
        self.shared.stop.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drains blocks permuted ahead by `helpers` threads.
    fn drain(f: BlockFn, base: u64, len: u64, size: usize, helpers: usize) -> Vec<i64> {
        let crew = Arc::new(Crew::new(helpers, 0));
        let mut ahead = Ahead::start(f, base, len, size, crew).expect("a helper starts");
        let mut out = Vec::new();
        while let Some(b) = ahead.next_block() {
            assert!(b.len() <= size);
            out.extend(b);
        }
        out
    }

    /// Whichever thread permutes a block, the blocks come out in order with the values of
    /// one pass on one thread: a range's values, or positions.
    #[test]
    fn blocks_permuted_ahead_are_the_blocks_of_one_pass() {
        for (n, base, size, helpers) in [
            (300_000u64, 0u64, 8192usize, 1usize),
            (300_000, 12_345, 1000, 3),
            (5_000, 0, 1024, 2),
            ((1 << 30) + 7, (1 << 30) - 50_000, 4096, 2),
        ] {
            let perm = IndexPermutation::new(n, 9, 2);
            let left = (n - base) as usize;
            let want_range = perm.fill_vec(base, left, |i| 5 + 3 * i as i64);
            let got = drain(
                BlockFn {
                    perm: perm.clone(),
                    range: Some((5, 3)),
                },
                base,
                n,
                size,
                helpers,
            );
            assert_eq!(got, want_range, "n={n} base={base} size={size}");
            let want_pos = perm.fill_vec(base, left, |i| i as i64);
            let got = drain(BlockFn { perm, range: None }, base, n, size, helpers);
            assert_eq!(got, want_pos, "n={n} base={base} size={size}");
        }
    }
}
