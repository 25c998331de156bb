//! `jpeg_idct_islow` on 16-bit lanes with AVX2, for the blocks where that is exact.
//!
//! Each of jidctint.c's outputs, in both passes, is an integer linear combination of the
//! pass's eight inputs: `tmp2 = (z2 + z3) * FIX_0_541196100 - z3 * FIX_1_847759065` is
//! `z2 * 4433 + z3 * (4433 - 15137)`, and so on. Multiplied out, every coefficient fits
//! 16 bits, so when the inputs fit 16 bits too each output is a sum of `pmaddwd`s (two
//! 16-bit products added into 32 bits): no sum of inputs is ever formed in 16 bits, where
//! it could wrap. The 32-bit sums may wrap on the way, but wrapping addition is exact
//! modulo 2^32 and `idct_block`'s bound says every final value fits `i32`, so the wrapped
//! result is the true one: the C code's value, bit for bit. The inputs fit 16 bits exactly
//! when `idct_block`'s `i32` lanes are allowed (dequantized coefficients and the first
//! pass's descaled outputs in `i16`), checked here the same way; otherwise `idct` says so
//! and the caller takes the scalar path.
//!
//! Layout: pass 1 has the eight columns in eight 32-bit lanes, each lane holding a pair of
//! 16-bit inputs (rows 0 and 4, 2 and 6, 1 and 5, 3 and 7) for `pmaddwd`; between the
//! passes an 8×8 transpose of the 32-bit results puts the rows in the lanes; the final
//! samples are packed to bytes and transposed back to rows with byte shuffles.

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
// Calling the `#[target_feature]` function is unsafe (the CPU must have AVX2, which is
// checked just before), and so are the vector loads and stores (fixed-size arrays and 8-byte rows).
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

const F_0_298: i32 = 2446;
const F_0_390: i32 = 3196;
const F_0_541: i32 = 4433;
const F_0_765: i32 = 6270;
const F_0_899: i32 = 7373;
const F_1_175: i32 = 9633;
const F_1_501: i32 = 12299;
const F_1_847: i32 = 15137;
const F_1_961: i32 = 16069;
const F_2_053: i32 = 16819;
const F_2_562: i32 = 20995;
const F_3_072: i32 = 25172;

/// The odd part's outputs (jidctint.c's tmp0..tmp3 after the butterflies) as combinations
/// of the inputs 1, 3, 5, 7: `ODD[o] = [c1, c3, c5, c7]`. jidctint.c names the inputs
/// tmp3 (1), tmp2 (3), tmp1 (5), tmp0 (7); z5 adds F_1_175 to every coefficient.
const ODD: [[i32; 4]; 4] = [
    // tmp0 = tmp0 * F_0_298 + z1 + z3, z1 = -(7 + 1) F_0_899, z3 = -(7 + 3) F_1_961 + z5.
    [
        F_1_175 - F_0_899,
        F_1_175 - F_1_961,
        F_1_175,
        F_0_298 - F_0_899 - F_1_961 + F_1_175,
    ],
    // tmp1 = tmp1 * F_2_053 + z2 + z4, z2 = -(5 + 3) F_2_562, z4 = -(5 + 1) F_0_390 + z5.
    [
        F_1_175 - F_0_390,
        F_1_175 - F_2_562,
        F_2_053 - F_2_562 - F_0_390 + F_1_175,
        F_1_175,
    ],
    // tmp2 = tmp2 * F_3_072 + z2 + z3.
    [
        F_1_175,
        F_3_072 - F_2_562 - F_1_961 + F_1_175,
        F_1_175 - F_2_562,
        F_1_175 - F_1_961,
    ],
    // tmp3 = tmp3 * F_1_501 + z1 + z4.
    [
        F_1_501 - F_0_899 - F_0_390 + F_1_175,
        F_1_175,
        F_1_175 - F_0_390,
        F_1_175 - F_0_899,
    ],
];

