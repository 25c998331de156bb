//! The mixed-radix Feistel network of `global_shuffle` for datasets of up to [`MAX`]
//! elements: the permutation used from `super::SMALL + 1` to `MAX`.
//!
//! A position `i` is split as `(x, y) = (i / b, i % b)` with `b = ceil(sqrt(n))` and
//! `a = ceil(n / b)`, so `x < a`, `y < b` and the domain `a * b` exceeds `n` by less than
//! `b`. Round `r` adds a keyed function of one half to the other, modulo that half's radix:
//! `y = (y + F(x, k_r, b)) mod b` on even rounds, `x = (x + F(y, k_r, a)) mod a` on odd ones,
//! each a bijection of `[0, a) x [0, b)`; the result is `x * b + y`. A result at or past `n`
//! (a share below `1 / a`, about `1 / sqrt(n)`) is permuted again until it falls below `n`
//! (cycle walking), which is rare enough to do one position at a time.
//!
//! `F(v, k, m) = (h(v ^ k) * m) >> 16` maps a 16-bit hash onto `[0, m)`, where `h` is
//! `t ^= t >> 8; t *= 0x88B5; t ^= t >> 7; t *= 0xDB2D` in 16-bit arithmetic (the constants
//! of Chris Wellons' hash-prospector 16-bit hash; its last xor-shift is left out because only
//! the high bits are used). Every half fits in 16 bits (`a, b <= 32768`), so one AVX2 vector
//! holds 16 lanes (32 with AVX-512) and a round is eleven vector instructions: the whole
//! permutation costs a few instructions per position, where the power-of-two network of
//! larger datasets walks a third more positions in 32-bit lanes. Why five rounds: with four
//! rounds of the network that starts with `x`, the differences `perm(i + b) - perm(i)` of
//! positions one `x` apart fail a chi-square test over 10^6 positions (a Feistel network
//! shows its structure past the birthday bound of its halves); with five they pass it as a
//! true random permutation does (the unit tests below).
//!
//! Why start with `y`: a block's positions are runs of consecutive `y` under one `x`. Round 0
//! adds `F(x)`, one value per run, to every `y` of the run, which stay consecutive modulo `b`;
//! round 1 adds `F(y)`, read as contiguous slices of a table of `F(y, k_1, a)` for every
//! `y < b` (built once per permutation). Three rounds are left to hash per position, where
//! starting with `x` left four (its first round from a table, its second hashed: the `x`
//! were no longer consecutive). The network is the `x`-first one with the halves' roles
//! exchanged, so the same tests hold with the distances `1` and `b` exchanged.
//!
//! The vector kernels compute the same bits as the scalar rounds: the operations are exact
//! 16-bit integer arithmetic; only how many lanes run at once differs.

// Calling the `#[target_feature]` kernels is unsafe (the CPU must have the features, which
// is checked just before), and so are the vector loads and stores (in bounds by the loops).
#![allow(unsafe_code)]

/// The largest dataset this construction permutes: both radixes fit in 15 bits plus one,
/// so a sum of two values below a radix fits in 16 bits.
pub const MAX: u64 = 1 << 30;
/// Rounds of the network.
pub const ROUNDS: usize = 5;
/// The first rounds, done once per run of positions sharing an `x` rather than per position.
const CHEAP_ROUNDS: usize = 2;

const C1: u16 = 0x88B5;
const C2: u16 = 0xDB2D;
/// Positions permuted per pass (two 1 KiB scratch arrays on the stack).
const CHUNK: usize = 512;
/// Vectors in flight in the AVX2 kernel (16 registers), and in the AVX-512 one (32).
const UNROLL: usize = 4;
const WIDE_UNROLL: usize = 8;

/// The network for one dataset size and key.
#[derive(Clone, Debug)]
pub(super) struct Radix {
    n: u64,
    a: u16,
    b: u16,
    keys: [u16; ROUNDS],
    /// Round 1's `F(y, k_1, a)` for every `y < b` (at most 64 KiB). Consecutive positions
    /// have consecutive `y` (modulo `b` after round 0), so a block reads round 1 from this
    /// table as contiguous slices instead of hashing, for `b` hashes once.
    first: std::sync::Arc<[u16]>,
}

