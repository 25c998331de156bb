//! Run-time CPU dispatch for the slice loops every elementwise kernel ends in.
//!
//! The loops are written once, generically; on x86-64 CPUs with AVX2 and FMA the same
//! loop is compiled a second time with those features enabled and chosen at run time.
//! That makes LLVM emit 8-lane vector code and, above all, turn `f32::mul_add` into one
//! `vfmadd` instruction instead of a call to the software `fmaf` (numpy's transcendental
//! kernels, which we copy bit for bit, are built on FMA). Both versions compute the same
//! bits: `mul_add` is a fused multiply-add either way; only its speed differs.

// The one place the crate uses `unsafe`: calling a `#[target_feature]` function is unsafe
// because it must only run on a CPU with those features, which is checked just before.
#![allow(unsafe_code)]

/// Whether this CPU runs the AVX2+FMA versions (checked once, then cached by std). BMI2
/// comes with them on every AVX2 CPU made; `with_avx2` uses its shifts too.
#[cfg(target_arch = "x86_64")]
#[inline]
fn avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("bmi2")
}

/// Whether the dispatched loops run the vector (AVX2+FMA) versions on this CPU: kernels
/// with a choice of formulas pick the one that vectorizes only when it will.
pub(crate) fn vectorized() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2_fma()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out[i] = f(x[i])` over the common length.
#[inline]
pub(crate) fn map_unary<T: Copy, U>(x: &[T], out: &mut [U], f: impl Fn(T) -> U) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { map_unary_avx2(x, out, f) };
    }
    unary_loop(x, out, f)
}

/// `out[i] = f(a[i], b[i])` over the common length.
#[inline]
pub(crate) fn map_binary<A: Copy, B: Copy, U>(
    a: &[A],
    b: &[B],
    out: &mut [U],
    f: impl Fn(A, B) -> U,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { map_binary_avx2(a, b, out, f) };
    }
    binary_loop(a, b, out, f)
}

/// Runs `f` compiled with AVX2 (and FMA and BMI2) enabled where the CPU has them. For
/// integer code only the width of LLVM's vectors and the choice of instructions change,
/// never a result (BMI2's `shlx`/`shrx`: one cycle shifts by a register, which is what
/// the JPEG entropy decoder's chain from one code to the next is made of); `f` should be an
/// `#[inline(always)]` closure so that its body is compiled inside the AVX2 function.
#[inline]
pub(crate) fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { run_avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,bmi2")]
fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[inline(always)]
fn unary_loop<T: Copy, U>(x: &[T], out: &mut [U], f: impl Fn(T) -> U) {
    let n = x.len().min(out.len());
    let (x, out) = (&x[..n], &mut out[..n]);
    for i in 0..n {
        out[i] = f(x[i]);
    }
}

#[inline(always)]
fn binary_loop<A: Copy, B: Copy, U>(a: &[A], b: &[B], out: &mut [U], f: impl Fn(A, B) -> U) {
    let n = a.len().min(b.len()).min(out.len());
    let (a, b, out) = (&a[..n], &b[..n], &mut out[..n]);
    for i in 0..n {
        out[i] = f(a[i], b[i]);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn map_unary_avx2<T: Copy, U>(x: &[T], out: &mut [U], f: impl Fn(T) -> U) {
    unary_loop(x, out, f)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn map_binary_avx2<A: Copy, B: Copy, U>(a: &[A], b: &[B], out: &mut [U], f: impl Fn(A, B) -> U) {
    binary_loop(a, b, out, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::FloatElem;

    /// The dispatched loop (the AVX2+FMA one on such CPUs) gives the bits of plain calls.
    #[test]
    fn dispatched_loops_give_the_bits_of_scalar_calls() {
        let mut xs: Vec<f32> = (0..50_000u32)
            .map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761)))
            .collect();
        xs.extend([
            0.0,
            -0.0,
            1.0,
            -1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ]);
        xs.extend([f32::MIN_POSITIVE, 1e-45, 88.72, -103.9, 0.5, 2.0]);
        type UnaryFn = fn(f32) -> f32;
        let fns: [(&str, UnaryFn); 5] = [
            ("log", FloatElem::log),
            ("exp", FloatElem::exp),
            ("sin", FloatElem::sin),
            ("cos", FloatElem::cos),
            ("tanh", FloatElem::tanh),
        ];
        for (name, f) in fns {
            let mut out = vec![0f32; xs.len()];
            map_unary(&xs, &mut out, f);
            for (x, o) in xs.iter().zip(&out) {
                assert_eq!(o.to_bits(), f(*x).to_bits(), "{name}({x:e})");
            }
        }
        let mut out = vec![0f32; xs.len()];
        map_binary(&xs, &xs[1..], &mut out, |a: f32, b: f32| a.mul_add(b, 0.5));
        for i in 0..xs.len() - 1 {
            assert_eq!(out[i].to_bits(), xs[i].mul_add(xs[i + 1], 0.5).to_bits());
        }
    }
}
