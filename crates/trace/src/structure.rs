//! Dict values (`{"image": x, "label": y}`, `e["image"]`, `e.image`) and the lists inside a
//! traced function's result.

use crate::eval::{Eval, Res};
use crate::value::Value;
use pipec_diag::{Code, Diagnostic, Span, did_you_mean};
use pipec_syntax::ast::{self, IndexItem};
use std::sync::Arc;

/// Tensor attributes: `e.shape` on a dict would read as the attribute, so these keys need
/// `e["shape"]` (as do method names).
const TENSOR_FIELDS: &[&str] = &["shape", "dtype", "rank", "ndim", "size", "T"];

impl Eval<'_> {
    /// `{"a": x, "b": y}`: the entries evaluated in the order written.
    pub(crate) fn dict_literal(&mut self, entries: &[(ast::Ident, ast::Expr)]) -> Res<Value> {
        let mut fields: Vec<(Arc<str>, Value)> = Vec::with_capacity(entries.len());
        let mut poisoned = false;
        for (key, e) in entries {
            let v = self.expr(e)?;
            poisoned |= matches!(v, Value::Poison);
            if let Some(first) = entries
                .iter()
                .take_while(|(k, _)| k.span != key.span)
                .find(|(k, _)| k.name == key.name)
            {
                let d = Diagnostic::error(
                    Code::DuplicateDefinition,
                    format!("the key \"{}\" is given twice in this dict", key.name),
                )
                .with_label(key.span, "given again here")
                .with_label(first.0.span, "first given here")
                .with_help("give each key once: an element's fields have distinct names");
                self.fail(d)?;
                poisoned = true;
                continue;
            }
            fields.push((key.name.as_str().into(), v));
        }
        Ok(if poisoned {
            Value::Poison
        } else {
            Value::Dict(fields)
        })
    }

    /// `e["key"]` on a dict.
    pub(crate) fn dict_index(
        &mut self,
        fields: Vec<(Arc<str>, Value)>,
        indices: &[IndexItem],
        span: Span,
    ) -> Res<Value> {
        let key = match indices {
            [IndexItem::Expr(e)] => (self.expr(e)?, e.span),
            _ => {
                let d = Diagnostic::error(Code::WrongKind, "a dict is indexed by one key")
                    .with_label(span, "not a single key")
                    .with_help(key_help(&fields));
                return self.fail(d);
            }
        };
        match key {
            (Value::Str(k), at) => self.dict_get(fields, &k, at, false),
            (Value::Poison, _) => Ok(Value::Poison),
            (other, at) => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!(
                        "a dict is indexed by a key string, found {}",
                        other.kind_name()
                    ),
                )
                .with_label(at, "not a string")
                .with_help(key_help(&fields));
                self.fail(d)
            }
        }
    }

    /// `e.key` on a dict: the key, unless the name is an attribute or method name.
    pub(crate) fn dict_field(
        &mut self,
        fields: Vec<(Arc<str>, Value)>,
        name: &ast::Ident,
    ) -> Res<Value> {
        let n = name.name.as_str();
        if TENSOR_FIELDS.contains(&n) || crate::builtins::is_builtin(n) {
            let d = Diagnostic::error(
                Code::WrongKind,
                format!("`.{n}` names a tensor attribute or method, not a dict key"),
            )
            .with_label(name.span, "not read as a key");
            let d = if fields.iter().any(|(k, _)| &**k == n) {
                d.with_help(format!("read the key with `[\"{n}\"]`"))
            } else {
                d.with_help(format!(
                    "a dict has no attributes; read a field by its key: {}",
                    key_list(&fields)
                ))
            };
            return self.fail(d);
        }
        self.dict_get(fields, n, name.span, true)
    }

    fn dict_get(
        &mut self,
        fields: Vec<(Arc<str>, Value)>,
        key: &str,
        at: Span,
        dotted: bool,
    ) -> Res<Value> {
        if let Some((_, v)) = fields.iter().find(|(k, _)| &**k == key) {
            return Ok(v.clone());
        }
        let mut d = Diagnostic::error(Code::UnknownName, format!("the dict has no key \"{key}\""))
            .with_label(at, "no such key");
        d = match did_you_mean(key, fields.iter().map(|(k, _)| &**k)) {
            Some(s) if dotted => d.with_help(format!("did you mean `.{s}`?")),
            Some(s) => d.with_help(format!("did you mean \"{s}\"?")),
            None => d.with_help(format!("its keys are {}", key_list(&fields))),
        };
        self.fail(d)
    }

    /// `v` with every list inside a tuple or dict stacked into one tensor (`stack(list)`), as
    /// tf.data converts a Python list returned by a `map` function.
    pub(crate) fn stack_lists(&mut self, v: Value, span: Span) -> Res<Value> {
        match v {
            Value::Tuple(vs) => Ok(Value::Tuple(
                vs.into_iter()
                    .map(|v| self.stack_lists(v, span))
                    .collect::<Res<_>>()?,
            )),
            Value::Dict(fields) => Ok(Value::Dict(
                fields
                    .into_iter()
                    .map(|(k, v)| Ok((k, self.stack_lists(v, span)?)))
                    .collect::<Res<_>>()?,
            )),
            Value::List(vs) => {
                let vs = vs
                    .into_iter()
                    .map(|v| self.stack_lists(v, span))
                    .collect::<Res<Vec<_>>>()?;
                Ok(match self.tensor_operand(Value::List(vs), span)? {
                    Some(t) => Value::Tensor(t),
                    None => Value::Poison,
                })
            }
            other => Ok(other),
        }
    }
}