const _: () = {
    let mut o = 0;
    while o < 4 {
        let mut k = 0;
        while k < 4 {
            assert!(ODD[o][k] >= i16::MIN as i32 && ODD[o][k] <= i16::MAX as i32);
            k += 1;
        }
        o += 1;
    }
};

/// IDCT of one block into `plane` (rows of 8 samples at `at`, `at + stride`, ...), as
/// `jpeg::idct_islow` computes it; whether it did. Nothing is written when the CPU has no
/// AVX2 or the block's values are outside 16 bits (the caller's scalar path then runs).
#[inline]
pub(super) fn idct(
    coefs: &[i16; 64],
    quant: &[u16; 64],
    plane: &mut [u8],
    at: usize,
    stride: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { idct_avx2(coefs, quant, &mut plane[at..], stride) };
    }
    let _ = (coefs, quant, plane, at, stride);
    false
}

/// One pass's butterflies on eight lanes. `p04`, `p26`, `p15`, `p37`: each lane the pair
/// of inputs (0, 4), (2, 6), (1, 5), (3, 7) as two 16-bit halves, the first in the low
/// half. `bias` is added to every output (the descale's rounding). The outputs in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pass(p04: __m256i, p26: __m256i, p15: __m256i, p37: __m256i, bias: i32) -> [__m256i; 8] {
    let pair = |lo: i32, hi: i32| _mm256_set1_epi32((hi << 16) | (lo & 0xFFFF));
    let bias = _mm256_set1_epi32(bias);
    // Even part: tmp0 = (in0 + in4) << 13, tmp1 = (in0 - in4) << 13.
    let tmp0 = _mm256_add_epi32(_mm256_madd_epi16(p04, pair(1 << 13, 1 << 13)), bias);
    let tmp1 = _mm256_add_epi32(_mm256_madd_epi16(p04, pair(1 << 13, -(1 << 13))), bias);
    let tmp2 = _mm256_madd_epi16(p26, pair(F_0_541, F_0_541 - F_1_847));
    let tmp3 = _mm256_madd_epi16(p26, pair(F_0_541 + F_0_765, F_0_541));
    let tmp10 = _mm256_add_epi32(tmp0, tmp3);
    let tmp13 = _mm256_sub_epi32(tmp0, tmp3);
    let tmp11 = _mm256_add_epi32(tmp1, tmp2);
    let tmp12 = _mm256_sub_epi32(tmp1, tmp2);
    let odd = |c: [i32; 4]| {
        _mm256_add_epi32(
            _mm256_madd_epi16(p15, pair(c[0], c[2])),
            _mm256_madd_epi16(p37, pair(c[1], c[3])),
        )
    };
    let (o0, o1, o2, o3) = (odd(ODD[0]), odd(ODD[1]), odd(ODD[2]), odd(ODD[3]));
    [
        _mm256_add_epi32(tmp10, o3),
        _mm256_add_epi32(tmp11, o2),
        _mm256_add_epi32(tmp12, o1),
        _mm256_add_epi32(tmp13, o0),
        _mm256_sub_epi32(tmp13, o0),
        _mm256_sub_epi32(tmp12, o1),
        _mm256_sub_epi32(tmp11, o2),
        _mm256_sub_epi32(tmp10, o3),
    ]
}

