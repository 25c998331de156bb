//! numpy's own `float32` transcendental kernels, transcribed lane-for-lane as scalar code.
//!
//! numpy on x86-64 with AVX2+FMA3 (the `X86_V3` dispatch target) does not call libm for
//! `float32` `log`, `exp`, `sin`, `cos` and `tanh`: it runs its own SIMD polynomial
//! kernels, which are not correctly rounded. To print exactly what numpy prints we
//! repeat each lane's computation here: same constants, same operation order, and
//! `f32::mul_add` exactly where numpy uses an FMA instruction (plain `*`/`+` elsewhere),
//! so every result is bit-identical to numpy's. The SIMD lanes are independent, so a
//! scalar transcription gives the same bits regardless of array length or stride.
//!
//! Functions numpy leaves to libm (`float64` everything, `float32` `expm1`, `log1p`,
//! `tan`) are not here: Rust's `f32`/`f64` methods call the same glibc routines.

/// `FLT_MIN`, the smallest normal `f32`.
const FLT_MIN: f32 = f32::MIN_POSITIVE;
/// `NPY_NANF` (a positive quiet NaN).
const NAN: f32 = f32::from_bits(0x7fc0_0000);
/// `-NPY_NANF`.
const NEG_NAN: f32 = f32::from_bits(0xffc0_0000);
/// `NPY_LOGE2f` (`npy_math.h`).
const LOGE2: f32 = 0.693147180559945309417232121458176568;
/// `NPY_LOG2Ef` (`npy_math.h`).
const LOG2E: f32 = 1.442695040888963407359924681001892137;
/// `NPY_SQRT1_2f` (`npy_math.h`).
const SQRT1_2: f32 = 0.707106781186547524400844362104849039;

// `log` coefficients: `NPY_COEFF_{P,Q}{0..5}_LOGf` from `npy_simd_data.h` (a P5/Q5
// minimax rational approximation of log(1 + x)).
const LOG_P: [f32; 6] = [
    0.000000000000000000000e+00,
    9.999999999999998702752e-01,
    2.112677543073053063722e+00,
    1.480000633576506585156e+00,
    3.808837741388407920751e-01,
    2.589979117907922693523e-02,
];
const LOG_Q: [f32; 6] = [
    1.000000000000000000000e+00,
    2.612677543073109236779e+00,
    2.453006071784736363091e+00,
    9.864942958519418960339e-01,
    1.546476374983906719538e-01,
    5.875095403124574342950e-03,
];

// `exp` constants from `npy_simd_data.h`: Cody-Waite split of -ln 2, the round-to-int
// magic number and the P5/Q2 rational approximation of e^x on [-ln2/2, ln2/2].
const RINT_CVT_MAGIC: f32 = 12582912.0; // 0x1.8p+23
const CODY_WAITE_LOGE_2_HIGH: f32 = -6.93145752e-1;
const CODY_WAITE_LOGE_2_LOW: f32 = -1.42860677e-6;
const EXP_P: [f32; 6] = [
    9.999999999980870924916e-01,
    7.257664613233124478488e-01,
    2.473615434895520810817e-01,
    5.114512081637298353406e-02,
    6.757896990527504603057e-03,
    5.082762527590693718096e-04,
];
const EXP_Q: [f32; 3] = [1.000000000000000000000e+00, -2.742335390411667452936e-01, 2.159509375685829852307e-02];
/// Inputs at or above this give `+inf` (`xmax` in `simd_exp_FLOAT`).
const EXP_XMAX: f32 = 88.72283935546875;
/// Inputs at or below this give `+0` (`xmin` in `simd_exp_FLOAT`).
const EXP_XMIN: f32 = -103.97208404541015625;

/// Exponent and mantissa of a non-negative `x` as numpy's `fma_get_exponent` /
/// `fma_get_mantissa` compute them (`loops_exponent_log.dispatch.c.src`): subnormals
/// (and zero) are first scaled by 2^100, the exponent is `biased - 126` as `f32` and the
/// mantissa is forced into `[0.5, 1)` by writing exponent field 126.
#[inline(always)]
fn get_exponent_mantissa(x: f32) -> (f32, f32) {
    let denormal = x < FLT_MIN;
    let x = if denormal { x * f32::from_bits(0x7180_0000) } else { x };
    let bits = x.to_bits();
    // `_mm256_srli_epi32` is a logical shift; the subtraction wraps like `_mm256_sub_epi32`.
    let mut exponent = ((bits >> 23) as i32).wrapping_sub(0x7e) as f32;
    if denormal {
        exponent -= 100.0;
    }
    let mantissa = f32::from_bits((bits & 0x007f_ffff) | (126 << 23));
    (exponent, mantissa)
}

