//! Static types: dims that may be unknown, tensor types, and element types (trees of tensors).

use pipec_tensor::DType;
use std::fmt;

/// One dimension of a static shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// Known at compile time.
    Known(usize),
    /// `?`: known only at run time.
    Unknown,
}

impl Dim {
    /// The size, if known.
    pub fn known(self) -> Option<usize> {
        match self {
            Dim::Known(n) => Some(n),
            Dim::Unknown => None,
        }
    }

    /// Whether a run-time size `n` fits this dim.
    pub fn admits(self, n: usize) -> bool {
        self.known().is_none_or(|k| k == n)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// A static shape: one [`Dim`] per axis.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    /// A fully known shape.
    pub fn known(dims: &[usize]) -> Shape {
        Shape(dims.iter().map(|&n| Dim::Known(n)).collect())
    }

    /// The scalar shape `[]`.
    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The dims as sizes, if all are known.
    pub fn as_known(&self) -> Option<Vec<usize>> {
        self.0.iter().map(|d| d.known()).collect()
    }

    /// The element count, if every dim is known (and the product does not overflow).
    pub fn num_elements(&self) -> Option<usize> {
        self.0
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(d.known()?))
    }

    /// Whether a run-time shape fits this static shape.
    pub fn admits(&self, dims: &[usize]) -> bool {
        self.0.len() == dims.len() && self.0.iter().zip(dims).all(|(d, &n)| d.admits(n))
    }

    /// The numpy broadcast of two static shapes, or `None` when known dims clash. An
    /// unknown dim meeting `n > 1` must be `n` or 1 at run time; either way the result is `n`.
    pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
        let rank = a.rank().max(b.rank());
        let dim = |s: &Shape, i: usize| {
            if i + s.rank() >= rank {
                s.0[i + s.rank() - rank]
            } else {
                Dim::Known(1)
            }
        };
        let mut dims = Vec::with_capacity(rank);
        for i in 0..rank {
            dims.push(match (dim(a, i), dim(b, i)) {
                (Dim::Known(1), d) | (d, Dim::Known(1)) => d,
                (Dim::Known(x), Dim::Known(y)) if x == y => Dim::Known(x),
                (Dim::Known(_), Dim::Known(_)) => return None,
                (Dim::Unknown, Dim::Known(n)) | (Dim::Known(n), Dim::Unknown) => Dim::Known(n),
                (Dim::Unknown, Dim::Unknown) => Dim::Unknown,
            });
        }
        Some(Shape(dims))
    }

    /// This shape with `dim` prepended (the shape of a batch of these).
    pub fn prepend(&self, dim: Dim) -> Shape {
        let mut dims = Vec::with_capacity(self.0.len() + 1);
        dims.push(dim);
        dims.extend_from_slice(&self.0);
        Shape(dims)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// The static type of a tensor value: dtype and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// The element dtype.
    pub dtype: DType,
    /// The shape, maybe with unknown dims.
    pub shape: Shape,
}

impl TensorType {
    /// A tensor type from a dtype and a shape.
    pub fn new(dtype: DType, shape: Shape) -> TensorType {
        TensorType { dtype, shape }
    }

    /// A scalar (rank-0) type.
    pub fn scalar(dtype: DType) -> TensorType {
        TensorType {
            dtype,
            shape: Shape::scalar(),
        }
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.shape.rank()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}

/// The type of a dataset element: a tensor, or a tuple or dict of element types.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ElemType {
    /// One tensor.
    Tensor(TensorType),
    /// A tuple; components may themselves be tuples or dicts.
    Tuple(Vec<ElemType>),
    /// A dict: string keys in the order written, each with its element type.
    Dict(Vec<(String, ElemType)>),
}

