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
    /// Per group of eight values (two lanes), when every lane's values lie in the 16 bytes
    /// from its first pixel's left neighbour (shrinking by up to about 2x): the byte
    /// shuffles for the left and right values of those 16 bytes per lane. The lane is then
    /// one 16-byte load, with no bytes to move between registers first.
    near: Option<Vec<[[i8; 32]; 2]>>,
    /// The largest offset: one check per row that every load is inside it.
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
        let offsets: Vec<[u32; 2]> = (0..values / 4)
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
        let near = near_masks(lefts, c, &offsets);
        Some(Lanes {
            c,
            offsets,
            masks,
            near,
            max_offset: lefts.iter().copied().max().unwrap_or(0) as usize,
        })
    }
}

/// `Lanes::near`'s shuffles, or `None` where some lane's bytes do not fit 16.
fn near_masks(lefts: &[u32], c: usize, offsets: &[[u32; 2]]) -> Option<Vec<[[i8; 32]; 2]>> {
    let lane_mask = |lane: usize, side: usize| -> Option<[i8; 16]> {
        let mut m = [-1i8; 16];
        for (i, slot) in m.chunks_exact_mut(4).enumerate() {
            let value = 4 * lane + i;
            let (pixel, ch) = (value / c, value % c);
            let at = lefts[pixel].checked_sub(offsets[lane][0])? + (ch + side * c) as u32;
            slot[0] = i8::try_from(at).ok().filter(|&b| b < 16)?;
        }
        Some(m)
    };
    (0..offsets.len() / 2)
        .map(|group| {
            let mut both = [[0i8; 32]; 2];
            for (side, m) in both.iter_mut().enumerate() {
                m[..16].copy_from_slice(&lane_mask(2 * group, side)?);
                m[16..].copy_from_slice(&lane_mask(2 * group + 1, side)?);
            }
            Some(both)
        })
        .collect()
}

/// Lerps the first whole groups of eight values of `out` (`weights` per value) from `row`
/// as the module says: how many values it wrote (a multiple of 8; 0 without AVX2, or when
/// `row` is too short for an 8-byte load at every offset). The rest is the caller's.
#[inline]
pub(super) fn lerp_row(row: &[u8], lanes: &Lanes, weights: &[f32], out: &mut [f32]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        if let Some(near) = &lanes.near
            && lanes.max_offset + 16 <= row.len()
        {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { lerp_row_near_avx2(row, lanes, near, weights, out) };
        }
        if lanes.max_offset + 8 <= row.len() {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { lerp_row_avx2(row, lanes, weights, out) };
        }
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
        .as_chunks_mut::<8>()
        .0
        .iter_mut()
        .zip(weights.as_chunks::<8>().0)
        .zip(lanes.offsets.chunks_exact(2))
    {
        let v = _mm256_set_m128i(lane(pair[1]), lane(pair[0]));
        let [ml, mr] = masks[s];
        lerp_eight(v, ml, mr, w, o);
        s += step;
        if s >= c {
            s -= c;
        }
        done += 8;
    }
    done
}

/// Eight output values from the bytes of `v`: the left and right values picked by the byte
/// shuffles `ml` and `mr` (each into the low byte of a 32-bit slot), converted to `f32` and
/// lerped by `w` with the scalar code's `sub`, `mul`, `add`, into `o`. Both passes end here.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn lerp_eight(v: __m256i, ml: __m256i, mr: __m256i, w: &[f32; 8], o: &mut [f32; 8]) {
    let left = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, ml));
    let right = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, mr));
    // SAFETY: `w` and `o` are 8 values each.
    let w = unsafe { _mm256_loadu_ps(w.as_ptr()) };
    let lerped = _mm256_add_ps(left, _mm256_mul_ps(_mm256_sub_ps(right, left), w));
    unsafe { _mm256_storeu_ps(o.as_mut_ptr(), lerped) };
}

/// `lerp_row` with `Lanes::near`: each lane one 16-byte load at its first pixel's left
/// neighbour.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lerp_row_near_avx2(
    row: &[u8],
    lanes: &Lanes,
    near: &[[[i8; 32]; 2]],
    weights: &[f32],
    out: &mut [f32],
) -> usize {
    let load16 = |at: u32| {
        debug_assert!(at as usize + 16 <= row.len());
        // SAFETY: every offset is at most `max_offset`, and the caller checked that
        // `max_offset + 16 <= row.len()`.
        unsafe { _mm_loadu_si128(row.as_ptr().add(at as usize).cast()) }
    };
    let mut done = 0;
    for (((o, w), pair), [ml, mr]) in out
        .as_chunks_mut::<8>()
        .0
        .iter_mut()
        .zip(weights.as_chunks::<8>().0)
        .zip(lanes.offsets.chunks_exact(2))
        .zip(near)
    {
        let v = _mm256_inserti128_si256::<1>(
            _mm256_castsi128_si256(load16(pair[0][0])),
            load16(pair[1][0]),
        );
        // SAFETY: the masks are 32 bytes each.
        let (ml, mr) = unsafe {
            (
                _mm256_loadu_si256(ml.as_ptr().cast()),
                _mm256_loadu_si256(mr.as_ptr().cast()),
            )
        };
        lerp_eight(v, ml, mr, w, o);
        done += 8;
    }
    done
}

#[cfg(test)]
mod tests {
    use super::Lanes;

    /// The one-load lanes cover W6's shrinking (500 to 224 pixels of three channels) and
    /// growing (a lane of four channels is always one pixel); a lane spanning more than 16
    /// bytes takes the two-load pass.
    #[test]
    fn lanes_take_one_load_while_their_bytes_fit_sixteen() {
        let lefts = |w: usize, ow: usize, c: usize| -> Vec<u32> {
            (0..ow)
                .map(|x| {
                    let at = ((x as f32 + 0.5) * w as f32 / ow as f32 - 0.5).max(0.0) as usize;
                    (at.min(w - 1) * c) as u32
                })
                .collect()
        };
        let near = |w, ow, c| Lanes::new(&lefts(w, ow, c), c).expect("2-4 channels").near;
        assert!(near(500, 224, 3).is_some());
        assert!(near(33, 50, 2).is_some());
        assert!(near(17, 21, 4).is_some());
        assert!(near(64, 9, 2).is_none());
        assert!(near(60, 19, 3).is_none());
    }
}
