//! Stateless random ops: `element_position` and the `random_*` draws.
//!
//! A random op's operands are the element's `[position, epoch]` (`u64[2]`, from an
//! `element_position` op, which the runtime evaluates for the element being computed) and,
//! for the image ops, the image; its attributes are the draw and a key fixed at trace time
//! from the seed and the op's source site. So the op is a pure function of its operands and
//! attributes: passes may move, merge or drop it like any pure op without changing a draw.
//! On a block of elements (`vmap`), the position operand is `u64[n, 2]`, one row per
//! element, and row `i` of the result is exactly element `i`'s draw.

use super::BatchRule;
use crate::function::OpKind;
use crate::types::{Dim, Shape, TensorType};
use pipec_tensor::kernels::KernelError;
use pipec_tensor::kernels::random::{self, Draw};
use pipec_tensor::{DType, Tensor};

/// The type of `element_position`: `u64[2]`, or `u64[rows, 2]` on a block.
pub(super) fn position_type(rows: Option<Dim>) -> TensorType {
    let mut dims = Vec::new();
    dims.extend(rows);
    dims.push(Dim::Known(2));
    TensorType::new(DType::U64, Shape(dims))
}

pub(super) fn infer(kind: &OpKind, inputs: &[&TensorType]) -> Result<TensorType, String> {
    match kind {
        OpKind::ElementPosition(rows) => Ok(position_type(*rows)),
        OpKind::Random { draw, .. } => infer_draw(draw, inputs),
        _ => unreachable!("not a random op"),
    }
}

fn infer_draw(draw: &Draw, inputs: &[&TensorType]) -> Result<TensorType, String> {
    let name = draw.name();
    let want = if draw.takes_image() { 2 } else { 1 };
    if inputs.len() != want {
        return Err(format!(
            "`{name}` takes {want} operand(s), found {}",
            inputs.len()
        ));
    }
    let ctx = inputs[0];
    let prefix: Vec<Dim> = match ctx.shape.0.as_slice() {
        [Dim::Known(2)] if ctx.dtype == DType::U64 => vec![],
        [rows, Dim::Known(2)] if ctx.dtype == DType::U64 => vec![*rows],
        _ => return Err(format!("`{name}` needs a u64[2] position, found {ctx}")),
    };
    let with_prefix = |dims: &[Dim]| {
        let mut out = prefix.clone();
        out.extend_from_slice(dims);
        Shape(out)
    };
    let known = |s: &[usize]| s.iter().map(|&d| Dim::Known(d)).collect::<Vec<_>>();
    let image = || {
        let img = inputs[1];
        let dims = &img.shape.0;
        if dims.len() < prefix.len() {
            return Err(format!("`{name}` of {img}"));
        }
        Ok((img, &dims[prefix.len()..]))
    };
    match draw {
        Draw::Uniform { shape, lo, hi } => {
            if lo.dtype() != hi.dtype() || lo.dtype() == DType::Bool {
                return Err(format!("`{name}` bounds {lo:?} and {hi:?}"));
            }
            Ok(TensorType::new(lo.dtype(), with_prefix(&known(shape))))
        }
        Draw::Normal { shape, dtype, .. } => {
            if !dtype.is_float() {
                return Err(format!("`{name}` of dtype {dtype}"));
            }
            Ok(TensorType::new(*dtype, with_prefix(&known(shape))))
        }
        Draw::Crop { size } => {
            let (img, dims) = image()?;
            if dims.len() != size.len()
                || dims
                    .iter()
                    .zip(size)
                    .any(|(d, &s)| d.known().is_some_and(|d| d < s))
            {
                return Err(format!("`{name}` of size {size:?} from {img}"));
            }
            Ok(TensorType::new(img.dtype, with_prefix(&known(size))))
        }
        Draw::FlipLeftRight | Draw::FlipUpDown => {
            let (img, dims) = image()?;
            if dims.len() != 3 {
                return Err(format!("`{name}` of {img}: an image is [h, w, c]"));
            }
            Ok(img.clone())
        }
        Draw::Brightness { .. } => {
            let (img, _) = image()?;
            if !brightness_dtype(img.dtype) {
                return Err(format!("`{name}` of {img}"));
            }
            Ok(img.clone())
        }
    }
}

/// The image dtypes `random_brightness` takes (TF's `adjust_brightness` on them).
pub fn brightness_dtype(d: DType) -> bool {
    matches!(
        d,
        DType::U8 | DType::F16 | DType::BF16 | DType::F32 | DType::F64
    )
}

pub(super) fn eval(kind: &OpKind, inputs: &[Tensor]) -> Result<Tensor, KernelError> {
    match kind {
        OpKind::ElementPosition(_) => Err(KernelError::InvalidArgument(
            "`element_position` is the element being computed: only a running pipeline has one"
                .into(),
        )),
        OpKind::Random { draw, key, .. } => random::random(draw, *key, &inputs[0], inputs.get(1)),
        _ => unreachable!("not a random op"),
    }
}

pub(super) fn may_fail(kind: &OpKind, inputs: &[&TensorType]) -> bool {
    // Only a crop can meet an image smaller than its window, known only at run time.
    matches!(
        kind,
        OpKind::Random {
            draw: Draw::Crop { .. },
            ..
        }
    ) && inputs.iter().any(|t| t.shape.as_known().is_none())
}

pub(super) fn batch_rule(kind: &OpKind, batched: &[bool], batch: Dim) -> BatchRule {
    match kind {
        OpKind::ElementPosition(None) => BatchRule::Op(OpKind::ElementPosition(Some(batch))),
        OpKind::ElementPosition(Some(_)) => {
            BatchRule::Refuse("its random ops already draw per element of a batch".into())
        }
        OpKind::Random { .. } if batched.iter().all(|b| *b) => BatchRule::Op(kind.clone()),
        OpKind::Random { draw, .. } => BatchRule::Refuse(format!(
            "`{}` transforms the same image for every element",
            draw.name()
        )),
        _ => unreachable!("not a random op"),
    }
}