impl ElemType {
    /// The tensor leaves in order (how elements are stored at run time: flat).
    pub fn leaves(&self) -> Vec<&TensorType> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a TensorType>) {
        match self {
            ElemType::Tensor(t) => out.push(t),
            ElemType::Tuple(parts) => parts.iter().for_each(|p| p.collect_leaves(out)),
            ElemType::Dict(fields) => fields.iter().for_each(|(_, p)| p.collect_leaves(out)),
        }
    }

    /// The number of tensor leaves.
    pub fn num_leaves(&self) -> usize {
        match self {
            ElemType::Tensor(_) => 1,
            ElemType::Tuple(parts) => parts.iter().map(ElemType::num_leaves).sum(),
            ElemType::Dict(fields) => fields.iter().map(|(_, p)| p.num_leaves()).sum(),
        }
    }

    /// Whether a dict occurs anywhere in the tree.
    pub fn has_dict(&self) -> bool {
        match self {
            ElemType::Tensor(_) => false,
            ElemType::Tuple(parts) => parts.iter().any(ElemType::has_dict),
            ElemType::Dict(_) => true,
        }
    }

    /// Each leaf's path from the root, in leaf order: dict keys and tuple positions joined
    /// by `/` (`image`, `1/label`); a bare tensor's path is empty. The names of `--output
    /// .npz` members for elements with dicts.
    pub fn leaf_paths(&self) -> Vec<String> {
        fn walk(e: &ElemType, prefix: &str, out: &mut Vec<String>) {
            let join = |part: &str| {
                if prefix.is_empty() {
                    part.to_string()
                } else {
                    format!("{prefix}/{part}")
                }
            };
            match e {
                ElemType::Tensor(_) => out.push(prefix.to_string()),
                ElemType::Tuple(parts) => {
                    for (i, p) in parts.iter().enumerate() {
                        walk(p, &join(&i.to_string()), out);
                    }
                }
                ElemType::Dict(fields) => {
                    for (k, p) in fields {
                        walk(p, &join(k), out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, "", &mut out);
        out
    }

    /// The same tree with every leaf replaced by `f(leaf)`.
    pub fn map_leaves(&self, f: &mut impl FnMut(&TensorType) -> TensorType) -> ElemType {
        match self {
            ElemType::Tensor(t) => ElemType::Tensor(f(t)),
            ElemType::Tuple(parts) => {
                ElemType::Tuple(parts.iter().map(|p| p.map_leaves(f)).collect())
            }
            ElemType::Dict(fields) => ElemType::Dict(
                fields
                    .iter()
                    .map(|(k, p)| (k.clone(), p.map_leaves(f)))
                    .collect(),
            ),
        }
    }

    /// The most specific type both `a` and `b` are instances of (a dim where they differ
    /// becomes `?`), or `None` when their structure, dtypes or ranks differ: the element
    /// type of `a.concatenate(b)`.
    pub fn join(a: &ElemType, b: &ElemType) -> Option<ElemType> {
        match (a, b) {
            (ElemType::Tensor(x), ElemType::Tensor(y))
                if x.dtype == y.dtype && x.rank() == y.rank() =>
            {
                let dims = x
                    .shape
                    .0
                    .iter()
                    .zip(&y.shape.0)
                    .map(|(p, q)| if p == q { *p } else { Dim::Unknown })
                    .collect();
                Some(ElemType::Tensor(TensorType::new(x.dtype, Shape(dims))))
            }
            (ElemType::Tuple(xs), ElemType::Tuple(ys)) if xs.len() == ys.len() => xs
                .iter()
                .zip(ys)
                .map(|(x, y)| ElemType::join(x, y))
                .collect::<Option<Vec<_>>>()
                .map(ElemType::Tuple),
            // Leaves are stored flat in key order, so the keys must come in the same order.
            (ElemType::Dict(xs), ElemType::Dict(ys))
                if xs.len() == ys.len() && xs.iter().zip(ys).all(|((k, _), (l, _))| k == l) =>
            {
                xs.iter()
                    .zip(ys)
                    .map(|((k, x), (_, y))| Some((k.clone(), ElemType::join(x, y)?)))
                    .collect::<Option<Vec<_>>>()
                    .map(ElemType::Dict)
            }
            _ => None,
        }
    }

    /// Rebuilds a tree of this structure from flat leaves (taken in order).
    pub fn rebuild(&self, leaves: &mut impl Iterator<Item = TensorType>) -> ElemType {
        self.map_leaves(&mut |_| leaves.next().expect("as many leaves as the structure"))
    }
}

/// Writes a dict key in a type: bare when it is an identifier, else quoted with escapes.
pub fn write_key(f: &mut impl fmt::Write, key: &str) -> fmt::Result {
    let ident = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident {
        f.write_str(key)
    } else {
        write!(f, "{key:?}")
    }
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElemType::Tensor(t) => write!(f, "{t}"),
            ElemType::Tuple(parts) => {
                f.write_str("(")?;
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{p}")?;
                }
                if parts.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            ElemType::Dict(fields) => {
                f.write_str("{")?;
                for (i, (k, p)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_key(f, k)?;
                    write!(f, ": {p}")?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(dtype: DType, dims: &[usize]) -> ElemType {
        ElemType::Tensor(TensorType::new(dtype, Shape::known(dims)))
    }

    #[test]
    fn dicts_print_keys_in_order_and_name_their_leaves() {
        let e = ElemType::Tuple(vec![
            t(DType::I64, &[]),
            ElemType::Dict(vec![
                ("image".into(), t(DType::U8, &[28, 28])),
                ("my key".into(), ElemType::Tuple(vec![t(DType::F32, &[3])])),
            ]),
        ]);
        assert_eq!(
            e.to_string(),
            r#"(i64[], {image: u8[28, 28], "my key": (f32[3],)})"#
        );
        assert_eq!(e.leaf_paths(), ["0", "1/image", "1/my key/0"]);
        assert_eq!(e.num_leaves(), 3);
        assert!(e.has_dict());
        assert!(!t(DType::F32, &[]).has_dict());
        // Joining dicts needs the same keys in the same order (leaves are stored flat).
        let a = ElemType::Dict(vec![("a".into(), t(DType::I32, &[2]))]);
        let b = ElemType::Dict(vec![("a".into(), t(DType::I32, &[1]))]);
        let c = ElemType::Dict(vec![("b".into(), t(DType::I32, &[1]))]);
        assert_eq!(
            ElemType::join(&a, &b).map(|j| j.to_string()).as_deref(),
            Some("{a: i32[?]}")
        );
        assert_eq!(ElemType::join(&a, &c), None);
    }
}
