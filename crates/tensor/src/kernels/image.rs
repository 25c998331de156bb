//! Image kernels: `resize` as `tf.image.resize` computes it (half-pixel centres), and `crop`.
//!
//! Images are `[..., height, width, channels]`: every leading axis is a batch axis, so the
//! same kernel serves one image and a batch of them (what `vmap` needs). The arithmetic
//! follows TensorFlow's CPU kernels step by step in `f32` (`resize_bilinear_op.cc`,
//! `resize_nearest_neighbor_op.cc`, `resize_bicubic_op.cc`, `resize_area_op.cc` and, with
//! `antialias`, `scale_and_translate_op.cc`), including where TF rounds a coordinate and in
//! which order it sums, so results agree with TF's to a few ulps rather than merely
//! resembling them; the `image` crate's resampling uses other conventions.

mod bilinear_avx2;
pub mod decode;
mod jpeg;
mod jpeg_avx2;

use super::{KernelError, cast, checked_len};
use crate::{DType, Tensor, map_same};
use ndarray::{ArcArray, IxDyn};

/// How `resize` samples (`method:`), named as `tf.image.ResizeMethod` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResizeMethod {
    /// Linear interpolation between the 2×2 nearest pixels (the default).
    Bilinear,
    /// The nearest pixel; keeps the input dtype.
    Nearest,
    /// The average over the area each output pixel covers.
    Area,
    /// Keys cubic interpolation (a = -0.5) over the 4×4 nearest pixels.
    Bicubic,
}

impl ResizeMethod {
    /// Every method, in the order the documentation lists them.
    pub const ALL: [ResizeMethod; 4] = [
        ResizeMethod::Bilinear,
        ResizeMethod::Nearest,
        ResizeMethod::Area,
        ResizeMethod::Bicubic,
    ];

    /// The name written in source and printed in the IR.
    pub fn name(self) -> &'static str {
        match self {
            ResizeMethod::Bilinear => "bilinear",
            ResizeMethod::Nearest => "nearest",
            ResizeMethod::Area => "area",
            ResizeMethod::Bicubic => "bicubic",
        }
    }

    /// The method called `name`.
    pub fn from_name(name: &str) -> Option<ResizeMethod> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The dtype `resize` gives for an input of dtype `input`: `f32`, except `nearest`,
    /// which copies pixels and so keeps the dtype (as TF).
    pub fn result_dtype(self, input: DType) -> DType {
        match self {
            ResizeMethod::Nearest => input,
            _ => DType::F32,
        }
    }
}

/// The geometry of an image tensor `[..., h, w, c]`.
#[derive(Clone, Copy, Debug)]
struct Geom {
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
}

fn geometry(x: &Tensor, op: &str) -> Result<Geom, KernelError> {
    let s = x.shape();
    if s.len() < 3 {
        return Err(KernelError::InvalidArgument(format!(
            "`{op}` needs an image of shape [height, width, channels] (or a batch of them), found shape {s:?}"
        )));
    }
    let r = s.len();
    Ok(Geom {
        batch: s[..r - 3].iter().product(),
        h: s[r - 3],
        w: s[r - 2],
        c: s[r - 1],
    })
}

/// The shape of `x` with its height and width replaced.
fn with_hw(x: &Tensor, h: usize, w: usize) -> Vec<usize> {
    let mut s = x.shape().to_vec();
    let r = s.len();
    s[r - 3] = h;
    s[r - 2] = w;
    s
}

