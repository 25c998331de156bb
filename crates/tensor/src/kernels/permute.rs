//! Index permutations for `global_shuffle`: `perm(i)` for any position `i` of a dataset of
//! `n` elements, in O(1) memory, keyed by a seed and an epoch.
//!
//! Three constructions, all bijections computed position by position:
//!
//! - **Medium datasets** (more than [`SMALL`] elements, up to [`radix::MAX`], 2^30): a
//!   five-round mixed-radix Feistel network over `[0, a) x [0, b)` with `a * b` just above
//!   `n`, in 16-bit vector lanes (see [`radix`]); the fast one.
//! - **Large datasets** (more than 2^30 elements): a Feistel network over the next
//!   power of two `2^k >= n`, with cycle walking (a value `>= n` is permuted again until it
//!   falls below `n`, so at most half the domain is walked over, about 1.3 times per
//!   position on average). The network alternates an unbalanced split of the `k` bits
//!   (high `k/2`, low `k - k/2`) over [`FEISTEL_ROUNDS`] rounds whose round function is a
//!   keyed 32-bit integer hash of the low half. A Feistel network only ever makes even
//!   permutations of its domain, a bias no test of a dataset this large can see.
//! - **Small datasets**: swap-or-not (Hoang, Morris and Rogaway, 2012) over exactly
//!   `[0, n)`, [`SWAP_ROUNDS`] rounds. Each round pairs `x` with `K - x mod n` and swaps by
//!   a keyed coin; it makes odd and even permutations alike, so a chi-square test over all
//!   `n!` orders of a tiny dataset passes, as it would not for the Feistel network.
//!
//! Block evaluation ([`IndexPermutation::fill`]) runs each Feistel round as one pass over
//! the block (vectorized where the CPU allows), then walks only the positions that landed
//! at or past `n`, found without branches.

use super::simd;

pub mod radix;

/// Up to this many elements, the swap-or-not construction is used.
pub const SMALL: u64 = 1 << 12;
/// Rounds of the Feistel network.
pub const FEISTEL_ROUNDS: usize = 4;
/// Rounds of swap-or-not (mixing needs a few times `ln n`; 64 is ample up to [`SMALL`]).
pub const SWAP_ROUNDS: usize = 64;

/// A pseudo-random permutation of `[0, n)`.
#[derive(Clone, Debug)]
pub struct IndexPermutation {
    n: u64,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// `n <= 1`: nothing to permute.
    Identity,
    Feistel {
        /// Bits of the high half at the first round; the low half has `bits - hi`.
        hi: u32,
        lo: u32,
        keys: [u32; FEISTEL_ROUNDS],
    },
    SwapOrNot {
        /// Per round: the pairing constant `K` (below `n`) and the coin's key.
        rounds: Vec<(u64, u64)>,
    },
    Radix(radix::Radix),
}

