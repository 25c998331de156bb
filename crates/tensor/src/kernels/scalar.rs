//! Per-element functions, written once per element type: the array kernels and the
//! (future) fused elementwise kernel both call these, so their results cannot drift apart.
//!
//! `f16`/`bf16` compute in `f32` and round back, as numpy does for `float16`.

use crate::TensorElem;
use half::{bf16, f16};

pub mod numpy_math;

/// Element types with arithmetic: every dtype except `bool`.
///
/// Integer ops wrap. Integer `floor_div`/`rem` by zero and `pow` with a negative exponent
/// return 0 here; the array kernels detect those cases first and report an error.
pub trait NumElem: TensorElem + crate::Elem + PartialOrd {
    /// The additive identity.
    const ZERO: Self;
    /// The multiplicative identity.
    const ONE: Self;
    /// `a + b` (wrapping for integers).
    fn add(a: Self, b: Self) -> Self;
    /// `a - b` (wrapping for integers).
    fn sub(a: Self, b: Self) -> Self;
    /// `a * b` (wrapping for integers).
    fn mul(a: Self, b: Self) -> Self;
    /// Python `a // b` (numpy `floor_divide`).
    fn floor_div(a: Self, b: Self) -> Self;
    /// Python `a % b` (numpy `remainder`): the sign follows the divisor.
    fn rem(a: Self, b: Self) -> Self;
    /// `a ** b` (integers: by squaring, wrapping).
    fn pow(a: Self, b: Self) -> Self;
    /// numpy `maximum`: NaN propagates; on equal operands the second is returned.
    fn maximum(a: Self, b: Self) -> Self;
    /// numpy `minimum`: NaN propagates; on equal operands the second is returned.
    fn minimum(a: Self, b: Self) -> Self;
    /// `-x` (wrapping for integers; unsigned integers wrap to `2^n - x` as numpy).
    fn neg(x: Self) -> Self;
    /// `|x|` (the minimum signed integer wraps to itself, as numpy).
    fn abs(x: Self) -> Self;
    /// -1, 0 or 1 (NaN stays NaN, -0.0 gives 0.0, as numpy).
    fn sign(x: Self) -> Self;
    /// `x * x`.
    fn square(x: Self) -> Self;
    /// `maximum(x, 0)`: NaN propagates, -0.0 gives 0.0.
    fn relu(x: Self) -> Self;
    /// Whether `x == 0` (for the division-by-zero check).
    fn is_zero(x: Self) -> bool;
    /// Whether `x < 0` (for the negative-exponent check).
    fn is_negative(x: Self) -> bool;
    /// `init + sum(block)`, with numpy's summation order for a contiguous inner loop
    /// (pairwise for floats, accumulated in `f32` for half types).
    fn sum_block(init: Self, block: &[Self]) -> Self;
    /// `init * prod(block)`, sequential (accumulated in `f32` for half types, as numpy).
    fn prod_block(init: Self, block: &[Self]) -> Self;
    /// The value as `f64` (rounded for 64-bit integers).
    fn to_f64(x: Self) -> f64;
}