/// The 8×8 transpose of 32-bit lanes: `out[k]` lane `r` is `x[r]` lane `k`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transpose(x: [__m256i; 8]) -> [__m256i; 8] {
    let a0 = _mm256_unpacklo_epi32(x[0], x[1]);
    let a1 = _mm256_unpackhi_epi32(x[0], x[1]);
    let a2 = _mm256_unpacklo_epi32(x[2], x[3]);
    let a3 = _mm256_unpackhi_epi32(x[2], x[3]);
    let a4 = _mm256_unpacklo_epi32(x[4], x[5]);
    let a5 = _mm256_unpackhi_epi32(x[4], x[5]);
    let a6 = _mm256_unpacklo_epi32(x[6], x[7]);
    let a7 = _mm256_unpackhi_epi32(x[6], x[7]);
    let b0 = _mm256_unpacklo_epi64(a0, a2);
    let b1 = _mm256_unpackhi_epi64(a0, a2);
    let b2 = _mm256_unpacklo_epi64(a1, a3);
    let b3 = _mm256_unpackhi_epi64(a1, a3);
    let b4 = _mm256_unpacklo_epi64(a4, a6);
    let b5 = _mm256_unpackhi_epi64(a4, a6);
    let b6 = _mm256_unpacklo_epi64(a5, a7);
    let b7 = _mm256_unpackhi_epi64(a5, a7);
    [
        _mm256_permute2x128_si256::<0x20>(b0, b4),
        _mm256_permute2x128_si256::<0x20>(b1, b5),
        _mm256_permute2x128_si256::<0x20>(b2, b6),
        _mm256_permute2x128_si256::<0x20>(b3, b7),
        _mm256_permute2x128_si256::<0x31>(b0, b4),
        _mm256_permute2x128_si256::<0x31>(b1, b5),
        _mm256_permute2x128_si256::<0x31>(b2, b6),
        _mm256_permute2x128_si256::<0x31>(b3, b7),
    ]
}

/// Lanes of `lo` and `hi` (each within `i16`) as pairs: `lo` in the low 16 bits. With
/// AND and OR rather than a 16-bit blend, which would compete with the transposes for the
/// one shuffle port of Intel cores (the IDCT's bottleneck).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pairs(lo: __m256i, hi: __m256i) -> __m256i {
    _mm256_or_si256(
        _mm256_and_si256(lo, _mm256_set1_epi32(0xFFFF)),
        _mm256_slli_epi32::<16>(hi),
    )
}

