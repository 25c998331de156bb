//! Elements turned into text for stdout and `.jsonl` files on the kernel threads, in order:
//! formatting floats numpy's way is far costlier than computing them (W1 printed spent 3.2 s
//! formatting after a 4 ms run, all on one thread), so a block's rows are split into parts
//! formatted in parallel and written one part after the other.

use pipec::{Block, Element};
use rayon::prelude::*;

/// Blocks holding fewer values than this are formatted on the calling thread: waking a pool
/// thread costs tens of microseconds, about what formatting a thousand numbers takes.
const PARALLEL_VALUES: usize = 1 << 12;

/// The text `line` writes for each row of `block`, as parts to be written in order.
pub(crate) fn format_block(
    block: &Block,
    line: impl Fn(&Element, &mut String) + Sync,
) -> Vec<String> {
    let rows = block.len();
    let parallel = rows >= 2 && values(block) >= PARALLEL_VALUES && pipec::kernels::pool_parallel();
    let parts = if parallel {
        (rayon::current_num_threads() * 4).min(rows)
    } else {
        1
    };
    let part = |p: usize| {
        let mut text = String::new();
        for i in rows * p / parts..rows * (p + 1) / parts {
            line(&block.row(i), &mut text);
        }
        text
    };
    if parts == 1 {
        return vec![part(0)];
    }
    // This thread only waits for the pool's threads (for `--stats`' serial share).
    let _waiting = pipec::busy::Waiting::begin();
    (0..parts)
        .into_par_iter()
        .map(|p| {
            let _working = pipec::busy::Working::begin();
            part(p)
        })
        .collect()
}

/// How many values the block's tensors hold.
fn values(block: &Block) -> usize {
    match block {
        Block::Stacked { leaves, .. } => leaves.iter().map(pipec::Tensor::len).sum(),
        Block::Rows(rows) => rows.iter().flatten().map(pipec::Tensor::len).sum(),
    }
}