/// The keyed hash, onto `[0, m)`.
#[inline(always)]
fn round_fn(v: u16, key: u16, m: u16) -> u16 {
    let mut t = v ^ key;
    t ^= t >> 8;
    t = t.wrapping_mul(C1);
    t ^= t >> 7;
    t = t.wrapping_mul(C2);
    ((u32::from(t) * u32::from(m)) >> 16) as u16
}

/// `(x + f) mod m` for `x, f < m` (the sum fits in 16 bits since `m <= 32768`).
#[inline(always)]
fn add_mod(x: u16, f: u16, m: u16) -> u16 {
    let s = x + f;
    s.min(s.wrapping_sub(m))
}

impl Radix {
    /// The network permuting `[0, n)` (`1 < n <= MAX`) with these round keys.
    pub(super) fn new(n: u64, keys: [u16; ROUNDS]) -> Radix {
        debug_assert!(n > 1 && n <= MAX);
        let mut b = n.isqrt();
        if b * b < n {
            b += 1;
        }
        let a = n.div_ceil(b) as u16;
        let first = (0..b as u16).map(|y| round_fn(y, keys[1], a)).collect();
        Radix {
            n,
            a,
            b: b as u16,
            keys,
            first,
        }
    }

    #[inline(always)]
    fn rounds(&self, mut x: u16, mut y: u16) -> (u16, u16) {
        for (r, &k) in self.keys.iter().enumerate() {
            (x, y) = self.round(r, k, x, y);
        }
        (x, y)
    }

    /// Round `r` with key `k`: even rounds add to `y`, odd ones to `x`.
    #[inline(always)]
    fn round(&self, r: usize, k: u16, x: u16, y: u16) -> (u16, u16) {
        if r.is_multiple_of(2) {
            (x, add_mod(y, round_fn(x, k, self.b), self.b))
        } else {
            (add_mod(x, round_fn(y, k, self.a), self.a), y)
        }
    }

    /// `perm(i)`; for `i` in `[n, a * b)`, the next position of its cycle below `n`.
    pub(super) fn apply(&self, i: u64) -> u64 {
        let b = u64::from(self.b);
        let mut v = i;
        loop {
            let (x, y) = self.rounds((v / b) as u16, (v % b) as u16);
            v = u64::from(x) * b + u64::from(y);
            if v < self.n {
                return v;
            }
        }
    }

