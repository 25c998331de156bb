//! Image builtins (SPEC §13): `resize` and `crop` emit image ops; `flip_left_right`,
//! `flip_up_down`, `rgb_to_grayscale`, `adjust_brightness` and `adjust_contrast` are lowered
//! to existing ops exactly as TensorFlow composes them (`tf.image` in
//! `image_ops_impl.py`), so they fuse, fold and vectorize like any other op.
//!
//! Images are `[..., height, width, channels]`; TF's integer↔float conventions
//! (`convert_image_dtype`: an integer image scaled to [0, 1] by `1 / MAX`, back by
//! `MAX + 0.5` with saturation) are spelled out as casts and multiplications.

use super::{Builtin, Call, Kind, req};
use crate::eval::{Eval, Res, tval_type};
use crate::value::{Num, TVal, Value};
use pipec_diag::{Code, Diagnostic, Span, did_you_mean};
use pipec_ir::{ImageOp, OpKind, TensorType};
use pipec_tensor::kernels::image::ResizeMethod;
use pipec_tensor::kernels::image::decode::ImageFormat;
use pipec_tensor::ops::{BinaryOp, ReduceOp};
use pipec_tensor::{DType, Tensor};

/// The image builtins, chained after the registry (`super::all`).
pub(super) const BUILTINS: &[Builtin] = &[
    Builtin::new(
        "resize",
        &["images", "size", "method", "antialias"],
        2,
        Kind::ValueIndependent,
        resize,
    ),
    Builtin::new(
        "crop",
        &["image", "top", "left", "height", "width"],
        5,
        Kind::ValueIndependent,
        crop,
    ),
    Builtin::new(
        "flip_left_right",
        &["image"],
        1,
        Kind::ValueIndependent,
        flip,
    ),
    Builtin::new("flip_up_down", &["image"], 1, Kind::ValueIndependent, flip),
    Builtin::new(
        "rgb_to_grayscale",
        &["images"],
        1,
        Kind::ValueIndependent,
        rgb_to_grayscale,
    ),
    Builtin::new(
        "adjust_brightness",
        &["image", "delta"],
        2,
        Kind::ValueIndependent,
        adjust_brightness,
    ),
    Builtin::new(
        "decode_png",
        &["contents", "channels"],
        1,
        Kind::ValueIndependent,
        decode,
    ),
    Builtin::new(
        "decode_jpeg",
        &["contents", "channels"],
        1,
        Kind::ValueIndependent,
        decode,
    ),
    Builtin::new(
        "decode_image",
        &["contents", "channels"],
        1,
        Kind::ValueIndependent,
        decode,
    ),
    Builtin::new(
        "adjust_contrast",
        &["images", "contrast_factor"],
        2,
        Kind::ValueIndependent,
        adjust_contrast,
    ),
];

/// The tensor an emitted op gave, or poison.
macro_rules! tv {
    ($e:expr) => {
        match $e {
            Value::Tensor(t) => t,
            _ => return Ok(Value::Poison),
        }
    };
}

