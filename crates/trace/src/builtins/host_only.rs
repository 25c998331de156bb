//! Host-only builtins (SPEC §5): `numpy`, `item`, `print`, `unique`, `nonzero`,
//! `boolean_mask`, which need concrete values, and `py_function`, which runs any function
//! eagerly from traced code.

use super::{Call, Named, Pos, req};
use crate::eval::{Eval, Res};
use crate::types::TypeSpec;
use crate::value::{FuncVal, Num, TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_tensor::kernels;
use pipec_tensor::{DType, Scalar, Tensor};

impl Eval<'_> {
    /// A host-only op inside a traced function: the SPEC §5 error.
    pub(crate) fn host_only_error(&mut self, what: &str, span: Span) -> Res<Value> {
        let fname = self
            .frame
            .fn_name
            .clone()
            .unwrap_or_else(|| "this function".into());
        let traced = if fname == "lambda" {
            "a lambda given to `map`/`filter`".to_string()
        } else {
            format!("`{fname}`")
        };
        let d = Diagnostic::error(Code::HostOnlyInTrace, format!("`{what}` needs concrete values, but {traced} is traced"))
            .with_label(span, "host-only operation in a traced function")
            .with_note("inside `map` and `filter`, a function is traced once per element signature: its tensors are symbolic and have no values yet")
            .with_help(eager_fix_help(&fname));
        self.fail(d)
    }

    /// Runs a host-only kernel on concrete operands (eager code and top level only).
    pub(crate) fn host_op(
        &mut self,
        k: impl FnOnce(&[Tensor]) -> Result<Tensor, kernels::KernelError>,
        inputs: Vec<TVal>,
        span: Span,
    ) -> Res<Value> {
        let mut ts = Vec::new();
        for t in inputs {
            match t {
                TVal::Concrete(t) => ts.push(t),
                TVal::Symbolic(..) => return self.host_only_error("this operation", span),
            }
        }
        match k(&ts) {
            Ok(t) => Ok(Value::Tensor(TVal::Concrete(t))),
            Err(e) => {
                let d = Diagnostic::error(Code::WrongKind, e.to_string()).with_label(span, "");
                self.fail(d)
            }
        }
    }

    /// A type given as a value (`f32`, `(f32, i64)`), for `py_function`'s `Tout`.
    pub(super) fn type_value(&mut self, (v, s): (Value, Span)) -> Res<Option<TypeSpec>> {
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
    pub(super) fn py_function(
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
}

pub(super) fn numpy(_: &mut Eval<'_>, Call { args: a, .. }: Call) -> Res<Value> {
    Ok(req(&a, 0).0)
}

pub(super) fn item(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let t = match t {
        TVal::Concrete(t) => t,
        TVal::Symbolic(v, ty) if ev.guards.is_some() => return ev.plan_item(v, ty, span),
        TVal::Symbolic(..) => return Ok(Value::Poison),
    };
    if t.len() != 1 {
        let d = Diagnostic::error(
            Code::WrongKind,
            format!("`item` needs exactly one element, found {}", t.len()),
        )
        .with_label(span, "");
        return ev.fail(d);
    }
    if let Tensor::Str(a) = &t {
        let b = a.iter().next().cloned().unwrap_or_default();
        return Ok(Value::Str(String::from_utf8_lossy(&b).into()));
    }
    Ok(match t.get_flat(0).expect("one element of a plain dtype") {
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

pub(super) fn print(
    ev: &mut Eval<'_>,
    _: &'static str,
    pos: Pos,
    _: Named,
    span: Span,
) -> Res<Value> {
    if ev.compiling() {
        let d = Diagnostic::error(
            Code::HostOnlyInTrace,
            "`print` runs only inside eager functions",
        )
        .with_label(span, "evaluated at compile time here")
        .with_help("move it into an `eager fn`, which runs per element");
        return ev.fail(d);
    }
    let mut parts = Vec::new();
    for (v, _) in pos {
        parts.push(crate::eager::display_value(&v));
    }
    if let Some(sink) = &ev.shared.print_sink {
        sink(&parts.join(" "));
    }
    Ok(Value::Unit)
}

pub(super) fn unique_nonzero(
    ev: &mut Eval<'_>,
    Call {
        name,
        args: a,
        span,
    }: Call,
) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    if name == "unique" {
        ev.host_op(|x| kernels::unique(&x[0]), vec![t], span)
    } else {
        ev.host_op(|x| kernels::nonzero(&x[0]), vec![t], span)
    }
}

pub(super) fn boolean_mask(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let t = tensor!(ev, a, 0);
    let m = tensor!(ev, a, 1);
    ev.host_op(|x| kernels::boolean_mask(&x[0], &x[1]), vec![t, m], span)
}

pub(super) fn py_function(ev: &mut Eval<'_>, Call { args: a, span, .. }: Call) -> Res<Value> {
    let f = some!(ev.func_arg(req(&a, 0), "py_function")?);
    let (args_v, args_s) = req(&a, 1);
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
            return ev.fail(d);
        }
    };
    let tout = some!(ev.type_value(req(&a, 2))?);
    ev.py_function(f, args, tout, span)
}

/// The two fixes for code that needs values (SPEC §5): run it eagerly, either by declaring
/// the function `eager fn` or by calling it through `py_function`. A lambda has no name to
/// declare, so its help names a new function instead.
pub(crate) fn eager_fix_help(fname: &str) -> String {
    if fname == "lambda" {
        "move the lambda's body into `eager fn f(x) -> TYPE { ... }` and map `f`, which runs per element on host arrays, \
         or call it as `py_function(|x| ..., [x], TYPE)`"
            .to_string()
    } else {
        format!(
            "declare it `eager fn {fname}(...) -> TYPE {{ ... }}` to run it per element on host arrays, or call it as `py_function({fname}, [args], TYPE)`"
        )
    }
}