/// Floating-point element types.
pub trait FloatElem: NumElem {
    /// `a / b` (IEEE).
    fn div(a: Self, b: Self) -> Self;
    /// `e^x`.
    fn exp(x: Self) -> Self;
    /// `e^x - 1`, accurate near 0.
    fn expm1(x: Self) -> Self;
    /// Natural logarithm.
    fn log(x: Self) -> Self;
    /// `ln(1 + x)`, accurate near 0.
    fn log1p(x: Self) -> Self;
    /// Square root.
    fn sqrt(x: Self) -> Self;
    /// `1 / sqrt(x)` (two roundings, like `1 / np.sqrt(x)`).
    fn rsqrt(x: Self) -> Self;
    /// `1 / x`.
    fn reciprocal(x: Self) -> Self;
    /// Sine.
    fn sin(x: Self) -> Self;
    /// Cosine.
    fn cos(x: Self) -> Self;
    /// Tangent.
    fn tan(x: Self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(x: Self) -> Self;
    /// `1 / (1 + e^-x)`, computed without overflow for large `|x|`.
    fn sigmoid(x: Self) -> Self;
    /// Round toward -inf.
    fn floor(x: Self) -> Self;
    /// Round toward +inf.
    fn ceil(x: Self) -> Self;
    /// Round half to even (`numpy.round`).
    fn round(x: Self) -> Self;
    /// `ln(1 + e^x)` as numpy's `logaddexp(x, 0)`: `x + log1p(exp(-x))` above 0, `log1p(exp(x))`
    /// below, `ln 2` at 0, so it neither overflows nor loses small values.
    fn softplus(x: Self) -> Self;
    /// The error function (musl's, through the `libm` crate).
    fn erf(x: Self) -> Self;
    /// `atan2(y, x)`: the angle of `(x, y)`, signs of zeros included (C's `atan2`).
    fn atan2(y: Self, x: Self) -> Self;
    /// Whether `x` is NaN.
    fn is_nan(x: Self) -> bool;
    /// Whether `x` is neither infinite nor NaN.
    fn is_finite(x: Self) -> bool;
    /// The value rounded from `f64` (correctly rounded, no double rounding).
    fn from_f64(x: f64) -> Self;
}

/// Integer element types.
pub trait IntElem: NumElem {
    /// The value as `i128` (exact).
    fn to_i128(x: Self) -> i128;
    /// The value wrapped from `i128` (two's complement truncation).
    fn from_i128_wrapping(x: i128) -> Self;
    /// The smallest value.
    const MIN: Self;
    /// The largest value.
    const MAX: Self;
}

macro_rules! int_common {
    ($t:ty) => {
        const ZERO: Self = 0;
        const ONE: Self = 1;
        #[inline(always)]
        fn add(a: Self, b: Self) -> Self {
            a.wrapping_add(b)
        }
        #[inline(always)]
        fn sub(a: Self, b: Self) -> Self {
            a.wrapping_sub(b)
        }
        #[inline(always)]
        fn mul(a: Self, b: Self) -> Self {
            a.wrapping_mul(b)
        }
        #[inline(always)]
        fn pow(a: Self, b: Self) -> Self {
            #[allow(unused_comparisons)]
            if b < 0 {
                return 0;
            }
            // Wrapping multiplication is a ring homomorphism mod 2^n, so squaring in any
            // order gives numpy's wrapped result.
            let mut exp = b as u64;
            let mut base = a;
            let mut acc: $t = 1;
            while exp > 0 {
                if exp & 1 == 1 {
                    acc = acc.wrapping_mul(base);
                }
                base = base.wrapping_mul(base);
                exp >>= 1;
            }
            acc
        }
        #[inline(always)]
        fn maximum(a: Self, b: Self) -> Self {
            if a > b { a } else { b }
        }
        #[inline(always)]
        fn minimum(a: Self, b: Self) -> Self {
            if a < b { a } else { b }
        }
        #[inline(always)]
        fn neg(x: Self) -> Self {
            x.wrapping_neg()
        }
        #[inline(always)]
        fn square(x: Self) -> Self {
            x.wrapping_mul(x)
        }
        #[inline(always)]
        fn relu(x: Self) -> Self {
            if x > 0 { x } else { 0 }
        }
        #[inline(always)]
        fn is_zero(x: Self) -> bool {
            x == 0
        }
        #[inline(always)]
        fn is_negative(x: Self) -> bool {
            #[allow(unused_comparisons)]
            {
                x < 0
            }
        }
        #[inline]
        fn sum_block(init: Self, block: &[Self]) -> Self {
            block.iter().fold(init, |acc, &v| acc.wrapping_add(v))
        }
        #[inline]
        fn prod_block(init: Self, block: &[Self]) -> Self {
            block.iter().fold(init, |acc, &v| acc.wrapping_mul(v))
        }
        #[inline(always)]
        fn to_f64(x: Self) -> f64 {
            x as f64
        }
    };
}

macro_rules! int_elem {
    (signed: $($t:ty),*) => {$(
        impl NumElem for $t {
            int_common!($t);
            #[inline(always)]
            fn floor_div(a: Self, b: Self) -> Self {
                if b == 0 {
                    return 0;
                }
                let q = a.wrapping_div(b);
                if a.wrapping_rem(b) != 0 && ((a < 0) != (b < 0)) { q - 1 } else { q }
            }
            #[inline(always)]
            fn rem(a: Self, b: Self) -> Self {
                if b == 0 {
                    return 0;
                }
                let r = a.wrapping_rem(b);
                if r != 0 && ((r < 0) != (b < 0)) { r + b } else { r }
            }
            #[inline(always)]
            fn abs(x: Self) -> Self {
                x.wrapping_abs()
            }
            #[inline(always)]
            fn sign(x: Self) -> Self {
                x.signum()
            }
        }
        impl IntElem for $t {
            fn to_i128(x: Self) -> i128 { x as i128 }
            fn from_i128_wrapping(x: i128) -> Self { x as $t }
            const MIN: Self = <$t>::MIN;
            const MAX: Self = <$t>::MAX;
        }
    )*};
    (unsigned: $($t:ty),*) => {$(
        impl NumElem for $t {
            int_common!($t);
            #[inline(always)]
            fn floor_div(a: Self, b: Self) -> Self {
                if b == 0 { 0 } else { a / b }
            }
            #[inline(always)]
            fn rem(a: Self, b: Self) -> Self {
                if b == 0 { 0 } else { a % b }
            }
            #[inline(always)]
            fn abs(x: Self) -> Self {
                x
            }
            #[inline(always)]
            fn sign(x: Self) -> Self {
                (x != 0) as $t
            }
        }
        impl IntElem for $t {
            fn to_i128(x: Self) -> i128 { x as i128 }
            fn from_i128_wrapping(x: i128) -> Self { x as $t }
            const MIN: Self = <$t>::MIN;
            const MAX: Self = <$t>::MAX;
        }
    )*};
}
int_elem!(signed: i8, i16, i32, i64);
int_elem!(unsigned: u8, u16, u32, u64);

/// numpy's `npy_divmod` (`divmod_f64`) and `npy_divmodf` (`divmod_f32`, which numpy also
/// uses for `float16`): floor quotient and remainder with the divisor's sign, in the type's
/// own arithmetic.
macro_rules! divmod {
    ($name:ident, $t:ty) => {
        #[inline(always)]
        fn $name(a: $t, b: $t) -> ($t, $t) {
            let m = a % b;
            if b == 0.0 {
                return (a / b, m);
            }
            let mut div = (a - m) / b;
            let mut m = m;
            if m != 0.0 {
                if (b < 0.0) != (m < 0.0) {
                    m += b;
                    div -= 1.0;
                }
            } else {
                m = (0.0 as $t).copysign(b);
            }
            let floordiv = if div != 0.0 {
                let mut f = div.floor();
                if div - f > 0.5 {
                    f += 1.0;
                }
                f
            } else {
                (0.0 as $t).copysign(a / b)
            };
            (floordiv, m)
        }
    };
}
divmod!(divmod_f64, f64);
divmod!(divmod_f32, f32);

/// numpy's pairwise summation (`@TYPE@_pairwise_sum`): below 8 elements a plain loop,
/// up to 128 eight accumulators, above that split in halves at a multiple of 8.
macro_rules! pairwise {
    ($name:ident, $elem:ty, $acc:ty, $conv:expr) => {
        #[inline]
        fn $name(a: &[$elem]) -> $acc {
            let conv = $conv;
            let n = a.len();
            if n < 8 {
                let mut res: $acc = 0.0;
                for &v in a {
                    res += conv(v);
                }
                res
            } else if n <= 128 {
                let mut r: [$acc; 8] = [0.0; 8];
                for j in 0..8 {
                    r[j] = conv(a[j]);
                }
                let mut i = 8;
                while i < n - (n % 8) {
                    for j in 0..8 {
                        r[j] += conv(a[i + j]);
                    }
                    i += 8;
                }
                let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
                while i < n {
                    res += conv(a[i]);
                    i += 1;
                }
                res
            } else {
                let mut n2 = n / 2;
                n2 -= n2 % 8;
                $name(&a[..n2]) + $name(&a[n2..])
            }
        }
    };
}
pairwise!(pairwise_f64, f64, f64, |v: f64| v);
pairwise!(pairwise_f32, f32, f32, |v: f32| v);
pairwise!(pairwise_f16, f16, f32, |v: f16| v.to_f32());
pairwise!(pairwise_bf16, bf16, f32, |v: bf16| v.to_f32());

/// Public entry to numpy's pairwise summation over `f32` (used by `mean` of half types).
pub fn pairwise_sum_f32(a: &[f32]) -> f32 {
    pairwise_f32(a)
}

/// `f64` → `f32` rounding to odd: rounding that result again to a format with at most
/// 22 significand bits gives the correctly rounded value (no double-rounding error).
#[inline]
fn f64_to_f32_odd(x: f64) -> f32 {
    let r = x as f32;
    if r.is_nan() || r as f64 == x {
        return r;
    }
    let mut bits = r.to_bits();
    if (r as f64).abs() > x.abs() {
        bits -= 1;
    }
    f32::from_bits(bits | 1)
}

/// `f64` → `f16`, correctly rounded (half's own conversion ignores the low 32 bits).
#[inline]
pub fn f16_from_f64(x: f64) -> f16 {
    f16::from_f32(f64_to_f32_odd(x))
}

/// `f64` → `bf16`, correctly rounded (half's own conversion ignores the low 32 bits).
#[inline]
pub fn bf16_from_f64(x: f64) -> bf16 {
    bf16::from_f32(f64_to_f32_odd(x))
}

/// `$r`, the result of `a op b`, with the NaN that comes out fixed: a NaN operand comes
/// through quieted, the first one when both are (what x86's SSE/AVX instructions do with
/// operands in order, so what numpy's loops give). The hardware already does this for one
/// NaN operand whatever the order; for two, the order decides, and LLVM treats `+` and `*`
/// as commutative and may put either operand first in vector code (a loop over a tensor and
/// a scalar, say), so without the check `-O0` and `-O2` could differ in a NaN's sign. A NaN
/// made from numbers (`inf - inf`, `0 / 0`) is the hardware's.
macro_rules! nan_first {
    ($a:expr, $b:expr, $r:expr) => {{
        let a = $a;
        if a.is_nan() {
            // Quieted: the highest mantissa bit set.
            Self::from_bits(a.to_bits() | (1 << (Self::MANTISSA_DIGITS - 2)))
        } else {
            $r
        }
    }};
}

/// `$exp`, `$log`, `$sin`, `$cos`, `$tanh` are the per-type routines numpy uses: its own
/// SIMD kernels for `f32` ([`numpy_math`]), glibc (via Rust's methods) for `f64`.
macro_rules! float_elem {
    ($t:ty, $divmod:ident, $pairwise:ident, $exp:path, $log:path, $sin:path, $cos:path, $tanh:path, $erf:path) => {
        impl NumElem for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline(always)]
            fn add(a: Self, b: Self) -> Self {
                nan_first!(a, b, a + b)
            }
            #[inline(always)]
            fn sub(a: Self, b: Self) -> Self {
                nan_first!(a, b, a - b)
            }
            #[inline(always)]
            fn mul(a: Self, b: Self) -> Self {
                nan_first!(a, b, a * b)
            }
            #[inline(always)]
            fn floor_div(a: Self, b: Self) -> Self {
                if b == 0.0 { a / b } else { $divmod(a, b).0 }
            }
            #[inline(always)]
            fn rem(a: Self, b: Self) -> Self {
                if b == 0.0 { a % b } else { $divmod(a, b).1 }
            }
            #[inline(always)]
            fn pow(a: Self, b: Self) -> Self {
                a.powf(b)
            }
            #[inline(always)]
            fn maximum(a: Self, b: Self) -> Self {
                if a.is_nan() || a > b { a } else { b }
            }
            #[inline(always)]
            fn minimum(a: Self, b: Self) -> Self {
                if a.is_nan() || a < b { a } else { b }
            }
            #[inline(always)]
            fn neg(x: Self) -> Self {
                -x
            }
            #[inline(always)]
            fn abs(x: Self) -> Self {
                x.abs()
            }
            #[inline(always)]
            fn sign(x: Self) -> Self {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else if x == 0.0 {
                    0.0
                } else {
                    x
                }
            }
            #[inline(always)]
            fn square(x: Self) -> Self {
                x * x
            }
            #[inline(always)]
            fn relu(x: Self) -> Self {
                if x.is_nan() || x > 0.0 { x } else { 0.0 }
            }
            #[inline(always)]
            fn is_zero(x: Self) -> bool {
                x == 0.0
            }
            #[inline(always)]
            fn is_negative(x: Self) -> bool {
                x < 0.0
            }
            #[inline]
            fn sum_block(init: Self, block: &[Self]) -> Self {
                init + $pairwise(block)
            }
            #[inline]
            fn prod_block(init: Self, block: &[Self]) -> Self {
                block.iter().fold(init, |acc, &v| acc * v)
            }
            #[inline(always)]
            fn to_f64(x: Self) -> f64 {
                x as f64
            }
        }
        impl FloatElem for $t {
            #[inline(always)]
            fn div(a: Self, b: Self) -> Self {
                nan_first!(a, b, a / b)
            }
            #[inline(always)]
            fn exp(x: Self) -> Self {
                $exp(x)
            }
            #[inline(always)]
            fn expm1(x: Self) -> Self {
                x.exp_m1()
            }
            #[inline(always)]
            fn log(x: Self) -> Self {
                $log(x)
            }
            #[inline(always)]
            fn log1p(x: Self) -> Self {
                x.ln_1p()
            }
            #[inline(always)]
            fn sqrt(x: Self) -> Self {
                x.sqrt()
            }
            #[inline(always)]
            fn rsqrt(x: Self) -> Self {
                1.0 / x.sqrt()
            }
            #[inline(always)]
            fn reciprocal(x: Self) -> Self {
                1.0 / x
            }
            #[inline(always)]
            fn sin(x: Self) -> Self {
                $sin(x)
            }
            #[inline(always)]
            fn cos(x: Self) -> Self {
                $cos(x)
            }
            #[inline(always)]
            fn tan(x: Self) -> Self {
                x.tan()
            }
            #[inline(always)]
            fn tanh(x: Self) -> Self {
                $tanh(x)
            }
            #[inline(always)]
            fn sigmoid(x: Self) -> Self {
                // Split by sign so exp never overflows: both branches are exact rewrites.
                // (`$exp`, not `Self::exp`: that would name the inherent libm method.)
                if x >= 0.0 {
                    1.0 / (1.0 + $exp(-x))
                } else {
                    let e = $exp(x);
                    e / (1.0 + e)
                }
            }
            #[inline(always)]
            fn floor(x: Self) -> Self {
                x.floor()
            }
            #[inline(always)]
            fn ceil(x: Self) -> Self {
                x.ceil()
            }
            #[inline(always)]
            fn round(x: Self) -> Self {
                x.round_ties_even()
            }
            #[inline(always)]
            fn softplus(x: Self) -> Self {
                // numpy's npy_logaddexp(x, 0), branch for branch (libm exp and log1p).
                if x == 0.0 {
                    core::f64::consts::LN_2 as $t
                } else if x > 0.0 {
                    x + (-x).exp().ln_1p()
                } else if x <= 0.0 {
                    x.exp().ln_1p()
                } else {
                    x
                }
            }
            #[inline(always)]
            fn erf(x: Self) -> Self {
                $erf(x)
            }
            #[inline(always)]
            fn atan2(y: Self, x: Self) -> Self {
                y.atan2(x)
            }
            #[inline(always)]
            fn is_nan(x: Self) -> bool {
                x.is_nan()
            }
            #[inline(always)]
            fn is_finite(x: Self) -> bool {
                x.is_finite()
            }
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
        }
    };
}
float_elem!(
    f32,
    divmod_f32,
    pairwise_f32,
    numpy_math::exp_f32,
    numpy_math::log_f32,
    numpy_math::sin_f32,
    numpy_math::cos_f32,
    numpy_math::tanh_f32,
    libm::erff
);
float_elem!(
    f64,
    divmod_f64,
    pairwise_f64,
    f64::exp,
    f64::ln,
    f64::sin,
    f64::cos,
    numpy_math::tanh_f64,
    libm::erf
);