impl Eval<'_> {
    /// Checks that `ty` is an image (`[..., h, w, c]`, not bool); reports it otherwise.
    fn image_operand(&mut self, ty: &TensorType, name: &str, span: Span) -> Res<bool> {
        if ty.rank() < 3 {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("`{name}` needs an image [height, width, channels], found {ty}"),
            )
            .with_label(span, format!("rank {}", ty.rank()))
            .with_help(
                "a grey image needs a channel axis too: `expand_dims(x, -1)` makes [h, w] [h, w, 1]",
            );
            self.fail(d)?;
            return Ok(false);
        }
        if ty.dtype == DType::Bool {
            let d = Diagnostic::error(
                Code::UnsupportedDtype,
                format!("`{name}` does not take bool images"),
            )
            .with_label(span, "bool")
            .with_help("cast the image first: `cast(x, u8)`");
            self.fail(d)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// A positive size known at trace time.
    fn image_size(&mut self, (v, s): (Value, Span), what: &str) -> Res<Option<usize>> {
        let Some(n) = self.int_value(v, s, what)? else {
            return Ok(None);
        };
        if n <= 0 || n > i64::from(i32::MAX) {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("{what} must be positive (and below 2^31), found {n}"),
            )
            .with_label(s, "");
            self.fail(d)?;
            return Ok(None);
        }
        Ok(Some(n as usize))
    }

    /// `cast(x, to)` unless it is already `to`.
    fn cast_to(&mut self, x: TVal, to: DType, span: Span) -> Res<Value> {
        if tval_type(&x).dtype == to {
            return Ok(Value::Tensor(x));
        }
        self.emit(OpKind::Cast(to), vec![x], span)
    }

    fn binop(&mut self, op: BinaryOp, a: TVal, b: TVal, span: Span) -> Res<Value> {
        self.emit(OpKind::Binary(op), vec![a, b], span)
    }

    /// TF's `convert_image_dtype(x, float32)`: integers scaled by `1 / MAX`, floats cast.
    fn image_to_f32(&mut self, x: TVal, span: Span) -> Res<Value> {
        let dtype = tval_type(&x).dtype;
        let f = tv!(self.cast_to(x, DType::F32, span)?);
        if !dtype.is_int() {
            return Ok(Value::Tensor(f));
        }
        let scale = (1.0 / int_max(dtype)) as f32;
        self.binop(
            BinaryOp::Mul,
            f,
            TVal::Concrete(Tensor::scalar(scale)),
            span,
        )
    }

    /// TF's `convert_image_dtype(x: f32, to)`: floats cast; integers scaled by `MAX + 0.5`
    /// and cast, which truncates and saturates (SPEC §6) as `saturate_cast` does.
    fn image_from_f32(&mut self, x: TVal, to: DType, span: Span) -> Res<Value> {
        if !to.is_int() {
            return self.cast_to(x, to, span);
        }
        let scale = (int_max(to) + 0.5) as f32;
        let scaled = tv!(self.binop(
            BinaryOp::Mul,
            x,
            TVal::Concrete(Tensor::scalar(scale)),
            span
        )?);
        self.cast_to(scaled, to, span)
    }

    /// A float scalar argument (`delta`, `contrast_factor`) as an `f32[]` operand.
    fn f32_scalar(&mut self, (v, s): (Value, Span), what: &str) -> Res<Option<TVal>> {
        let t = match v {
            Value::Num(Num::Int(i)) => TVal::Concrete(Tensor::scalar(i as f32)),
            Value::Num(Num::Float(f)) => TVal::Concrete(Tensor::scalar(f as f32)),
            other => {
                let Some(t) = self.tensor_operand(other, s)? else {
                    return Ok(None);
                };
                t
            }
        };
        let ty = tval_type(&t);
        if ty.rank() != 0 || !ty.dtype.is_float() {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("{what} must be a float scalar, found {ty}"),
            )
            .with_label(s, "")
            .with_help("pass a number, or cast a scalar tensor: `cast(d, f32)`");
            self.fail(d)?;
            return Ok(None);
        }
        match self.cast_to(t, DType::F32, s)? {
            Value::Tensor(t) => Ok(Some(t)),
            _ => Ok(None),
        }
    }
}

/// The largest value of an integer dtype, as TF's `dtype.max`.
fn int_max(d: DType) -> f64 {
    match d {
        DType::I8 => i8::MAX as f64,
        DType::U8 => u8::MAX as f64,
        DType::I16 => i16::MAX as f64,
        DType::U16 => u16::MAX as f64,
        DType::I32 => i32::MAX as f64,
        DType::U32 => u32::MAX as f64,
        DType::I64 => i64::MAX as f64,
        _ => u64::MAX as f64,
    }
}

fn resize(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    if !ev.image_operand(&ty, "resize", span)? {
        return Ok(Value::Poison);
    }
    let (sv, ss) = req(&a, 1);
    let size = some!(ev.int_list((sv, ss), "the size")?);
    if size.len() != 2 || size.iter().any(|&n| n <= 0 || n > i64::from(i32::MAX)) {
        let d = Diagnostic::error(
            Code::WrongKind,
            format!(
                "`resize` needs a size [height, width] of two positive integers, found {size:?}"
            ),
        )
        .with_label(ss, "")
        .with_help("`resize(img, [224, 224])`");
        return ev.fail(d);
    }
    let method = match a[2].clone() {
        None => ResizeMethod::Bilinear,
        Some(arg) => {
            let ms = arg.1;
            let name = some!(ev.string_arg(arg)?);
            match ResizeMethod::from_name(&name) {
                Some(m) => m,
                None => {
                    let names = ResizeMethod::ALL.map(|m| m.name());
                    let mut d = Diagnostic::error(
                        Code::WrongKind,
                        format!("`resize` has no method \"{name}\""),
                    )
                    .with_label(ms, "unknown method");
                    d = match did_you_mean(&name, names.iter().copied()) {
                        Some(s) => d.with_help(format!("did you mean \"{s}\"?")),
                        None => d.with_help(format!(
                            "methods: {}",
                            names.map(|n| format!("\"{n}\"")).join(", ")
                        )),
                    };
                    return ev.fail(d);
                }
            }
        }
    };
    let antialias = some!(ev.bool_arg(a[3].clone(), false)?);
    let op = ImageOp::Resize {
        size: [size[0] as usize, size[1] as usize],
        method,
        antialias,
    };
    ev.emit(OpKind::Image(op), vec![t], span)
}

