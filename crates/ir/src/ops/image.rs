//! Image ops (SPEC §13): `resize` and `crop` on `[..., height, width, channels]`, and the
//! decoders (`str[]` bytes to `u8[?, ?, C]`). The
//! other image builtins (`flip_*`, `rgb_to_grayscale`, `adjust_*`) are lowered by the tracer
//! to existing ops.

use super::BatchRule;
use crate::function::OpKind;
use crate::types::{Dim, Shape, TensorType};
use pipec_tensor::kernels::image::decode::{self as kdecode, ImageFormat};
use pipec_tensor::kernels::image::{self as kimage, ResizeMethod};
use pipec_tensor::kernels::{self, KernelError};
use pipec_tensor::{DType, Tensor};

/// An image op; the attributes fix the output's height and width at trace time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ImageOp {
    /// `resize(img, [h, w], method:, antialias:)`: one operand, the image.
    Resize {
        /// Output height and width.
        size: [usize; 2],
        /// The sampling method.
        method: ResizeMethod,
        /// Whether shrinking filters first (bilinear and bicubic only, as in TF).
        antialias: bool,
    },
    /// `crop(img, top, left, h, w)`: operands image, top and left (integer scalars, known
    /// only at run time in general).
    Crop {
        /// Output height and width.
        size: [usize; 2],
    },
    /// `decode_png` / `decode_jpeg` / `decode_image(bytes, channels:)`: a `str[]` of encoded
    /// bytes to `u8[?, ?, C]` (`C` unknown for `channels: 0`, the image's own).
    Decode {
        /// Which formats the op accepts.
        format: ImageFormat,
        /// 0 (as stored), 1, 3 or 4.
        channels: usize,
    },
}

impl ImageOp {
    /// The IR mnemonic.
    pub fn name(&self) -> &'static str {
        match self {
            ImageOp::Resize { .. } => "resize",
            ImageOp::Crop { .. } => "crop",
            ImageOp::Decode { format, .. } => format.op_name(),
        }
    }

    /// The number of operands.
    pub fn arity(&self) -> usize {
        match self {
            ImageOp::Resize { .. } | ImageOp::Decode { .. } => 1,
            ImageOp::Crop { .. } => 3,
        }
    }

    /// The attributes as the IR prints them.
    pub fn attr_text(&self) -> String {
        match self {
            ImageOp::Resize {
                size,
                method,
                antialias,
            } => format!(
                "size=[{}, {}], method={}, antialias={antialias}",
                size[0],
                size[1],
                method.name()
            ),
            ImageOp::Crop { size } => format!("size=[{}, {}]", size[0], size[1]),
            ImageOp::Decode { channels, .. } => format!("channels={channels}"),
        }
    }
}

/// The image's type with its height and width replaced, after checking it is an image.
fn resized(x: &TensorType, size: [usize; 2], dtype: DType, op: &str) -> Result<TensorType, String> {
    let r = x.rank();
    if r < 3 {
        return Err(format!(
            "`{op}` needs [height, width, channels] (or a batch of them), found {x}"
        ));
    }
    let mut dims = x.shape.0.clone();
    dims[r - 3] = Dim::Known(size[0]);
    dims[r - 2] = Dim::Known(size[1]);
    Ok(TensorType::new(dtype, Shape(dims)))
}

pub(super) fn infer(op: &ImageOp, inputs: &[&TensorType]) -> Result<TensorType, String> {
    let x = inputs[0];
    match op {
        ImageOp::Decode { format, channels } => {
            if x.dtype != DType::Str || x.rank() != 0 {
                return Err(format!("`{}` of {x}", format.op_name()));
            }
            let c = match channels {
                0 => Dim::Unknown,
                c => Dim::Known(*c),
            };
            Ok(TensorType::new(
                DType::U8,
                Shape(vec![Dim::Unknown, Dim::Unknown, c]),
            ))
        }
        ImageOp::Resize { size, method, .. } => {
            if matches!(x.dtype, DType::Bool | DType::Str) {
                return Err(format!("`resize` of {}", x.dtype));
            }
            resized(x, *size, method.result_dtype(x.dtype), "resize")
        }
        ImageOp::Crop { size } => {
            for t in &inputs[1..] {
                if t.rank() != 0 || !t.dtype.is_int() {
                    return Err(format!("`crop` offsets must be integer scalars, found {t}"));
                }
            }
            let out = resized(x, *size, x.dtype, "crop")?;
            let r = x.rank();
            for (k, want) in size.iter().enumerate() {
                if let Dim::Known(have) = x.shape.0[r - 3 + k]
                    && *want > have
                {
                    return Err(format!("`crop` of {want} from a dim of {have}"));
                }
            }
            Ok(out)
        }
    }
}

/// An integer scalar operand as i64.
fn offset(t: &Tensor) -> Result<i64, KernelError> {
    let t = kernels::cast(t, DType::I64);
    t.as_array::<i64>()
        .and_then(|a| a.iter().next().copied())
        .ok_or_else(|| KernelError::InvalidArgument("a crop offset must be a scalar".into()))
}

pub(super) fn eval(op: &ImageOp, inputs: &[Tensor]) -> Result<Tensor, KernelError> {
    match op {
        ImageOp::Resize {
            size,
            method,
            antialias,
        } => kimage::resize(&inputs[0], *size, *method, *antialias),
        ImageOp::Crop { size } => kimage::crop(
            &inputs[0],
            offset(&inputs[1])?,
            offset(&inputs[2])?,
            size[0],
            size[1],
        ),
        ImageOp::Decode { format, channels } => kdecode::decode(&inputs[0], *format, *channels),
    }
}

/// Whether the op may fail on operands of these types: a resize only on an image whose
/// height or width is not known to be positive; a crop always (its offsets are values).
pub(super) fn may_fail(op: &ImageOp, inputs: &[&TensorType]) -> bool {
    match op {
        ImageOp::Resize { .. } => {
            let x = inputs[0];
            let r = x.rank();
            r < 3
                || !matches!(
                    (x.shape.0[r - 3], x.shape.0[r - 2]),
                    (Dim::Known(h), Dim::Known(w)) if h > 0 && w > 0
                )
        }
        ImageOp::Crop { .. } | ImageOp::Decode { .. } => true,
    }
}

/// The kernels treat every leading axis as a batch axis, so a batched image runs as one op;
/// per-element crop offsets would need a different window per row.
pub(super) fn batch_rule(op: &ImageOp, batched: &[bool]) -> BatchRule {
    if let ImageOp::Decode { format, .. } = op {
        return BatchRule::Refuse(format!(
            "`{}` gives images whose sizes differ from element to element",
            format.op_name()
        ));
    }
    if batched[0] && batched[1..].iter().all(|b| !b) {
        BatchRule::Op(OpKind::Image(op.clone()))
    } else {
        BatchRule::Refuse(format!(
            "its `{}` has per-element {}",
            op.name(),
            if batched[0] {
                "offsets"
            } else {
                "offsets on a constant image"
            }
        ))
    }
}