macro_rules! half_elem {
    ($t:ty, $pairwise:ident, $from64:ident) => {
        impl NumElem for $t {
            const ZERO: Self = <$t>::ZERO;
            const ONE: Self = <$t>::ONE;
            #[inline(always)]
            fn add(a: Self, b: Self) -> Self {
                <$t>::from_f32(<f32 as NumElem>::add(a.to_f32(), b.to_f32()))
            }
            #[inline(always)]
            fn sub(a: Self, b: Self) -> Self {
                <$t>::from_f32(<f32 as NumElem>::sub(a.to_f32(), b.to_f32()))
            }
            #[inline(always)]
            fn mul(a: Self, b: Self) -> Self {
                <$t>::from_f32(<f32 as NumElem>::mul(a.to_f32(), b.to_f32()))
            }
            #[inline(always)]
            fn floor_div(a: Self, b: Self) -> Self {
                <$t>::from_f32(f32::floor_div(a.to_f32(), b.to_f32()))
            }
            #[inline(always)]
            fn rem(a: Self, b: Self) -> Self {
                <$t>::from_f32(f32::rem(a.to_f32(), b.to_f32()))
            }
            #[inline(always)]
            fn pow(a: Self, b: Self) -> Self {
                <$t>::from_f32(a.to_f32().powf(b.to_f32()))
            }
            #[inline(always)]
            fn maximum(a: Self, b: Self) -> Self {
                if a.is_nan() || a > b { a } else { b }
            }
            #[inline(always)]
            fn minimum(a: Self, b: Self) -> Self {
                if a.is_nan() || a < b { a } else { b }
            }
            #[inline(always)]
            fn neg(x: Self) -> Self {
                -x
            }
            #[inline(always)]
            fn abs(x: Self) -> Self {
                <$t>::from_bits(x.to_bits() & 0x7fff)
            }
            #[inline(always)]
            fn sign(x: Self) -> Self {
                <$t>::from_f32(f32::sign(x.to_f32()))
            }
            #[inline(always)]
            fn square(x: Self) -> Self {
                Self::mul(x, x)
            }
            #[inline(always)]
            fn relu(x: Self) -> Self {
                if x.is_nan() || x > <$t>::ZERO {
                    x
                } else {
                    <$t>::ZERO
                }
            }
            #[inline(always)]
            fn is_zero(x: Self) -> bool {
                x.to_f32() == 0.0
            }
            #[inline(always)]
            fn is_negative(x: Self) -> bool {
                x.to_f32() < 0.0
            }
            #[inline]
            fn sum_block(init: Self, block: &[Self]) -> Self {
                <$t>::from_f32(init.to_f32() + $pairwise(block))
            }
            #[inline]
            fn prod_block(init: Self, block: &[Self]) -> Self {
                <$t>::from_f32(block.iter().fold(init.to_f32(), |acc, &v| acc * v.to_f32()))
            }
            #[inline(always)]
            fn to_f64(x: Self) -> f64 {
                x.to_f64()
            }
        }
        impl FloatElem for $t {
            #[inline(always)]
            fn div(a: Self, b: Self) -> Self {
                <$t>::from_f32(<f32 as FloatElem>::div(a.to_f32(), b.to_f32()))
            }
            #[inline(always)]
            fn exp(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().exp())
            }
            #[inline(always)]
            fn expm1(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().exp_m1())
            }
            #[inline(always)]
            fn log(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().ln())
            }
            #[inline(always)]
            fn log1p(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().ln_1p())
            }
            #[inline(always)]
            fn sqrt(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().sqrt())
            }
            #[inline(always)]
            fn rsqrt(x: Self) -> Self {
                // numpy: 1 / np.sqrt(x) rounds twice in the half type.
                Self::reciprocal(Self::sqrt(x))
            }
            #[inline(always)]
            fn reciprocal(x: Self) -> Self {
                <$t>::from_f32(1.0 / x.to_f32())
            }
            #[inline(always)]
            fn sin(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().sin())
            }
            #[inline(always)]
            fn cos(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().cos())
            }
            #[inline(always)]
            fn tan(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().tan())
            }
            #[inline(always)]
            fn tanh(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().tanh())
            }
            #[inline(always)]
            fn sigmoid(x: Self) -> Self {
                <$t>::from_f32(f32::sigmoid(x.to_f32()))
            }
            #[inline(always)]
            fn floor(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().floor())
            }
            #[inline(always)]
            fn ceil(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().ceil())
            }
            #[inline(always)]
            fn round(x: Self) -> Self {
                <$t>::from_f32(x.to_f32().round_ties_even())
            }
            #[inline(always)]
            fn softplus(x: Self) -> Self {
                <$t>::from_f32(f32::softplus(x.to_f32()))
            }
            #[inline(always)]
            fn erf(x: Self) -> Self {
                <$t>::from_f32(libm::erff(x.to_f32()))
            }
            #[inline(always)]
            fn atan2(y: Self, x: Self) -> Self {
                <$t>::from_f32(y.to_f32().atan2(x.to_f32()))
            }
            #[inline(always)]
            fn is_nan(x: Self) -> bool {
                x.is_nan()
            }
            #[inline(always)]
            fn is_finite(x: Self) -> bool {
                x.is_finite()
            }
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                $from64(x)
            }
        }
    };
}
half_elem!(f16, pairwise_f16, f16_from_f64);
half_elem!(bf16, pairwise_bf16, bf16_from_f64);

