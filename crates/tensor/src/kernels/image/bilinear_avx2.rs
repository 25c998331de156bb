//! The horizontal pass of bilinear resizing for `u8` images of two to four channels,
//! eight output values at a time with AVX2, no gather.
//!
//! The neighbours are `BytesRow`'s (image.rs): each output pixel reads its right neighbour
//! `c` bytes after its left one (with a weight of 0 where TF's two neighbours are one
//! pixel), so one 8-byte load at the left neighbour holds both.
//!
//! Four consecutive output values (a 128-bit lane of `f32`) come from at most two
//! consecutive output pixels when `c >= 2`; the lane is built from those two pixels' 8-byte
//! loads, and one byte shuffle per side puts each value's byte into the low byte of a
//! 32-bit slot, zeroing the rest: converted to `f32` (exact for bytes), then the lerp with
//! the same `sub`, `mul`, `add` as the scalar code, never fused.

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
// Calling the `#[target_feature]` function is unsafe (the CPU must have AVX2, checked just
// before), and so are the vector loads: each is inside a slice, as the SAFETY notes say.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The per-row plan of the vector pass, made once per image.
pub(super) struct Lanes {
    c: usize,
    /// Per lane of four output values: the byte offsets in the row of the first value's
    /// pixel's left neighbour and of the next output pixel's (the same when the lane has one
    /// pixel).
    offsets: Vec<[u32; 2]>,
    /// Per start channel `s` of an eight-value group (the channel of its first value): the
    /// two lanes' byte shuffles for the left and for the right values.
    masks: Vec<[[i8; 32]; 2]>,
    /// The largest offset: one check per row that every 8-byte load is inside it.
    max_offset: usize,
}

impl Lanes {
    /// The plan for output pixels whose left neighbours start at `lefts[i]` (bytes) in a
    /// row of `c`-channel pixels; `None` unless `c` is 2 to 4 (a lane of one-channel values
    /// spans four pixels).
    pub(super) fn new(lefts: &[u32], c: usize) -> Option<Lanes> {
        if !(2..=4).contains(&c) {
            return None;
        }
        let values = lefts.len() * c;
        let offsets = (0..values / 4)
            .map(|lane| [lefts[4 * lane / c], lefts[(4 * lane + 3) / c]])
            .collect();
        let lane_mask = |s: usize, side: usize| -> [i8; 16] {
            let mut m = [-1i8; 16];
            for i in 0..4 {
                // Value `i` of the lane: channel `(s + i) % c` of the first pixel or the
                // next one (the second 8 bytes); the right neighbour is `c` bytes on.
                let (pixel, ch) = ((s + i) / c, (s + i) % c);
                m[4 * i] = (8 * pixel + ch + side * c) as i8;
            }
            m
        };
        let masks = (0..c)
            .map(|s| {
                std::array::from_fn(|side| {
                    let (lo, hi) = (lane_mask(s, side), lane_mask((s + 4) % c, side));
                    std::array::from_fn(|i| if i < 16 { lo[i] } else { hi[i - 16] })
                })
            })
            .collect();
        Some(Lanes {
            c,
            offsets,
            masks,
            max_offset: lefts.iter().copied().max().unwrap_or(0) as usize,
        })
    }
}

/// Lerps the first whole groups of eight values of `out` (`weights` per value) from `row`
/// as the module says: how many values it wrote (a multiple of 8; 0 without AVX2, or when
/// `row` is too short for an 8-byte load at every offset). The rest is the caller's.
#[inline]
pub(super) fn lerp_row(row: &[u8], lanes: &Lanes, weights: &[f32], out: &mut [f32]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && lanes.max_offset + 8 <= row.len() {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { lerp_row_avx2(row, lanes, weights, out) };
    }
    let _ = (row, lanes, weights, out);
    0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lerp_row_avx2(row: &[u8], lanes: &Lanes, weights: &[f32], out: &mut [f32]) -> usize {
    let load_mask = |m: &[i8; 32]| {
        // SAFETY: 32 in-bounds bytes.
        unsafe { _mm256_loadu_si256(m.as_ptr().cast()) }
    };
    // An array, not a vector: this runs once per source row.
    let masks: [[__m256i; 2]; 4] = std::array::from_fn(|s| {
        let [l, r] = &lanes.masks[s % lanes.c];
        [load_mask(l), load_mask(r)]
    });
    let load8 = |at: u32| {
        debug_assert!(at as usize + 8 <= row.len());
        // SAFETY: every offset is at most `max_offset`, and the caller checked that
        // `max_offset + 8 <= row.len()`.
        unsafe { _mm_loadl_epi64(row.as_ptr().add(at as usize).cast()) }
    };
    let lane = |[a, b]: [u32; 2]| _mm_unpacklo_epi64(load8(a), load8(b));
    let (c, step) = (lanes.c, 8 % lanes.c);
    let mut s = 0;
    let mut done = 0;
    for ((o, w), pair) in out
        .chunks_exact_mut(8)
        .zip(weights.chunks_exact(8))
        .zip(lanes.offsets.chunks_exact(2))
    {
        let v = _mm256_set_m128i(lane(pair[1]), lane(pair[0]));
        let [ml, mr] = masks[s];
        let left = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, ml));
        let right = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, mr));
        // SAFETY: `w` and `o` have 8 values (`chunks_exact`).
        let w = unsafe { _mm256_loadu_ps(w.as_ptr()) };
        let lerped = _mm256_add_ps(left, _mm256_mul_ps(_mm256_sub_ps(right, left), w));
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), lerped) };
        s += step;
        if s >= c {
            s -= c;
        }
        done += 8;
    }
    done
}
