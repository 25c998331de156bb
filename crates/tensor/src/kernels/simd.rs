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

/// The values of `src` whose `keep` entry is true, in order (a filter's compaction of
/// scalar rows); `kept` is how many entries of `keep` are true. On AVX2 CPUs 4- and 8-byte
/// values go four or eight at a time: the mask's bytes gathered into bits pick a
/// permutation that packs the kept lanes to the front of one unaligned store.
pub(crate) fn compress_pod<T: bytemuck::Pod>(src: &[T], keep: &[bool]) -> Vec<T> {
    let n = src.len().min(keep.len());
    let (src, keep) = (&src[..n], &keep[..n]);
    // Room for every value, so that the kept ones need not be counted first (a pass over the
    // mask of its own); a vector store writes up to eight slots from the cursor.
    let mut out: Vec<T> = Vec::with_capacity(n + 8);
    let spare = out.spare_capacity_mut();
    let mut k = 0;
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        let size = std::mem::size_of::<T>();
        let dst = spare.as_mut_ptr().cast::<u8>();
        // SAFETY: the CPU has AVX2 and BMI2 (checked just above); `dst` has room for
        // `n + 8` values and each store starts at a cursor at most `n`.
        (k, done) = unsafe {
            match size {
                8 => compress_avx2::<4>(src.as_ptr().cast(), keep, dst, &PACK8),
                4 => compress_avx2::<8>(src.as_ptr().cast(), keep, dst, &PACK4),
                _ => (0, 0),
            }
        };
    }
    for (v, &keep) in src[done..].iter().zip(&keep[done..]) {
        spare[k].write(*v);
        k += keep as usize;
    }
    // SAFETY: every slot below `k` was written (by a vector store or the loop above, each
    // before the cursor passed it), and `T` is plain data.
    unsafe { out.set_len(k) };
    if k < n / 2 {
        // A block that kept few rows does not hold on to room for all of them.
        out.shrink_to_fit();
    }
    out
}

/// For each 4-bit mask, the `vpermd` indices that move the kept 8-byte lanes to the front.
#[cfg(target_arch = "x86_64")]
static PACK8: [[u32; 8]; 16] = pack_table(4);

/// For each 8-bit mask, the `vpermd` indices that move the kept 4-byte lanes to the front.
#[cfg(target_arch = "x86_64")]
static PACK4: [[u32; 8]; 256] = pack_table(8);

/// The `vpermd` indices for each mask of `lanes` lanes (each `8 / lanes` dwords wide): the
/// kept lanes' dwords in order, then zeros.
#[cfg(target_arch = "x86_64")]
const fn pack_table<const MASKS: usize>(lanes: usize) -> [[u32; 8]; MASKS] {
    let dwords = 8 / lanes;
    let mut t = [[0u32; 8]; MASKS];
    let mut m = 0;
    while m < MASKS {
        let mut p = 0;
        let mut j = 0;
        while j < lanes {
            if m & (1 << j) != 0 {
                let mut d = 0;
                while d < dwords {
                    t[m][p] = (j * dwords + d) as u32;
                    p += 1;
                    d += 1;
                }
            }
            j += 1;
        }
        m += 1;
    }
    t
}

/// Packs `LANES` values of `32 / LANES` bytes at a time through `table` (indexed by the
/// lanes' keep bits); returns the cursor and how many inputs it took.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi2,popcnt")]
unsafe fn compress_avx2<const LANES: usize>(
    src: *const u8,
    keep: &[bool],
    dst: *mut u8,
    table: &[[u32; 8]],
) -> (usize, usize) {
    use std::arch::x86_64::*;
    let size = 32 / LANES;
    let (mut k, mut i) = (0, 0);
    while i + LANES <= keep.len() {
        let mut bytes = [0u8; 8];
        // SAFETY (all four): `i + LANES <= keep.len()` values and mask bytes are in bounds
        // (a `bool` is the byte 0 or 1), and the caller leaves room for a store of `LANES`
        // values at `k`.
        bytes[..LANES].copy_from_slice(unsafe { &*keep.as_ptr().add(i).cast::<[u8; LANES]>() });
        let m = _pext_u64(u64::from_le_bytes(bytes), 0x0101_0101_0101_0101) as usize;
        let v = unsafe { _mm256_loadu_si256(src.add(size * i).cast()) };
        let idx = unsafe { _mm256_loadu_si256(table[m].as_ptr().cast()) };
        unsafe {
            _mm256_storeu_si256(
                dst.add(size * k).cast(),
                _mm256_permutevar8x32_epi32(v, idx),
            )
        };
        k += m.count_ones() as usize;
        i += LANES;
    }
    (k, i)
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

    /// The vector compaction keeps exactly the masked values, in order, for 1-, 4- and
    /// 8-byte values (the first two take the plain loop or the 8-wide one), at every length
    /// around the vector widths and every mask of a few patterns.
    #[test]
    fn compress_pod_keeps_the_masked_values() {
        fn check<T: bytemuck::Pod + PartialEq + std::fmt::Debug>(make: impl Fn(usize) -> T) {
            for n in 0..40 {
                for pattern in 0..6u32 {
                    let src: Vec<T> = (0..n).map(&make).collect();
                    let keep: Vec<bool> = (0..n)
                        .map(|i| match pattern {
                            0 => false,
                            1 => true,
                            2 => i % 7 < 5,
                            3 => i % 3 == 0,
                            4 => (i * 2_654_435_761) % 11 < 4,
                            _ => i >= n / 2,
                        })
                        .collect();
                    let want: Vec<T> = src
                        .iter()
                        .zip(&keep)
                        .filter(|(_, k)| **k)
                        .map(|(v, _)| *v)
                        .collect();
                    assert_eq!(compress_pod(&src, &keep), want, "n {n} pattern {pattern}");
                }
            }
        }
        check(|i| i as u8);
        check(|i| i as i32 * 3 - 7);
        check(|i| i as f32 * 0.5);
        check(|i| (i as i64) << 40 | i as i64);
        check(|i| i as f64 - 0.25);
    }
}