/// `tf.image.resize(x, size, method, antialias)` on `[..., h, w, c]`: `f32` out, except
/// `nearest`, which keeps the dtype. `antialias` changes `bilinear` and `bicubic` when
/// shrinking (TF's `scale_and_translate` with a widened kernel); `area` always averages and
/// `nearest` ignores it, as in TF.
pub fn resize(
    x: &Tensor,
    size: [usize; 2],
    method: ResizeMethod,
    antialias: bool,
) -> Result<Tensor, KernelError> {
    let g = geometry(x, "resize")?;
    let [oh, ow] = size;
    if oh == 0 || ow == 0 {
        return Err(KernelError::InvalidArgument(format!(
            "`resize` needs a positive size, found [{oh}, {ow}]"
        )));
    }
    if x.dtype() == DType::Bool {
        return Err(KernelError::DType("`resize` does not accept bool".into()));
    }
    let shape = with_hw(x, oh, ow);
    let n = checked_len(&shape, method.result_dtype(x.dtype()).size_bytes())?;
    if n == 0 {
        let out = Tensor::from_vec::<f32>(&shape, vec![]).expect("empty");
        return Ok(cast(&out, method.result_dtype(x.dtype())));
    }
    if g.h == 0 || g.w == 0 {
        return Err(KernelError::InvalidArgument(format!(
            "`resize` of an empty image ({} x {})",
            g.h, g.w
        )));
    }
    if method == ResizeMethod::Nearest {
        let ys = nearest_indices(g.h, oh);
        let xs = nearest_indices(g.w, ow);
        return Ok(map_same!(x, a => {
            let a = a.as_standard_layout();
            let src = a.as_slice().expect("standard layout");
            let mut out = Vec::with_capacity(n);
            for b in 0..g.batch {
                let img = &src[b * g.h * g.w * g.c..];
                for &y in &ys {
                    for &xi in &xs {
                        let p = (y * g.w + xi) * g.c;
                        out.extend_from_slice(&img[p..p + g.c]);
                    }
                }
            }
            ArcArray::from_shape_vec(IxDyn(&shape), out).expect("length matches the shape")
        }));
    }
    if let (ResizeMethod::Bilinear, false, Some(a)) = (method, antialias, x.as_array::<u8>()) {
        // Decoded images: sampled straight from the bytes. Converting a `u8` to `f32` is
        // exact, so this is what converting the whole image first gives, without writing
        // an `f32` copy of every pixel (most of them read once, by one output).
        let a = a.as_standard_layout();
        let src = a.as_slice().expect("standard layout");
        // Filled row by row (no zeroing pass over the whole output first).
        let mut out = Vec::with_capacity(n);
        let in_img = g.h * g.w * g.c;
        // Compiled for AVX2 where the CPU has it: the lerps are `f32` sub, mul and add
        // (never fused: Rust does not contract them), so only the vector width changes.
        super::simd::with_avx2(
            #[inline(always)]
            || {
                for img in src.chunks(in_img) {
                    bilinear_u8(img, g, oh, ow, &mut out);
                }
            },
        );
        return Ok(Tensor::from_vec(&shape, out).expect("length matches the shape"));
    }
    let xf = cast(x, DType::F32);
    let a = xf.as_array::<f32>().expect("cast to f32");
    let a = a.as_standard_layout();
    let src = a.as_slice().expect("standard layout");
    let mut out = Vec::with_capacity(n);
    let in_img = g.h * g.w * g.c;
    let out_img = oh * ow * g.c;
    for b in 0..g.batch {
        let img = &src[b * in_img..(b + 1) * in_img];
        let dst = &mut out;
        match (method, antialias) {
            (ResizeMethod::Bilinear, false) => bilinear(img, |v| v, g, oh, ow, dst),
            (ResizeMethod::Bicubic, false) => bicubic(img, g, oh, ow, zeroed_tail(dst, out_img)),
            (ResizeMethod::Area, _) => area(img, g, oh, ow, zeroed_tail(dst, out_img)),
            (ResizeMethod::Bilinear, true) => {
                scale_and_translate(img, g, oh, ow, &Triangle, zeroed_tail(dst, out_img))
            }
            (ResizeMethod::Bicubic, true) => {
                scale_and_translate(img, g, oh, ow, &KeysCubic, zeroed_tail(dst, out_img))
            }
            (ResizeMethod::Nearest, _) => unreachable!("handled above"),
        }
    }
    Ok(Tensor::from_vec(&shape, out).expect("length matches the shape"))
}

/// `n` zeros appended to `out`, to be written by a kernel that fills a slice.
fn zeroed_tail(out: &mut Vec<f32>, n: usize) -> &mut [f32] {
    let start = out.len();
    out.resize(start + n, 0.0);
    &mut out[start..]
}

/// TF's `CalculateResizeScale` without `align_corners`: in / out, in `f32`.
fn resize_scale(input: usize, output: usize) -> f32 {
    input as f32 / output as f32
}

/// The source index of each output index for `nearest` with half-pixel centres
/// (`HalfPixelScalerForNN`: no -0.5, then floor, clamped).
fn nearest_indices(input: usize, output: usize) -> Vec<usize> {
    let scale = resize_scale(input, output);
    (0..output)
        .map(|i| {
            let v = ((i as f32 + 0.5) * scale).floor() as i64;
            v.clamp(0, input as i64 - 1) as usize
        })
        .collect()
}

