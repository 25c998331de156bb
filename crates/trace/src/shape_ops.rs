//! Builtins beyond elementwise math: shape ops, creation, host-only ops, `py_function`,
//! `ensure_shape`, and dataset sources.

use crate::builtins::reshape_dims;
use crate::dataset::DsExpr;
use crate::eval::{Eval, Res, tval_type};
use crate::infer;
use crate::types::TypeSpec;
use crate::value::{FuncVal, Num, TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{Dim, DsKind, ElemType, OpKind, ReshapeDim, Shape, Source, TensorType};
use pipec_syntax::ast;
use pipec_tensor::kernels;
use pipec_tensor::{DType, Scalar, Tensor};
use std::sync::Arc;

type Pos = Vec<(Value, Span)>;
type Named = Vec<(ast::Ident, Value, Span)>;
type Args = Vec<Option<(Value, Span)>>;

impl Eval<'_> {
    fn req(a: &Args, i: usize) -> (Value, Span) {
        a[i].clone().expect("bind_args checked required arguments")
    }

    fn tensor_req(&mut self, a: &Args, i: usize) -> Res<Option<TVal>> {
        let (v, s) = Self::req(a, i);
        self.tensor_operand(v, s)
    }

    /// A list of trace-time ints (a shape, a permutation, repetitions).
    pub(crate) fn int_list(&mut self, (v, s): (Value, Span), what: &str) -> Res<Option<Vec<i64>>> {
        let items: Vec<Value> = match v {
            Value::Tuple(vs) | Value::List(vs) => vs,
            // `[]` is an empty f32 literal; as a shape it is the scalar shape.
            Value::Tensor(TVal::Concrete(t)) if t.rank() == 1 && t.is_empty() => vec![],
            Value::Tensor(TVal::Concrete(t)) if t.rank() <= 1 && t.dtype().is_int() => {
                let t = kernels::cast(&t, DType::I64);
                t.as_array::<i64>()
                    .map(|a| a.iter().map(|&i| Value::Num(Num::Int(i as i128))).collect())
                    .unwrap_or_default()
            }
            Value::Num(n) => vec![Value::Num(n)],
            Value::Poison => return Ok(None),
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!(
                        "{what} must be a list of integers, found {}",
                        other.kind_name()
                    ),
                )
                .with_label(s, "not a list of integers");
                self.fail(d)?;
                return Ok(None);
            }
        };
        let mut out = Vec::new();
        for v in items {
            if matches!(v, Value::SymDim) {
                out.push(-1);
                continue;
            }
            let Some(i) = self.int_value(v, s, what)? else {
                return Ok(None);
            };
            out.push(i);
        }
        Ok(Some(out))
    }

    fn usize_list(&mut self, arg: (Value, Span), what: &str) -> Res<Option<Vec<usize>>> {
        let s = arg.1;
        // `int_list` reads a symbolic dim as -1 (right for `reshape` and `ensure_shape`); here
        // every entry must be a real size, and a `?` dim is only known at run time.
        if let Value::Tuple(vs) | Value::List(vs) = &arg.0
            && vs
                .iter()
                .any(|v| matches!(v, Value::SymDim | Value::Tensor(TVal::Symbolic(..))))
        {
            let d = Diagnostic::error(Code::NotTraceTime, format!("{what} must be known at trace time"))
                .with_label(s, "uses a dim that is only known at run time (`?`)")
                .with_note("tensors created at trace time (`zeros`, `ones`, `fill`, ...) and `broadcast_to`/`tile` need every size now")
                .with_help("use constant sizes, or derive the tensor from the input instead of creating it (`x * 0` has the shape of `x`)");
            self.fail(d)?;
            return Ok(None);
        }
        let Some(list) = self.int_list(arg, what)? else {
            return Ok(None);
        };
        if list.iter().any(|&i| i < 0) {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("{what} cannot have negative entries"),
            )
            .with_label(s, "a negative size")
            .with_help("sizes are 0 or more; only `reshape` accepts -1 (infer this dim)");
            self.fail(d)?;
            return Ok(None);
        }
        let out: Vec<usize> = list.into_iter().map(|i| i as usize).collect();
        if let Err(d) = check_elements(&out, s) {
            self.fail(d)?;
            return Ok(None);
        }
        Ok(Some(out))
    }

    fn one_axis(
        &mut self,
        v: Option<(Value, Span)>,
        rank: usize,
        default: i64,
    ) -> Res<Option<usize>> {
        let (v, s) = v.unwrap_or((Value::Num(Num::Int(default as i128)), Span::default()));
        let Some(i) = self.int_value(v, s, "an axis")? else {
            return Ok(None);
        };
        match infer::norm_axis(i, rank) {
            Some(a) => Ok(Some(a)),
            None => {
                let d = Diagnostic::error(
                    Code::BadAxis,
                    format!("axis {i} is out of range for rank {rank}"),
                )
                .with_label(
                    s,
                    format!("valid axes are {} to {}", -(rank as i64), rank as i64 - 1),
                );
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    pub(crate) fn call_builtin_more(
        &mut self,
        name: &str,
        pos: Pos,
        named: Named,
        span: Span,
    ) -> Res<Value> {
        macro_rules! bind {
            ($params:expr, $req:expr) => {
                match self.bind_args(name, $params, $req, pos, named, span)? {
                    Some(a) => a,
                    None => return Ok(Value::Poison),
                }
            };
        }
        macro_rules! tensor {
            ($a:expr, $i:expr) => {
                match self.tensor_req(&$a, $i)? {
                    Some(t) => t,
                    None => return Ok(Value::Poison),
                }
            };
        }
        macro_rules! some {
            ($e:expr) => {
                match $e {
                    Some(v) => v,
                    None => return Ok(Value::Poison),
                }
            };
        }
        match name {
            "reshape" => {
                let a = bind!(&["x", "shape"], 2);
                let t = tensor!(a, 0);
                let ty = tval_type(&t);
                let sspan = Self::req(&a, 1).1;
                let raw = some!(self.int_list(Self::req(&a, 1), "a shape")?);
                let dims = match reshape_dims(&raw) {
                    Ok(d) => d,
                    Err(msg) => {
                        let d = Diagnostic::error(Code::BadReshape, msg)
                            .with_label(sspan, "this shape")
                            .with_help(
                                "use -1 for at most one dim; every other dim is a size, 0 or more",
                            );
                        return self.fail(d);
                    }
                };
                // Saturating: a product past `usize` cannot match any real element count
                // (and a 0 anywhere still makes it exactly 0).
                let fixed: usize = dims
                    .iter()
                    .map(|d| if let ReshapeDim::Fixed(n) = d { *n } else { 1 })
                    .fold(1usize, usize::saturating_mul);
                let has_infer = dims.contains(&ReshapeDim::Infer);
                let out_dims: Vec<Dim> = match ty.shape.num_elements() {
                    Some(n) => {
                        let ok = if has_infer {
                            fixed != 0 && n % fixed == 0
                        } else {
                            n == fixed
                        };
                        if !ok {
                            let d = Diagnostic::error(
                                Code::BadReshape,
                                format!(
                                    "cannot reshape {} ({n} elements) into {:?}",
                                    ty.shape, raw
                                ),
                            )
                            .with_label(
                                sspan,
                                format!(
                                    "{} elements",
                                    if has_infer {
                                        format!("a multiple of {fixed}")
                                    } else {
                                        fixed.to_string()
                                    }
                                ),
                            )
                            .with_help(
                                "the element count must stay the same; use -1 to infer one dim",
                            );
                            return self.fail(d);
                        }
                        dims.iter()
                            .map(|d| {
                                Dim::Known(if let ReshapeDim::Fixed(k) = d {
                                    *k
                                } else {
                                    n / fixed
                                })
                            })
                            .collect()
                    }
                    None => dims
                        .iter()
                        .map(|d| {
                            if let ReshapeDim::Fixed(k) = d {
                                Dim::Known(*k)
                            } else {
                                Dim::Unknown
                            }
                        })
                        .collect(),
                };
                self.op(
                    OpKind::Reshape(dims),
                    vec![t],
                    TensorType::new(ty.dtype, Shape(out_dims)),
                    span,
                )
            }
            "transpose" => {
                let a = bind!(&["x", "perm"], 1);
                let t = tensor!(a, 0);
                let ty = tval_type(&t);
                let perm: Vec<usize> = match a[1].clone() {
                    None => (0..ty.rank()).rev().collect(),
                    Some(p) => {
                        let ps = p.1;
                        let raw = some!(self.int_list(p, "a permutation")?);
                        let mut perm = Vec::new();
                        for i in raw {
                            let Some(axis) = infer::norm_axis(i, ty.rank()) else {
                                let d = Diagnostic::error(
                                    Code::BadAxis,
                                    format!(
                                        "axis {i} is out of range for a tensor of rank {}",
                                        ty.rank()
                                    ),
                                )
                                .with_label(ps, "in this permutation")
                                .with_help("a permutation lists each axis 0 to rank - 1 once");
                                return self.fail(d);
                            };
                            perm.push(axis);
                        }
                        let mut sorted = perm.clone();
                        sorted.sort_unstable();
                        if sorted != (0..ty.rank()).collect::<Vec<_>>() {
                            let d = Diagnostic::error(
                                Code::BadAxis,
                                format!("{perm:?} is not a permutation of the {} axes", ty.rank()),
                            )
                            .with_label(ps, "");
                            return self.fail(d);
                        }
                        perm
                    }
                };
                let dims = perm.iter().map(|&p| ty.shape.0[p]).collect();
                self.op(
                    OpKind::Transpose(perm),
                    vec![t],
                    TensorType::new(ty.dtype, Shape(dims)),
                    span,
                )
            }
            "expand_dims" => {
                let a = bind!(&["x", "axis"], 2);
                let t = tensor!(a, 0);
                let ty = tval_type(&t);
                let axis = some!(self.one_axis(a[1].clone(), ty.rank() + 1, 0)?);
                let mut dims = ty.shape.0.clone();
                dims.insert(axis, Dim::Known(1));
                self.op(
                    OpKind::ExpandDims(axis),
                    vec![t],
                    TensorType::new(ty.dtype, Shape(dims)),
                    span,
                )
            }
            "squeeze" => {
                let a = bind!(&["x", "axis"], 1);
                let t = tensor!(a, 0);
                let ty = tval_type(&t);
                let axes: Vec<usize> = match a[1].clone() {
                    None => ty
                        .shape
                        .0
                        .iter()
                        .enumerate()
                        .filter(|(_, d)| **d == Dim::Known(1))
                        .map(|(i, _)| i)
                        .collect(),
                    Some(v) => some!(self.axes_arg(Some(v), ty.rank())?),
                };
                for &ax in &axes {
                    if ty.shape.0[ax] != Dim::Known(1) && ty.shape.0[ax] != Dim::Unknown {
                        let d = Diagnostic::error(
                            Code::BadAxis,
                            format!("cannot squeeze axis {ax} of size {}", ty.shape.0[ax]),
                        )
                        .with_label(span, "only size-1 axes can be squeezed");
                        return self.fail(d);
                    }
                }
                let dims = ty
                    .shape
                    .0
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !axes.contains(i))
                    .map(|(_, d)| *d)
                    .collect();
                self.op(
                    OpKind::Squeeze(axes),
                    vec![t],
                    TensorType::new(ty.dtype, Shape(dims)),
                    span,
                )
            }
            "concat" | "stack" => {
                let a = bind!(&["values", "axis"], 1);
                let (v, vs) = Self::req(&a, 0);
                let parts = match v {
                    Value::List(vs) | Value::Tuple(vs) => vs,
                    Value::Tensor(TVal::Concrete(t)) if t.rank() >= 1 => (0..t.shape()[0])
                        .map(|i| Value::Tensor(TVal::Concrete(t.index_axis0(i))))
                        .collect(),
                    other => {
                        let d = Diagnostic::error(
                            Code::WrongKind,
                            format!(
                                "`{name}` takes a list of tensors, found {}",
                                other.kind_name()
                            ),
                        )
                        .with_label(vs, "")
                        .with_help(format!("`{name}([a, b], axis: 0)`"));
                        return self.fail(d);
                    }
                };
                if parts.is_empty() {
                    let d =
                        Diagnostic::error(Code::WrongKind, format!("`{name}` of an empty list"))
                            .with_label(vs, "");
                    return self.fail(d);
                }
                // Weak numbers take the dtype of the first tensor (or their default).
                let first_dtype = parts.iter().find_map(|p| {
                    if let Value::Tensor(t) = p {
                        Some(tval_type(t).dtype)
                    } else {
                        None
                    }
                });
                let mut ts = Vec::new();
                for p in parts {
                    let t = match (&p, first_dtype) {
                        (Value::Num(_) | Value::Bool(_), Some(dt)) => {
                            self.weak_scalar(&p, dt, vs)?
                        }
                        _ => self.tensor_operand(p, vs)?,
                    };
                    ts.push(some!(t));
                }
                let tys: Vec<TensorType> = ts.iter().map(tval_type).collect();
                let dtype = tys[0].dtype;
                if let Some(bad) = tys.iter().find(|t| t.dtype != dtype) {
                    let d = Diagnostic::error(
                        Code::DtypeMismatch,
                        format!("`{name}` of {dtype} and {}", bad.dtype),
                    )
                    .with_label(vs, "")
                    .with_help("cast them to one dtype");
                    return self.fail(d);
                }
                let rank = tys[0].rank();
                if let Some(other) = tys.iter().find(|t| t.rank() != rank) {
                    let d = Diagnostic::error(
                        Code::ConcatMismatch,
                        format!(
                            "`{name}` of tensors with different ranks: {} and {other}",
                            tys[0]
                        ),
                    )
                    .with_label(vs, format!("ranks {rank} and {}", other.rank()))
                    .with_help("`expand_dims` or `reshape` the operands to one rank first");
                    return self.fail(d);
                }
                let out_rank = if name == "stack" { rank + 1 } else { rank };
                if out_rank == 0 {
                    let d = Diagnostic::error(Code::ConcatMismatch, "cannot concat scalars")
                        .with_label(vs, "")
                        .with_help("use `stack` to make a vector of scalars");
                    return self.fail(d);
                }
                let axis = some!(self.one_axis(a[1].clone(), out_rank, 0)?);
                let mut dims: Vec<Dim> = Vec::new();
                for i in 0..rank {
                    let mut d = tys[0].shape.0[i];
                    let concat_axis = name == "concat" && i == axis;
                    if concat_axis {
                        d = tys
                            .iter()
                            .try_fold(Dim::Known(0), |acc, t| match (acc, t.shape.0[i]) {
                                (Dim::Known(x), Dim::Known(y)) => Some(Dim::Known(x + y)),
                                _ => Some(Dim::Unknown),
                            })
                            .unwrap_or(Dim::Unknown);
                    } else {
                        for t in &tys[1..] {
                            match (d, t.shape.0[i]) {
                                (Dim::Known(x), Dim::Known(y)) if x != y => {
                                    let d = Diagnostic::error(
                                        Code::ConcatMismatch,
                                        format!(
                                            "`{name}` of shapes {} and {}",
                                            tys[0].shape, t.shape
                                        ),
                                    )
                                    .with_label(vs, format!("dim {i} differs"))
                                    .with_help("all dims but the concatenation axis must agree");
                                    return self.fail(d);
                                }
                                (Dim::Unknown, k) => d = k,
                                _ => {}
                            }
                        }
                    }
                    dims.push(d);
                }
                if name == "stack" {
                    dims.insert(axis, Dim::Known(ts.len()));
                }
                let kind = if name == "stack" {
                    OpKind::Stack(axis)
                } else {
                    OpKind::Concat(axis)
                };
                self.op(kind, ts, TensorType::new(dtype, Shape(dims)), span)
            }
            "broadcast_to" => {
                let a = bind!(&["x", "shape"], 2);
                let t = tensor!(a, 0);
                let ty = tval_type(&t);
                let sspan = Self::req(&a, 1).1;
                let shape = some!(self.usize_list(Self::req(&a, 1), "a shape")?);
                let target = Shape::known(&shape);
                if infer::broadcast(&ty.shape, &target).as_ref() != Some(&target) {
                    let d = Diagnostic::error(
                        Code::BroadcastMismatch,
                        format!("cannot broadcast {} to {}", ty.shape, target),
                    )
                    .with_label(sspan, "");
                    return self.fail(d);
                }
                self.op(
                    OpKind::BroadcastTo(shape),
                    vec![t],
                    TensorType::new(ty.dtype, target),
                    span,
                )
            }
            "tile" => {
                let a = bind!(&["x", "reps"], 2);
                let t = tensor!(a, 0);
                let ty = tval_type(&t);
                let rspan = Self::req(&a, 1).1;
                let reps = some!(self.usize_list(Self::req(&a, 1), "repetitions")?);
                if reps.len() != ty.rank() {
                    let d = Diagnostic::error(
                        Code::BadAxis,
                        format!("`tile` needs {} repetitions, one per axis", ty.rank()),
                    )
                    .with_label(rspan, format!("{} given", reps.len()));
                    return self.fail(d);
                }
                let dims = ty
                    .shape
                    .0
                    .iter()
                    .zip(&reps)
                    .map(|(d, r)| d.known().map_or(Dim::Unknown, |n| Dim::Known(n * r)))
                    .collect();
                self.op(
                    OpKind::Tile(reps),
                    vec![t],
                    TensorType::new(ty.dtype, Shape(dims)),
                    span,
                )
            }
            "reverse" => {
                let a = bind!(&["x", "axis"], 2);
                let t = tensor!(a, 0);
                let ty = tval_type(&t);
                let axes = some!(self.axes_arg(a[1].clone(), ty.rank())?);
                self.op(OpKind::Reverse(axes), vec![t], ty, span)
            }
            "sort" => {
                let a = bind!(&["x", "axis"], 1);
                let t = tensor!(a, 0);
                let ty = tval_type(&t);
                if ty.rank() == 0 {
                    let d = Diagnostic::error(Code::BadAxis, "cannot sort a scalar")
                        .with_label(span, "");
                    return self.fail(d);
                }
                let axis = some!(self.one_axis(a[1].clone(), ty.rank(), -1)?);
                self.op(OpKind::Sort(axis), vec![t], ty, span)
            }
            "one_hot" => {
                let a = bind!(&["indices", "depth", "dtype"], 2);
                let t = tensor!(a, 0);
                let ty = tval_type(&t);
                if !ty.dtype.is_int() {
                    let d = Diagnostic::error(
                        Code::DtypeMismatch,
                        format!("`one_hot` indices must be integers, found {}", ty.dtype),
                    )
                    .with_label(span, "")
                    .with_help("cast the indices to i32 or i64");
                    return self.fail(d);
                }
                let (dv, ds) = Self::req(&a, 1);
                let depth = some!(self.int_value(dv, ds, "the depth")?);
                if depth < 0 {
                    let d =
                        Diagnostic::error(Code::WrongKind, "`one_hot` depth must be non-negative")
                            .with_label(ds, "");
                    return self.fail(d);
                }
                let dtype = match a[2].clone() {
                    Some(v) => some!(self.dtype_arg(v)?),
                    None => DType::F32,
                };
                let mut dims = ty.shape.0.clone();
                dims.push(Dim::Known(depth as usize));
                self.op(
                    OpKind::OneHot {
                        depth: depth as usize,
                        dtype,
                    },
                    vec![t],
                    TensorType::new(dtype, Shape(dims)),
                    span,
                )
            }
            "zeros" | "ones" => {
                let a = bind!(&["shape", "dtype"], 1);
                let shape = some!(self.usize_list(Self::req(&a, 0), "a shape")?);
                let dtype = match a[1].clone() {
                    Some(v) => some!(self.dtype_arg(v)?),
                    None => DType::F32,
                };
                let r = if name == "zeros" {
                    kernels::zeros(&shape, dtype)
                } else {
                    kernels::ones(&shape, dtype)
                };
                self.kernel_result(r, span)
            }
            "fill" => {
                let a = bind!(&["shape", "value", "dtype"], 2);
                let shape = some!(self.usize_list(Self::req(&a, 0), "a shape")?);
                let (v, vs) = Self::req(&a, 1);
                let dtype = match a[2].clone() {
                    Some(d) => Some(some!(self.dtype_arg(d)?)),
                    None => None,
                };
                let scalar = match (&v, dtype) {
                    (Value::Num(_) | Value::Bool(_), Some(dt)) => {
                        some!(self.weak_scalar(&v, dt, vs)?)
                    }
                    _ => some!(self.tensor_operand(v, vs)?),
                };
                let TVal::Concrete(st) = scalar else {
                    let d = Diagnostic::error(
                        Code::NotTraceTime,
                        "`fill` needs a value known at trace time",
                    )
                    .with_label(vs, "")
                    .with_help("use `broadcast_to(x, shape)` for a symbolic value");
                    return self.fail(d);
                };
                let Some(s) = (st.rank() == 0).then(|| st.get_flat(0)).flatten() else {
                    let d = Diagnostic::error(Code::WrongKind, "`fill` needs a scalar value")
                        .with_label(vs, "");
                    return self.fail(d);
                };
                self.kernel_result(kernels::fill(&shape, s), span)
            }
            "arange" => {
                let a = bind!(&["n", "dtype"], 1);
                let (v, vs) = Self::req(&a, 0);
                let n = some!(self.int_value(v, vs, "the length")?);
                if n < 0 {
                    let d =
                        Diagnostic::error(Code::WrongKind, "`arange` length must be non-negative")
                            .with_label(vs, "");
                    return self.fail(d);
                }
                let dtype = match a[1].clone() {
                    Some(v) => some!(self.dtype_arg(v)?),
                    None => DType::I32,
                };
                if let Err(d) = check_elements(&[n as usize], vs) {
                    return self.fail(d);
                }
                self.kernel_result(kernels::arange(n as usize, dtype), span)
            }
            "numpy" => {
                let a = bind!(&["x"], 1);
                Ok(Self::req(&a, 0).0)
            }
            "item" => {
                let a = bind!(&["x"], 1);
                let t = tensor!(a, 0);
                let TVal::Concrete(t) = t else {
                    return Ok(Value::Poison);
                };
                if t.len() != 1 {
                    let d = Diagnostic::error(
                        Code::WrongKind,
                        format!("`item` needs exactly one element, found {}", t.len()),
                    )
                    .with_label(span, "");
                    return self.fail(d);
                }
                Ok(match t.get_flat(0).expect("one element") {
                    Scalar::Bool(b) => Value::Bool(b),
                    s if s.dtype().is_float() => Value::Num(Num::Float(
                        kernels::cast(&s.to_tensor(), DType::F64)
                            .as_array::<f64>()
                            .map_or(0.0, |a| a[[]]),
                    )),
                    s => Value::Num(Num::Int(
                        kernels::cast(&s.to_tensor(), DType::I64)
                            .as_array::<i64>()
                            .map_or(0, |a| a[[]]) as i128,
                    )),
                })
            }
            "print" => {
                if self.compiling() {
                    let d = Diagnostic::error(
                        Code::HostOnlyInTrace,
                        "`print` runs only inside eager functions",
                    )
                    .with_label(span, "evaluated at compile time here")
                    .with_help("move it into an `eager fn`, which runs per element");
                    return self.fail(d);
                }
                let mut parts = Vec::new();
                for (v, _) in pos {
                    parts.push(crate::eager::display_value(&v));
                }
                if let Some(sink) = &self.shared.print_sink {
                    sink(&parts.join(" "));
                }
                Ok(Value::Unit)
            }
            "unique" | "nonzero" => {
                let a = bind!(&["x"], 1);
                let t = tensor!(a, 0);
                if name == "unique" {
                    self.host_op(|x| kernels::unique(&x[0]), vec![t], span)
                } else {
                    self.host_op(|x| kernels::nonzero(&x[0]), vec![t], span)
                }
            }
            "boolean_mask" => {
                let a = bind!(&["x", "mask"], 2);
                let t = tensor!(a, 0);
                let m = tensor!(a, 1);
                self.host_op(|x| kernels::boolean_mask(&x[0], &x[1]), vec![t, m], span)
            }
            "ensure_shape" => {
                let a = bind!(&["x", "shape"], 2);
                let t = tensor!(a, 0);
                let ty = tval_type(&t);
                let sspan = Self::req(&a, 1).1;
                let raw = some!(self.int_list(Self::req(&a, 1), "a shape")?);
                let shape = Shape(
                    raw.iter()
                        .map(|&d| {
                            if d < 0 {
                                Dim::Unknown
                            } else {
                                Dim::Known(d as usize)
                            }
                        })
                        .collect(),
                );
                let compatible = shape.rank() == ty.rank()
                    && shape.0.iter().zip(&ty.shape.0).all(|(a, b)| match (a, b) {
                        (Dim::Known(x), Dim::Known(y)) => x == y,
                        _ => true,
                    });
                if !compatible {
                    let d = Diagnostic::error(
                        Code::EnsureShapeFailed,
                        format!("`ensure_shape` to {shape}, but the tensor is {}", ty.shape),
                    )
                    .with_label(sspan, "can never match");
                    return self.fail(d);
                }
                let merged = Shape(
                    shape
                        .0
                        .iter()
                        .zip(&ty.shape.0)
                        .map(|(a, b)| if *a == Dim::Unknown { *b } else { *a })
                        .collect(),
                );
                self.op(
                    OpKind::EnsureShape(merged.clone()),
                    vec![t],
                    TensorType::new(ty.dtype, merged),
                    span,
                )
            }
            "py_function" => {
                let a = bind!(&["func", "inp", "Tout"], 3);
                let f = some!(self.func_arg(Self::req(&a, 0), "py_function")?);
                let (args_v, args_s) = Self::req(&a, 1);
                let args = match args_v {
                    Value::List(vs) | Value::Tuple(vs) => vs,
                    Value::Tensor(TVal::Concrete(t)) if t.rank() >= 1 => (0..t.shape()[0])
                        .map(|i| Value::Tensor(TVal::Concrete(t.index_axis0(i))))
                        .collect(),
                    other => {
                        let d = Diagnostic::error(
                            Code::WrongKind,
                            format!(
                                "`py_function` takes its arguments as a list, found {}",
                                other.kind_name()
                            ),
                        )
                        .with_label(args_s, "")
                        .with_help("`py_function(f, [x, y], f32)`");
                        return self.fail(d);
                    }
                };
                let tout = some!(self.type_value(Self::req(&a, 2))?);
                self.py_function(f, args, tout, span)
            }
            "read_npy" | "read_npz" => {
                let params: &[&str] = if name == "read_npy" {
                    &["path"]
                } else {
                    &["path", "name"]
                };
                let a = bind!(params, params.len());
                let path = some!(self.string_arg(Self::req(&a, 0))?);
                let member = if name == "read_npz" {
                    Some(some!(self.string_arg(Self::req(&a, 1))?))
                } else {
                    None
                };
                self.read_array_file(&path, member.as_deref(), Self::req(&a, 0).1)
            }
            "read_csv" => {
                let a = bind!(&["path", "dtype", "header"], 1);
                let path = some!(self.string_arg(Self::req(&a, 0))?);
                let dtype = match a[1].clone() {
                    Some(v) => some!(self.dtype_arg(v)?),
                    None => DType::F32,
                };
                let header = match a[2].clone() {
                    Some(v) => Some(some!(self.bool_arg(Some(v), false)?)),
                    None => None,
                };
                self.read_csv_source(&path, dtype, header, Self::req(&a, 0).1)
            }
            "range" => {
                let a = bind!(&["start", "stop", "step"], 1);
                let mut ints = Vec::new();
                for (v, s) in a.into_iter().flatten() {
                    ints.push((some!(self.int_value(v, s, "a range bound")?), s));
                }
                let (start, stop, step) = match ints.as_slice() {
                    [(stop, _)] => (0, *stop, 1),
                    [(a, _), (b, _)] => (*a, *b, 1),
                    [(a, _), (b, _), (c, cs)] => {
                        if *c == 0 {
                            let d = Diagnostic::error(
                                Code::ZeroStep,
                                "`range` step cannot be zero",
                            )
                            .with_label(*cs, "step 0")
                            .with_help(
                                "use a positive step to count up, or a negative one to count down",
                            );
                            return self.fail(d);
                        }
                        (*a, *b, *c)
                    }
                    _ => unreachable!("one to three bound arguments"),
                };
                Ok(self.source(
                    DsKind::Range { start, stop, step },
                    ElemType::Tensor(TensorType::scalar(DType::I64)),
                    span,
                ))
            }
            "from_tensor_slices" | "from_tensors" => {
                let a = bind!(&["tensors"], 1);
                let (v, vs) = Self::req(&a, 0);
                let slices = name == "from_tensor_slices";
                // The slices of a CSV table along axis 0 are its rows: the streamed source itself.
                if let (true, Value::Dataset(d)) = (slices, &v)
                    && matches!(d.kind, DsKind::ReadCsv { .. })
                {
                    return Ok(v);
                }
                let mut srcs = Vec::new();
                let Some(elem) = self.source_components(v, vs, slices, &mut srcs)? else {
                    return Ok(Value::Poison);
                };
                let kind = if slices {
                    DsKind::FromTensorSlices(srcs)
                } else {
                    DsKind::FromTensors(srcs)
                };
                Ok(self.source(kind, elem, span))
            }
            "zip" => {
                let mut dss = Vec::new();
                if !named.is_empty() {
                    let d =
                        Diagnostic::error(Code::BadNamedArgument, "`zip` takes no named arguments")
                            .with_label(named[0].0.span, "");
                    return self.fail(d);
                }
                let items: Vec<(Value, Span)> = match pos.as_slice() {
                    [(Value::Tuple(vs), s)] => vs.iter().map(|v| (v.clone(), *s)).collect(),
                    _ => pos,
                };
                for (v, s) in items {
                    match v {
                        Value::Dataset(d) => dss.push(d),
                        Value::Poison => return Ok(Value::Poison),
                        other => {
                            let d = Diagnostic::error(
                                Code::WrongKind,
                                format!("`zip` takes datasets, found {}", other.kind_name()),
                            )
                            .with_label(s, "not a dataset");
                            return self.fail(d);
                        }
                    }
                }
                if dss.is_empty() {
                    let d = Diagnostic::error(Code::WrongArity, "`zip` needs at least one dataset")
                        .with_label(span, "");
                    return self.fail(d);
                }
                // The node stores a copy of every input's element type.
                let nodes = dss
                    .iter()
                    .map(|d| crate::budget::elem_nodes(&d.elem))
                    .sum::<u64>();
                if !self.charge(nodes, crate::budget::node_bytes(nodes), span) {
                    return Ok(Value::Poison);
                }
                let elem = ElemType::Tuple(dss.iter().map(|d| d.elem.clone()).collect());
                Ok(Value::Dataset(Arc::new(DsExpr {
                    kind: DsKind::Zip,
                    inputs: dss,
                    elem,
                    span,
                })))
            }
            other => {
                let d = Diagnostic::error(
                    Code::UnknownName,
                    format!("`{other}` cannot be called here"),
                )
                .with_label(span, "");
                self.fail(d)
            }
        }
    }

    /// A weak number as a scalar tensor of `dtype`.
    pub(crate) fn weak_scalar(&mut self, v: &Value, dtype: DType, span: Span) -> Res<Option<TVal>> {
        let s = match v {
            Value::Num(Num::Int(i)) => kernels::scalar_from_i128(*i, dtype),
            Value::Num(Num::Float(f)) if dtype.is_float() => {
                Some(kernels::scalar_from_f64(*f, dtype))
            }
            Value::Bool(b) if dtype == DType::Bool => Some(Scalar::Bool(*b)),
            _ => None,
        };
        match s {
            Some(s) => Ok(Some(TVal::Concrete(s.to_tensor()))),
            None => {
                let d = Diagnostic::error(
                    Code::DtypeMismatch,
                    format!("{} cannot be used as {dtype}", v.kind_name()),
                )
                .with_label(span, "")
                .with_help(format!("cast it: `cast(x, {dtype})`"));
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    fn kernel_result(&mut self, r: Result<Tensor, kernels::KernelError>, span: Span) -> Res<Value> {
        match r {
            Ok(t) => Ok(Value::Tensor(TVal::Concrete(t))),
            Err(e) => {
                let (code, help) = match e {
                    kernels::KernelError::TooLarge { .. } => (
                        Code::TensorTooLarge,
                        Some("make it smaller, or stream the data as a dataset"),
                    ),
                    kernels::KernelError::OverMemoryLimit { .. } => (
                        Code::MemoryLimit,
                        Some("make it smaller, or raise `--max-memory`"),
                    ),
                    _ => (Code::WrongKind, None),
                };
                let mut d =
                    Diagnostic::error(code, e.to_string()).with_label(span, "evaluated here");
                if let Some(h) = help {
                    d = d.with_help(h);
                }
                self.fail(d)
            }
        }
    }

    pub(crate) fn string_arg(&mut self, (v, s): (Value, Span)) -> Res<Option<String>> {
        match v {
            Value::Str(st) => Ok(Some(st.to_string())),
            Value::Poison => Ok(None),
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("expected a string, found {}", other.kind_name()),
                )
                .with_label(s, "not a string");
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    /// A type given as a value (`f32`, `(f32, i64)`), for `py_function`'s `Tout`.
    fn type_value(&mut self, (v, s): (Value, Span)) -> Res<Option<TypeSpec>> {
        match v {
            Value::DType(d) => Ok(Some(TypeSpec::Tensor {
                dtype: d,
                dims: None,
            })),
            Value::Tuple(vs) | Value::List(vs) => {
                let mut parts = Vec::new();
                for v in vs {
                    parts.push(match self.type_value((v, s))? {
                        Some(p) => p,
                        None => return Ok(None),
                    });
                }
                Ok(Some(TypeSpec::Tuple(parts)))
            }
            Value::Str(st) => {
                match crate::types::parse_type_text(&st) {
                    Some(t) => Ok(Some(t)),
                    None => {
                        let d = Diagnostic::error(Code::WrongKind, format!("`{st}` is not a type")).with_label(s, "").with_help("write a dtype such as `f32`, or a type string such as \"f32[?, 3]\"");
                        self.fail(d)?;
                        Ok(None)
                    }
                }
            }
            Value::Poison => Ok(None),
            other => {
                let d = Diagnostic::error(Code::WrongKind, format!("expected a type, found {}", other.kind_name()))
                    .with_label(s, "not a type").with_help("write a dtype such as `f32`, a tuple of dtypes, or a type string \"f32[?, 3]\"");
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    /// `py_function(f, args, Tout)`: an eager call of any function.
    fn py_function(
        &mut self,
        f: FuncVal,
        args: Vec<Value>,
        tout: TypeSpec,
        span: Span,
    ) -> Res<Value> {
        if !self.tracing() {
            // Outside traced code everything is concrete: just call it and check the type.
            let v = self.call_func(&f, args, span)?;
            return Ok(v);
        }
        let host = match crate::eager::PyFunction::wrap(self, f.clone(), span) {
            Some(h) => h,
            None => return Ok(Value::Poison),
        };
        self.host_call(host, &tout, args, span, "py_function")
    }

    fn source(&mut self, kind: DsKind, elem: ElemType, span: Span) -> Value {
        Value::Dataset(Arc::new(DsExpr {
            kind,
            inputs: vec![],
            elem,
            span,
        }))
    }

    /// The element type and data sources of `from_tensor_slices`/`from_tensors` components.
    fn source_components(
        &mut self,
        v: Value,
        span: Span,
        slices: bool,
        out: &mut Vec<Source>,
    ) -> Res<Option<ElemType>> {
        match v {
            Value::Tuple(vs) => {
                let mut parts = Vec::new();
                for v in vs {
                    match self.source_components(v, span, slices, out)? {
                        Some(e) => parts.push(e),
                        None => return Ok(None),
                    }
                }
                if slices {
                    // Every component must have the same first dim.
                    let firsts: Vec<Dim> = out.iter().map(|s| self.source_dim0(s)).collect();
                    let known: Vec<usize> = firsts.iter().filter_map(|d| d.known()).collect();
                    if known.windows(2).any(|w| w[0] != w[1]) {
                        let d = Diagnostic::error(
                            Code::DatasetTypeMismatch,
                            format!(
                                "`from_tensor_slices` components have different lengths: {known:?}"
                            ),
                        )
                        .with_label(span, "")
                        .with_help("every component must have the same size along axis 0");
                        self.fail(d)?;
                        return Ok(None);
                    }
                }
                Ok(Some(ElemType::Tuple(parts)))
            }
            Value::FileArray(src, ty) => {
                out.push(src);
                self.slice_type(ty, slices, span)
            }
            other => {
                let Some(t) = self.tensor_operand(other, span)? else {
                    return Ok(None);
                };
                let TVal::Concrete(t) = t else {
                    let d = Diagnostic::error(
                        Code::NotTraceTime,
                        "a dataset source needs data known at trace time",
                    )
                    .with_label(span, "")
                    .with_help("build sources from constants or files");
                    self.fail(d)?;
                    return Ok(None);
                };
                let ty = TensorType::new(t.dtype(), Shape::known(t.shape()));
                out.push(Source::Const(t));
                self.slice_type(ty, slices, span)
            }
        }
    }

    fn source_dim0(&self, s: &Source) -> Dim {
        match s {
            Source::Const(t) => t.shape().first().map_or(Dim::Unknown, |&n| Dim::Known(n)),
            _ => Dim::Unknown,
        }
    }

    fn slice_type(&mut self, ty: TensorType, slices: bool, span: Span) -> Res<Option<ElemType>> {
        if !slices {
            return Ok(Some(ElemType::Tensor(ty)));
        }
        if ty.rank() == 0 {
            let d = Diagnostic::error(Code::WrongKind, "`from_tensor_slices` of a scalar")
                .with_label(span, "rank 0: nothing to slice")
                .with_help("use `from_tensors(x)` for a single element");
            self.fail(d)?;
            return Ok(None);
        }
        Ok(Some(ElemType::Tensor(TensorType::new(
            ty.dtype,
            Shape(ty.shape.0[1..].to_vec()),
        ))))
    }
}

/// Checks that a shape's element count stays within the limit, before anything allocates.
pub(crate) fn check_elements(shape: &[usize], span: Span) -> Result<(), Diagnostic> {
    const MAX_ELEMENTS: u128 = 1 << 31;
    let n = shape
        .iter()
        .try_fold(1u128, |acc, &d| acc.checked_mul(d as u128))
        .unwrap_or(u128::MAX);
    if n > MAX_ELEMENTS {
        return Err(Diagnostic::error(
            Code::TensorTooLarge,
            format!("a tensor of shape {shape:?} would have {n} elements"),
        )
        .with_label(span, format!("the limit is {MAX_ELEMENTS} elements"))
        .with_help("make it smaller, or stream the data as a dataset"));
    }
    Ok(())
}

/// The help for a file that cannot be opened: the closest name in its directory, if any.
fn missing_file_help(full: &std::path::Path) -> String {
    let wanted = full
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let dir = full
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    // Sorted, so that the suggestion does not depend on the directory's order.
    names.sort();
    match pipec_diag::did_you_mean(&wanted, names.iter().map(String::as_str)) {
        Some(s) if s != wanted => {
            format!("did you mean `{s}`? (paths are relative to the .pipe file)")
        }
        _ => "check the path; it is relative to the .pipe file, not to the current directory"
            .to_string(),
    }
}

impl Eval<'_> {
    /// `read_npy(path)` / `read_npz(path, name)`: the header types the array now (for `.npz`,
    /// only the member's header is decompressed); the data is read when the pipeline starts.
    fn read_array_file(&mut self, path: &str, member: Option<&str>, span: Span) -> Res<Value> {
        let base = self
            .comp
            .as_ref()
            .map(|c| c.opts.base_dir.clone())
            .unwrap_or_default();
        let full = base.join(path);
        let header = match member {
            Some(name) => pipec_tensor::io::read_npz_header(&full, name),
            None => pipec_tensor::io::read_npy_header(&full),
        };
        match header {
            Ok(h) => {
                let ty = TensorType::new(h.dtype, Shape::known(&h.shape));
                let src = match member {
                    Some(name) => Source::Npz(full, name.trim_end_matches(".npy").to_string()),
                    None => Source::Npy(full),
                };
                Ok(Value::FileArray(src, ty))
            }
            Err(e) => {
                let code = if matches!(e, pipec_tensor::io::IoError::Io(_)) {
                    Code::FileUnreadable
                } else {
                    Code::BadArrayFile
                };
                let mut d =
                    Diagnostic::error(code, format!("cannot read `{}`: {e}", full.display()))
                        .with_label(span, "this file")
                        .with_note("paths are relative to the .pipe file");
                d = match &e {
                    pipec_tensor::io::IoError::MissingMember { .. } => {
                        d.with_help("name the array as `numpy.savez` did: `arr_0`, `arr_1`, ... or its keyword")
                    }
                    pipec_tensor::io::IoError::Io(_) => d.with_help(missing_file_help(&full)),
                    _ => d.with_help("save plain numeric arrays with `numpy.save` (.npy) or `numpy.savez` (.npz)"),
                };
                self.fail(d)
            }
        }
    }

    /// `read_csv(path, dtype[, header])`: the first line gives the column count and whether it
    /// is a header (`header:` overrides the detection); rows are streamed at run time as
    /// elements of type `dtype[ncols]`.
    fn read_csv_source(
        &mut self,
        path: &str,
        dtype: DType,
        header: Option<bool>,
        span: Span,
    ) -> Res<Value> {
        let base = self
            .comp
            .as_ref()
            .map(|c| c.opts.base_dir.clone())
            .unwrap_or_default();
        let full = base.join(path);
        match pipec_tensor::io::csv_info(&full) {
            // Only one line, and not numbers: a header without rows, or a bad row? numpy's
            // `loadtxt` takes it for a row and fails; so does pipec, unless told.
            Ok(info)
                if info.header
                    && header.is_none()
                    && matches!(pipec_tensor::io::csv_has_second_line(&full), Ok(false)) =>
            {
                let d = Diagnostic::error(
                    Code::BadCsvCell,
                    format!("the only line of `{}` is not all numbers", full.display()),
                )
                .with_label(span, "this file")
                .with_note("a first line that is not numbers is taken for a header, but nothing follows it")
                .with_help("if it is a header, say so: `read_csv(path, header: true)` (the dataset is then empty); otherwise fix the cell");
                self.fail(d)
            }
            Ok(info) => {
                let elem = ElemType::Tensor(TensorType::new(dtype, Shape::known(&[info.ncols])));
                Ok(self.source(
                    DsKind::ReadCsv {
                        path: full,
                        header: header.unwrap_or(info.header),
                    },
                    elem,
                    span,
                ))
            }
            Err(e) => {
                let code = if matches!(e, pipec_tensor::io::IoError::Io(_)) {
                    Code::FileUnreadable
                } else {
                    Code::BadCsvCell
                };
                let mut d =
                    Diagnostic::error(code, format!("cannot read `{}`: {e}", full.display()))
                        .with_label(span, "this file")
                        .with_note("paths are relative to the .pipe file");
                if matches!(e, pipec_tensor::io::IoError::Io(_)) {
                    d = d.with_help(missing_file_help(&full));
                }
                self.fail(d)
            }
        }
    }
}
