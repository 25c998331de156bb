//! Tensor literals: `[[1, 2], [3, 4]]` → a constant tensor (i32 for integers, f32 as soon as
//! any entry is a float, i64 when an integer does not fit i32, bool for bools).

use crate::value::{Num, TVal, Value};
use pipec_tensor::kernels;
use pipec_tensor::{DType, Tensor};

/// Builds the constant tensor a list literal denotes. `Ok(None)` when some entry is not a
/// constant (the list stays a list); `Err` for ragged rows.
pub(crate) fn tensor_from_values(vs: &[Value]) -> Result<Option<Tensor>, String> {
    let mut leaves = Vec::new();
    let Some(shape) = collect(vs, &mut leaves)? else {
        return Ok(None);
    };
    if leaves.is_empty() {
        return Ok(Tensor::from_vec::<f32>(&shape, vec![]));
    }
    let all_bool = leaves.iter().all(|l| matches!(l, Leaf::Bool(_)));
    let any_bool = leaves.iter().any(|l| matches!(l, Leaf::Bool(_)));
    if any_bool && !all_bool {
        return Err("a tensor literal mixes bools and numbers".into());
    }
    if all_bool {
        let data = leaves
            .iter()
            .map(|l| matches!(l, Leaf::Bool(true)))
            .collect();
        return Ok(Tensor::from_vec::<bool>(&shape, data));
    }
    let any_float = leaves
        .iter()
        .any(|l| matches!(l, Leaf::Num(Num::Float(_)) | Leaf::Tensor(_)) && l.is_float());
    if any_float {
        let data = leaves.iter().map(|l| l.as_f32()).collect();
        return Ok(Tensor::from_vec::<f32>(&shape, data));
    }
    let ints: Vec<i128> = leaves.iter().map(|l| l.as_i128()).collect();
    if ints.iter().all(|&i| i32::try_from(i).is_ok())
        && !leaves.iter().any(|l| l.dtype() == Some(DType::I64))
    {
        Ok(Tensor::from_vec::<i32>(
            &shape,
            ints.iter().map(|&i| i as i32).collect(),
        ))
    } else if ints.iter().all(|&i| i64::try_from(i).is_ok()) {
        Ok(Tensor::from_vec::<i64>(
            &shape,
            ints.iter().map(|&i| i as i64).collect(),
        ))
    } else {
        Err("an integer in this tensor literal does not fit in i64".into())
    }
}

/// A `str` tensor from a (nested) list of strings; rows must have equal lengths.
pub(crate) fn str_tensor_from_values(vs: &[Value]) -> Result<Tensor, String> {
    fn walk(
        vs: &[Value],
        depth: usize,
        shape: &mut Vec<usize>,
        out: &mut Vec<pipec_tensor::Bytes>,
    ) -> Result<(), String> {
        if shape.len() == depth {
            shape.push(vs.len());
        } else if shape[depth] != vs.len() {
            return Err("ragged tensor literal: rows have different lengths".into());
        }
        for v in vs {
            match v {
                Value::Str(s) if shape.len() == depth + 1 => {
                    out.push(pipec_tensor::Bytes::copy_from_slice(s.as_bytes()))
                }
                Value::List(inner) | Value::Tuple(inner) => walk(inner, depth + 1, shape, out)?,
                Value::Tensor(TVal::Concrete(Tensor::Str(a))) => {
                    // An inner list literal, already a tensor: its shape is the rest.
                    if shape.len() == depth + 1 {
                        shape.extend_from_slice(a.shape());
                    } else if shape[depth + 1..] != *a.shape() {
                        return Err("ragged tensor literal: rows have different lengths".into());
                    }
                    out.extend(a.iter().cloned());
                }
                _ => return Err("ragged tensor literal: rows have different depths".into()),
            }
        }
        Ok(())
    }
    let mut shape = Vec::new();
    let mut out = Vec::new();
    walk(vs, 0, &mut shape, &mut out)?;
    Tensor::from_vec(&shape, out)
        .ok_or_else(|| "ragged tensor literal: rows have different lengths".into())
}

enum Leaf {
    Num(Num),
    Bool(bool),
    /// A scalar element of a constant tensor nested in the literal.
    Tensor(pipec_tensor::Scalar),
}

