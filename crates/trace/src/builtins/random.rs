//! Stateless random ops: `random_uniform`, `random_normal`, `random_crop`,
//! `random_flip_left_right`, `random_flip_up_down` and `random_brightness`.
//!
//! Each call becomes one `random_*` op whose key is fixed here, at trace time, from its
//! `seed:` and its site (see [`Eval::random_key`]); its first operand is the element's
//! position, an `element_position` op the runtime evaluates. So a draw depends on the seed,
//! the source, the element's position and the epoch, and on nothing the optimizer does.

use super::{Call, req};
use crate::eval::{Eval, Res, tval_type};
use crate::value::{Num, TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{Dim, OpKind, Shape, TensorType};
use pipec_tensor::kernels::random::{self, Draw};
use pipec_tensor::kernels::{scalar_from_f64, scalar_from_i128};
use pipec_tensor::{DType, Scalar, Tensor};

/// The arguments `random_uniform` and `random_normal` share: `seed:` (argument 4), the
/// shape (0) and the dtype (3, `f32` when absent); `None` once one was reported.
fn draw_args(
    ev: &mut Eval<'_>,
    name: &str,
    a: &super::BoundArgs,
    span: Span,
) -> Res<Option<(u64, Vec<usize>, DType)>> {
    let Some(seed) = ev.seed_arg(name, a[4].clone(), span)? else {
        return Ok(None);
    };
    let Some(shape) = ev.usize_list(req(a, 0), "a shape")? else {
        return Ok(None);
    };
    let dtype = match a[3].clone() {
        Some(v) => ev.dtype_arg(v)?,
        None => Some(DType::F32),
    };
    Ok(dtype.map(|d| (seed, shape, d)))
}

pub(super) fn uniform(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let (seed, shape, dtype) = some!(draw_args(ev, name, &a, span)?);
    if !dtype.is_int() && !dtype.is_float() {
        let d = Diagnostic::error(
            Code::UnsupportedDtype,
            format!("`random_uniform` does not draw {dtype}"),
        )
        .with_label(span, "")
        .with_help("draw integers and compare: `random_uniform(shape, 0, 2, i32, seed: 1) == 1`");
        return ev.fail(d);
    }
    let default = |x: i128| (Value::Num(Num::Int(x)), span);
    if dtype.is_int() && (a[1].is_none() || a[2].is_none()) {
        let d = Diagnostic::error(
            Code::WrongArity,
            format!("`random_uniform` of {dtype} needs both bounds, `lo` and `hi`"),
        )
        .with_label(span, "")
        .with_help(format!(
            "`random_uniform(shape, 0, 10, {dtype}, seed: 1)` draws 0 to 9"
        ));
        return ev.fail(d);
    }
    let lo = some!(ev.bound(a[1].clone().unwrap_or_else(|| default(0)), dtype, "lo")?);
    let hi = some!(ev.bound(a[2].clone().unwrap_or_else(|| default(1)), dtype, "hi")?);
    let ordered = if dtype.is_float() {
        let (l, h) = (random::scalar_f64(lo), random::scalar_f64(hi));
        l < h && (h - l).is_finite()
    } else {
        random::scalar_i128(lo) < random::scalar_i128(hi)
    };
    if !ordered {
        let d = Diagnostic::error(
            Code::WrongKind,
            "`random_uniform` needs `lo < hi` (values are drawn from `[lo, hi)`)",
        )
        .with_label(
            a[1].as_ref()
                .map_or(span, |x| x.1.to(a[2].as_ref().map_or(span, |y| y.1))),
            "these bounds",
        )
        .with_help("swap the bounds, or make the range wider (and finite)");
        return ev.fail(d);
    }
    let draw = Draw::Uniform { shape, lo, hi };
    ev.emit_random(draw, seed, None, span)
}

pub(super) fn normal(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let (seed, shape, dtype) = some!(draw_args(ev, name, &a, span)?);
    if !dtype.is_float() {
        let d = Diagnostic::error(
            Code::FloatOnlyOp,
            format!("`random_normal` draws floats, not {dtype}"),
        )
        .with_label(span, "")
        .with_help("draw f32 and cast: `cast(random_normal(...), i32)`");
        return ev.fail(d);
    }
    let mean = match a[1].clone() {
        Some(v) => some!(ev.float_param(v, "the mean", false)?),
        None => 0.0,
    };
    let std = match a[2].clone() {
        Some(v) => some!(ev.float_param(v, "the standard deviation", true)?),
        None => 1.0,
    };
    let draw = Draw::Normal {
        shape,
        dtype,
        mean,
        std,
    };
    ev.emit_random(draw, seed, None, span)
}

pub(super) fn image(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let seed_slot = a.len() - 1;
    let seed = some!(ev.seed_arg(name, a[seed_slot].clone(), span)?);
    let (iv, is) = req(&a, 0);
    let img = some!(ev.tensor_operand(iv, is)?);
    let ty = tval_type(&img);
    let draw = match name {
        "random_crop" => {
            let size = some!(ev.usize_list(req(&a, 1), "a crop size")?);
            if size.len() != ty.rank() {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!(
                        "`random_crop` of {ty} needs a size with {} entries, found {size:?}",
                        ty.rank()
                    ),
                )
                .with_label(req(&a, 1).1, "one size per dim of the image")
                .with_help("for an image [h, w, c] give `[height, width, c]`");
                return ev.fail(d);
            }
            if let Some((i, (d, s))) = ty
                .shape
                .0
                .iter()
                .zip(&size)
                .enumerate()
                .find(|(_, (d, s))| d.known().is_some_and(|d| d < **s))
            {
                let d = Diagnostic::error(
                    Code::IndexOutOfRange,
                    format!("`random_crop` of size {size:?} does not fit in {ty}: dim {i} is {d}, the window {s}"),
                )
                .with_label(span, "the window is larger than the image")
                .with_help("crop a window no larger than the image, or `resize` the image first");
                return ev.fail(d);
            }
            Draw::Crop { size }
        }
        "random_brightness" => {
            if !pipec_ir::brightness_dtype(ty.dtype) {
                let d = Diagnostic::error(
                    Code::UnsupportedDtype,
                    format!(
                        "`random_brightness` takes u8 or float images, not {}",
                        ty.dtype
                    ),
                )
                .with_label(is, format!("this is {ty}"))
                .with_help("cast it first: `cast(img, f32)`");
                return ev.fail(d);
            }
            let max_delta = some!(ev.float_param(req(&a, 1), "`max_delta`", true)?);
            Draw::Brightness { max_delta }
        }
        _ => {
            if ty.rank() != 3 {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("`{name}` takes one image [h, w, c], found {ty}"),
                )
                .with_label(is, "not of rank 3")
                .with_help("apply it per image, in a `map` before `batch`");
                return ev.fail(d);
            }
            if name == "random_flip_up_down" {
                Draw::FlipUpDown
            } else {
                Draw::FlipLeftRight
            }
        }
    };
    ev.emit_random(draw, seed, Some(img), span)
}

