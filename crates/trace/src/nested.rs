//! `interleave(f, ...)` and `flat_map(f)`: a function that builds a dataset from each input
//! element, traced into a nested pipeline.
//!
//! `f` is traced once on the symbolic element, like a `map` function, but it returns a
//! dataset. Where a source of that dataset reads a symbolic value (`|n| range(n)`,
//! `|x| from_tensors(x)`), the value becomes a result of the traced function and the source
//! reads it as `Source::Arg(k)`; everything else about the inner dataset is fixed at trace
//! time. The runtime calls the function per input element and opens the inner pipeline
//! with its results. Functions inside the inner dataset (`range(n).map(g)`) are traced as
//! usual and see only their own arguments and top-level names.

use crate::builtins::req;
use crate::dataset::{DsExpr, to_pipeline};
use crate::eval::{Eval, Frame, Res, rebuild, tval_type};
use crate::value::{TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{DsKind, ElemType, Function, Nested, Parallelism, Source, TensorType};
use pipec_syntax::ast::ItemKind;
use pipec_tensor::Tensor;
use std::collections::HashMap;
use std::sync::Arc;

use crate::value::FuncVal;

impl Eval<'_> {
    /// Whether an `interleave`/`flat_map` function is being traced (its sources may read
    /// run-time values).
    pub(crate) fn building_nested(&self) -> bool {
        self.comp.as_deref().is_some_and(|c| c.ds_args.is_some()) && self.tracing()
    }

    /// The source reading symbolic value `t` of the function being traced.
    pub(crate) fn ds_arg(&mut self, t: TVal) -> Source {
        let args = self
            .comp()
            .ds_args
            .as_mut()
            .expect("building a nested dataset");
        let id = match &t {
            TVal::Symbolic(v, _) => Some(*v),
            TVal::Concrete(_) => None,
        };
        if let Some(k) = args
            .iter()
            .position(|a| matches!((a, id), (TVal::Symbolic(v, _), Some(w)) if *v == w))
        {
            return Source::Arg(k);
        }
        args.push(t);
        Source::Arg(args.len() - 1)
    }

    /// A `range` bound inside a nested dataset: an integer now, or an integer scalar of the
    /// input element.
    pub(crate) fn range_bound(&mut self, v: Value, s: Span) -> Res<Option<Source>> {
        match v {
            Value::Tensor(TVal::Symbolic(id, ty)) if ty.rank() == 0 && ty.dtype.is_int() => {
                Ok(Some(self.ds_arg(TVal::Symbolic(id, ty))))
            }
            Value::Tensor(TVal::Symbolic(_, ty)) => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("a `range` bound must be an integer scalar, found {ty}"),
                )
                .with_label(s, "not an integer scalar")
                .with_help("reduce it to one integer, e.g. `x[0]` or `cast(sum(x), i64)`");
                self.fail(d)?;
                Ok(None)
            }
            other => {
                let n = self.int_value(other, s, "a range bound")?;
                Ok(n.map(|n| Source::Const(Tensor::scalar(n))))
            }
        }
    }

    /// `ds.interleave(f, cycle_length:, block_length:, num_parallel_calls:, deterministic:)`
    /// or, with `flat`, `ds.flat_map(f)`; `a` holds those arguments as bound.
    pub(crate) fn dataset_interleave(
        &mut self,
        ds: Arc<DsExpr>,
        flat: bool,
        a: Vec<Option<(Value, Span)>>,
        span: Span,
    ) -> Res<Option<(DsKind, ElemType)>> {
        let what = if flat { "flat_map" } else { "interleave" };
        let Some(f) = self.func_arg(req(&a, 0), what)? else {
            return Ok(None);
        };
        let (mut cycle_length, mut block_length) = (1, 1);
        let mut parallelism = Parallelism::Sequential;
        let mut deterministic = true;
        if !flat {
            cycle_length = match a[1].clone() {
                Some((v, s)) => match self.int_value(v, s, "cycle_length")? {
                    Some(n) if n >= 1 => n as usize,
                    Some(n) => {
                        let d = Diagnostic::error(
                            Code::BadDatasetArgument,
                            format!("cycle_length must be at least 1, found {n}"),
                        )
                        .with_label(s, "")
                        .with_help("write how many inner datasets are open at once, e.g. `cycle_length: 4`");
                        self.fail(d)?;
                        return Ok(None);
                    }
                    None => return Ok(None),
                },
                None => {
                    let d = Diagnostic::error(
                        Code::BadDatasetArgument,
                        "`interleave` needs `cycle_length:`",
                    )
                    .with_label(span, "no cycle_length")
                    .with_help("write `cycle_length: N`; tf.data's default, the number of CPU cores, would make the order depend on the machine");
                    self.fail(d)?;
                    return Ok(None);
                }
            };
            if let Some((v, s)) = a[2].clone() {
                match self.int_value(v, s, "block_length")? {
                    Some(n) if n >= 1 => block_length = n as usize,
                    Some(n) => {
                        let d = Diagnostic::error(
                            Code::BadDatasetArgument,
                            format!("block_length must be at least 1, found {n}"),
                        )
                        .with_label(s, "")
                        .with_help("pass a positive block_length");
                        self.fail(d)?;
                        return Ok(None);
                    }
                    None => return Ok(None),
                }
            }
            if let Some((v, s)) = a[3].clone() {
                parallelism = match self.int_value(v, s, "num_parallel_calls")? {
                    Some(-1) => Parallelism::Autotune,
                    Some(n) if n >= 1 => Parallelism::Fixed(n as usize),
                    Some(n) => {
                        let d = Diagnostic::error(
                            Code::BadDatasetArgument,
                            format!("num_parallel_calls must be at least 1, found {n}"),
                        )
                        .with_label(s, "")
                        .with_help("use a positive number or AUTOTUNE");
                        self.fail(d)?;
                        return Ok(None);
                    }
                    None => return Ok(None),
                };
            }
            match self.bool_arg(a[4].clone(), true)? {
                Some(b) => deterministic = b,
                None => return Ok(None),
            }
        }
        let Some((func, inner)) = self.trace_dataset_fn(&f, &ds.elem, span, what)? else {
            return Ok(None);
        };
        let elem = inner.graph[inner.output].elem.clone();
        Ok(Some((
            DsKind::Interleave(Box::new(Nested {
                func,
                inner,
                cycle_length,
                block_length,
                parallelism,
                deterministic,
                flat,
            })),
            elem,
        )))
    }

    /// Traces `f` on a symbolic `elem`, expecting a dataset: the function computing the
    /// values its sources read, and the dataset as a pipeline.
    fn trace_dataset_fn(
        &mut self,
        f: &FuncVal,
        elem: &ElemType,
        span: Span,
        what: &str,
    ) -> Res<Option<(pipec_ir::FuncId, pipec_ir::Pipeline)>> {
        let (base, fspan, arity) = match f {
            FuncVal::Decl(idx) => match &self.shared.ast.items[*idx].kind {
                ItemKind::Fn(d) => (
                    d.name.name.clone(),
                    self.shared.ast.items[*idx].span,
                    d.params.len(),
                ),
                _ => return Ok(None),
            },
            FuncVal::Lambda(l) => ("lambda".to_string(), l.span, l.params.len()),
            FuncVal::Builtin(b) => (b.clone(), span, 1),
        };
        let n = {
            let c = self.comp().name_counts.entry(base.clone()).or_insert(0);
            *c += 1;
            *c - 1
        };
        let leaves: Vec<TensorType> = elem.leaves().into_iter().cloned().collect();
        let func = Function::new(format!("{base}.{n}"), fspan, leaves.clone());
        let mut params = func
            .params
            .clone()
            .into_iter()
            .zip(leaves)
            .map(|(v, ty)| Value::Tensor(TVal::Symbolic(v, ty)));
        let whole = rebuild(elem, &mut params);
        let args = match (&whole, arity) {
            (Value::Tuple(parts), k) if k == parts.len() && k != 1 => parts.clone(),
            _ => vec![whole.clone()],
        };
        if args.len() != arity {
            let d = Diagnostic::error(
                Code::WrongArity,
                format!("the function given to `{what}` takes {arity} parameter(s), but the elements are {elem}"),
            )
            .with_label(span, format!("elements of type {elem}"))
            .with_label(fspan, "the function")
            .with_help("a tuple element is passed as one parameter per component");
            self.fail(d)?;
            return Ok(None);
        }
        let saved = std::mem::replace(
            &mut self.frame,
            Frame {
                scopes: vec![HashMap::new()],
                func: Some(func),
                eager: false,
                fn_name: Some(base.clone()),
                site: Vec::new(),
            },
        );
        let saved_args = self.comp().ds_args.replace(Vec::new());
        let saved_depth = std::mem::replace(&mut self.depth, 0);
        let errors_before = self.comp().diags.len();
        let result = self.call_func(f, args, span);
        self.depth = saved_depth;
        let ds_args = std::mem::replace(&mut self.comp().ds_args, saved_args).unwrap_or_default();
        let frame = std::mem::replace(&mut self.frame, saved);
        let mut func = frame.func.expect("tracing frame");
        let result = match result {
            Ok(v) => v,
            Err(crate::eval::Abort::Error(d)) => {
                self.report(*d);
                Value::Poison
            }
            // Only plan tracing sets guards, and it never traces datasets.
            Err(crate::eval::Abort::Undecided) => Value::Poison,
        };
        if self.comp().diags.len() > errors_before || matches!(result, Value::Poison) {
            return Ok(None);
        }
        let Value::Dataset(inner) = result else {
            let d = Diagnostic::error(
                Code::BadDatasetFunction,
                format!(
                    "the function given to `{what}` must return a dataset, found {}",
                    result.kind_name()
                ),
            )
            .with_label(fspan, "returns something else")
            .with_help("build a dataset from the element, e.g. `|n| range(n)` or `|x| from_tensors(x).repeat(3)`; to transform elements one to one, use `map`");
            self.fail(d)?;
            return Ok(None);
        };
        let mut results = Vec::new();
        for t in ds_args {
            results.push(match t {
                TVal::Symbolic(v, _) => v,
                // (Only symbolic values are recorded.)
                TVal::Concrete(c) => {
                    let ty = tval_type(&TVal::Concrete(c.clone()));
                    func.push(pipec_ir::OpKind::Const(c), vec![], ty, span)
                }
            });
        }
        func.results = results;
        let id = self.comp().prog.add_function(func);
        Ok(Some((id, to_pipeline(what, fspan, &inner))))
    }
}