/// Half-pixel centre mapping of an output index to an input coordinate.
fn half_pixel(i: usize, scale: f32) -> f32 {
    (i as f32 + 0.5) * scale - 0.5
}

/// One axis of bilinear interpolation: the lower and upper source index and the weight of
/// the upper one (TF's `compute_interpolation_weights`).
fn linear_axis(input: usize, output: usize) -> Vec<(usize, usize, f32)> {
    let scale = resize_scale(input, output);
    (0..output)
        .map(|i| {
            let v = half_pixel(i, scale);
            let f = v.floor();
            let lower = (f as i64).max(0) as usize;
            let upper = (v.ceil() as i64).min(input as i64 - 1).max(0) as usize;
            (lower, upper, v - f)
        })
        .collect()
}

/// One image, `[h, w, c]` of `T` read as `f32` by `to_f32`, resized bilinearly and
/// appended to `dst`.
/// TF's `compute_lerp` operation for operation (`top + (bottom - top) * dy` of two
/// horizontal lerps `left + (right - left) * dx`), computed in two passes: each source row
/// a pair of output rows needs is lerped horizontally once (consecutive output rows share
/// rows), then the vertical lerp runs over whole rows, where it vectorizes.
fn bilinear<T: Copy>(
    src: &[T],
    to_f32: impl Fn(T) -> f32,
    g: Geom,
    oh: usize,
    ow: usize,
    dst: &mut Vec<f32>,
) {
    let c = g.c;
    let row = g.w * c;
    // Per output column and channel: the two source offsets in a row, and the weight.
    let cols: Vec<(usize, usize, f32)> = linear_axis(g.w, ow)
        .into_iter()
        .flat_map(|(x0, x1, dx)| (0..c).map(move |ch| (x0 * c + ch, x1 * c + ch, dx)))
        .collect();
    let lerp_row = |y: usize, out: &mut [f32]| {
        let r = &src[y * row..(y + 1) * row];
        for (o, &(a, b, dx)) in out.iter_mut().zip(&cols) {
            let (left, right) = (to_f32(r[a]), to_f32(r[b]));
            *o = left + (right - left) * dx;
        }
    };
    bilinear_rows(g, oh, ow * c, dst, &mut Closure(lerp_row));
}

/// The horizontal pass of `bilinear`: one source row lerped into `out`.
trait LerpRow {
    fn lerp_row(&mut self, y: usize, out: &mut [f32]);
}

/// A closure as a `LerpRow`.
struct Closure<F>(F);

impl<F: FnMut(usize, &mut [f32])> LerpRow for Closure<F> {
    #[inline(always)]
    fn lerp_row(&mut self, y: usize, out: &mut [f32]) {
        (self.0)(y, out)
    }
}

/// The horizontal pass of `bilinear` for a `u8` image, with the same operations in the
/// same order: it first gathers each output value's left and right source bytes into two
/// rows, so that the lerp itself (and the conversion to `f32`, which is exact) runs over
/// whole rows and vectorizes; gathering and lerping in one loop kept every value scalar.
/// With at most four channels one 8-byte load (from a copy of the row with room to read
/// past its end) holds a pixel's left neighbour and the pixel after it, and each moves as
/// one `u32` (the extra bytes land where the next pixel's overwrite them, or in the
/// padding). The right neighbour is always taken to be that next pixel: where TF's two
/// neighbours are the same pixel (at the edges, or on an exact source coordinate) its
/// `left + (right - left) * dx` is `left + 0`, and with the weight set to 0 instead the
/// lerp gives `left + (±0)`, which is `left` too (the bytes are finite). With two to four
/// channels and AVX2 the same rule runs eight values at a time (`bilinear_avx2`).
/// How far past a row's end `BytesRow`'s loads may read (the vector pass's 16-byte loads
/// at a pixel's left neighbour).
const ROW_PAD: usize = 16;

struct BytesRow<'a> {
    src: &'a [u8],
    c: usize,
    row: usize,
    width: usize,
    whole_pixels: bool,
    /// Per output pixel when `whole_pixels`: the left neighbour's offset in the row.
    pixels: Vec<u32>,
    /// Per output value otherwise: both neighbours' offsets.
    offsets: Vec<(usize, usize)>,
    /// Per output value (0 where `whole_pixels` reads a pixel's neighbour for itself).
    weights: Vec<f32>,
    /// The vector pass's plan, when `whole_pixels` with two to four channels.
    lanes: Option<bilinear_avx2::Lanes>,
    padded: Vec<u8>,
    lefts: Vec<u8>,
    rights: Vec<u8>,
}