fn crop(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    if !ev.image_operand(&ty, "crop", span)? {
        return Ok(Value::Poison);
    }
    let h = some!(ev.image_size(req(&a, 3), "the crop height")?);
    let w = some!(ev.image_size(req(&a, 4), "the crop width")?);
    let r = ty.rank();
    let mut offsets = Vec::new();
    for (i, what, size, dim) in [(1, "top", h, r - 3), (2, "left", w, r - 2)] {
        let (v, s) = req(&a, i);
        let off = some!(ev.tensor_operand(v, s)?);
        let oty = tval_type(&off);
        if oty.rank() != 0 || !oty.dtype.is_int() {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("the crop's `{what}` must be an integer scalar, found {oty}"),
            )
            .with_label(s, "");
            return ev.fail(d);
        }
        // An offset known now is checked now, against a known image size.
        if let TVal::Concrete(c) = &off {
            let k = pipec_tensor::kernels::cast(c, DType::I64);
            let k = k.as_array::<i64>().and_then(|x| x.iter().next().copied());
            let have = ty.shape.0[dim].known();
            if let Some(k) = k
                && (k < 0 || have.is_some_and(|n| k as u128 + size as u128 > n as u128))
            {
                let d = Diagnostic::error(
                    Code::IndexOutOfRange,
                    format!(
                        "the crop window ({what} {k}, {} {size}) does not fit in {ty}",
                        if i == 1 { "height" } else { "width" }
                    ),
                )
                .with_label(s, "out of the image");
                return ev.fail(d);
            }
        }
        if let Some(n) = ty.shape.0[dim].known()
            && size > n
        {
            let d = Diagnostic::error(
                Code::IndexOutOfRange,
                format!(
                    "a crop {} of {size} does not fit in {ty}",
                    if i == 1 { "height" } else { "width" }
                ),
            )
            .with_label(req(&a, i + 2).1, "larger than the image");
            return ev.fail(d);
        }
        offsets.push(off);
    }
    let mut offsets = offsets.into_iter();
    let (Some(top), Some(left)) = (offsets.next(), offsets.next()) else {
        return Ok(Value::Poison);
    };
    ev.emit(
        OpKind::Image(ImageOp::Crop { size: [h, w] }),
        vec![t, top, left],
        span,
    )
}

/// `flip_left_right` reverses the width axis, `flip_up_down` the height axis (as TF).
fn flip(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    if !ev.image_operand(&ty, name, span)? {
        return Ok(Value::Poison);
    }
    let r = ty.rank();
    let axis = if name == "flip_left_right" {
        r - 2
    } else {
        r - 3
    };
    ev.emit(OpKind::Reverse(vec![axis]), vec![t], span)
}

/// TF: to f32 (`convert_image_dtype`), a dot product with (0.2989, 0.5870, 0.1140) over the
/// channels, a channel axis of 1, back to the input dtype (no saturation, as TF).
fn rgb_to_grayscale(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    if !ev.image_operand(&ty, "rgb_to_grayscale", span)? {
        return Ok(Value::Poison);
    }
    if let Some(c) = ty.shape.0[ty.rank() - 1].known()
        && c != 3
    {
        let d = Diagnostic::error(
            Code::WrongKind,
            format!("`rgb_to_grayscale` needs 3 channels, found {ty}"),
        )
        .with_label(span, format!("{c} channels"))
        .with_help("drop an alpha channel first: `x[..., 0:3]`");
        return ev.fail(d);
    }
    let dtype = ty.dtype;
    let r = ty.rank();
    let f = tv!(ev.image_to_f32(t, span)?);
    let weights = Tensor::from_vec::<f32>(&[3], vec![0.2989, 0.587, 0.114]).expect("3 weights");
    let g = tv!(ev.emit(OpKind::MatMul, vec![f, TVal::Concrete(weights)], span)?);
    let g = tv!(ev.emit(OpKind::ExpandDims(r - 1), vec![g], span)?);
    if dtype.is_int() {
        let scale = (int_max(dtype) + 0.5) as f32;
        let g = tv!(ev.binop(
            BinaryOp::Mul,
            g,
            TVal::Concrete(Tensor::scalar(scale)),
            span
        )?);
        return ev.cast_to(g, dtype, span);
    }
    ev.cast_to(g, dtype, span)
}