fn key_list(fields: &[(Arc<str>, Value)]) -> String {
    let keys: Vec<String> = fields.iter().map(|(k, _)| format!("\"{k}\"")).collect();
    if keys.is_empty() {
        "none (the dict is empty)".into()
    } else {
        keys.join(", ")
    }
}

fn key_help(fields: &[(Arc<str>, Value)]) -> String {
    match fields.first() {
        Some((k, _)) => format!("write `e[\"{k}\"]`; the keys are {}", key_list(fields)),
        None => "the dict is empty".into(),
    }
}

impl Eval<'_> {
    /// `from_tensor_slices(())` (or `{}`, or either nested in the argument): nothing to
    /// slice, so nothing gives the dataset a length. tf.data rejects it too.
    pub(crate) fn empty_slices(
        &mut self,
        written: &str,
        span: Span,
    ) -> Res<Option<pipec_ir::ElemType>> {
        let d = Diagnostic::error(
            Code::BadDatasetArgument,
            format!("`from_tensor_slices` of an empty structure `{written}`"),
        )
        .with_label(span, "no tensor to slice")
        .with_help("give at least one tensor to slice: `from_tensor_slices(x)` or `from_tensor_slices((x, y))`");
        self.fail(d)?;
        Ok(None)
    }
}

/// A tuple element type with the keys put back: the element type of a dict's values.
pub(crate) fn with_keys(e: pipec_ir::ElemType, keys: Vec<Arc<str>>) -> pipec_ir::ElemType {
    match e {
        pipec_ir::ElemType::Tuple(parts) => {
            pipec_ir::ElemType::Dict(keys.into_iter().map(|k| k.to_string()).zip(parts).collect())
        }
        other => other,
    }
}

impl Eval<'_> {
    /// `shape(x)`: `x`'s shape as `i64[rank]`, a constant when every dim is known, else the
    /// run-time `shape` op (`tf.shape`).
    pub(crate) fn shape_of(&mut self, t: crate::value::TVal, span: Span) -> Res<Value> {
        use pipec_ir::{OpKind, Shape, TensorType};
        use pipec_tensor::{DType, Tensor};
        let ty = crate::eval::tval_type(&t);
        if let Some(dims) = ty.shape.as_known() {
            let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            let n = dims.len();
            return Ok(Tensor::from_vec(&[n], dims).map_or(Value::Poison, |c| {
                Value::Tensor(crate::value::TVal::Concrete(c))
            }));
        }
        let out = TensorType::new(DType::I64, Shape::known(&[ty.rank()]));
        self.op(OpKind::Shape, vec![t], out, span)
    }

    /// A dim of unknown size used as a value: an `i64[]` read from the run-time shape (its
    /// entry, or the product of all entries for `x.size`).
    pub(crate) fn dim_value(&mut self, d: &crate::value::DimOf, span: Span) -> Res<Value> {
        use pipec_ir::{OpKind, TensorType};
        use pipec_tensor::DType;
        use pipec_tensor::kernels::SliceItem;
        let shape = match self.shape_of(d.of.clone(), span)? {
            Value::Tensor(t) => t,
            _ => return Ok(Value::Poison),
        };
        match d.axis {
            Some(axis) => self.op(
                OpKind::Slice(vec![SliceItem::Index(axis as i64)]),
                vec![shape],
                TensorType::scalar(DType::I64),
                span,
            ),
            None => self.call_builtin("prod", vec![(Value::Tensor(shape), span)], vec![], span),
        }
    }
}