impl<'a> BytesRow<'a> {
    fn new(src: &'a [u8], g: Geom, ow: usize) -> BytesRow<'a> {
        let c = g.c;
        let (row, width) = (g.w * c, ow * c);
        let axis = linear_axis(g.w, ow);
        // The neighbours are the same pixel or adjacent ones (rounding aside: checked), and
        // offsets fit `u32` (a row of 2^32 bytes is past every limit on a tensor anyway).
        let whole_pixels = c <= 4
            && u32::try_from(row).is_ok()
            && axis.iter().all(|&(x0, x1, _)| x1 == x0 || x1 == x0 + 1);
        let weights = axis
            .iter()
            .flat_map(|&(x0, x1, dx)| {
                std::iter::repeat_n(if whole_pixels && x1 == x0 { 0.0 } else { dx }, c)
            })
            .collect();
        let (mut pixels, mut offsets, mut lanes) = (Vec::new(), Vec::new(), None);
        if whole_pixels {
            pixels = axis.iter().map(|&(x0, _, _)| (x0 * c) as u32).collect();
            lanes = bilinear_avx2::Lanes::new(&pixels, c);
        } else {
            offsets = axis
                .iter()
                .flat_map(|&(x0, x1, _)| (0..c).map(move |ch| (x0 * c + ch, x1 * c + ch)))
                .collect();
        }
        BytesRow {
            src,
            c,
            row,
            width,
            whole_pixels,
            pixels,
            offsets,
            weights,
            lanes,
            padded: vec![0; row + ROW_PAD],
            lefts: vec![0; width + 4],
            rights: vec![0; width + 4],
        }
    }
}

impl LerpRow for BytesRow<'_> {
    #[inline(always)]
    fn lerp_row(&mut self, y: usize, out: &mut [f32]) {
        let (c, row, width) = (self.c, self.row, self.width);
        // Slices, not the vectors: a byte stored through a vector's buffer could (for the
        // compiler) change the vector's own pointer, which would then be reloaded per store.
        let (padded, lefts, rights) = (
            &mut self.padded[..],
            &mut self.lefts[..],
            &mut self.rights[..],
        );
        let (offsets, weights) = (&self.offsets[..], &self.weights[..width]);
        let r = &self.src[y * row..(y + 1) * row];
        // Values before `first` are done by the vector pass.
        let mut first = 0;
        if self.whole_pixels {
            // The loads read up to `ROW_PAD` bytes past the row: in place where the image
            // has them (every row but the last), from the padded copy otherwise.
            let from = match self.src.get(y * row..(y + 1) * row + ROW_PAD) {
                Some(wide) => wide,
                None => {
                    padded[..row].copy_from_slice(r);
                    &padded[..]
                }
            };
            if let Some(lanes) = &self.lanes {
                let done = bilinear_avx2::lerp_row(from, lanes, weights, &mut out[..width]);
                // The rest from the first pixel not wholly done (its first values again,
                // the same way).
                first = done / c * c;
            }
            gather_pixels(
                from,
                &self.pixels[first / c..],
                c,
                &mut lefts[first..],
                &mut rights[first..],
            );
        } else {
            for ((l, rt), &(a, b)) in lefts.iter_mut().zip(rights.iter_mut()).zip(offsets) {
                *l = r[a];
                *rt = r[b];
            }
        }
        let (lefts, rights) = (&lefts[first..width], &rights[first..width]);
        let (out, weights) = (&mut out[first..width], &weights[first..]);
        for (((o, &l), &rt), &dx) in out.iter_mut().zip(lefts).zip(rights).zip(weights) {
            let (left, right) = (f32::from(l), f32::from(rt));
            *o = left + (right - left) * dx;
        }
    }
}

/// `BytesRow`'s gather with at most four channels: per output pixel, the bytes of its left
/// neighbour and of the pixel after it (and up to `4 - c` more) into `lefts` and `rights`.
/// Out of line: inside the image loop it ran short of registers and reloaded its slices
/// per pixel.
#[inline(never)]
fn gather_pixels(padded: &[u8], pixels: &[u32], c: usize, lefts: &mut [u8], rights: &mut [u8]) {
    let mut at = 0;
    for &a in pixels {
        let a = a as usize;
        let both = u64::from_le_bytes(padded[a..a + 8].try_into().expect("8 bytes"));
        lefts[at..at + 4].copy_from_slice(&(both as u32).to_le_bytes());
        rights[at..at + 4].copy_from_slice(&((both >> (8 * c)) as u32).to_le_bytes());
        at += c;
    }
}