/// `np.log` on `float32`: numpy's `simd_log_FLOAT` (AVX2/FMA3 body) in
/// `numpy/_core/src/umath/loops_exponent_log.dispatch.c.src`.
///
/// Range reduction to a mantissa in `(sqrt(1/2), sqrt(2)]`, a P5/Q5 rational for
/// `log(1 + m - 1)`, then `k ln 2 + poly` with one FMA. Up to ~4 ulp from exact.
#[inline]
pub fn log_f32(x_in: f32) -> f32 {
    // Special lanes are computed anyway and overwritten at the end, in this order.
    let negx = x_in < 0.0;
    let x = if negx { 0.0 } else { x_in };
    let (mut exponent, mut x) = get_exponent_mantissa(x);
    if x <= SQRT1_2 {
        x = x + x;
        exponent -= 1.0;
    }
    x -= 1.0;
    let mut num = LOG_P[5].mul_add(x, LOG_P[4]);
    num = num.mul_add(x, LOG_P[3]);
    num = num.mul_add(x, LOG_P[2]);
    num = num.mul_add(x, LOG_P[1]);
    num = num.mul_add(x, LOG_P[0]);
    let mut den = LOG_Q[5].mul_add(x, LOG_Q[4]);
    den = den.mul_add(x, LOG_Q[3]);
    den = den.mul_add(x, LOG_Q[2]);
    den = den.mul_add(x, LOG_Q[1]);
    den = den.mul_add(x, LOG_Q[0]);
    let poly = exponent.mul_add(LOGE2, num / den);
    if x_in == f32::INFINITY {
        f32::INFINITY
    } else if x_in == 0.0 {
        f32::NEG_INFINITY
    } else if negx {
        NEG_NAN
    } else if x_in.is_nan() {
        NAN
    } else {
        poly
    }
}

/// `poly * 2^quadrant` as numpy's `fma_scalef_ps` computes it: the exponent is added to
/// the bit pattern, and results that would be subnormal (`quadrant <= -125`) are formed
/// at `2^-125` first and then divided by the remaining power of two (one rounding).
#[inline(always)]
fn scalef(poly: f32, quadrant: f32) -> f32 {
    const MIN_QUADRANT: f32 = -125.0;
    // `_mm256_cvtps_epi32` rounds to nearest; `quadrant` is already integral here.
    let cvt = |v: f32| v.round_ties_even() as i32;
    if quadrant <= MIN_QUADRANT {
        let quad_diff = 0.0 - (quadrant - MIN_QUADRANT);
        let shift = cvt(quad_diff) as u32;
        // `_mm256_sllv_epi32` yields 0 for counts above 31.
        let two_power_diff = if shift > 31 { 0 } else { 1i32.wrapping_shl(shift) };
        let exponent = cvt(MIN_QUADRANT).wrapping_shl(23);
        let p = f32::from_bits((poly.to_bits() as i32).wrapping_add(exponent) as u32);
        p / two_power_diff as f32
    } else {
        let exponent = cvt(quadrant).wrapping_shl(23);
        f32::from_bits((poly.to_bits() as i32).wrapping_add(exponent) as u32)
    }
}

/// `np.exp` on `float32`: numpy's `simd_exp_FLOAT` (AVX2/FMA3 body) in
/// `numpy/_core/src/umath/loops_exponent_log.dispatch.c.src`.
///
/// `k = rint(x log2 e)` via the magic-number trick, two-step Cody-Waite reduction with
/// FMAs, a P5/Q2 rational for `e^r`, then `scalef`. Up to ~2.5 ulp from exact.
#[inline]
pub fn exp_f32(x_in: f32) -> f32 {
    let nan = x_in.is_nan();
    let mut x = if nan { 0.0 } else { x_in };
    let xmax = x >= EXP_XMAX;
    let xmin = x <= EXP_XMIN;
    if xmax || xmin {
        x = 0.0;
    }
    let mut quadrant = x * LOG2E;
    quadrant = (quadrant + RINT_CVT_MAGIC) - RINT_CVT_MAGIC;
    // `simd_range_reduction` with c3 = 0: the third FMA adds a signed zero.
    x = quadrant.mul_add(CODY_WAITE_LOGE_2_HIGH, x);
    x = quadrant.mul_add(CODY_WAITE_LOGE_2_LOW, x);
    x = quadrant.mul_add(0.0, x);
    let mut num = EXP_P[5].mul_add(x, EXP_P[4]);
    num = num.mul_add(x, EXP_P[3]);
    num = num.mul_add(x, EXP_P[2]);
    num = num.mul_add(x, EXP_P[1]);
    num = num.mul_add(x, EXP_P[0]);
    let mut den = EXP_Q[2].mul_add(x, EXP_Q[1]);
    den = den.mul_add(x, EXP_Q[0]);
    let poly = scalef(num / den, quadrant);
    if xmin {
        0.0
    } else if xmax {
        f32::INFINITY
    } else if nan {
        NAN
    } else {
        poly
    }
}