/// Bits 16 and up of `v + 2^15`, OR-ed into `acc`: all zero exactly when every lane of
/// every `v` is within `i16`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn or_outside_i16(acc: __m256i, v: __m256i) -> __m256i {
    _mm256_or_si256(acc, _mm256_add_epi32(v, _mm256_set1_epi32(1 << 15)))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn idct_avx2(coefs: &[i16; 64], quant: &[u16; 64], out: &mut [u8], stride: usize) -> bool {
    // The rows are 8 bytes at `r * stride`: one check here, then stores through a pointer
    // (a slice per row cost a bounds check per row, per block).
    if stride < 8 || out.len() < 7 * stride + 8 {
        return false;
    }
    let base = out.as_mut_ptr();
    let row = |r: usize| {
        // SAFETY: `r < 8`, so `r * stride + 8 <= out.len()` (checked above).
        unsafe { base.add(r * stride) }
    };
    // SAFETY (both loads): rows r and r + 1 of 8 are 16 in-bounds values (r <= 6).
    let load = |a: &[i16; 64], r: usize| unsafe {
        _mm256_loadu_si256(a[8 * r..8 * r + 16].as_ptr().cast())
    };
    let load_q = |r: usize| unsafe { _mm256_loadu_si256(quant[8 * r..8 * r + 16].as_ptr().cast()) };
    // Rows (0, 1), (2, 3), (4, 5), (6, 7), dequantized in 16 bits: exact when the high
    // half of each product is the sign of the low half, and the table has no value above
    // 2^15 - 1 (which as `i16` would be negative).
    let mut exact = _mm256_set1_epi16(-1);
    let mut qor = _mm256_setzero_si256();
    let d: [__m256i; 4] = std::array::from_fn(|i| {
        let (c, qv) = (load(coefs, 2 * i), load_q(2 * i));
        let lo = _mm256_mullo_epi16(c, qv);
        let hi = _mm256_mulhi_epi16(c, qv);
        exact = _mm256_and_si256(exact, _mm256_cmpeq_epi16(hi, _mm256_srai_epi16::<15>(lo)));
        qor = _mm256_or_si256(qor, qv);
        lo
    });
    // The sign bit of each 16-bit lane is in its odd byte.
    let q_signs = _mm256_movemask_epi8(qor) & 0xAAAA_AAAAu32 as i32;
    if _mm256_movemask_epi8(exact) != -1 || q_signs != 0 {
        return false;
    }
    // Only a DC term: every sample is the DC's (what both passes compute for it). `any_ac`
    // holds the first coefficient of rows 0, 2, 4, 6 in lane 0: coefficient 0 is the DC.
    let first = _mm256_setr_epi16(
        0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    );
    let any_ac = _mm256_or_si256(
        _mm256_and_si256(load(coefs, 0), first),
        _mm256_or_si256(
            load(coefs, 2),
            _mm256_or_si256(load(coefs, 4), load(coefs, 6)),
        ),
    );
    if _mm256_testz_si256(any_ac, any_ac) == 1 {
        let dc = i32::from(coefs[0]) * i32::from(quant[0]);
        // (dc << 2 + 16) >> 5, as `idct_islow`'s shortcut, then the clamped level shift.
        let v = ((((dc << 2) + 16) >> 5) + 128).clamp(0, 255) as u8;
        let fill = _mm_set1_epi8(v as i8);
        for r in 0..8 {
            // SAFETY: 8 bytes at `row(r)` (see `row`).
            unsafe { _mm_storel_epi64(row(r).cast(), fill) };
        }
        return true;
    }
    // Pairs for pass 1, columns in the lanes: within each 128-bit half, unpacking rows
    // (0, 1) with (4, 5) interleaves row 0 with 4 (low half) and 1 with 5 (high half), four
    // columns each; the permutes gather each pair's eight columns.
    let (l, h) = (
        _mm256_unpacklo_epi16(d[0], d[2]),
        _mm256_unpackhi_epi16(d[0], d[2]),
    );
    let (p04, p15) = (
        _mm256_permute2x128_si256::<0x20>(l, h),
        _mm256_permute2x128_si256::<0x31>(l, h),
    );
    let (l, h) = (
        _mm256_unpacklo_epi16(d[1], d[3]),
        _mm256_unpackhi_epi16(d[1], d[3]),
    );
    let (p26, p37) = (
        _mm256_permute2x128_si256::<0x20>(l, h),
        _mm256_permute2x128_si256::<0x31>(l, h),
    );
    // Pass 1, DESCALE by CONST_BITS - PASS1_BITS = 11 (its rounding as the bias).
    let mut w = pass(p04, p26, p15, p37, 1 << 10);
    let mut outside = _mm256_setzero_si256();
    for v in &mut w {
        *v = _mm256_srai_epi32::<11>(*v);
        outside = or_outside_i16(outside, *v);
    }
    if _mm256_testz_si256(outside, _mm256_set1_epi32(!0xFFFF)) == 0 {
        return false;
    }
    // Pass 2, rows in the lanes; the final descale's rounding (1 << 17) as the bias.
    let t = transpose(w);
    let v = pass(
        pairs(t[0], t[4]),
        pairs(t[2], t[6]),
        pairs(t[1], t[5]),
        pairs(t[3], t[7]),
        1 << 17,
    );
    let v = v.map(|x| _mm256_srai_epi32::<18>(x));
    // To bytes: packs gives, per 128-bit half h, columns k and k + 1 of rows 4h..4h + 4;
    // the level shift saturates and `packus` clamps to 0..255, as `range_limit`.
    let shift = _mm256_set1_epi16(128);
    let a = _mm256_adds_epi16(_mm256_packs_epi32(v[0], v[1]), shift);
    let b = _mm256_adds_epi16(_mm256_packs_epi32(v[2], v[3]), shift);
    let c = _mm256_adds_epi16(_mm256_packs_epi32(v[4], v[5]), shift);
    let dd = _mm256_adds_epi16(_mm256_packs_epi32(v[6], v[7]), shift);
    // Per half: byte 4k + j is column k (0..4, resp. 4..8) of row 4h + j; the shuffle
    // transposes each 4×4 to byte 4j + k.
    let tr = _mm256_setr_epi8(
        0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10,
        14, 3, 7, 11, 15,
    );
    let e = _mm256_shuffle_epi8(_mm256_packus_epi16(a, b), tr);
    let f = _mm256_shuffle_epi8(_mm256_packus_epi16(c, dd), tr);
    // Rows (0, 1 | 4, 5) and (2, 3 | 6, 7), each row's columns 0..4 then 4..8.
    let g = _mm256_unpacklo_epi32(e, f);
    let h = _mm256_unpackhi_epi32(e, f);
    // Plain 8-byte stores of each half's low and high quadword (no extraction through the
    // shuffle port but for the upper halves).
    let halves = [
        _mm256_castsi256_si128(g),
        _mm256_castsi256_si128(h),
        _mm256_extracti128_si256::<1>(g),
        _mm256_extracti128_si256::<1>(h),
    ];
    for (k, x) in halves.into_iter().enumerate() {
        // SAFETY: 8 bytes at `row(r)` for rows `2k` and `2k + 1` (see `row`).
        unsafe {
            _mm_storel_epi64(row(2 * k).cast(), x);
            _mm_storeh_pd(row(2 * k + 1).cast(), _mm_castsi128_pd(x));
        }
    }
    true
}