/// `bilinear` of a `u8` image (see `BytesRow`), appended to `dst`.
#[inline(always)]
fn bilinear_u8(src: &[u8], g: Geom, oh: usize, ow: usize, dst: &mut Vec<f32>) {
    bilinear_rows(g, oh, ow * g.c, dst, &mut BytesRow::new(src, g, ow));
}

/// The vertical pass of `bilinear`, appending `oh` rows to `dst`: `rows.lerp_row(y, out)`
/// writes source row `y` lerped horizontally (`width` values); each row is lerped once even
/// when two output rows use it.
#[inline(always)]
fn bilinear_rows(g: Geom, oh: usize, width: usize, dst: &mut Vec<f32>, rows: &mut impl LerpRow) {
    let (mut top, mut bottom) = (vec![0f32; width], vec![0f32; width]);
    let (mut top_y, mut bottom_y) = (usize::MAX, usize::MAX);
    dst.reserve(oh * width);
    for &(y0, y1, dy) in &linear_axis(g.h, oh) {
        if y0 != top_y {
            if y0 == bottom_y {
                std::mem::swap(&mut top, &mut bottom);
                std::mem::swap(&mut top_y, &mut bottom_y);
            } else {
                rows.lerp_row(y0, &mut top);
                top_y = y0;
            }
        }
        if y1 != bottom_y {
            if y1 == top_y {
                bottom.copy_from_slice(&top);
            } else {
                rows.lerp_row(y1, &mut bottom);
            }
            bottom_y = y1;
        }
        // Zeroing one row (in L1) and writing it keeps the loop a plain vectorized one.
        let start = dst.len();
        dst.resize(start + width, 0.0);
        for ((o, &t), &b) in dst[start..].iter_mut().zip(&top).zip(&bottom) {
            *o = t + (b - t) * dy;
        }
    }
}

/// The Keys cubic weights TF tabulates at 1/1024 steps (a = -0.5 with half-pixel centres):
/// entry `2i` is the weight at distance `i/1024`, entry `2i + 1` at `1 + i/1024`. TF looks
/// weights up in this table rather than evaluating the polynomial, and the rounding to the
/// table shows at 0–255 scale, so it is rebuilt the same way (computed in f64, stored f32).
fn cubic_table() -> &'static [f32] {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let a = -0.5f64;
        let mut t = vec![0f32; (CUBIC_TABLE + 1) * 2];
        for i in 0..=CUBIC_TABLE {
            let x = (i as f64 / CUBIC_TABLE as f64) as f32;
            let xd = x as f64;
            t[i * 2] = (((a + 2.0) * xd - (a + 3.0)) * xd * xd + 1.0) as f32;
            let x1 = (xd + 1.0) as f32 as f64;
            t[i * 2 + 1] = (((a * x1 - 5.0 * a) * x1 + 8.0 * a) * x1 - 4.0 * a) as f32;
        }
        t
    })
}

const CUBIC_TABLE: usize = 1 << 10;

/// Four source indices and their weights along one axis (TF's `GetWeightsAndIndices` with
/// Keys' border rule: taps outside the image get weight 0 and the rest are renormalized).
fn cubic_axis(input: usize, output: usize) -> Vec<([usize; 4], [f32; 4])> {
    let table = cubic_table();
    let scale = resize_scale(input, output);
    let limit = input as i64;
    let bound = |v: i64| v.clamp(0, limit - 1);
    (0..output)
        .map(|i| {
            let loc_f = half_pixel(i, scale);
            let loc = loc_f.floor() as i64;
            let delta = loc_f - loc as f32;
            // lrintf: round half to even.
            let offset = (delta * CUBIC_TABLE as f32).round_ties_even() as usize;
            let taps = [loc - 1, loc, loc + 1, loc + 2];
            let raw = [
                table[offset * 2 + 1],
                table[offset * 2],
                table[(CUBIC_TABLE - offset) * 2],
                table[(CUBIC_TABLE - offset) * 2 + 1],
            ];
            let mut idx = [0usize; 4];
            let mut w = [0f32; 4];
            for k in 0..4 {
                let b = bound(taps[k]);
                idx[k] = b as usize;
                w[k] = if b == taps[k] { raw[k] } else { 0.0 };
            }
            let sum = w[0] + w[1] + w[2] + w[3];
            if sum.abs() >= 1000.0 * f32::MIN_POSITIVE {
                let inv = 1.0 / sum;
                for wk in &mut w {
                    *wk *= inv;
                }
            }
            (idx, w)
        })
        .collect()
}