/// The comparison kernels (`T, T -> bool`) of the binary op table's `equality` and `order`
/// rows.
pub mod cmp {
    /// `a == b`.
    #[inline(always)]
    pub fn eq<T: PartialEq>(a: T, b: T) -> bool {
        a == b
    }
    /// `a != b`.
    #[inline(always)]
    pub fn ne<T: PartialEq>(a: T, b: T) -> bool {
        a != b
    }
    /// `a < b`.
    #[inline(always)]
    pub fn lt<T: PartialOrd>(a: T, b: T) -> bool {
        a < b
    }
    /// `a <= b`.
    #[inline(always)]
    pub fn le<T: PartialOrd>(a: T, b: T) -> bool {
        a <= b
    }
    /// `a > b`.
    #[inline(always)]
    pub fn gt<T: PartialOrd>(a: T, b: T) -> bool {
        a > b
    }
    /// `a >= b`.
    #[inline(always)]
    pub fn ge<T: PartialOrd>(a: T, b: T) -> bool {
        a >= b
    }
}

/// The bool kernels of the op tables' `logic` rows.
pub mod logic {
    /// `!x`.
    #[inline(always)]
    pub fn not(x: bool) -> bool {
        !x
    }
    /// `a && b`.
    #[inline(always)]
    pub fn and(a: bool, b: bool) -> bool {
        a && b
    }
    /// `a || b`.
    #[inline(always)]
    pub fn or(a: bool, b: bool) -> bool {
        a || b
    }
}