/// jdcolor.c's YCbCr → RGB (`jpeg::ycc_to_rgb_row`) for a row of at least 32 pixels, 32 at
/// a time (the last 32 overlapping the ones before where the width is not a multiple: the
/// same bytes written twice): how many it converted (the whole row, or 0 for a shorter row
/// or without AVX2, which the caller then converts).
///
/// The table terms `(FIX(1.402) * x + HALF) >> 16` and the like need products wider than
/// 16 bits, but each constant is a multiple of 2^16 plus a 16-bit one, and the multiple
/// comes out of the shift whole: `(91881 x + 2^15) >> 16 = x + ((26345 x + 2^15) >> 16)`,
/// `(-22554 x - 46802 y + 2^15) >> 16 = -y + ((-22554 x + 18734 y + 2^15) >> 16)`,
/// `(116130 x + 2^15) >> 16 = 2x + ((-14942 x + 2^15) >> 16)`. A one-product term is
/// `mulhi + (the low half's top bit)`: with `p = 2^16 hi + lo` (`lo` unsigned), adding 2^15
/// carries into `hi` exactly when `lo >= 2^15`. The two-product term is one `pmaddwd` on
/// (Cb, Cr) pairs. The sums then fit 16 bits and `packus` clamps.
#[inline]
pub(super) fn ycc_to_rgb(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { ycc_to_rgb_avx2(y, cb, cr, out) };
    }
    let _ = (y, cb, cr, out);
    0
}