/// The name of a value `l` captured that exists only while another function is traced (a
/// symbolic tensor: the element of an enclosing `interleave`/`flat_map` function).
pub(crate) fn symbolic_capture(l: &crate::value::Lambda, source: &str) -> Option<String> {
    fn symbolic(v: &Value) -> bool {
        match v {
            Value::Tensor(TVal::Symbolic(..)) | Value::SymDim(_) => true,
            Value::Tuple(vs) | Value::List(vs) => vs.iter().any(symbolic),
            Value::Dict(fs) => fs.iter().any(|(_, v)| symbolic(v)),
            _ => false,
        }
    }
    // A lambda captures its whole scope; only the names its text uses (as whole words, not
    // shadowed by a parameter) matter.
    let text = source.get(l.span.range()).unwrap_or("");
    let used = |name: &str| {
        // Without the text (an embedding that gives none), every symbolic capture counts.
        if text.is_empty() {
            return true;
        }
        !l.params.iter().any(|p| p.name == name)
            && text.match_indices(name).any(|(i, _)| {
                let word = |c: char| c.is_alphanumeric() || c == '_';
                let before = text[..i].chars().next_back().is_none_or(|c| !word(c));
                let after = text[i + name.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !word(c));
                before && after
            })
    };
    let mut names: Vec<&String> = l
        .captured
        .iter()
        .filter(|(k, v)| symbolic(v) && used(k))
        .map(|(k, _)| k)
        .collect();
    names.sort();
    names.first().map(|n| n.to_string())
}

/// E0411 for a function traced for `what` that uses `name`, a symbolic value of another
/// function.
pub(crate) fn capture_error(name: &str, fspan: Span, span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(
        Code::BadDatasetFunction,
        format!("the function given to `{what}` uses `{name}`, a value of the enclosing function's element"),
    )
    .with_label(fspan, format!("uses `{name}`"))
    .with_label(span, format!("`{what}` traces it on its own elements"))
    .with_note("a function traced for a dataset sees only its own arguments and top-level names")
    .with_help(format!(
        "carry `{name}` in the elements instead, e.g. `range(4).map(|x| (x, {name}))` becomes `zip(range(4), from_tensors({name}).repeat())`"
    ))
}
