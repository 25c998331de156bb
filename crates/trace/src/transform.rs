//! Tracing the table transformations of `pipec_ir::TRANSFORMS`: the arguments are bound by
//! the row's parameters and checked by their kinds, and the node is typed by the row's rule.
//! A new row needs no code here.

use crate::dataset::DsExpr;
use crate::eval::{Eval, Res};
use crate::value::Value;
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{Arg, DsKind, ElemType, FuncId, ParamKind, Transform, TransformDecl};
use pipec_syntax::ast;
use std::sync::Arc;

impl Eval<'_> {
    /// `ds.NAME(args)` for the table row `decl`.
    pub(crate) fn table_transform(
        &mut self,
        decl: &'static TransformDecl,
        ds: Arc<DsExpr>,
        pos: Vec<(Value, Span)>,
        named: Vec<(ast::Ident, Value, Span)>,
        span: Span,
    ) -> Res<Value> {
        let names: Vec<&str> = decl.params.iter().map(|p| p.name).collect();
        let required = decl.params.iter().filter(|p| p.default.is_none()).count();
        let Some(bound) = self.bind_args(decl.name, &names, required, pos, named, span)? else {
            return Ok(Value::Poison);
        };
        let mut args = Vec::with_capacity(decl.params.len());
        for (p, a) in decl.params.iter().zip(bound) {
            let arg = match (p.kind, a) {
                (_, None) => p
                    .default
                    .expect("`bind_args` fills every required parameter"),
                (ParamKind::Int, Some((v, s))) => {
                    match self.int_value(v, s, &format!("`{}`", p.name))? {
                        Some(n) => Arg::Int(n),
                        None => return Ok(Value::Poison),
                    }
                }
                (ParamKind::Bool, a @ Some(_)) => match self.bool_arg(a, false)? {
                    Some(b) => Arg::Bool(b),
                    None => return Ok(Value::Poison),
                },
                (ParamKind::Predicate, Some(a)) => {
                    match self.predicate(a, &ds.elem, span, decl.name)? {
                        Some(f) => Arg::Func(f),
                        None => return Ok(Value::Poison),
                    }
                }
            };
            args.push(arg);
        }
        let elem = match (decl.elem)(&ds.elem, &args) {
            Ok(e) => e,
            Err(msg) => {
                let d = Diagnostic::error(
                    Code::BadDatasetArgument,
                    format!("`{}` cannot take these elements: {msg}", decl.name),
                )
                .with_label(span, format!("elements {}", ds.elem));
                return self.fail(d);
            }
        };
        Ok(Value::Dataset(Arc::new(DsExpr {
            kind: DsKind::Transform(Transform { decl, args }),
            inputs: vec![ds],
            elem,
            span,
        })))
    }

    /// A predicate argument (`filter`'s, a table row's): the function traced on the
    /// element, which must return one `bool[]` (E0109 otherwise); `None` after an error.
    pub(crate) fn predicate(
        &mut self,
        (fv, fs): (Value, Span),
        elem: &ElemType,
        span: Span,
        what: &str,
    ) -> Res<Option<FuncId>> {
        let Some(f) = self.func_arg((fv, fs), what)? else {
            return Ok(None);
        };
        let Some((func, out)) = self.trace_fn(&f, elem, span, what) else {
            return Ok(None);
        };
        let want = ElemType::Tensor(pipec_ir::TensorType::scalar(pipec_tensor::DType::Bool));
        if out != want {
            let help = if matches!(&out, ElemType::Tensor(t) if t.dtype == pipec_tensor::DType::Bool)
            {
                "reduce it to one bool with `all(...)` or `any(...)`"
            } else {
                "compare to get a bool, e.g. `|x| x > 0`"
            };
            let d = Diagnostic::error(
                Code::PredicateNotBool,
                format!("a {what} predicate must return bool[], but this one returns {out}"),
            )
            .with_label(fs, format!("returns {out}"))
            .with_help(help);
            self.fail(d)?;
            return Ok(None);
        }
        Ok(Some(func))
    }
}