/// A value on its way through [`CastElem`]: every dtype converts into one of these
/// exactly, and every dtype converts out of one with the SPEC §6 rules.
#[derive(Clone, Copy, Debug)]
pub enum CastValue {
    /// From `bool`.
    Bool(bool),
    /// From any integer (exact).
    Int(i128),
    /// From any float (exact: `f64` holds every `f16`/`bf16`/`f32`).
    Float(f64),
}

/// Conversion rules of `cast` (SPEC §6), one impl per dtype.
pub trait CastElem: TensorElem + crate::Elem {
    /// This value, exactly.
    fn to_cast_value(self) -> CastValue;
    /// The value converted to this dtype: float→int truncates and saturates (NaN → 0),
    /// int→int wraps, →bool is `!= 0`, floats round to nearest even.
    fn from_cast_value(v: CastValue) -> Self;
}

impl CastElem for bool {
    #[inline(always)]
    fn to_cast_value(self) -> CastValue {
        CastValue::Bool(self)
    }
    #[inline(always)]
    fn from_cast_value(v: CastValue) -> Self {
        match v {
            CastValue::Bool(b) => b,
            CastValue::Int(i) => i != 0,
            // NaN != 0, so NaN casts to true (as numpy).
            CastValue::Float(f) => f != 0.0,
        }
    }
}