/// Interleaving 16 pixels' R, G and B (48 bytes, three 16-byte blocks) takes one byte
/// shuffle per channel: channel `c` of pixel `p` goes to byte `(3p + c) % 16` of block
/// `(3p + c) / 16`, and as 3 and 16 are coprime those positions are all 16, once each.
/// `SPREAD[c]` moves each pixel's byte there; block `b` then takes each byte from the
/// channel `(16b + j) % 3` that owns it (`OWNED[b][c]`: 0xFF where channel `c` does).
const SPREAD: [[i8; 16]; 3] = {
    let mut m = [[0i8; 16]; 3];
    let mut c = 0;
    while c < 3 {
        let mut p = 0;
        while p < 16 {
            m[c][(3 * p + c) % 16] = p as i8;
            p += 1;
        }
        c += 1;
    }
    m
};
const OWNED: [[[i8; 16]; 3]; 3] = {
    let mut m = [[[0i8; 16]; 3]; 3];
    let mut b = 0;
    while b < 3 {
        let mut j = 0;
        while j < 16 {
            m[b][(16 * b + j) % 3][j] = -1;
            j += 1;
        }
        b += 1;
    }
    m
};

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn ycc_to_rgb_avx2(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) -> usize {
    let n = y.len().min(cb.len()).min(cr.len()).min(out.len() / 3);
    if n < 32 {
        return 0;
    }
    let both_lanes = |m: &[i8; 16]| {
        // SAFETY: 16 in-bounds bytes.
        _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(m.as_ptr().cast()) })
    };
    let spread: [__m256i; 3] = std::array::from_fn(|c| both_lanes(&SPREAD[c]));
    let owned: [[__m256i; 3]; 3] =
        std::array::from_fn(|b| std::array::from_fn(|c| both_lanes(&OWNED[b][c])));
    let pair = |lo: i32, hi: i32| _mm256_set1_epi32((hi << 16) | (lo & 0xFFFF));
    let k_g = pair(-22554, 18734);
    let (k_r, k_b) = (_mm256_set1_epi16(26345), _mm256_set1_epi16(-14942));
    let half = _mm256_set1_epi32(1 << 15);
    let c128 = _mm256_set1_epi16(128);
    let zero = _mm256_setzero_si256();
    // `(k x + 2^15) >> 16` for one 16-bit constant (see the doc above).
    let one_term = |x: __m256i, k: __m256i| {
        _mm256_add_epi16(
            _mm256_mulhi_epi16(x, k),
            _mm256_srli_epi16::<15>(_mm256_mullo_epi16(x, k)),
        )
    };
    let g_term = |b: __m256i, r: __m256i| {
        let t =
            |v: __m256i| _mm256_srai_epi32::<16>(_mm256_add_epi32(_mm256_madd_epi16(v, k_g), half));
        // Within each lane, words 0..4 then 4..8: `packs` puts them back in order.
        _mm256_packs_epi32(
            t(_mm256_unpacklo_epi16(b, r)),
            t(_mm256_unpackhi_epi16(b, r)),
        )
    };
    // Whole groups, then the last 32 pixels where the groups leave some.
    let tail = (!n.is_multiple_of(32)).then_some(n - 32);
    for at in (0..n - 31).step_by(32).chain(tail) {
        let load = |s: &[u8]| {
            let s = &s[at..at + 32];
            // SAFETY: `s` has 32 bytes.
            unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
        };
        let (yv, bv, rv) = (load(y), load(cb), load(cr));
        // Per lane, the low unpack widens bytes 0..8 and the high one 8..16; `packus` of
        // the two gives the lane's 16 bytes back in order.
        let channels = |yw: __m256i, b: __m256i, r: __m256i| {
            let (b, r) = (_mm256_sub_epi16(b, c128), _mm256_sub_epi16(r, c128));
            let rr = _mm256_add_epi16(_mm256_add_epi16(yw, r), one_term(r, k_r));
            let gg = _mm256_add_epi16(_mm256_sub_epi16(yw, r), g_term(b, r));
            let bb = _mm256_add_epi16(
                _mm256_add_epi16(yw, _mm256_add_epi16(b, b)),
                one_term(b, k_b),
            );
            [rr, gg, bb]
        };
        let (lo, hi) = (
            channels(
                _mm256_unpacklo_epi8(yv, zero),
                _mm256_unpacklo_epi8(bv, zero),
                _mm256_unpacklo_epi8(rv, zero),
            ),
            channels(
                _mm256_unpackhi_epi8(yv, zero),
                _mm256_unpackhi_epi8(bv, zero),
                _mm256_unpackhi_epi8(rv, zero),
            ),
        );
        // Lane 0: pixels 0..16 of the 32, lane 1: 16..32, each channel spread.
        let spread: [__m256i; 3] = std::array::from_fn(|c| {
            _mm256_shuffle_epi8(_mm256_packus_epi16(lo[c], hi[c]), spread[c])
        });
        // Block b of each lane: lane 0's is output bytes 16b.., lane 1's 48 + 16b...
        let blocks: [__m256i; 3] = std::array::from_fn(|b| {
            let pick = |c: usize| _mm256_and_si256(spread[c], owned[b][c]);
            _mm256_or_si256(_mm256_or_si256(pick(0), pick(1)), pick(2))
        });
        let dst = &mut out[3 * at..3 * at + 96];
        for (k, block) in blocks.iter().enumerate() {
            let (low, high) = (
                _mm256_castsi256_si128(*block),
                _mm256_extracti128_si256::<1>(*block),
            );
            // SAFETY: `dst` has 96 bytes; each store writes 16 of them.
            unsafe {
                _mm_storeu_si128(dst[16 * k..16 * k + 16].as_mut_ptr().cast(), low);
                _mm_storeu_si128(dst[48 + 16 * k..64 + 16 * k].as_mut_ptr().cast(), high);
            }
        }
    }
    n
}