/// SplitMix64: expands a seed into round keys.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit finalizer (the coin of swap-or-not).
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    z = (z ^ (z >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    z ^ (z >> 32)
}

/// The Feistel round function: a keyed 32-bit hash (two multiplies, vectorizable).
#[inline(always)]
fn hash32(x: u32, key: u32) -> u32 {
    let mut z = (x ^ key).wrapping_mul(0x9E37_79B1);
    z ^= z >> 15;
    z = z.wrapping_mul(0x85EB_CA77);
    z ^ (z >> 13)
}

/// One Feistel round on `x` (high `hi` bits, low `lo` bits): the low half moves up and the
/// high half, xored with the hash of the low one, moves down; the widths swap.
#[inline(always)]
fn feistel_round(x: u64, hi: u32, lo: u32, key: u32) -> u64 {
    let low = x & ((1u64 << lo) - 1);
    let high = x >> lo;
    let f = u64::from(hash32(low as u32, key)) & ((1u64 << hi) - 1);
    (low << hi) | (high ^ f)
}

/// [`feistel_round`] on a domain of at most 32 bits (each half at most 16): the same value.
#[inline(always)]
fn feistel_round32(x: u32, hi: u32, lo: u32, key: u32) -> u32 {
    let low = x & ((1u32 << lo) - 1);
    let high = x >> lo;
    let f = hash32(low, key) & ((1u32 << hi) - 1);
    (low << hi) | (high ^ f)
}

impl IndexPermutation {
    /// The permutation of `[0, n)` for `seed` in epoch `epoch`.
    pub fn new(n: u64, seed: u64, epoch: u64) -> IndexPermutation {
        let mut state = seed ^ epoch.wrapping_mul(0xA076_1D64_78BD_642F) ^ n.rotate_left(17);
        let kind = if n <= 1 {
            Kind::Identity
        } else if n <= SMALL {
            Kind::SwapOrNot {
                rounds: (0..SWAP_ROUNDS)
                    .map(|_| {
                        let k = ((u128::from(splitmix(&mut state)) * u128::from(n)) >> 64) as u64;
                        (k, splitmix(&mut state))
                    })
                    .collect(),
            }
        } else if n <= radix::MAX {
            let mut keys = [0u16; radix::ROUNDS];
            for k in &mut keys {
                *k = splitmix(&mut state) as u16;
            }
            Kind::Radix(radix::Radix::new(n, keys))
        } else {
            let bits = 64 - (n - 1).leading_zeros();
            let mut keys = [0u32; FEISTEL_ROUNDS];
            for k in &mut keys {
                *k = splitmix(&mut state) as u32;
            }
            Kind::Feistel {
                hi: bits / 2,
                lo: bits - bits / 2,
                keys,
            }
        };
        IndexPermutation { n, kind }
    }

    /// How many positions it permutes.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether it permutes nothing.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// `perm(i)` for `i < n`.
    pub fn apply(&self, i: u64) -> u64 {
        match &self.kind {
            Kind::Identity => i,
            Kind::SwapOrNot { rounds } => {
                let mut x = i;
                for &(k, key) in rounds {
                    let partner = if k >= x { k - x } else { k + self.n - x };
                    if mix64(x.max(partner) ^ key) & 1 == 1 {
                        x = partner;
                    }
                }
                x
            }
            Kind::Radix(r) => r.apply(i),
            Kind::Feistel { hi, lo, keys } => {
                let mut x = i;
                loop {
                    let (mut h, mut l) = (*hi, *lo);
                    for &key in keys {
                        x = feistel_round(x, h, l, key);
                        std::mem::swap(&mut h, &mut l);
                    }
                    if x < self.n {
                        return x;
                    }
                }
            }
        }
    }

    /// `out[j] = f(perm(start + j))` (all positions below `n`): the permutation and what
    /// the caller makes of each position in one pass, without a buffer of positions between.
    #[inline]
    pub fn fill_with<T>(&self, start: u64, out: &mut [T], f: impl Fn(u64) -> T) {
        match &self.kind {
            Kind::Radix(r) => r.fill_with(start, out, f),
            Kind::Identity => {
                for (j, o) in out.iter_mut().enumerate() {
                    *o = f(start + j as u64);
                }
            }
            _ => {
                let mut positions = vec![0; out.len()];
                self.fill(start, &mut positions);
                for (o, p) in out.iter_mut().zip(positions) {
                    *o = f(p);
                }
            }
        }
    }

    /// `len` values `f(perm(start + j))` (all positions below `n`) in a new vector.
    pub fn fill_vec<T>(&self, start: u64, len: usize, f: impl Fn(u64) -> T) -> Vec<T> {
        if let Kind::Radix(r) = &self.kind {
            return r.fill_vec(start, len, f);
        }
        let mut positions = vec![0; len];
        self.fill(start, &mut positions);
        positions.into_iter().map(f).collect()
    }

    /// `out[j] = perm(start + j)` (all positions below `n`).
    pub fn fill(&self, start: u64, out: &mut [u64]) {
        if let Kind::Radix(r) = &self.kind {
            return r.fill_with(start, out, |v| v);
        }
        let Kind::Feistel { hi, lo, keys } = &self.kind else {
            for (j, o) in out.iter_mut().enumerate() {
                *o = self.apply(start + j as u64);
            }
            return;
        };
        // A domain of 32 bits or fewer runs in 32-bit lanes: twice as many per vector.
        if hi + lo <= 32 {
            let mut buf: Vec<u32> = (0..out.len()).map(|j| (start + j as u64) as u32).collect();
            walk_all(&mut buf, self.n, |v, t| {
                rounds(v, t, *hi, *lo, keys, feistel_round32)
            });
            for (o, b) in out.iter_mut().zip(buf) {
                *o = u64::from(b);
            }
        } else {
            for (j, o) in out.iter_mut().enumerate() {
                *o = start + j as u64;
            }
            walk_all(out, self.n, |v, t| {
                rounds(v, t, *hi, *lo, keys, feistel_round)
            });
        }
    }
}

/// Runs every Feistel round over `buf` (each round one vectorizable pass; `tmp` is scratch).
fn rounds<T: Copy + Default>(
    buf: &mut [T],
    tmp: &mut Vec<T>,
    hi: u32,
    lo: u32,
    keys: &[u32; FEISTEL_ROUNDS],
    round: impl Fn(T, u32, u32, u32) -> T + Copy,
) {
    tmp.clear();
    tmp.resize(buf.len(), T::default());
    // Rounds alternate between the buffers; with an even count the last one writes `buf`.
    let (mut h, mut l) = (hi, lo);
    for (r, &key) in keys.iter().enumerate() {
        if r % 2 == 0 {
            simd::map_unary(buf, tmp, |x| round(x, h, l, key));
        } else {
            simd::map_unary(tmp, buf, |x| round(x, h, l, key));
        }
        std::mem::swap(&mut h, &mut l);
    }
    if FEISTEL_ROUNDS % 2 == 1 {
        buf.copy_from_slice(tmp);
    }
}

/// Permutes every value of `buf` once with `permute`, then again those that left `[0, n)`
/// (cycle walking), gathered without branches into a shorter buffer, until none is left.
fn walk_all<T: Copy + Default + Into<u64>>(
    buf: &mut [T],
    n: u64,
    permute: impl Fn(&mut [T], &mut Vec<T>),
) {
    let mut tmp = Vec::new();
    permute(buf, &mut tmp);
    let mut walk: Vec<u32> = vec![0; buf.len()];
    let mut k = 0;
    for (j, &x) in buf.iter().enumerate() {
        walk[k] = j as u32;
        k += usize::from(x.into() >= n);
    }
    walk.truncate(k);
    let mut vals: Vec<T> = Vec::new();
    while !walk.is_empty() {
        vals.clear();
        vals.extend(walk.iter().map(|&j| buf[j as usize]));
        permute(&mut vals, &mut tmp);
        let mut k = 0;
        for i in 0..walk.len() {
            let j = walk[i];
            buf[j as usize] = vals[i];
            walk[k] = j;
            k += usize::from(vals[i].into() >= n);
        }
        walk.truncate(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_permutation(p: &IndexPermutation) -> bool {
        let n = p.len() as usize;
        let mut seen = vec![false; n];
        for i in 0..p.len() {
            let x = p.apply(i) as usize;
            if x >= n || seen[x] {
                return false;
            }
            seen[x] = true;
        }
        true
    }

    #[test]
    fn every_size_gives_a_permutation() {
        for n in (0..70).chain([4095, 4096, 4097, 5000, 10_001, 65_536, 100_003, 1_000_000]) {
            for seed in 0..3 {
                let p = IndexPermutation::new(n, seed, 1);
                assert!(is_permutation(&p), "n={n} seed={seed}");
            }
        }
    }

    #[test]
    fn a_block_equals_positions_one_by_one() {
        // 10_001 = 100 * 101 - 99: positions walk; 1 << 30: the largest mixed-radix size.
        for n in [10u64, 5000, 10_001, 100_003, 1 << 30, (1 << 30) + 1] {
            let p = IndexPermutation::new(n, 42, 3);
            let mut out = vec![0; (n as usize).min(3000)];
            let start = n - out.len() as u64;
            p.fill(start, &mut out);
            let want: Vec<u64> = (start..n).map(|i| p.apply(i)).collect();
            assert_eq!(out, want, "n={n}");
            let shifted = p.fill_vec(start, out.len(), |i| i as i64 - 7);
            let want: Vec<i64> = want.iter().map(|&i| i as i64 - 7).collect();
            assert_eq!(shifted, want, "n={n}");
        }
    }

    #[test]
    fn a_block_of_a_domain_past_32_bits_equals_positions_one_by_one() {
        let n = 5_000_000_017u64;
        let p = IndexPermutation::new(n, 9, 0);
        let start = n - 2000;
        let mut out = vec![0; 2000];
        p.fill(start, &mut out);
        let want: Vec<u64> = (start..n).map(|i| p.apply(i)).collect();
        assert_eq!(out, want);
        assert!(out.iter().all(|&x| x < n));
    }

    #[test]
    fn seeds_and_epochs_change_the_order() {
        let order = |seed, epoch| {
            let p = IndexPermutation::new(10_000, seed, epoch);
            (0..50).map(|i| p.apply(i)).collect::<Vec<_>>()
        };
        assert_ne!(order(1, 0), order(1, 1));
        assert_ne!(order(1, 0), order(2, 0));
        assert_eq!(order(1, 0), order(1, 0));
    }
}