impl Leaf {
    fn dtype(&self) -> Option<DType> {
        match self {
            Leaf::Tensor(s) => Some(s.dtype()),
            _ => None,
        }
    }
    fn is_float(&self) -> bool {
        match self {
            Leaf::Num(Num::Float(_)) => true,
            Leaf::Tensor(s) => s.dtype().is_float(),
            _ => false,
        }
    }
    fn as_f32(&self) -> f32 {
        match self {
            Leaf::Num(n) => n.as_f64() as f32,
            Leaf::Bool(b) => f32::from(u8::from(*b)),
            Leaf::Tensor(s) => kernels::cast(&s.to_tensor(), DType::F32)
                .as_array::<f32>()
                .map_or(0.0, |a| a[[]]),
        }
    }
    fn as_i128(&self) -> i128 {
        match self {
            Leaf::Num(Num::Int(i)) => *i,
            Leaf::Num(Num::Float(f)) => *f as i128,
            Leaf::Bool(b) => i128::from(*b),
            Leaf::Tensor(s) => kernels::cast(&s.to_tensor(), DType::I64)
                .as_array::<i64>()
                .map_or(0, |a| a[[]]) as i128,
        }
    }
}

/// Collects leaves row-major; returns the shape, `None` if an entry is not constant.
fn collect(vs: &[Value], leaves: &mut Vec<Leaf>) -> Result<Option<Vec<usize>>, String> {
    let mut inner: Option<Vec<usize>> = None;
    for v in vs {
        let shape = match v {
            Value::Num(n) => {
                leaves.push(Leaf::Num(*n));
                vec![]
            }
            Value::Bool(b) => {
                leaves.push(Leaf::Bool(*b));
                vec![]
            }
            Value::Tensor(TVal::Concrete(t)) => {
                for i in 0..t.len() {
                    // A row that is already a bool tensor (`[true, false]` inside a nested
                    // literal) keeps the whole literal bool.
                    leaves.push(match t.get_flat(i).expect("in range") {
                        pipec_tensor::Scalar::Bool(b) => Leaf::Bool(b),
                        s => Leaf::Tensor(s),
                    });
                }
                t.shape().to_vec()
            }
            Value::List(inner_vs) => match collect(inner_vs, leaves)? {
                Some(s) => s,
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        match &inner {
            None => inner = Some(shape),
            Some(s) if *s == shape => {}
            Some(s) => {
                return Err(format!(
                    "ragged tensor literal: rows of shapes {s:?} and {shape:?}"
                ));
            }
        }
    }
    let mut shape = vec![vs.len()];
    shape.extend(inner.unwrap_or_default());
    Ok(Some(shape))
}

/// A number of a literal that its target dtype cannot hold.
pub(crate) struct OutOfRange {
    /// The number as written (with its sign).
    pub text: String,
    /// Where it is written.
    pub span: pipec_diag::Span,
    /// Why: "is too large for f32", "is negative", "has a fraction".
    pub why: &'static str,
}

/// `cast(LITERAL, dtype)` computed from the literal's text: each number rounded once, from
/// its decimal text straight to `dtype` (SPEC §4), so `cast([0.1, 1e300], f64)` holds
/// numpy's `np.array([0.1, 1e300])`. `Ok(None)` when `e` is not a literal of numbers and
/// bools (or is ragged: the ordinary path reports that); `Err` for a number `dtype` cannot
/// hold: an overflowing float, an integer out of range, a fraction for an integer dtype.
pub(crate) fn exact_literal(
    e: &pipec_syntax::ast::Expr,
    dtype: DType,
) -> Result<Option<Tensor>, OutOfRange> {
    let mut leaves = Vec::new();
    let Some(shape) = literal_shape(e, &mut leaves) else {
        return Ok(None);
    };
    let mut scalars = Vec::with_capacity(leaves.len());
    for leaf in &leaves {
        scalars.push(exact_scalar(leaf, dtype)?);
    }
    Ok(tensor_of_scalars(&shape, dtype, scalars))
}

/// One number or bool of a literal: its text (sign included), value and span.
struct LitLeaf {
    text: String,
    kind: LitKind,
    span: pipec_diag::Span,
}

enum LitKind {
    Int(i128),
    Float,
    Bool(bool),
}

/// The shape of a literal written only with numbers, bools and lists of them; its leaves in
/// row-major order.
fn literal_shape(e: &pipec_syntax::ast::Expr, out: &mut Vec<LitLeaf>) -> Option<Vec<usize>> {
    use pipec_syntax::ast::{ExprKind, UnaryOp};
    let leaf = |text: String, kind| LitLeaf {
        text,
        kind,
        span: e.span,
    };
    match &e.kind {
        ExprKind::Int(n) => out.push(leaf(n.to_string(), LitKind::Int(*n as i128))),
        ExprKind::Float(_, text) => out.push(leaf(text.clone(), LitKind::Float)),
        ExprKind::Bool(b) => out.push(leaf(b.to_string(), LitKind::Bool(*b))),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            expr,
        } => match &expr.kind {
            ExprKind::Int(n) => out.push(leaf(format!("-{n}"), LitKind::Int(-(*n as i128)))),
            ExprKind::Float(_, text) => out.push(leaf(format!("-{text}"), LitKind::Float)),
            _ => return None,
        },
        ExprKind::List(items) => {
            let mut inner: Option<Vec<usize>> = None;
            for item in items {
                let s = literal_shape(item, out)?;
                match &inner {
                    None => inner = Some(s),
                    Some(prev) if *prev == s => {}
                    Some(_) => return None,
                }
            }
            let mut shape = vec![items.len()];
            shape.extend(inner.unwrap_or_default());
            return Some(shape);
        }
        _ => return None,
    }
    Some(vec![])
}

fn exact_scalar(leaf: &LitLeaf, dtype: DType) -> Result<pipec_tensor::Scalar, OutOfRange> {
    use pipec_tensor::{Scalar, bf16, f16};
    let fail = |why| OutOfRange {
        text: leaf.text.clone(),
        span: leaf.span,
        why,
    };
    let digits = pipec_syntax::lexer::float_digits(&leaf.text);
    let value = match &leaf.kind {
        LitKind::Bool(b) => {
            return Ok(kernels::scalar_from_i128(i128::from(*b), dtype).unwrap_or(Scalar::Bool(*b)));
        }
        LitKind::Int(i) => *i as f64,
        LitKind::Float => digits.parse::<f64>().unwrap_or(f64::NAN),
    };
    if dtype == DType::Bool {
        return Ok(Scalar::Bool(value != 0.0));
    }
    // Floats: each parser rounds the decimal text once, to the nearest value of its type.
    let finite = |x: f64| {
        if x.is_finite() {
            Ok(x)
        } else {
            Err(fail("is too large for"))
        }
    };
    match dtype {
        DType::F64 => return finite(value).map(Scalar::F64),
        DType::F32 => {
            let x = match &leaf.kind {
                LitKind::Int(i) => *i as f32,
                _ => digits.parse::<f32>().unwrap_or(f32::NAN),
            };
            return if x.is_finite() {
                Ok(Scalar::F32(x))
            } else {
                Err(fail("is too large for"))
            };
        }
        // Through f64: exact unless the f64 lands exactly between two f16 (bf16) values.
        DType::F16 => {
            let x = f16::from_f64(finite(value)?);
            return if x.is_finite() {
                Ok(Scalar::F16(x))
            } else {
                Err(fail("is too large for"))
            };
        }
        DType::BF16 => {
            let x = bf16::from_f64(finite(value)?);
            return if x.is_finite() {
                Ok(Scalar::BF16(x))
            } else {
                Err(fail("is too large for"))
            };
        }
        _ => {}
    }
    let int = match &leaf.kind {
        LitKind::Int(i) => *i,
        _ if value.fract() != 0.0 => return Err(fail("has a fraction, which is not a value of")),
        _ if value.abs() < 1e38 => value as i128,
        _ => return Err(fail("is out of the range of")),
    };
    kernels::scalar_from_i128(int, dtype).ok_or_else(|| {
        fail(if int < 0 && !dtype.is_signed_int() {
            "is negative, which is not a value of"
        } else {
            "is out of the range of"
        })
    })
}

/// A tensor of `dtype` from scalars of that dtype, row-major.
fn tensor_of_scalars(
    shape: &[usize],
    dtype: DType,
    s: Vec<pipec_tensor::Scalar>,
) -> Option<Tensor> {
    use pipec_tensor::Scalar as S;
    macro_rules! build {
        ($($d:ident => $v:ident),*) => {
            match dtype {
                $(DType::$d => Tensor::from_vec(
                    shape,
                    s.into_iter().map(|x| match x { S::$v(v) => Some(v), _ => None }).collect::<Option<Vec<_>>>()?,
                ),)*
                // Strings have no scalar form; their literals are built elsewhere.
                DType::Str => None,
            }
        };
    }
    build!(Bool => Bool, I8 => I8, U8 => U8, I16 => I16, U16 => U16, I32 => I32, U32 => U32,
        I64 => I64, U64 => U64, F16 => F16, BF16 => BF16, F32 => F32, F64 => F64)
}

/// Whether a finite weak float stays finite in the float `dtype` (`1e39` does not in f32).
pub(crate) fn float_fits(f: f64, dtype: DType) -> bool {
    !f.is_finite()
        || match dtype {
            DType::F16 => pipec_tensor::f16::from_f64(f).is_finite(),
            DType::BF16 => pipec_tensor::bf16::from_f64(f).is_finite(),
            DType::F32 => (f as f32).is_finite(),
            _ => true,
        }
}