fn interp4(w: &[f32; 4], v: [f32; 4]) -> f32 {
    v[0] * w[0] + v[1] * w[1] + v[2] * w[2] + v[3] * w[3]
}

fn bicubic(src: &[f32], g: Geom, oh: usize, ow: usize, dst: &mut [f32]) {
    let ys = cubic_axis(g.h, oh);
    let xs = cubic_axis(g.w, ow);
    let c = g.c;
    let row = g.w * c;
    let mut o = 0;
    for (yi, yw) in &ys {
        let rows = yi.map(|y| &src[y * row..(y + 1) * row]);
        for (xi, xw) in &xs {
            for ch in 0..c {
                // Along y first for each of the four columns, then along x (TF's order).
                let col = |k: usize| interp4(yw, [0, 1, 2, 3].map(|r| rows[r][xi[k] * c + ch]));
                dst[o] = interp4(xw, [col(0), col(1), col(2), col(3)]);
                o += 1;
            }
        }
    }
}

/// One axis of area resampling: the covered source range and the weights of its first and
/// last cells (TF's `CachedInterpolation` in `resize_area_op.cc`).
struct AreaSpan {
    start: i64,
    end: i64,
    start_scale: f32,
    end_minus_one_scale: f32,
}

fn area_weight(v: i64, lo: f32, hi: f32, scale: f32) -> f32 {
    if (v as f32) < lo {
        if (v + 1) as f32 > hi {
            scale
        } else {
            (v + 1) as f32 - lo
        }
    } else if (v + 1) as f32 > hi {
        hi - v as f32
    } else {
        1.0
    }
}

fn area(src: &[f32], g: Geom, oh: usize, ow: usize, dst: &mut [f32]) {
    let hs = resize_scale(g.h, oh);
    let ws = resize_scale(g.w, ow);
    let xs: Vec<AreaSpan> = (0..ow)
        .map(|x| {
            let lo = x as f32 * ws;
            let hi = (x + 1) as f32 * ws;
            let start = lo.floor() as i64;
            let end = hi.ceil() as i64;
            AreaSpan {
                start,
                end,
                start_scale: area_weight(start, lo, hi, ws),
                end_minus_one_scale: area_weight(end - 1, lo, hi, ws),
            }
        })
        .collect();
    let scale = (1.0f64 / f64::from(hs * ws)) as f32;
    let c = g.c;
    let row = g.w * c;
    let bound = |v: i64, limit: usize| v.clamp(0, limit as i64 - 1) as usize;
    let mut y_rows: Vec<(usize, f32)> = Vec::new();
    let mut o = 0;
    for y in 0..oh {
        let lo = y as f32 * hs;
        let hi = (y + 1) as f32 * hs;
        y_rows.clear();
        for i in lo.floor() as i64..hi.ceil() as i64 {
            y_rows.push((bound(i, g.h), area_weight(i, lo, hi, hs)));
        }
        for xs in &xs {
            for ch in 0..c {
                let mut sum = 0f32;
                for &(yr, y_scale) in &y_rows {
                    let r = &src[yr * row..];
                    let px = |x: i64| r[bound(x, g.w) * c + ch];
                    let mut sum_y = px(xs.start) * xs.start_scale;
                    if xs.start + 1 != xs.end {
                        for x in xs.start + 1..xs.end - 1 {
                            sum_y += px(x);
                        }
                        sum_y += px(xs.end - 1) * xs.end_minus_one_scale;
                    }
                    sum += sum_y * y_scale;
                }
                dst[o] = sum * scale;
                o += 1;
            }
        }
    }
}

/// A sampling kernel of `scale_and_translate` (TF's `sampling_kernels.h`).
trait SamplingKernel {
    fn radius(&self) -> f32;
    fn weight(&self, x: f32) -> f32;
}

struct Triangle;

impl SamplingKernel for Triangle {
    fn radius(&self) -> f32 {
        1.0
    }
    fn weight(&self, x: f32) -> f32 {
        let x = x.abs();
        if x < 1.0 { 1.0 - x } else { 0.0 }
    }
}

struct KeysCubic;

impl SamplingKernel for KeysCubic {
    fn radius(&self) -> f32 {
        2.0
    }
    fn weight(&self, x: f32) -> f32 {
        let x = x.abs();
        if x >= 2.0 {
            0.0
        } else if x >= 1.0 {
            ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
        } else {
            ((1.5 * x - 2.5) * x) * x + 1.0
        }
    }
}

