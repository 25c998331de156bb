//! Indexing and methods: tuple element access, tensor indexing and slicing, and method
//! calls (dataset transformations, or a builtin with the receiver first).

use crate::eval::{Eval, Res, tval_type};
use crate::value::{TVal, Value};
use pipec_diag::{Code, Diagnostic, Span, did_you_mean};
use pipec_ir::{Dim, OpKind};
use pipec_syntax::ast;
use pipec_tensor::DType;
use pipec_tensor::kernels::{self, SliceItem};

impl Eval<'_> {
    /// A method call: dataset transformations, or a builtin with the receiver first.
    pub(crate) fn method(
        &mut self,
        r: Value,
        rspan: Span,
        name: &ast::Ident,
        args: &[ast::Arg],
        span: Span,
    ) -> Res<Value> {
        if let Value::Dataset(ds) = r {
            let (pos, named) = self.eval_args(args)?;
            return self.dataset_method(ds, name, pos, named, span);
        }
        if matches!(r, Value::Poison) {
            // The arguments may hold independent errors (say, a `map` of another dataset
            // passed to `zip`): evaluate them so those are reported too.
            self.eval_args(args)?;
            return Ok(Value::Poison);
        }
        // In an eager body's plan (traced to run it on blocks) `.numpy()` is what it is at
        // run time: the identity on host arrays.
        if self.tracing() && name.name == "numpy" && args.is_empty() {
            if self.frame.eager {
                return Ok(r);
            }
            return self.numpy_in_trace(r, rspan, span, ".numpy()");
        }
        let builtin = super::lookup(&name.name);
        if self.tracing() && builtin.is_some_and(|b| b.kind == super::Kind::HostOnly) {
            return self.host_only_error(&format!(".{}()", name.name), name.span.to(span));
        }
        if name.name == "numpy" && args.is_empty() {
            return Ok(r);
        }
        if !builtin.is_some_and(|b| b.method) {
            let d = Diagnostic::error(
                Code::UnknownName,
                format!("{} has no method `{}`", r.kind_name(), name.name),
            )
            .with_label(name.span, "unknown method");
            let d = match did_you_mean(&name.name, super::names()) {
                Some(s) => d.with_help(format!("did you mean `.{s}(...)`?")),
                None => d,
            };
            return self.fail(d);
        }
        let (mut pos, named) = self.eval_args(args)?;
        pos.insert(0, (r, rspan));
        self.call_builtin(&name.name, pos, named, span)
    }

    /// `base[...]`: tuple/list element access, or tensor indexing and slicing.
    pub(crate) fn index(
        &mut self,
        b: Value,
        bspan: Span,
        indices: &[ast::IndexItem],
        span: Span,
    ) -> Res<Value> {
        match b {
            Value::Poison => Ok(Value::Poison),
            Value::Tuple(vs) | Value::List(vs) => {
                let [ast::IndexItem::Expr(e)] = indices else {
                    let d = Diagnostic::error(Code::WrongKind, "a tuple takes one integer index")
                        .with_label(span, "");
                    return self.fail(d);
                };
                let Some(i) = self.int_arg(e, "a tuple index")? else {
                    return Ok(Value::Poison);
                };
                let n = vs.len() as i64;
                let j = if i < 0 { i + n } else { i };
                if !(0..n).contains(&j) {
                    let d = Diagnostic::error(
                        Code::IndexOutOfRange,
                        format!("index {i} is out of range for a tuple of {n}"),
                    )
                    .with_label(e.span, "");
                    return self.fail(d);
                }
                Ok(vs[j as usize].clone())
            }
            other => {
                let Some(t) = self.tensor_of(other, bspan)? else {
                    return Ok(Value::Poison);
                };
                self.tensor_index(t, indices, span)
            }
        }
    }

    pub(super) fn opt_int(&mut self, e: &Option<ast::Expr>) -> Res<Result<Option<i64>, ()>> {
        match e {
            None => Ok(Ok(None)),
            Some(e) => Ok(self.int_arg(e, "a slice bound")?.map(Some).ok_or(())),
        }
    }

    pub(super) fn tensor_index(
        &mut self,
        t: TVal,
        indices: &[ast::IndexItem],
        span: Span,
    ) -> Res<Value> {
        let ty = tval_type(&t);
        // A single bool tensor index is a mask (host-only).
        if let [ast::IndexItem::Expr(e)] = indices {
            let v = self.expr(e)?;
            if let Value::Tensor(m) = &v
                && tval_type(m).dtype == DType::Bool
            {
                if self.tracing() {
                    return self.host_only_error("x[mask]", span);
                }
                let m = m.clone();
                return self.host_op(|x| kernels::boolean_mask(&x[0], &x[1]), vec![t, m], span);
            }
        }
        let n_explicit = indices
            .iter()
            .filter(|i| !matches!(i, ast::IndexItem::Ellipsis(_)))
            .count();
        if indices
            .iter()
            .filter(|i| matches!(i, ast::IndexItem::Ellipsis(_)))
            .count()
            > 1
        {
            let d = Diagnostic::error(Code::WrongKind, "an index can have only one `...`")
                .with_label(span, "");
            return self.fail(d);
        }
        if n_explicit > ty.rank() {
            let d = Diagnostic::error(
                Code::IndexOutOfRange,
                format!(
                    "too many indices ({n_explicit}) for a tensor of rank {}",
                    ty.rank()
                ),
            )
            .with_label(span, format!("shape {}", ty.shape));
            return self.fail(d);
        }
        let mut items = Vec::new();
        let mut axis = 0usize;
        for item in indices {
            match item {
                ast::IndexItem::Ellipsis(_) => {
                    let fill = ty.rank() - n_explicit;
                    for _ in 0..fill {
                        items.push(SliceItem::Range {
                            start: None,
                            stop: None,
                            step: 1,
                        });
                        axis += 1;
                    }
                }
                ast::IndexItem::Expr(e) => {
                    let v = self.expr(e)?;
                    if let Value::Tensor(TVal::Symbolic(..)) = v {
                        let d = Diagnostic::error(Code::NotTraceTime, "indexing with a symbolic tensor is not supported")
                            .with_label(e.span, "index known only at run time")
                            .with_help("use `one_hot` and a reduction, or `where`, or move this into an `eager fn`");
                        return self.fail(d);
                    }
                    let Some(i) = self.int_value(v, e.span, "an index")? else {
                        return Ok(Value::Poison);
                    };
                    if let Dim::Known(n) = ty.shape.0[axis]
                        && (i >= n as i64 || i < -(n as i64))
                    {
                        let d = Diagnostic::error(Code::IndexOutOfRange, format!("index {i} is out of range for axis {axis} of size {n}"))
                            .with_label(e.span, format!("valid indices are {} to {}", -(n as i64), n as i64 - 1))
                            .with_help("indices start at 0; negative indices count from the end (-1 is the last); a slice such as `x[1:]` never goes out of range");
                        return self.fail(d);
                    }
                    items.push(SliceItem::Index(i));
                    axis += 1;
                }
                ast::IndexItem::Slice {
                    start,
                    stop,
                    step,
                    span: sspan,
                } => {
                    let Ok(a) = self.opt_int(start)? else {
                        return Ok(Value::Poison);
                    };
                    let Ok(b) = self.opt_int(stop)? else {
                        return Ok(Value::Poison);
                    };
                    let Ok(c) = self.opt_int(step)? else {
                        return Ok(Value::Poison);
                    };
                    let step = c.unwrap_or(1);
                    if step == 0 {
                        let d = Diagnostic::error(Code::ZeroSliceStep, "slice step cannot be zero")
                            .with_label(*sspan, "step 0")
                            .with_help("use a step of 1 or more (or negative to go backwards)");
                        return self.fail(d);
                    }
                    items.push(SliceItem::Range {
                        start: a,
                        stop: b,
                        step,
                    });
                    axis += 1;
                }
            }
        }
        self.emit(OpKind::Slice(items), vec![t], span)
    }
}