macro_rules! cast_int {
    ($($t:ty),*) => {$(
        impl CastElem for $t {
            #[inline(always)]
            fn to_cast_value(self) -> CastValue {
                CastValue::Int(self as i128)
            }
            #[inline(always)]
            fn from_cast_value(v: CastValue) -> Self {
                match v {
                    CastValue::Bool(b) => b as $t,
                    CastValue::Int(i) => i as $t,
                    // Rust's float→int `as` truncates, saturates and maps NaN to 0.
                    CastValue::Float(f) => f as $t,
                }
            }
        }
    )*};
}
cast_int!(i8, u8, i16, u16, i32, u32, i64, u64);

impl CastElem for f32 {
    #[inline(always)]
    fn to_cast_value(self) -> CastValue {
        CastValue::Float(self as f64)
    }
    #[inline(always)]
    fn from_cast_value(v: CastValue) -> Self {
        match v {
            CastValue::Bool(b) => b as u8 as f32,
            CastValue::Int(i) => i as f32,
            CastValue::Float(f) => f as f32,
        }
    }
}

impl CastElem for f64 {
    #[inline(always)]
    fn to_cast_value(self) -> CastValue {
        CastValue::Float(self)
    }
    #[inline(always)]
    fn from_cast_value(v: CastValue) -> Self {
        match v {
            CastValue::Bool(b) => b as u8 as f64,
            CastValue::Int(i) => i as f64,
            CastValue::Float(f) => f,
        }
    }
}

