//! Image decoding: PNG (the `png` crate) and JPEG (`jpeg.rs`, libjpeg-turbo's arithmetic) bytes to
//! `u8[height, width, channels]`, with TensorFlow's channel conversions.
//!
//! Every decode reads the header first and checks the declared size against the same limits
//! as every tensor (at most 2^31 elements, `--max-memory`) before anything proportional to
//! it is allocated, so a small file declaring 100000 × 100000 pixels is refused at once.
//! Channel conversions follow libpng/libjpeg as TF configures them: colour to grey is
//! libpng's `png_set_rgb_to_gray` with TF's Rec. 601 weights (within 1 of TF) for PNG
//! and the luma plane itself for JPEG (libjpeg's `JCS_GRAYSCALE`); grey to colour repeats
//! the value; an added alpha is 255; a dropped alpha is dropped; 16-bit PNG samples keep
//! their high byte (`png_set_strip_16`).

use super::super::{KernelError, checked_len};
use crate::Tensor;
use std::io::Cursor;

/// Which decoder an op accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// `decode_png`: PNG only.
    Png,
    /// `decode_jpeg`: JPEG only.
    Jpeg,
    /// `decode_image`: whichever of the two the bytes are.
    Any,
}

impl ImageFormat {
    /// The op's name.
    pub fn op_name(self) -> &'static str {
        match self {
            ImageFormat::Png => "decode_png",
            ImageFormat::Jpeg => "decode_jpeg",
            ImageFormat::Any => "decode_image",
        }
    }
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = b"\xff\xd8\xff";

/// What the bytes look like.
fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(PNG_MAGIC) {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(JPEG_MAGIC) {
        Some(ImageFormat::Jpeg)
    } else {
        None
    }
}

fn bad(msg: impl Into<String>) -> KernelError {
    KernelError::BadImage(msg.into())
}

/// `decode_*` on a tensor: a `str[]` scalar of encoded bytes to `u8[height, width, C]`.
pub fn decode(x: &Tensor, format: ImageFormat, channels: usize) -> Result<Tensor, KernelError> {
    match x {
        Tensor::Str(a) if a.ndim() == 0 => {
            let bytes = a.iter().next().expect("a scalar has one element");
            decode_image(bytes, format, channels)
        }
        other => Err(KernelError::DType(format!(
            "`{}` takes the bytes of one image (str[]), found {}{:?}",
            format.op_name(),
            other.dtype().name(),
            other.shape()
        ))),
    }
}

/// Decodes one image to `u8[height, width, channels]`. `channels` is 0 (the image's own:
/// 1 grey, 2 grey + alpha, 3 colour, 4 colour + alpha), 1, 3 or 4.
pub fn decode_image(
    bytes: &[u8],
    format: ImageFormat,
    channels: usize,
) -> Result<Tensor, KernelError> {
    if !matches!(channels, 0 | 1 | 3 | 4) {
        return Err(KernelError::InvalidArgument(format!(
            "`channels` must be 0, 1, 3 or 4, not {channels}"
        )));
    }
    let found = sniff(bytes);
    let kind = match (format, found) {
        (ImageFormat::Any, Some(f)) => f,
        (ImageFormat::Any, None) => {
            return Err(bad(format!(
                "not a PNG or JPEG image ({})",
                describe_start(bytes)
            )));
        }
        (want, Some(f)) if want == f => f,
        (want, Some(f)) => {
            return Err(bad(format!(
                "`{}` was given a {} image; use `{}` or `decode_image`",
                want.op_name(),
                name(f),
                match f {
                    ImageFormat::Png => "decode_png",
                    _ => "decode_jpeg",
                }
            )));
        }
        (want, None) => {
            return Err(bad(format!(
                "not a {} image ({})",
                name(want),
                describe_start(bytes)
            )));
        }
    };
    match kind {
        ImageFormat::Png => decode_png(bytes, channels),
        _ => decode_jpeg(bytes, channels),
    }
}

fn name(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Any => "PNG or JPEG",
    }
}

/// How the bytes start, for "not an image" messages (an empty string, a text file, ...).
fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "the bytes are empty".into();
    }
    let head: String = bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    format!("{} bytes starting with {head}", bytes.len())
}

/// Refuses an image whose decoding would need more than the limits allow: the output
/// `[h, w, out_c]` and the decoder's own buffer of `work_bytes_per_pixel` per pixel.
fn check_size(
    h: usize,
    w: usize,
    out_c: usize,
    work_bytes_per_pixel: usize,
) -> Result<(), KernelError> {
    checked_len(&[h, w, out_c.max(1)], 1)?;
    checked_len(&[h, w, work_bytes_per_pixel.max(1)], 1)?;
    Ok(())
}