/// The column sums `3 * near + far` of h2v2 upsampling into `sums` (as long as the rows),
/// sixteen at a time with AVX2 (the sum of a column is at most `4 * 255`: 16 bits).
#[inline]
pub(super) fn column_sums(near: &[u8], far: &[u8], sums: &mut [u16]) {
    let n = near.len().min(far.len()).min(sums.len());
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        done = unsafe { column_sums_avx2(&near[..n], &far[..n], &mut sums[..n]) };
    }
    for ((s, &a), &b) in sums[done..n]
        .iter_mut()
        .zip(&near[done..n])
        .zip(&far[done..n])
    {
        *s = u16::from(a) * 3 + u16::from(b);
    }
}

/// [`column_sums`] of whole groups of sixteen columns; how many columns it did.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn column_sums_avx2(near: &[u8], far: &[u8], sums: &mut [u16]) -> usize {
    let widen = |row: &[u8]| {
        // SAFETY: `row` has 16 bytes (a `chunks_exact` chunk).
        _mm256_cvtepu8_epi16(unsafe { _mm_loadu_si128(row.as_ptr().cast()) })
    };
    let groups = sums.len() / 16;
    for ((s, a), b) in sums
        .chunks_exact_mut(16)
        .zip(near.chunks_exact(16))
        .zip(far.chunks_exact(16))
    {
        let a = widen(a);
        let v = _mm256_add_epi16(_mm256_add_epi16(a, _mm256_add_epi16(a, a)), widen(b));
        // SAFETY: `s` has 16 values (`chunks_exact_mut`).
        unsafe { _mm256_storeu_si256(s.as_mut_ptr().cast(), v) };
    }
    16 * groups
}

/// The interior of jdsample.c's h2v2 fancy upsampling (`jpeg::h2v2_fancy`), sixteen input
/// columns at a time: for each column `i` from 1 on, output bytes `2i` and `2i + 1` from the
/// column sums `3 * near + far` (`sums`) of columns `i - 1..=i + 1`. Returns how many columns
/// it did (a multiple of 16; 0 without AVX2); the rest is the caller's. The sums are at most
/// `4 * 255`, so every intermediate fits 16 bits, and the two outputs of a column, each
/// under 256, are one 16-bit word: the even one in its low byte, which is the byte stored
/// first.
#[inline]
pub(super) fn h2v2_interior(sums: &[u16], out: &mut [u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { h2v2_interior_avx2(sums, out) };
    }
    let _ = (sums, out);
    0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn h2v2_interior_avx2(sums: &[u16], out: &mut [u8]) -> usize {
    // Columns 1 ..= width - 2 have both neighbours.
    let columns = sums
        .len()
        .saturating_sub(2)
        .min(out.len().saturating_sub(2) / 2)
        / 16
        * 16;
    let load = |at: usize| {
        let s = &sums[at..at + 16];
        // SAFETY: `s` has 16 values.
        unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
    };
    let (eight, seven) = (_mm256_set1_epi16(8), _mm256_set1_epi16(7));
    for (block, o) in out[2..2 + 2 * columns].chunks_exact_mut(32).enumerate() {
        let i = 1 + 16 * block;
        let (before, this, after) = (load(i - 1), load(i), load(i + 1));
        let three = _mm256_add_epi16(this, _mm256_add_epi16(this, this));
        let even = _mm256_srli_epi16::<4>(_mm256_add_epi16(_mm256_add_epi16(three, before), eight));
        let odd = _mm256_srli_epi16::<4>(_mm256_add_epi16(_mm256_add_epi16(three, after), seven));
        let words = _mm256_or_si256(even, _mm256_slli_epi16::<8>(odd));
        // SAFETY: `o` has 32 bytes (`chunks_exact_mut`).
        unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), words) };
    }
    columns
}
