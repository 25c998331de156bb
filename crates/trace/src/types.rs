//! Written types (`f32[?, 3]`, `(u8[28, 28], i64[])`, a bare `f32`) and how they match
//! element signatures.

use pipec_diag::{Code, Diagnostic, did_you_mean};
use pipec_ir::{Dim, ElemType, Shape, TensorType};
use pipec_syntax::ast::{DimExpr, TypeExpr, TypeExprKind};
use pipec_tensor::DType;

/// A resolved written type; a bare dtype leaves the shape open.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeSpec {
    /// A tensor of `dtype`; `dims: None` accepts any shape.
    Tensor {
        /// The dtype.
        dtype: DType,
        /// The dims, when written.
        dims: Option<Vec<Dim>>,
    },
    /// A tuple of specs.
    Tuple(Vec<TypeSpec>),
}

/// Resolves a written type, reporting unknown dtype names.
pub fn resolve(te: &TypeExpr) -> Result<TypeSpec, Diagnostic> {
    match &te.kind {
        TypeExprKind::Tensor { dtype, dims } => {
            let Some(dt) = DType::from_name(&dtype.name) else {
                let mut d =
                    Diagnostic::error(Code::UnknownName, format!("unknown dtype `{}`", dtype.name))
                        .with_label(dtype.span, "not a dtype");
                let names = DType::ALL.map(|d| d.name());
                d = match did_you_mean(&dtype.name, names) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("the dtypes are {}", names.join(", "))),
                };
                return Err(d);
            };
            let dims = dims.as_ref().map(|ds| {
                ds.iter()
                    .map(|d| match d {
                        DimExpr::Known(n, _) => Dim::Known(*n as usize),
                        DimExpr::Unknown(_) => Dim::Unknown,
                    })
                    .collect()
            });
            Ok(TypeSpec::Tensor { dtype: dt, dims })
        }
        TypeExprKind::Tuple(parts) => Ok(TypeSpec::Tuple(
            parts.iter().map(resolve).collect::<Result<_, _>>()?,
        )),
        TypeExprKind::Error => {
            Err(Diagnostic::error(Code::UnexpectedToken, "malformed type").with_label(te.span, ""))
        }
    }
}

impl TypeSpec {
    /// Whether an element of type `elem` is acceptable (dtype exact, written dims exact).
    pub fn admits(&self, elem: &ElemType) -> bool {
        match (self, elem) {
            (TypeSpec::Tensor { dtype, dims }, ElemType::Tensor(t)) => {
                t.dtype == *dtype
                    && dims.as_ref().is_none_or(|ds| {
                        ds.len() == t.rank()
                            && ds
                                .iter()
                                .zip(&t.shape.0)
                                .all(|(want, got)| match (want, got) {
                                    (Dim::Unknown, _) => true,
                                    (Dim::Known(a), Dim::Known(b)) => a == b,
                                    (Dim::Known(_), Dim::Unknown) => false,
                                })
                    })
            }
            (TypeSpec::Tuple(ps), ElemType::Tuple(es)) => {
                ps.len() == es.len() && ps.iter().zip(es).all(|(p, e)| p.admits(e))
            }
            _ => false,
        }
    }

    /// The element type this spec declares; a bare dtype takes the rank of `like`
    /// (when given) with every dim unknown, or is a scalar.
    pub fn to_elem(&self, like: Option<&TensorType>) -> ElemType {
        match self {
            TypeSpec::Tensor {
                dtype,
                dims: Some(ds),
            } => ElemType::Tensor(TensorType::new(*dtype, Shape(ds.clone()))),
            TypeSpec::Tensor { dtype, dims: None } => {
                let rank = like.map_or(0, |t| t.rank());
                ElemType::Tensor(TensorType::new(*dtype, Shape(vec![Dim::Unknown; rank])))
            }
            TypeSpec::Tuple(ps) => ElemType::Tuple(ps.iter().map(|p| p.to_elem(like)).collect()),
        }
    }
}

impl std::fmt::Display for TypeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypeSpec::Tensor { dtype, dims: None } => write!(f, "{dtype}"),
            TypeSpec::Tensor {
                dtype,
                dims: Some(ds),
            } => write!(f, "{dtype}{}", Shape(ds.clone())),
            TypeSpec::Tuple(ps) => {
                let parts: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
                write!(f, "({})", parts.join(", "))
            }
        }
    }
}

/// Parses a type written as a string (`"f32[?, 3]"`, `"i64[]"`, `"f32"`), for `py_function`'s `Tout`.
pub fn parse_type_text(text: &str) -> Option<TypeSpec> {
    let text = text.trim();
    let (name, rest) = match text.find('[') {
        Some(i) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    };
    let dtype = DType::from_name(name.trim())?;
    let dims = match rest {
        None => None,
        Some(r) => {
            let inner = r.strip_prefix('[')?.strip_suffix(']')?;
            let mut dims = Vec::new();
            for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                dims.push(if part == "?" {
                    Dim::Unknown
                } else {
                    Dim::Known(part.parse().ok()?)
                });
            }
            Some(dims)
        }
    };
    Some(TypeSpec::Tensor { dtype, dims })
}