fn decode_png(bytes: &[u8], channels: usize) -> Result<Tensor, KernelError> {
    // No limit of the crate's own: the size is checked against pipec's limits below, and its
    // 64 MiB default would refuse large images pipec accepts.
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: usize::MAX });
    let (w, h, declared_c, most_bytes) = {
        let info = decoder
            .read_header_info()
            .map_err(|e| bad(format!("corrupt PNG: {e}")))?;
        // The most bytes per pixel the expanded image can have (a later tRNS chunk adds
        // an alpha channel; a palette expands to RGB or RGBA).
        let most_c = match info.color_type {
            png::ColorType::Grayscale | png::ColorType::GrayscaleAlpha => 2,
            _ => 4,
        };
        let sample = if info.bit_depth == png::BitDepth::Sixteen {
            2
        } else {
            1
        };
        // The image's own channels (a palette is colour), for the output's size.
        let own_c = match info.color_type {
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Rgba => 4,
            _ => 3,
        };
        let out_c = if channels == 0 { own_c } else { channels };
        (
            info.width as usize,
            info.height as usize,
            out_c,
            most_c * sample,
        )
    };
    // Palettes to RGB(A), fewer than 8 bits to 8, tRNS to an alpha channel: libpng's
    // `png_set_expand` as TF sets it up; 16-bit samples stay 16-bit here.
    decoder.set_transformations(png::Transformations::EXPAND);
    // The declared size, checked before the decoder allocates anything proportional to it.
    check_size(h, w, declared_c, most_bytes)?;
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(format!("corrupt PNG: {e}")))?;
    // The png crate (0.18) takes a palette's length on trust when it expands one and
    // indexes past a PLTE chunk that does not hold whole RGB entries.
    if let Some(palette) = reader.info().palette.as_deref()
        && palette.len() % 3 != 0
    {
        return Err(bad(format!(
            "corrupt PNG: a palette of {} bytes is not whole RGB entries",
            palette.len()
        )));
    }
    let (color, depth) = reader.output_color_type();
    let src_c = color.samples();
    let sample_bytes = match depth {
        png::BitDepth::Eight => 1,
        png::BitDepth::Sixteen => 2,
        other => return Err(bad(format!("unsupported PNG bit depth {other:?}"))),
    };
    let out_c = if channels == 0 { src_c } else { channels };
    check_size(h, w, out_c, src_c * sample_bytes)?;
    let len = reader
        .output_buffer_size()
        .filter(|&n| n == h * w * src_c * sample_bytes)
        .ok_or_else(|| {
            bad(format!(
                "corrupt PNG: unexpected {color:?} {depth:?} layout"
            ))
        })?;
    let mut raw = vec![0u8; len];
    reader
        .next_frame(&mut raw)
        .map_err(|e| bad(format!("corrupt or truncated PNG: {e}")))?;
    let samples: Vec<u8> = if sample_bytes == 2 {
        // Big-endian u16 samples; keep the high byte, as libpng's `png_set_strip_16`.
        raw.chunks_exact(2).map(|p| p[0]).collect()
    } else {
        raw
    };
    let out = convert_channels(samples, h * w, src_c, out_c, png_gray);
    Ok(Tensor::from_vec(&[h, w, out_c], out).expect("length matches the shape"))
}

/// libpng's `rgb_to_gray` as TF sets it up (Rec. 601 weights 0.299, 0.587, 0.114 in
/// 1/32768, truncated); a grey pixel (r = g = b) stays exactly itself. libpng's gamma
/// handling can move a value by one from this, which SPEC §13 allows.
fn png_gray(r: u8, g: u8, b: u8) -> u8 {
    if r == g && g == b {
        return r;
    }
    ((9798 * u32::from(r) + 19235 * u32::from(g) + 3735 * u32::from(b)) >> 15) as u8
}

/// Converts `n` pixels of `from` channels (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA) to `to`.
fn convert_channels(
    src: Vec<u8>,
    n: usize,
    from: usize,
    to: usize,
    gray: fn(u8, u8, u8) -> u8,
) -> Vec<u8> {
    if from == to {
        // The decoder's buffer itself: an image is too large to copy for nothing.
        return src;
    }
    let mut out = Vec::with_capacity(n * to);
    for p in src.chunks_exact(from) {
        let (rgb, alpha) = match from {
            1 => ([p[0]; 3], 255),
            2 => ([p[0]; 3], p[1]),
            3 => ([p[0], p[1], p[2]], 255),
            _ => ([p[0], p[1], p[2]], p[3]),
        };
        match to {
            1 if from <= 2 => out.push(p[0]),
            1 => out.push(gray(rgb[0], rgb[1], rgb[2])),
            2 => {
                out.push(if from <= 2 {
                    p[0]
                } else {
                    gray(rgb[0], rgb[1], rgb[2])
                });
                out.push(alpha);
            }
            3 => out.extend_from_slice(&rgb),
            _ => {
                out.extend_from_slice(&rgb);
                out.push(alpha);
            }
        }
    }
    out
}

fn decode_jpeg(bytes: &[u8], channels: usize) -> Result<Tensor, KernelError> {
    // The coefficients (2 bytes per sample of each component) are held besides the output.
    let check = |h: usize, w: usize, n: usize| {
        let out_c = match channels {
            0 if n == 1 => 1,
            0 => 3,
            c => c,
        };
        check_size(h, w, out_c, 2 * n)
    };
    let img = super::jpeg::decode(bytes, channels == 1, check)?;
    let out_c = if channels == 0 {
        img.channels
    } else {
        channels
    };
    let (h, w) = (img.height, img.width);
    let pixels = convert_channels(img.pixels, h * w, img.channels, out_c, png_gray);
    Ok(Tensor::from_vec(&[h, w, out_c], pixels).expect("length matches the shape"))
}
