//! Stateless random draws: Philox4x32-10 and the kernels of the `random_*` ops.
//!
//! Every draw is a pure function of a 64-bit op key (derived at trace time from the seed
//! and the op's source position), the element's position in its dataset and the epoch.
//! The generator is counter-based, so any element's numbers are computed directly, with
//! no state carried from one element to the next: the order elements are computed in
//! (threads, blocks, a resumed run) cannot change them. `docs/language.md` ("Random
//! ops") is the user-facing statement of every mapping below; keep the two in step.
//!
//! The counter of block `i` of an element's stream is `[i, epoch low 32 bits, position low
//! 32 bits, position high 32 bits ^ epoch high 32 bits]` and the Philox key is `[key low 32
//! bits, key high 32 bits]`. (Epochs past 2^32 only arise inside an `interleave`'s inner
//! datasets, whose epochs are hashes; folding their high half in keeps two inner datasets
//! from drawing alike by a 32-bit collision, and leaves every smaller epoch's draws as they
//! were.)
//! Word `j` of the stream is word `j % 4` of block `j / 4`.

use super::{KernelError, checked_len};
use crate::{DType, Scalar, Tensor, bf16, f16};
use ndarray::{ArcArray, IxDyn, Slice};

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds (Salmon et al., SC'11; Random123's `philox4x32_R(10, ...)`).
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (ctr, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = u64::from(M0) * u64::from(c[0]);
        let p1 = u64::from(M1) * u64::from(c[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// SplitMix64's output function: a bijection of `u64` that mixes every bit into every bit.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The op key of a random op: the seed and the words of its site (source line and column,
/// the call sites it was inlined through and the iterations of unrolled loops), hashed.
/// `h = mix64(seed)`, then for each word `w` at index `i`:
/// `h = mix64(h ^ mix64(w + (i + 1) * 0x9E3779B97F4A7C15))`, and last `mix64(h ^ len)`.
pub fn op_key(seed: u64, site: &[u64]) -> u64 {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = mix64(seed);
    for (i, &w) in site.iter().enumerate() {
        h = mix64(h ^ mix64(w.wrapping_add((i as u64 + 1).wrapping_mul(GOLDEN))));
    }
    mix64(h ^ site.len() as u64)
}

/// The random words of one element: a Philox stream keyed by the op, counted from the
/// element's position and epoch.
#[derive(Clone, Copy, Debug)]
pub struct ElementStream {
    key: [u32; 2],
    epoch: u64,
    position: u64,
}

impl ElementStream {
    /// The stream of op `key` for the element at `position` in epoch `epoch`.
    pub fn new(key: u64, position: u64, epoch: u64) -> ElementStream {
        ElementStream {
            key: [key as u32, (key >> 32) as u32],
            epoch,
            position,
        }
    }

    /// Block `i`: four words.
    pub fn block(&self, i: u32) -> [u32; 4] {
        philox4x32_10(
            [
                i,
                self.epoch as u32,
                self.position as u32,
                ((self.position >> 32) ^ (self.epoch >> 32)) as u32,
            ],
            self.key,
        )
    }

    /// The first `n` words.
    pub fn words(&self, n: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(n);
        let mut i = 0u32;
        while out.len() < n {
            let b = self.block(i);
            out.extend(b.iter().take(n - out.len()));
            i = i.wrapping_add(1);
        }
        out
    }
}

/// What a random op draws; with its key it is the op's whole meaning.
#[derive(Clone, Debug, PartialEq)]
pub enum Draw {
    /// `random_uniform`: values in `[lo, hi)` of `lo`'s dtype (both of one dtype).
    Uniform {
        /// The per-element shape.
        shape: Vec<usize>,
        /// The smallest value.
        lo: Scalar,
        /// The bound no value reaches.
        hi: Scalar,
    },
    /// `random_normal`: `mean + std * z`, `z` standard normal by Box–Muller.
    Normal {
        /// The per-element shape.
        shape: Vec<usize>,
        /// The result dtype (a float).
        dtype: DType,
        /// The mean.
        mean: f64,
        /// The standard deviation.
        std: f64,
    },
    /// `random_crop`: a window of `size` at a uniformly drawn offset.
    Crop {
        /// The window's size, one entry per image dim.
        size: Vec<usize>,
    },
    /// `random_flip_left_right`: reverse the width axis (1 of `[h, w, c]`) half the time.
    FlipLeftRight,
    /// `random_flip_up_down`: reverse the height axis (0 of `[h, w, c]`) half the time.
    FlipUpDown,
    /// `random_brightness`: `adjust_brightness` by a delta uniform in `[-max_delta, max_delta)`.
    Brightness {
        /// The largest shift (`>= 0`), in the units of a float image (`[0, 1]` for `u8`).
        max_delta: f64,
    },
}

impl Draw {
    /// The IR mnemonic (also the builtin's name).
    pub fn name(&self) -> &'static str {
        match self {
            Draw::Uniform { .. } => "random_uniform",
            Draw::Normal { .. } => "random_normal",
            Draw::Crop { .. } => "random_crop",
            Draw::FlipLeftRight => "random_flip_left_right",
            Draw::FlipUpDown => "random_flip_up_down",
            Draw::Brightness { .. } => "random_brightness",
        }
    }

    /// Whether the op transforms an image operand (after the position operand).
    pub fn takes_image(&self) -> bool {
        !matches!(self, Draw::Uniform { .. } | Draw::Normal { .. })
    }
}

/// Runs draw `d` of op `key`. `ctx` is the element's `[position, epoch]` (`u64[2]`), or one
/// such row per element of a block (`u64[n, 2]`, and then the image has a leading axis of
/// `n` too and the result gets one).
pub fn random(
    d: &Draw,
    key: u64,
    ctx: &Tensor,
    image: Option<&Tensor>,
) -> Result<Tensor, KernelError> {
    let Some(c) = ctx.as_array::<u64>() else {
        return Err(invalid("the position operand must be u64".into()));
    };
    let rows: Vec<ElementStream> = match c.shape() {
        [2] => vec![ElementStream::new(key, c[[0]], c[[1]])],
        [n, 2] => (0..*n)
            .map(|i| ElementStream::new(key, c[[i, 0]], c[[i, 1]]))
            .collect(),
        other => return Err(invalid(format!("a position operand of shape {other:?}"))),
    };
    let batched = ctx.rank() == 2;
    if d.takes_image() != image.is_some() {
        return Err(invalid(format!("`{}` got the wrong operands", d.name())));
    }
    match d {
        // The common dtypes are written straight into their buffer (the same values).
        Draw::Uniform { shape, lo, hi } if lo.dtype() == DType::F32 => {
            let (l, h) = (scalar_f64(*lo), scalar_f64(*hi));
            typed::<f32>(&rows, batched, shape, |s, n, out| {
                out.extend(s.words(n).iter().map(|&x| f32_in(l, h, unit24(x))))
            })
        }
        Draw::Normal {
            shape,
            dtype: DType::F32,
            mean,
            std,
        } => typed::<f32>(&rows, batched, shape, |s, n, out| {
            normal_with(s, n, false, *mean, *std, |v| out.push(v as f32))
        }),
        Draw::Normal {
            shape,
            dtype: DType::F64,
            mean,
            std,
        } => typed::<f64>(&rows, batched, shape, |s, n, out| {
            normal_with(s, n, true, *mean, *std, |v| out.push(v))
        }),
        Draw::Uniform { shape, lo, hi } => values(&rows, batched, shape, lo.dtype(), |s, n| {
            uniform(s, n, *lo, *hi)
        }),
        Draw::Normal {
            shape,
            dtype,
            mean,
            std,
        } => values(&rows, batched, shape, *dtype, |s, n| {
            normal(s, n, *dtype, *mean, *std)
        }),
        _ => {
            let image = image.expect("checked above");
            if !batched {
                return image_op(d, &rows[0], image);
            }
            if image.shape().first() != Some(&rows.len()) {
                return Err(invalid(format!(
                    "{} positions for an image block of shape {:?}",
                    rows.len(),
                    image.shape()
                )));
            }
            let outs = rows
                .iter()
                .enumerate()
                .map(|(i, s)| image_op(d, s, &image.index_axis0(i)))
                .collect::<Result<Vec<_>, _>>()?;
            if outs.is_empty() {
                // No rows: the shape a row would have, behind a zero-length axis.
                let row = match d {
                    Draw::Crop { size } => size.clone(),
                    _ => image.shape()[1..].to_vec(),
                };
                let mut shape = vec![0];
                shape.extend(row);
                return super::zeros(&shape, image.dtype());
            }
            super::stack(&outs, 0)
        }
    }
}

fn invalid(msg: String) -> KernelError {
    KernelError::InvalidArgument(msg)
}

/// A `[rows..., shape...]` tensor of `T`, each element's values pushed by `fill`.
fn typed<T: crate::TensorElem>(
    rows: &[ElementStream],
    batched: bool,
    shape: &[usize],
    fill: impl Fn(&ElementStream, usize, &mut Vec<T>),
) -> Result<Tensor, KernelError> {
    let mut full = Vec::with_capacity(shape.len() + 1);
    if batched {
        full.push(rows.len());
    }
    full.extend_from_slice(shape);
    let len = checked_len(&full, std::mem::size_of::<T>())?;
    let per: usize = shape.iter().product();
    let mut all = Vec::with_capacity(len);
    for s in rows {
        fill(s, per, &mut all);
    }
    Tensor::from_vec(&full, all).ok_or_else(|| invalid("random values of the wrong count".into()))
}

/// `u` in `[0, 1)` from one word: `(w >> 8) * 2^-24`.
fn unit24(w: u32) -> f64 {
    f64::from(w >> 8) * exp2i(24)
}

/// [`float_in`] for f32.
fn f32_in(lo: f64, hi: f64, u: f64) -> f32 {
    let r = lo + (hi - lo) * u;
    let (x, h) = (r as f32, hi as f32);
    if x >= h { f32_next_down(h) } else { x }
}

/// Fills a `[rows..., shape...]` tensor of `dtype`, each element's values from its stream.
fn values(
    rows: &[ElementStream],
    batched: bool,
    shape: &[usize],
    dtype: DType,
    draw: impl Fn(&ElementStream, usize) -> Vec<Scalar>,
) -> Result<Tensor, KernelError> {
    let mut full = Vec::with_capacity(shape.len() + 1);
    if batched {
        full.push(rows.len());
    }
    full.extend_from_slice(shape);
    checked_len(&full, dtype.size_bytes())?;
    let per: usize = shape.iter().product();
    let mut all = Vec::with_capacity(per * rows.len());
    for s in rows {
        all.extend(draw(s, per));
    }
    from_scalars(&full, dtype, all)
}

fn from_scalars(shape: &[usize], dtype: DType, v: Vec<Scalar>) -> Result<Tensor, KernelError> {
    macro_rules! build {
        ($($var:ident => $t:ty),*) => {
            match dtype {
                $(DType::$var => Tensor::from_vec::<$t>(
                    shape,
                    v.into_iter()
                        .map(|s| match s {
                            Scalar::$var(x) => x,
                            _ => unreachable!("draws are of the op's dtype"),
                        })
                        .collect(),
                ),)*
                DType::Bool | DType::Str => None,
            }
        };
    }
    build!(I8 => i8, U8 => u8, I16 => i16, U16 => u16, I32 => i32, U32 => u32, I64 => i64,
        U64 => u64, F16 => f16, BF16 => bf16, F32 => f32, F64 => f64)
    .ok_or_else(|| KernelError::DType(format!("random values of dtype {dtype}")))
}

/// `2^-k` as an f64.
fn exp2i(k: i32) -> f64 {
    f64::powi(2.0, -k)
}

/// The 64-bit value of words `2j` and `2j + 1` (the first one high).
fn pair(w: &[u32], j: usize) -> u64 {
    (u64::from(w[2 * j]) << 32) | u64::from(w[2 * j + 1])
}

/// The value of a float in `[lo, hi)` from `u` in `[0, 1)`: `lo + (hi - lo) * u` in f64,
/// rounded once to the dtype; a value that rounds up to `hi` becomes the largest value of
/// the dtype below `hi`.
fn float_in(dtype: DType, lo: f64, hi: f64, u: f64) -> Scalar {
    let r = lo + (hi - lo) * u;
    match dtype {
        DType::F64 => Scalar::F64(if r >= hi { next_down(hi) } else { r }),
        DType::F32 => Scalar::F32(f32_in(lo, hi, u)),
        DType::F16 => {
            let (x, h) = (f16::from_f64(r), f16::from_f64(hi));
            Scalar::F16(if x >= h {
                f16::from_bits(below_bits(h.to_bits()))
            } else {
                x
            })
        }
        _ => {
            let (x, h) = (bf16::from_f64(r), bf16::from_f64(hi));
            Scalar::BF16(if x >= h {
                bf16::from_bits(below_bits(h.to_bits()))
            } else {
                x
            })
        }
    }
}

/// The bits of the next float below a finite 16-bit float's bits (sign-magnitude).
fn below_bits(b: u16) -> u16 {
    match b {
        0x0000 | 0x8000 => 0x8001,
        b if b & 0x8000 != 0 => b + 1,
        b => b - 1,
    }
}

fn next_down(x: f64) -> f64 {
    match x.to_bits() {
        0 | 0x8000_0000_0000_0000 => -f64::from_bits(1),
        b if x > 0.0 => f64::from_bits(b - 1),
        b => f64::from_bits(b + 1),
    }
}

fn f32_next_down(x: f32) -> f32 {
    match x.to_bits() {
        0 | 0x8000_0000 => -f32::from_bits(1),
        b if x > 0.0 => f32::from_bits(b - 1),
        b => f32::from_bits(b + 1),
    }
}

/// `n` uniform values of `lo`'s dtype in `[lo, hi)`.
///
/// Floats of 32 bits or fewer take one word each, `u = (w >> 8) * 2^-24`; `f64` takes two,
/// `u = (pair >> 11) * 2^-53`. Integers take two words each (a 64-bit `b`) and are
/// `lo + floor(b * (hi - lo) / 2^64)`.
fn uniform(s: &ElementStream, n: usize, lo: Scalar, hi: Scalar) -> Vec<Scalar> {
    let dtype = lo.dtype();
    if dtype.is_float() {
        let (l, h) = (scalar_f64(lo), scalar_f64(hi));
        if dtype == DType::F64 {
            let w = s.words(2 * n);
            return (0..n)
                .map(|j| float_in(dtype, l, h, (pair(&w, j) >> 11) as f64 * exp2i(53)))
                .collect();
        }
        let w = s.words(n);
        return w
            .iter()
            .map(|&x| float_in(dtype, l, h, unit24(x)))
            .collect();
    }
    let (l, h) = (scalar_i128(lo), scalar_i128(hi));
    let range = (h - l) as u128;
    let w = s.words(2 * n);
    (0..n)
        .map(|j| {
            let v = l + ((u128::from(pair(&w, j)) * range) >> 64) as i128;
            int_scalar(dtype, v)
        })
        .collect()
}

/// `n` normal values: `mean + std * z` in f64, rounded once to the dtype.
///
/// Box–Muller on pairs: values `2k` and `2k + 1` are `r cos(2πv)` and `r sin(2πv)` with
/// `r = sqrt(-2 ln u)`, `u` in `(0, 1]` and `v` in `[0, 1)`. For floats of 32 bits or fewer,
/// pair `k` takes words `2k` (`u = (w + 1) * 2^-32`) and `2k + 1` (`v = w * 2^-32`); for
/// `f64`, block `k` (`u = ((pair 0 >> 11) + 1) * 2^-53`, `v = (pair 1 >> 11) * 2^-53`).
fn normal(s: &ElementStream, n: usize, dtype: DType, mean: f64, std: f64) -> Vec<Scalar> {
    let mut out = Vec::with_capacity(n);
    normal_with(s, n, dtype == DType::F64, mean, std, |v| {
        out.push(float_scalar(dtype, v))
    });
    out
}

/// The `n` values `mean + std * z` of [`normal`] in f64, before rounding to the dtype.
fn normal_with(
    s: &ElementStream,
    n: usize,
    wide: bool,
    mean: f64,
    std: f64,
    mut push: impl FnMut(f64),
) {
    let pairs = n.div_ceil(2);
    let uv: Vec<(f64, f64)> = if wide {
        let w = s.words(4 * pairs);
        (0..pairs)
            .map(|k| {
                let u = ((pair(&w, 2 * k) >> 11) + 1) as f64 * exp2i(53);
                let v = (pair(&w, 2 * k + 1) >> 11) as f64 * exp2i(53);
                (u, v)
            })
            .collect()
    } else {
        let w = s.words(2 * pairs);
        (0..pairs)
            .map(|k| {
                let u = (f64::from(w[2 * k]) + 1.0) * exp2i(32);
                let v = f64::from(w[2 * k + 1]) * exp2i(32);
                (u, v)
            })
            .collect()
    };
    let mut left = n;
    for (u, v) in uv {
        let r = (-2.0 * u.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * v;
        for z in [r * t.cos(), r * t.sin()] {
            if left > 0 {
                push(mean + std * z);
                left -= 1;
            }
        }
    }
}

fn float_scalar(dtype: DType, x: f64) -> Scalar {
    match dtype {
        DType::F64 => Scalar::F64(x),
        DType::F32 => Scalar::F32(x as f32),
        DType::F16 => Scalar::F16(f16::from_f64(x)),
        _ => Scalar::BF16(bf16::from_f64(x)),
    }
}

/// A float scalar's value.
pub fn scalar_f64(s: Scalar) -> f64 {
    match s {
        Scalar::F16(x) => x.to_f64(),
        Scalar::BF16(x) => x.to_f64(),
        Scalar::F32(x) => f64::from(x),
        Scalar::F64(x) => x,
        other => scalar_i128(other) as f64,
    }
}

/// An integer (or bool) scalar's value.
pub fn scalar_i128(s: Scalar) -> i128 {
    match s {
        Scalar::Bool(b) => i128::from(b),
        Scalar::I8(x) => x.into(),
        Scalar::U8(x) => x.into(),
        Scalar::I16(x) => x.into(),
        Scalar::U16(x) => x.into(),
        Scalar::I32(x) => x.into(),
        Scalar::U32(x) => x.into(),
        Scalar::I64(x) => x.into(),
        Scalar::U64(x) => x.into(),
        other => scalar_f64(other) as i128,
    }
}

/// `v` (in range for `dtype`) as a scalar of that integer dtype.
fn int_scalar(dtype: DType, v: i128) -> Scalar {
    match dtype {
        DType::I8 => Scalar::I8(v as i8),
        DType::U8 => Scalar::U8(v as u8),
        DType::I16 => Scalar::I16(v as i16),
        DType::U16 => Scalar::U16(v as u16),
        DType::I32 => Scalar::I32(v as i32),
        DType::U32 => Scalar::U32(v as u32),
        DType::I64 => Scalar::I64(v as i64),
        _ => Scalar::U64(v as u64),
    }
}

/// One element's image op.
fn image_op(d: &Draw, s: &ElementStream, image: &Tensor) -> Result<Tensor, KernelError> {
    match d {
        Draw::Crop { size } => {
            let shape = image.shape();
            if size.len() != shape.len() || size.iter().zip(shape).any(|(c, d)| c > d) {
                return Err(invalid(format!(
                    "`random_crop` of size {size:?} does not fit in an image of shape {shape:?}"
                )));
            }
            // Offset along dim `d`: word `d` scaled to the `dim - size + 1` possible starts.
            let w = s.words(size.len());
            let offsets: Vec<usize> = shape
                .iter()
                .zip(size)
                .zip(&w)
                .map(|((&dim, &c), &x)| ((u64::from(x) * (dim - c + 1) as u64) >> 32) as usize)
                .collect();
            Ok(crate::map_same!(image, a => crop(a, &offsets, size)))
        }
        Draw::FlipLeftRight | Draw::FlipUpDown => {
            if image.rank() != 3 {
                return Err(invalid(format!(
                    "`{}` takes an image [h, w, c], found shape {:?}",
                    d.name(),
                    image.shape()
                )));
            }
            // Flipped when the first word is below 2^31 (a uniform draw below 0.5, as TF).
            if s.block(0)[0] < 1 << 31 {
                let axis = usize::from(matches!(d, Draw::FlipLeftRight));
                super::reverse(image, &[axis])
            } else {
                Ok(image.clone())
            }
        }
        Draw::Brightness { max_delta } => brightness(s, image, *max_delta),
        Draw::Uniform { .. } | Draw::Normal { .. } => unreachable!("not an image op"),
    }
}

fn crop<T: Clone>(a: &ArcArray<T, IxDyn>, offsets: &[usize], size: &[usize]) -> ArcArray<T, IxDyn> {
    a.slice_each_axis(|ax| {
        let i = ax.axis.index();
        Slice::from(offsets[i]..offsets[i] + size[i])
    })
    .to_shared()
}

/// TF's `adjust_brightness` by a delta drawn uniform in `[-max_delta, max_delta)` (f32).
/// Float images get `x + delta` (`f64` images in f32, as TF); a `u8`
/// image is, as TF's `convert_image_dtype` does it, `x * (1/255)` in f32, plus delta, times
/// 255.5, clamped to `[0, 255]` and truncated.
fn brightness(s: &ElementStream, image: &Tensor, max_delta: f64) -> Result<Tensor, KernelError> {
    // The delta is f32 (TF's `random_uniform` default), and an f64 image is adjusted in f32
    // and cast back, as TF's `adjust_brightness` does.
    let delta = if max_delta > 0.0 {
        let (lo, hi) = (
            Scalar::F32(-(max_delta as f32)),
            Scalar::F32(max_delta as f32),
        );
        scalar_f64(uniform(s, 1, lo, hi)[0])
    } else {
        0.0
    };
    match image {
        Tensor::F64(a) => {
            let d = delta as f32;
            Ok(Tensor::F64(
                a.mapv(|x| f64::from(x as f32 + d)).into_shared(),
            ))
        }
        Tensor::F32(a) => {
            let d = delta as f32;
            Ok(Tensor::F32(a.mapv(|x| x + d).into_shared()))
        }
        Tensor::F16(a) => {
            let d = f16::from_f32(delta as f32);
            Ok(Tensor::F16(
                a.mapv(|x| f16::from_f32(x.to_f32() + d.to_f32()))
                    .into_shared(),
            ))
        }
        Tensor::BF16(a) => {
            let d = bf16::from_f32(delta as f32);
            Ok(Tensor::BF16(
                a.mapv(|x| bf16::from_f32(x.to_f32() + d.to_f32()))
                    .into_shared(),
            ))
        }
        Tensor::U8(a) => {
            let d = delta as f32;
            let scale = (1.0f64 / 255.0) as f32;
            Ok(Tensor::U8(
                a.mapv(|x| ((f32::from(x) * scale + d) * 255.5).clamp(0.0, 255.0) as u8)
                    .into_shared(),
            ))
        }
        other => Err(KernelError::DType(format!(
            "`random_brightness` takes u8 or float images, not {}",
            other.dtype()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's `kat_vectors`, the three `philox4x32 10` lines (counter, key, output).
    #[test]
    fn philox_known_answers() {
        let kat: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            (
                [0; 4],
                [0; 2],
                [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
            ),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
            ),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (ctr, key, want) in kat {
            assert_eq!(philox4x32_10(ctr, key), want, "ctr {ctr:x?} key {key:x?}");
        }
    }

    fn ctx(pos: u64, epoch: u64) -> Tensor {
        Tensor::from_vec(&[2], vec![pos, epoch]).unwrap()
    }

    fn f64s(t: &Tensor) -> Vec<f64> {
        (0..t.len())
            .map(|i| scalar_f64(t.get_flat(i).unwrap()))
            .collect()
    }

    fn draw_uniform(n: usize, pos: u64, epoch: u64, key: u64) -> Vec<f64> {
        let d = Draw::Uniform {
            shape: vec![n],
            lo: Scalar::F64(0.0),
            hi: Scalar::F64(1.0),
        };
        f64s(&random(&d, key, &ctx(pos, epoch), None).unwrap())
    }

    #[test]
    fn uniform_moments_and_buckets() {
        // 200k f64 draws for each of a fixed list of seeds: mean 1/2 and variance 1/12
        // within 5 standard errors, and chi-square over 100 buckets under the 0.9999
        // quantile of chi2(99) (about 157).
        for key in [0u64, 1, 42, 0xDEAD_BEEF, op_key(7, &[3, 14])] {
            let n = 200_000;
            let x = draw_uniform(n, 5, 0, key);
            assert!(x.iter().all(|&v| (0.0..1.0).contains(&v)));
            let mean = x.iter().sum::<f64>() / n as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            let se_mean = (1.0 / 12.0 / n as f64).sqrt();
            assert!((mean - 0.5).abs() < 5.0 * se_mean, "key {key}: mean {mean}");
            // The variance of a uniform sample variance: (1/80 - 1/144) / n.
            let se_var = ((1.0 / 80.0 - 1.0 / 144.0) / n as f64).sqrt();
            assert!(
                (var - 1.0 / 12.0).abs() < 5.0 * se_var,
                "key {key}: var {var}"
            );
            let mut buckets = [0usize; 100];
            for v in &x {
                buckets[(v * 100.0) as usize] += 1;
            }
            let e = n as f64 / 100.0;
            let chi2: f64 = buckets.iter().map(|&o| (o as f64 - e).powi(2) / e).sum();
            assert!(chi2 < 157.0, "key {key}: chi-square {chi2}");
        }
    }

    #[test]
    fn normal_moments() {
        for (dtype, key) in [(DType::F32, 3u64), (DType::F64, 4), (DType::F32, 99)] {
            let n = 200_001;
            let d = Draw::Normal {
                shape: vec![n],
                dtype,
                mean: 2.0,
                std: 3.0,
            };
            let x = f64s(&random(&d, key, &ctx(1, 2), None).unwrap());
            assert_eq!(x.len(), n);
            let mean = x.iter().sum::<f64>() / n as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            let kurt = x
                .iter()
                .map(|v| ((v - mean) / var.sqrt()).powi(4))
                .sum::<f64>()
                / n as f64;
            // Standard errors: 3/sqrt(n) for the mean, 9*sqrt(2/n) for the variance,
            // sqrt(24/n) for the kurtosis.
            assert!(
                (mean - 2.0).abs() < 5.0 * 3.0 / (n as f64).sqrt(),
                "{dtype}: mean {mean}"
            );
            assert!(
                (var - 9.0).abs() < 5.0 * 9.0 * (2.0 / n as f64).sqrt(),
                "{dtype}: var {var}"
            );
            assert!(
                (kurt - 3.0).abs() < 5.0 * (24.0 / n as f64).sqrt(),
                "{dtype}: kurtosis {kurt}"
            );
            // Within one sigma: 68.27%.
            let within = x.iter().filter(|v| (*v - 2.0).abs() < 3.0).count() as f64 / n as f64;
            assert!((within - 0.6827).abs() < 0.005, "{dtype}: {within}");
        }
    }

    #[test]
    fn seeds_positions_and_epochs_give_distinct_draws() {
        let base = draw_uniform(4, 10, 0, op_key(1, &[5, 9]));
        assert_ne!(base, draw_uniform(4, 11, 0, op_key(1, &[5, 9])), "position");
        assert_ne!(base, draw_uniform(4, 10, 1, op_key(1, &[5, 9])), "epoch");
        assert_ne!(base, draw_uniform(4, 10, 0, op_key(2, &[5, 9])), "seed");
        assert_ne!(base, draw_uniform(4, 10, 0, op_key(1, &[5, 10])), "column");
        assert_ne!(
            base,
            draw_uniform(4, 10, 0, op_key(1, &[5, 9, 0])),
            "loop iteration"
        );
        assert_eq!(
            base,
            draw_uniform(4, 10, 0, op_key(1, &[5, 9])),
            "stateless"
        );
        // Keys of many sites and seeds do not collide.
        let mut keys: Vec<u64> = (0..50)
            .flat_map(|s| (0..50).map(move |l| op_key(s, &[l, 1])))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 2500);
    }

    #[test]
    fn an_epochs_high_half_draws_anew_and_a_small_epoch_keeps_its_counter() {
        let key = op_key(3, &[7, 2]);
        // Epochs that agree in their low 32 bits still draw differently.
        let a = draw_uniform(4, 5, 9, key);
        assert_ne!(a, draw_uniform(4, 5, 9 | (1 << 32), key));
        assert_ne!(a, draw_uniform(4, 5, 9 | (0xABCD << 40), key));
        // An epoch below 2^32 is the documented counter `[i, epoch, pos lo, pos hi]`.
        let s = ElementStream::new(key, 5 | (3 << 32), 9);
        assert_eq!(
            s.block(1),
            philox4x32_10([1, 9, 5, 3], [key as u32, (key >> 32) as u32])
        );
    }

    #[test]
    fn a_block_row_equals_the_element_alone() {
        let d = Draw::Normal {
            shape: vec![3],
            dtype: DType::F32,
            mean: 0.0,
            std: 1.0,
        };
        let rows = Tensor::from_vec(&[2, 2], vec![7u64, 1, 8, 1]).unwrap();
        let both = random(&d, 9, &rows, None).unwrap();
        assert_eq!(both.shape(), &[2, 3]);
        assert_eq!(
            both.index_axis0(0),
            random(&d, 9, &ctx(7, 1), None).unwrap()
        );
        assert_eq!(
            both.index_axis0(1),
            random(&d, 9, &ctx(8, 1), None).unwrap()
        );
        let img = Tensor::from_vec(&[2, 4, 5, 1], (0..40u8).collect()).unwrap();
        let crop = Draw::Crop {
            size: vec![2, 3, 1],
        };
        let out = random(&crop, 5, &rows, Some(&img)).unwrap();
        assert_eq!(out.shape(), &[2, 2, 3, 1]);
        for i in 0..2 {
            let one = random(&crop, 5, &ctx(7 + i as u64, 1), Some(&img.index_axis0(i))).unwrap();
            assert_eq!(out.index_axis0(i), one);
        }
    }

    #[test]
    fn typed_fast_paths_equal_the_scalar_paths() {
        let s = ElementStream::new(77, 3, 1);
        let u = Draw::Uniform {
            shape: vec![9],
            lo: Scalar::F32(-2.5),
            hi: Scalar::F32(0.125),
        };
        let fast = random(&u, 77, &ctx(3, 1), None).unwrap();
        let slow = uniform(&s, 9, Scalar::F32(-2.5), Scalar::F32(0.125));
        assert_eq!(fast, from_scalars(&[9], DType::F32, slow).unwrap());
        for dtype in [DType::F32, DType::F64] {
            let d = Draw::Normal {
                shape: vec![7],
                dtype,
                mean: 1.0,
                std: 0.5,
            };
            let fast = random(&d, 77, &ctx(3, 1), None).unwrap();
            let slow = normal(&s, 7, dtype, 1.0, 0.5);
            assert_eq!(fast, from_scalars(&[7], dtype, slow).unwrap());
        }
    }

    #[test]
    fn integers_cover_their_range_evenly() {
        let d = Draw::Uniform {
            shape: vec![60_000],
            lo: Scalar::I32(-3),
            hi: Scalar::I32(3),
        };
        let t = random(&d, 11, &ctx(0, 0), None).unwrap();
        let mut counts = [0usize; 6];
        for v in t.as_array::<i32>().unwrap() {
            counts[(v + 3) as usize] += 1;
        }
        // Each of 6 values 10000 times, within 5 standard errors (about 456).
        assert!(
            counts.iter().all(|&c| c.abs_diff(10_000) < 460),
            "{counts:?}"
        );
        let full = Draw::Uniform {
            shape: vec![1000],
            lo: Scalar::U8(0),
            hi: Scalar::U8(255),
        };
        let t = random(&full, 1, &ctx(0, 0), None).unwrap();
        assert!(t.as_array::<u8>().unwrap().iter().all(|&v| v < 255));
    }

    #[test]
    fn float_bounds_stay_below_hi() {
        // A range whose width rounds up in f32: values near `hi` must stay below it.
        assert_eq!(
            float_in(DType::F32, 1.0, 1.0000001, 0.9999999),
            Scalar::F32(1.0)
        );
        let hi = 1.0f32 + f32::EPSILON;
        assert_eq!(
            float_in(DType::F32, 1.0, f64::from(hi), 0.99),
            Scalar::F32(1.0)
        );
        assert_eq!(
            float_in(DType::F64, -1.0, 0.0, 1.0),
            Scalar::F64(-f64::from_bits(1))
        );
        // The largest f16 below 1.0 is 0x3BFF; below 0 comes the smallest negative.
        assert_eq!(below_bits(f16::ONE.to_bits()), 0x3BFF);
        assert_eq!(below_bits(0), 0x8001);
    }

    #[test]
    fn crop_flip_and_brightness() {
        let img = Tensor::from_vec(&[3, 4, 2], (0..24u8).collect()).unwrap();
        // Over many positions the crop takes every offset, and the window is a real slice.
        let crop = Draw::Crop {
            size: vec![2, 2, 2],
        };
        let mut seen = std::collections::BTreeSet::new();
        for pos in 0..200 {
            let out = random(&crop, 1, &ctx(pos, 0), Some(&img)).unwrap();
            let a = out.as_array::<u8>().unwrap();
            let first = a[[0, 0, 0]];
            let (top, left) = (first / 8, (first % 8) / 2);
            assert_eq!(a[[1, 1, 1]], first + 8 + 2 + 1);
            seen.insert((top, left));
        }
        assert_eq!(seen.len(), 2 * 3);
        let too_big = Draw::Crop {
            size: vec![4, 2, 2],
        };
        assert!(random(&too_big, 1, &ctx(0, 0), Some(&img)).is_err());
        // A flip is the reversed width axis or the image itself, about half the time each.
        let flipped = super::super::reverse(&img, &[1]).unwrap();
        let mut flips = 0;
        for pos in 0..1000 {
            let out = random(&Draw::FlipLeftRight, 2, &ctx(pos, 0), Some(&img)).unwrap();
            if out == flipped {
                flips += 1;
            } else {
                assert_eq!(out, img);
            }
        }
        assert!((430..570).contains(&flips), "{flips}");
        // Brightness on u8 follows TF's convert_image_dtype round trip, saturating.
        let px = Tensor::from_vec(&[1, 3, 1], vec![0u8, 128, 255]).unwrap();
        for pos in 0..50 {
            let out = random(
                &Draw::Brightness { max_delta: 0.5 },
                3,
                &ctx(pos, 0),
                Some(&px),
            )
            .unwrap();
            let d = scalar_f64(
                uniform(
                    &ElementStream::new(3, pos, 0),
                    1,
                    Scalar::F32(-0.5),
                    Scalar::F32(0.5),
                )[0],
            ) as f32;
            let want: Vec<u8> = [0u8, 128, 255]
                .iter()
                .map(|&x| {
                    ((f32::from(x) * (1.0f64 / 255.0) as f32 + d) * 255.5).clamp(0.0, 255.0) as u8
                })
                .collect();
            assert_eq!(
                out.as_array::<u8>()
                    .unwrap()
                    .iter()
                    .copied()
                    .collect::<Vec<_>>(),
                want
            );
        }
    }
}