impl Eval<'_> {
    /// The word of a source position in a random op's site: `line << 32 | column` (both
    /// 1-based; the column counts bytes).
    pub(crate) fn site_word(&self, span: Span) -> u64 {
        let text = self.shared.source.as_bytes();
        let start = span.start as usize;
        let before = &text[..start.min(text.len())];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count() as u64;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let column = 1 + (start - line_start) as u64;
        (line << 32) | (column & 0xFFFF_FFFF)
    }

    /// The key of a random op at `span`: its seed and its site (the enclosing call sites
    /// and loop iterations, then its own line and column), hashed.
    fn random_key(&self, seed: u64, span: Span) -> u64 {
        let mut site = self.frame.site.clone();
        site.push(self.site_word(span));
        random::op_key(seed, &site)
    }

    /// The `seed:` of a random op: required, and an integer known at trace time (E0140).
    fn seed_arg(&mut self, name: &str, v: Option<(Value, Span)>, span: Span) -> Res<Option<u64>> {
        let why = match &v {
            None => "needs `seed:`",
            Some((Value::Tensor(TVal::Symbolic(..)) | Value::SymDim(_), _)) => {
                "needs a seed known at trace time"
            }
            Some((Value::Poison, _)) => return Ok(None),
            Some(_) => "",
        };
        if !why.is_empty() {
            let at = v.as_ref().map_or(span, |(_, s)| *s);
            let d = Diagnostic::error(Code::RandomSeed, format!("`{name}` {why}"))
                .with_label(at, if v.is_none() { "no `seed:` here" } else { "this depends on the element" })
                .with_note("random ops are stateless: the seed, the op's place in the source, the element's position and the epoch fix every draw")
                .with_help(format!("give a constant seed, e.g. `{name}(..., seed: 42)`; a different seed draws different numbers"));
            self.fail(d)?;
            return Ok(None);
        }
        let (v, s) = v.expect("checked above");
        let Some(i) = self.int_value(v, s, "the seed")? else {
            return Ok(None);
        };
        Ok(Some(i as u64))
    }

    /// A bound of `random_uniform`, as a scalar of `dtype`.
    fn bound(&mut self, (v, s): (Value, Span), dtype: DType, what: &str) -> Res<Option<Scalar>> {
        let scalar = match &v {
            Value::Num(Num::Int(i)) => scalar_from_i128(*i, dtype),
            Value::Num(Num::Float(f)) if dtype.is_float() && f.is_finite() => {
                Some(scalar_from_f64(*f, dtype)).filter(|s| random::scalar_f64(*s).is_finite())
            }
            Value::Tensor(TVal::Concrete(t)) if t.rank() == 0 && t.dtype() == dtype => t
                .get_flat(0)
                .filter(|s| !dtype.is_float() || random::scalar_f64(*s).is_finite()),
            Value::Poison => return Ok(None),
            _ => None,
        };
        if let Some(x) = scalar {
            return Ok(Some(x));
        }
        let symbolic = matches!(v, Value::Tensor(TVal::Symbolic(..)) | Value::SymDim(_));
        let d = if symbolic {
            Diagnostic::error(
                Code::NotTraceTime,
                format!("`random_uniform`'s `{what}` must be known at trace time"),
            )
            .with_label(s, "this depends on the element")
            .with_help("draw in [0, 1) and scale: `lo + (hi - lo) * random_uniform(shape, 0.0, 1.0, f32, seed: 1)`")
        } else {
            Diagnostic::error(
                Code::WrongKind,
                format!(
                    "`{what}` must be a finite number that {dtype} can hold, found {}",
                    v.kind_name()
                ),
            )
            .with_label(s, format!("not a {dtype} value"))
            .with_help(format!(
                "write a number {dtype} can hold (integers for integer dtypes)"
            ))
        };
        self.fail(d)?;
        Ok(None)
    }

    /// A float parameter known at trace time (finite; non-negative when `non_negative`).
    fn float_param(
        &mut self,
        (v, s): (Value, Span),
        what: &str,
        non_negative: bool,
    ) -> Res<Option<f64>> {
        let x = match &v {
            Value::Num(n) => Some(n.as_f64()),
            Value::Tensor(TVal::Concrete(t)) if t.rank() == 0 && t.dtype() != DType::Bool => {
                t.get_flat(0).map(random::scalar_f64)
            }
            Value::Poison => return Ok(None),
            _ => None,
        };
        match x {
            Some(x) if x.is_finite() && (!non_negative || x >= 0.0) => Ok(Some(x)),
            _ => {
                let code = if matches!(v, Value::Tensor(TVal::Symbolic(..)) | Value::SymDim(_)) {
                    Code::NotTraceTime
                } else {
                    Code::WrongKind
                };
                let need = if non_negative {
                    "a finite number >= 0"
                } else {
                    "a finite number"
                };
                let d =
                    Diagnostic::error(code, format!("{what} must be {need} known at trace time"))
                        .with_label(s, "")
                        .with_help("write a number here");
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    /// Emits the random op: on the element's position while tracing, on position 0 of
    /// epoch 0 at top level (evaluated at once), never in eager code.
    fn emit_random(
        &mut self,
        draw: Draw,
        seed: u64,
        image: Option<TVal>,
        span: Span,
    ) -> Res<Value> {
        if self.frame.eager {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("`{}` cannot run in an eager function", draw.name()),
            )
            .with_label(span, "in eager code")
            .with_note("random ops are traced ops: each draw is tied to the element's position in its dataset, which eager code does not see")
            .with_help("call it in the traced function that calls the eager one, and pass the result in");
            return self.fail(d);
        }
        let key = self.random_key(seed, span);
        let ctx = match self.frame.func.as_mut() {
            Some(func) => {
                let ty = TensorType::new(DType::U64, Shape(vec![Dim::Known(2)]));
                let v = func.push(OpKind::ElementPosition(None), vec![], ty.clone(), span);
                TVal::Symbolic(v, ty)
            }
            None => {
                TVal::Concrete(Tensor::from_vec(&[2], vec![0u64, 0]).expect("two values for [2]"))
            }
        };
        let mut inputs = vec![ctx];
        inputs.extend(image);
        self.emit(OpKind::Random { draw, seed, key }, inputs, span)
    }
}