/// The sampling spans of one axis: per output index, the first source index and
/// `span_size` weights (zero past the span), TF's `ComputeSpansCore` with no translation.
fn spans(
    kernel: &dyn SamplingKernel,
    output: usize,
    input: usize,
) -> (usize, Vec<usize>, Vec<f32>) {
    let scale = output as f32 / input as f32;
    let inv_scale = (1.0f64 / f64::from(scale)) as f32;
    let kernel_scale = inv_scale.max(1.0);
    let radius = kernel.radius() * kernel_scale;
    let span_size = ((2 * radius.ceil() as usize) + 1).min(input);
    let one_over_kernel_scale = 1.0 / kernel_scale;
    let mut starts = vec![0usize; output];
    let mut weights = vec![0f32; span_size * output];
    let mut temp = Vec::new();
    for x in 0..output {
        let sample = (x as f32 + 0.5) * inv_scale;
        if sample < 0.0 || sample > input as f32 {
            continue;
        }
        let last = input as i64 - 1;
        let start = ((sample - radius - 0.5).ceil() as i64).clamp(0, last);
        let end = ((sample + radius - 0.5).floor() as i64).clamp(0, last) + 1;
        temp.clear();
        let mut total = 0f32;
        for s in start..end {
            let pos = s as f32 + 0.5 - sample;
            let w = kernel.weight((pos * one_over_kernel_scale).abs());
            total += w;
            temp.push(w);
        }
        if total.abs() >= 1000.0 * f32::MIN_POSITIVE {
            let inv = 1.0 / total;
            for (k, w) in temp.iter().enumerate().take(span_size) {
                weights[x * span_size + k] = w * inv;
            }
        }
        starts[x] = start as usize;
    }
    (span_size, starts, weights)
}

fn scale_and_translate(
    src: &[f32],
    g: Geom,
    oh: usize,
    ow: usize,
    kernel: &dyn SamplingKernel,
    dst: &mut [f32],
) {
    let c = g.c;
    let (rsize, rstarts, rweights) = spans(kernel, oh, g.h);
    let (csize, cstarts, cweights) = spans(kernel, ow, g.w);
    // Rows first into [oh, w, c], then columns (TF's `GatherRows`, `GatherColumns`).
    let row = g.w * c;
    let mut mid = vec![0f32; oh * row];
    for y in 0..oh {
        let out = &mut mid[y * row..(y + 1) * row];
        let start = rstarts[y];
        let real = (start + rsize).min(g.h) - start;
        for k in 0..real {
            let w = rweights[y * rsize + k];
            let input = &src[(start + k) * row..(start + k + 1) * row];
            for (o, v) in out.iter_mut().zip(input) {
                *o += w * v;
            }
        }
    }
    for y in 0..oh {
        let input = &mid[y * row..(y + 1) * row];
        for x in 0..ow {
            let start = cstarts[x];
            let real = (start + csize).min(g.w) - start;
            let out = &mut dst[(y * ow + x) * c..(y * ow + x + 1) * c];
            for k in 0..real {
                let w = cweights[x * csize + k];
                let px = &input[(start + k) * c..(start + k + 1) * c];
                for (o, v) in out.iter_mut().zip(px) {
                    *o += w * v;
                }
            }
        }
    }
}