    /// `out[j] = f(perm(start + j))` (all positions below `n`).
    #[inline]
    pub(super) fn fill_with<T>(&self, start: u64, out: &mut [T], f: impl Fn(u64) -> T) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512bw") {
                // SAFETY: the CPU has AVX-512BW (checked just above).
                return unsafe { self.fill_avx512(start, out, f) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { self.fill_avx2(start, out, f) };
            }
        }
        self.fill_chunks(start, out, f, Self::rounds_scalar);
    }

    /// `len` values `f(perm(start + j))` in a new vector, written once (no zeroing first).
    pub(super) fn fill_vec<T>(&self, start: u64, len: usize, f: impl Fn(u64) -> T) -> Vec<T> {
        let mut v = Vec::with_capacity(len);
        self.fill_with(start, &mut v.spare_capacity_mut()[..len], |p| {
            std::mem::MaybeUninit::new(f(p))
        });
        // SAFETY: `fill_with` wrote each of the first `len` slots (every chunk's output loop
        // writes all of its slots); had `f` panicked, the length would still be 0.
        unsafe { v.set_len(len) };
        v
    }

    /// [`Self::fill_with`] compiled for AVX-512BW: the rounds in 32 lanes, and the caller's
    /// `f` and the loops around the rounds in wide vectors too.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512bw")]
    fn fill_avx512<T>(&self, start: u64, out: &mut [T], f: impl Fn(u64) -> T) {
        // The closure inherits the function's target features.
        self.fill_chunks(start, out, f, |p, xs, ys| p.rounds_avx512(xs, ys));
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn fill_avx2<T>(&self, start: u64, out: &mut [T], f: impl Fn(u64) -> T) {
        self.fill_chunks(start, out, f, |p, xs, ys| p.rounds_avx2(xs, ys));
    }

    #[inline(always)]
    fn fill_chunks<T>(
        &self,
        start: u64,
        out: &mut [T],
        f: impl Fn(u64) -> T,
        rounds: impl Fn(&Self, &mut [u16], &mut [u16]),
    ) {
        let b = u64::from(self.b);
        let (mut q, mut r) = (start / b, start % b);
        let mut xs = [0u16; CHUNK];
        let mut ys = [0u16; CHUNK];
        for chunk in out.chunks_mut(CHUNK) {
            let len = chunk.len();
            let (xs, ys) = (&mut xs[..len], &mut ys[..len]);
            // Consecutive positions are runs of consecutive `y` under one `x`. Round 0 adds
            // one value, `F(x)`, to the whole run's `y`, which stay consecutive modulo `b`;
            // round 1 adds the table's slices for those `y` to `x`.
            let mut j = 0;
            while j < len {
                let run = ((b - r) as usize).min(len - j);
                let q16 = q as u16;
                let mut y0 = (r + u64::from(round_fn(q16, self.keys[0], self.b))) % b;
                let mut k = j;
                while k < j + run {
                    let part = ((b - y0) as usize).min(j + run - k);
                    let from = y0 as usize;
                    for (x, &f) in xs[k..k + part]
                        .iter_mut()
                        .zip(&self.first[from..from + part])
                    {
                        *x = add_mod(q16, f, self.a);
                    }
                    for (i, y) in (y0 as u16..).zip(&mut ys[k..k + part]) {
                        *y = i;
                    }
                    k += part;
                    y0 = 0;
                }
                j += run;
                r += run as u64;
                if r == b {
                    r = 0;
                    q += 1;
                }
            }
            rounds(self, xs, ys);
            // `x * b + y < a * b <= 2^31`: 32-bit lanes.
            let b32 = u32::from(self.b);
            let mut top = 0u32;
            for ((o, &x), &y) in chunk.iter_mut().zip(&*xs).zip(&*ys) {
                let v = u32::from(x) * b32 + u32::from(y);
                top = top.max(v);
                *o = f(u64::from(v));
            }
            if u64::from(top) >= self.n {
                for ((o, &x), &y) in chunk.iter_mut().zip(&*xs).zip(&*ys) {
                    let v = u64::from(x) * b + u64::from(y);
                    if v >= self.n {
                        *o = f(self.apply(v));
                    }
                }
            }
        }
    }

    /// Rounds 2.. over the block, in vectors where the CPU has them.
    #[cfg(test)]
    fn rounds_block(&self, xs: &mut [u16], ys: &mut [u16]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512bw") {
                // SAFETY: the CPU has AVX-512BW (checked just above).
                return unsafe { self.rounds_avx512(xs, ys) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { self.rounds_avx2(xs, ys) };
            }
        }
        self.rounds_scalar(xs, ys);
    }

    /// Rounds 2.. (the caller did rounds 0 and 1 per run of positions).
    fn rounds_scalar(&self, xs: &mut [u16], ys: &mut [u16]) {
        for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
            for (r, &k) in self.keys.iter().enumerate().skip(CHEAP_ROUNDS) {
                (*x, *y) = self.round(r, k, *x, *y);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn rounds_avx2(&self, xs: &mut [u16], ys: &mut [u16]) {
        use std::arch::x86_64::*;
        #[inline(always)]
        fn round(x: __m256i, y: __m256i, k: __m256i, m: __m256i) -> __m256i {
            // SAFETY (of the intrinsics): only called from a function with AVX2 enabled.
            unsafe {
                // `(y ^ k) ^ ((y ^ k) >> 8)`, with `k ^ (k >> 8)` precomputed in `k`.
                let mut t = _mm256_xor_si256(_mm256_xor_si256(y, _mm256_srli_epi16(y, 8)), k);
                t = _mm256_mullo_epi16(t, _mm256_set1_epi16(C1 as i16));
                t = _mm256_xor_si256(t, _mm256_srli_epi16(t, 7));
                t = _mm256_mullo_epi16(t, _mm256_set1_epi16(C2 as i16));
                let s = _mm256_add_epi16(x, _mm256_mulhi_epu16(t, m));
                _mm256_min_epu16(s, _mm256_sub_epi16(s, m))
            }
        }
        let len = xs.len().min(ys.len());
        // Four independent vectors at a time: one vector's rounds are a chain of about 85
        // cycles of latency, which the CPU's schedulers alone overlap too little.
        let full = len / (16 * UNROLL) * (16 * UNROLL);
        let a = _mm256_set1_epi16(self.a as i16);
        let b = _mm256_set1_epi16(self.b as i16);
        let keys = self.keys.map(|k| _mm256_set1_epi16((k ^ (k >> 8)) as i16));
        for j in (0..full).step_by(16 * UNROLL) {
            // SAFE__m256i: `j + 16 * UNROLL <= len`, in bounds of both slices; unaligned loads
            // and stores.
            unsafe {
                let px = xs.as_mut_ptr().add(j).cast::<__m256i>();
                let py = ys.as_mut_ptr().add(j).cast::<__m256i>();
                let mut x: [__m256i; UNROLL] =
                    std::array::from_fn(|u| _mm256_loadu_si256(px.add(u)));
                let mut y: [__m256i; UNROLL] =
                    std::array::from_fn(|u| _mm256_loadu_si256(py.add(u)));
                for (r, &k) in keys.iter().enumerate().skip(CHEAP_ROUNDS) {
                    for (xu, yu) in x.iter_mut().zip(y.iter_mut()) {
                        if r.is_multiple_of(2) {
                            *yu = round(*yu, *xu, k, b);
                        } else {
                            *xu = round(*xu, *yu, k, a);
                        }
                    }
                }
                for (u, (&xu, &yu)) in x.iter().zip(&y).enumerate() {
                    _mm256_storeu_si256(px.add(u), xu);
                    _mm256_storeu_si256(py.add(u), yu);
                }
            }
        }
        self.rounds_scalar(&mut xs[full..len], &mut ys[full..len]);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512bw")]
    fn rounds_avx512(&self, xs: &mut [u16], ys: &mut [u16]) {
        use std::arch::x86_64::*;
        #[inline(always)]
        fn round(x: __m512i, y: __m512i, k: __m512i, m: __m512i) -> __m512i {
            // SAFETY (of the intrinsics): only called from a function with AVX-512BW enabled.
            unsafe {
                // `(y ^ k) ^ ((y ^ k) >> 8)`, with `k ^ (k >> 8)` precomputed in `k`.
                let mut t = _mm512_xor_si512(_mm512_xor_si512(y, _mm512_srli_epi16(y, 8)), k);
                t = _mm512_mullo_epi16(t, _mm512_set1_epi16(C1 as i16));
                t = _mm512_xor_si512(t, _mm512_srli_epi16(t, 7));
                t = _mm512_mullo_epi16(t, _mm512_set1_epi16(C2 as i16));
                let s = _mm512_add_epi16(x, _mm512_mulhi_epu16(t, m));
                _mm512_min_epu16(s, _mm512_sub_epi16(s, m))
            }
        }
        let len = xs.len().min(ys.len());
        // Eight independent vectors at a time: one vector's rounds are a chain of about 85
        // cycles of latency, which the CPU's schedulers alone overlap too little.
        let full = len / (32 * WIDE_UNROLL) * (32 * WIDE_UNROLL);
        let a = _mm512_set1_epi16(self.a as i16);
        let b = _mm512_set1_epi16(self.b as i16);
        let keys = self.keys.map(|k| _mm512_set1_epi16((k ^ (k >> 8)) as i16));
        for j in (0..full).step_by(32 * WIDE_UNROLL) {
            // SAFE__m512i: `j + 32 * WIDE_UNROLL <= len`, in bounds of both slices; unaligned loads
            // and stores.
            unsafe {
                let px = xs.as_mut_ptr().add(j).cast::<__m512i>();
                let py = ys.as_mut_ptr().add(j).cast::<__m512i>();
                let mut x: [__m512i; WIDE_UNROLL] =
                    std::array::from_fn(|u| _mm512_loadu_si512(px.add(u)));
                let mut y: [__m512i; WIDE_UNROLL] =
                    std::array::from_fn(|u| _mm512_loadu_si512(py.add(u)));
                for (r, &k) in keys.iter().enumerate().skip(CHEAP_ROUNDS) {
                    for (xu, yu) in x.iter_mut().zip(y.iter_mut()) {
                        if r.is_multiple_of(2) {
                            *yu = round(*yu, *xu, k, b);
                        } else {
                            *xu = round(*xu, *yu, k, a);
                        }
                    }
                }
                for (u, (&xu, &yu)) in x.iter().zip(&y).enumerate() {
                    _mm512_storeu_si512(px.add(u), xu);
                    _mm512_storeu_si512(py.add(u), yu);
                }
            }
        }
        self.rounds_scalar(&mut xs[full..len], &mut ys[full..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector kernels give the scalar rounds' bits, tails included.
    #[test]
    fn every_kernel_gives_the_scalar_bits() {
        for n in [4097u64, 10_007, 1 << 20, MAX] {
            let p = Radix::new(n, [0x1234, 0xBEEF, 7, 0xFFFF, 0x8000]);
            let len = 1000;
            let xs0: Vec<u16> = (0..len)
                .map(|j| (j * 7 % usize::from(p.a)) as u16)
                .collect();
            let ys0: Vec<u16> = (0..len)
                .map(|j| (j * 13 % usize::from(p.b)) as u16)
                .collect();
            let (mut xs, mut ys) = (xs0.clone(), ys0.clone());
            p.rounds_scalar(&mut xs, &mut ys);
            let (mut xv, mut yv) = (xs0.clone(), ys0.clone());
            p.rounds_block(&mut xv, &mut yv);
            assert_eq!((&xv, &yv), (&xs, &ys), "n={n}");
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                let (mut xv, mut yv) = (xs0.clone(), ys0.clone());
                // SAFETY: the CPU has AVX2.
                unsafe { p.rounds_avx2(&mut xv, &mut yv) };
                assert_eq!((&xv, &yv), (&xs, &ys), "n={n} avx2");
            }
        }
    }

    #[test]
    fn the_largest_size_is_a_bijection_on_its_edges() {
        let p = Radix::new(MAX, [1, 2, 3, 4, 5]);
        assert_eq!((u64::from(p.a), u64::from(p.b)), (32768, 32768));
        let mut out = vec![0u64; 4096];
        p.fill_with(MAX - 4096, &mut out, |v| v);
        assert!(out.iter().all(|&v| v < MAX));
    }

    /// Chi-square statistic of `counts` against equal expectations.
    fn chi(counts: &[f64]) -> f64 {
        let e = counts.iter().sum::<f64>() / counts.len() as f64;
        counts.iter().map(|c| (c - e).powi(2) / e).sum()
    }

    /// Over all of `[0, n)` for n ~ 10^6, the distances `perm(i + d) - perm(i) mod n` of
    /// positions `d` apart (1, and `b`: one `x` apart, where a Feistel network is weakest)
    /// fall evenly in 64 buckets, and so do the pairs (bucket of `perm(i)`, bucket of
    /// `perm(i + d)`) in 16 x 16: chi-square below the 0.1% critical values (103.4 for 63
    /// degrees of freedom, 330.5 for 255). Four rounds fail the `b` test (about 300).
    #[test]
    fn neighbours_land_independently() {
        let n = 1_000_003u64;
        for seed in [1u16, 2, 3] {
            let keys = [
                seed,
                seed.wrapping_mul(40503),
                0x5A5A ^ seed,
                0x0F0F,
                seed << 9,
            ];
            let p = Radix::new(n, keys);
            let mut perm = vec![0u64; n as usize];
            p.fill_with(0, &mut perm, |v| v);
            for d in [1usize, usize::from(p.b)] {
                let mut diffs = vec![0f64; 64];
                let mut pairs = vec![0f64; 256];
                for (&u, &v) in perm.iter().zip(&perm[d..]) {
                    diffs[((v + n - u) % n * 64 / n) as usize] += 1.0;
                    pairs[(u * 16 / n * 16 + v * 16 / n) as usize] += 1.0;
                }
                let (cd, cp) = (chi(&diffs), chi(&pairs));
                assert!(
                    cd < 103.4,
                    "seed {seed} d {d}: differences chi-square {cd:.1}"
                );
                assert!(cp < 330.5, "seed {seed} d {d}: pairs chi-square {cp:.1}");
            }
        }
    }
}