/// TF: `x + delta` in f32 (f16 images stay f16, as TF adds in their dtype), integer
/// images through `convert_image_dtype` both ways with saturation.
fn adjust_brightness(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    if ty.dtype == DType::Bool {
        return ev.dtype_rule_error(
            "adjust_brightness",
            ty.dtype,
            pipec_tensor::ops::DTypeRuleError::Unsupported,
            span,
        );
    }
    let delta = some!(ev.f32_scalar(req(&a, 1), "`delta`")?);
    if ty.dtype == DType::F16 {
        let d = tv!(ev.cast_to(delta, DType::F16, span)?);
        return ev.binop(BinaryOp::Add, t, d, span);
    }
    let f = tv!(ev.image_to_f32(t, span)?);
    let out = tv!(ev.binop(BinaryOp::Add, f, delta, span)?);
    ev.image_from_f32(out, ty.dtype, span)
}

/// TF's `adjust_contrast`: per image and channel, `(x - mean) * factor + mean`, the mean
/// over height and width, computed in f32 (integer images converted both ways).
fn adjust_contrast(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    if !ev.image_operand(&ty, "adjust_contrast", span)? {
        return Ok(Value::Poison);
    }
    let factor = some!(ev.f32_scalar(req(&a, 1), "`contrast_factor`")?);
    let r = ty.rank();
    let f = tv!(ev.image_to_f32(t, span)?);
    // TF's kernel multiplies the sum by 1 / (h * w) rather than dividing: the same bits
    // need the same steps, which need the size now; an image of `?` size takes `mean`.
    let (h, w) = (ty.shape.0[r - 3].known(), ty.shape.0[r - 2].known());
    let reduce = |op| OpKind::Reduce {
        op,
        axes: vec![r - 3, r - 2],
        keepdims: true,
    };
    let mean = match (h, w) {
        (Some(h), Some(w)) if h * w > 0 => {
            let sum = tv!(ev.emit(reduce(ReduceOp::Sum), vec![f.clone()], span)?);
            let inv = (1.0 / (h * w) as f64) as f32;
            tv!(ev.binop(
                BinaryOp::Mul,
                sum,
                TVal::Concrete(Tensor::scalar(inv)),
                span
            )?)
        }
        _ => tv!(ev.emit(reduce(ReduceOp::Mean), vec![f.clone()], span)?),
    };
    let centred = tv!(ev.binop(BinaryOp::Sub, f, mean.clone(), span)?);
    let scaled = tv!(ev.binop(BinaryOp::Mul, centred, factor, span)?);
    let out = tv!(ev.binop(BinaryOp::Add, scaled, mean, span)?);
    ev.image_from_f32(out, ty.dtype, span)
}

/// `decode_png`, `decode_jpeg`, `decode_image`: the bytes of one image (`str[]`) to
/// `u8[?, ?, C]`; `channels: 0` keeps the image's own (then `C` is `?`).
fn decode(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let ty = tval_type(&t);
    if ty.dtype != DType::Str || ty.rank() != 0 {
        let d = Diagnostic::error(
            Code::WrongKind,
            format!("`{name}` takes the bytes of one image (str[]), found {ty}"),
        )
        .with_label(req(&a, 0).1, "not str[]")
        .with_help(if ty.dtype == DType::Str {
            "decode each element: `.map(|b| decode_image(b))` before `.batch(...)`"
        } else {
            "read the file first: `decode_image(read_file(path))`"
        });
        return ev.fail(d);
    }
    let channels = match a[1].clone() {
        None => 0,
        Some((v, s)) => {
            let c = some!(ev.int_value(v, s, "`channels`")?);
            if !matches!(c, 0 | 1 | 3 | 4) {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("`channels` must be 0, 1, 3 or 4, found {c}"),
                )
                .with_label(s, "")
                .with_help("0 keeps the image's own channels; 1 is grey, 3 RGB, 4 RGBA");
                return ev.fail(d);
            }
            c as usize
        }
    };
    let format = match name {
        "decode_png" => ImageFormat::Png,
        "decode_jpeg" => ImageFormat::Jpeg,
        _ => ImageFormat::Any,
    };
    ev.emit(
        OpKind::Image(ImageOp::Decode { format, channels }),
        vec![t],
        span,
    )
}