/// `tf.image.crop_to_bounding_box`: the `h` × `w` window at (`top`, `left`) of every image
/// in `x` (`[..., height, width, channels]`). A window outside the image is an error.
pub fn crop(x: &Tensor, top: i64, left: i64, h: usize, w: usize) -> Result<Tensor, KernelError> {
    let g = geometry(x, "crop")?;
    if top < 0
        || left < 0
        || (top as u128 + h as u128) > g.h as u128
        || (left as u128 + w as u128) > g.w as u128
    {
        return Err(KernelError::InvalidArgument(format!(
            "the crop window of {h} x {w} at row {top}, column {left} does not fit in an image of {} x {}",
            g.h, g.w
        )));
    }
    let (top, left) = (top as usize, left as usize);
    let shape = with_hw(x, h, w);
    let n = checked_len(&shape, x.dtype().size_bytes())?;
    Ok(map_same!(x, a => {
        let a = a.as_standard_layout();
        let src = a.as_slice().expect("standard layout");
        let mut out = Vec::with_capacity(n);
        for b in 0..g.batch {
            let img = &src[b * g.h * g.w * g.c..];
            for y in top..top + h {
                let p = (y * g.w + left) * g.c;
                out.extend_from_slice(&img[p..p + w * g.c]);
            }
        }
        ArcArray::from_shape_vec(IxDyn(&shape), out).expect("length matches the shape")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass bilinear resize the two-pass one replaced: four reads and three lerps
    /// per output, in TF's order.
    fn bilinear_one_pass(src: &[f32], g: Geom, oh: usize, ow: usize) -> Vec<f32> {
        let (ys, xs, c, row) = (linear_axis(g.h, oh), linear_axis(g.w, ow), g.c, g.w * g.c);
        let mut dst = Vec::with_capacity(oh * ow * c);
        for &(y0, y1, dy) in &ys {
            for &(x0, x1, dx) in &xs {
                for ch in 0..c {
                    let (tl, tr) = (src[y0 * row + x0 * c + ch], src[y0 * row + x1 * c + ch]);
                    let (bl, br) = (src[y1 * row + x0 * c + ch], src[y1 * row + x1 * c + ch]);
                    let t = tl + (tr - tl) * dx;
                    let b = bl + (br - bl) * dx;
                    dst.push(t + (b - t) * dy);
                }
            }
        }
        dst
    }

    /// The two passes give the one-pass result to the bit: shrinking, growing, equal rows
    /// at the edges (`y0 == y1`), one and three channels.
    #[test]
    fn two_pass_bilinear_equals_one_pass() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for (h, w, c, oh, ow) in [
            (375, 500, 3, 224, 224),
            (7, 5, 1, 13, 2),
            (1, 1, 3, 4, 3),
            (9, 11, 3, 5, 17),
            (30, 4, 1, 31, 4),
        ] {
            let src: Vec<f32> = (0..h * w * c)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / 65536.0 - 50.0
                })
                .collect();
            let g = Geom { batch: 1, h, w, c };
            let mut two = Vec::new();
            bilinear(&src, |v| v, g, oh, ow, &mut two);
            let one = bilinear_one_pass(&src, g, oh, ow);
            assert!(
                two.iter()
                    .zip(&one)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{h}x{w}x{c} -> {oh}x{ow}"
            );
        }
    }

    /// Bilinear resizing samples a `u8` image straight from its bytes: every output equals,
    /// to the bit, resizing the image converted to `f32` first (TF's order), shrinking and
    /// growing, odd sizes, one and three channels, a batch.
    #[test]
    fn bilinear_from_bytes_equals_bilinear_of_the_f32_image() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for (shape, size) in [
            (vec![375usize, 500, 3], [224usize, 224]),
            (vec![7, 5, 1], [13, 2]),
            (vec![1, 1, 3], [4, 3]),
            (vec![2, 9, 11, 3], [5, 17]),
            // Every channel count of the whole-pixel gather, and one past it.
            (vec![6, 10, 4], [3, 7]),
            (vec![5, 4, 2], [9, 9]),
            (vec![3, 8, 1], [2, 3]),
            (vec![4, 6, 5], [3, 8]),
            // Rows of several eight-value groups and a tail (the AVX2 pass), shrinking and
            // growing, every start channel; equal widths (every `dx` 0, both neighbours
            // the same pixel).
            (vec![5, 40, 3], [4, 29]),
            (vec![3, 33, 2], [2, 50]),
            (vec![4, 17, 4], [3, 21]),
            (vec![6, 20, 3], [3, 20]),
            (vec![2, 3, 3, 3], [4, 40]),
            // One channel (no vector pass), growing: both neighbours one pixel at the edges.
            (vec![4, 5, 1], [3, 13]),
            // Shrinking past what one 16-byte load per lane holds (the two-load lanes).
            (vec![3, 64, 2], [2, 9]),
            (vec![3, 60, 3], [2, 19]),
        ] {
            let n: usize = shape.iter().product();
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let img = Tensor::from_vec(&shape, bytes).expect("shape");
            let direct = resize(&img, size, ResizeMethod::Bilinear, false).expect("resizes");
            let via = resize(&cast(&img, DType::F32), size, ResizeMethod::Bilinear, false)
                .expect("resizes");
            let (a, b) = (
                direct.as_array::<f32>().expect("f32"),
                via.as_array::<f32>().expect("f32"),
            );
            assert_eq!(a.shape(), b.shape());
            assert!(
                a.iter()
                    .zip(b.iter())
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{shape:?} -> {size:?}"
            );
        }
    }
}