macro_rules! cast_half {
    ($t:ty, $from64:ident) => {
        impl CastElem for $t {
            #[inline(always)]
            fn to_cast_value(self) -> CastValue {
                CastValue::Float(self.to_f64())
            }
            #[inline(always)]
            fn from_cast_value(v: CastValue) -> Self {
                match v {
                    CastValue::Bool(b) => {
                        if b {
                            <$t>::ONE
                        } else {
                            <$t>::ZERO
                        }
                    }
                    // Exact in f64 below 2^53; above, the result is infinite for f16 and
                    // may be double-rounded for bf16 (documented divergence, i64/u64 only).
                    CastValue::Int(i) => $from64(i as f64),
                    CastValue::Float(f) => $from64(f),
                }
            }
        }
    };
}
cast_half!(f16, f16_from_f64);
cast_half!(bf16, bf16_from_f64);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;
    use crate::kernels;
    use crate::ops::BinaryOp;

    /// NaNs of both signs, a payload, and a signalling NaN (quieted on the way through).
    const NANS: [u32; 4] = [0x7fc0_0000, 0xffc0_0000, 0x7fc0_1234, 0x7f80_0001];

    /// The first NaN operand comes through, quieted, as numpy's loops give it on x86 —
    /// whichever loop computes it: a tensor with a scalar, a scalar with a tensor, two
    /// tensors, or the fused kernel.
    #[test]
    fn the_first_nan_operand_comes_through_on_every_path() {
        let quiet = |b: u32| b | 0x0040_0000;
        let vals: Vec<f32> = NANS
            .iter()
            .map(|&b| f32::from_bits(b))
            .chain([1.5, -0.0, f32::INFINITY])
            .collect();
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
            for &a in &vals {
                for &b in &vals {
                    let want = if a.is_nan() {
                        quiet(a.to_bits())
                    } else if b.is_nan() {
                        quiet(b.to_bits())
                    } else {
                        continue;
                    };
                    let n = 37;
                    let ta = Tensor::from_vec(&[n], vec![a; n]).expect("shape");
                    let tb = Tensor::from_vec(&[n], vec![b; n]).expect("shape");
                    let sa = Tensor::from_vec(&[1], vec![a]).expect("shape");
                    let sb = Tensor::from_vec(&[1], vec![b]).expect("shape");
                    for (x, y) in [(&ta, &tb), (&ta, &sb), (&sa, &tb)] {
                        let got = kernels::binary(op, x, y).expect("op");
                        let bits: Vec<u32> = got
                            .as_array::<f32>()
                            .expect("f32")
                            .iter()
                            .map(|v| v.to_bits())
                            .collect();
                        assert!(
                            bits.iter().all(|&g| g == want),
                            "{op:?} {:#x} {:#x}: {bits:x?}",
                            a.to_bits(),
                            b.to_bits()
                        );
                    }
                }
            }
        }
        // f64 and the half types follow the same rule.
        let nan = f64::from_bits(0xfff8_0000_0000_0001);
        assert_eq!(<f64 as NumElem>::add(1.0, nan).to_bits(), nan.to_bits());
        assert_eq!(
            <f64 as NumElem>::mul(nan, f64::NAN).to_bits(),
            nan.to_bits()
        );
        let h = half::f16::from_bits(0xfe01);
        assert_eq!(
            <half::f16 as NumElem>::sub(half::f16::ONE, h).to_bits(),
            half::f16::from_f32(f32::from_bits(h.to_f32().to_bits() | 0x0040_0000)).to_bits()
        );
    }
}
