//! Eager functions as host functions: an `eager fn` body (or any function called through
//! `py_function`) evaluated per element on host arrays by the same evaluator that traces.

use crate::eval::{Abort, Eval, Frame, Shared};
use crate::value::{FuncVal, TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{HostFn, HostFunction, HostInstance};
use pipec_syntax::ast::{FnBody, ItemKind};
use pipec_tensor::Tensor;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Where `print` in eager code writes one line.
pub type PrintSink = Arc<dyn Fn(&str) + Send + Sync>;

pub(crate) fn shared_arc(shared: &Arc<Shared>) -> Option<Arc<Shared>> {
    Some(shared.clone())
}

/// The body of an `eager fn` declaration.
pub(crate) struct EagerBody {
    shared: Arc<Shared>,
    item: usize,
    name: String,
}

impl EagerBody {
    pub(crate) fn new(shared: Arc<Shared>, item: usize, name: String) -> EagerBody {
        EagerBody { shared, item, name }
    }
}

impl fmt::Debug for EagerBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EagerBody({})", self.name)
    }
}

impl HostFunction for EagerBody {
    fn name(&self) -> &str {
        &self.name
    }

    fn flavor(&self) -> &'static str {
        "eager"
    }

    fn instantiate(&self) -> Result<Box<dyn HostInstance>, Diagnostic> {
        Ok(Box::new(EagerRun {
            shared: self.shared.clone(),
            func: FuncVal::Decl(self.item),
        }))
    }
}

/// A function called through `py_function`.
pub(crate) struct PyFunction {
    shared: Arc<Shared>,
    func: FuncVal,
    name: String,
}

impl PyFunction {
    /// Wraps `f` for eager calls; reports a lambda that captured symbolic tensors.
    pub(crate) fn new(ev: &mut Eval<'_>, f: FuncVal, span: Span) -> Option<HostFn> {
        let name = match &f {
            FuncVal::Decl(idx) => match &ev.shared.ast.items[*idx].kind {
                ItemKind::Fn(d) => d.name.name.clone(),
                _ => "function".into(),
            },
            FuncVal::Lambda(l) => {
                let mut used = Vec::new();
                names_in(&l.body, &mut used);
                let symbolic = |name: &String| {
                    matches!(
                        l.captured.get(name),
                        Some(Value::Tensor(TVal::Symbolic(..)))
                    )
                };
                let shadowed = |name: &String| l.params.iter().any(|p| &p.name == name);
                if used.iter().any(|n| symbolic(n) && !shadowed(n)) {
                    let d = Diagnostic::error(Code::NotTraceTime, "a lambda given to `py_function` uses a symbolic tensor of the enclosing function")
                        .with_label(l.span, "captures a traced value")
                        .with_help("pass the tensor as an argument: `py_function(|x, y| ..., [x, y], T)`");
                    ev.report(d);
                    return None;
                }
                "lambda".into()
            }
            FuncVal::Builtin(b) => b.clone(),
        };
        let _ = span;
        Some(Arc::new(PyFunction {
            shared: ev.shared.clone(),
            func: f,
            name,
        }))
    }
}

impl fmt::Debug for PyFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PyFunction({})", self.name)
    }
}

impl HostFunction for PyFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn flavor(&self) -> &'static str {
        "py_function"
    }

    fn instantiate(&self) -> Result<Box<dyn HostInstance>, Diagnostic> {
        Ok(Box::new(EagerRun {
            shared: self.shared.clone(),
            func: self.func.clone(),
        }))
    }
}

/// A running eager function: evaluates the body with concrete values.
struct EagerRun {
    shared: Arc<Shared>,
    func: FuncVal,
}

impl HostInstance for EagerRun {
    fn call(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        let mut ev = Eval {
            shared: &self.shared,
            comp: None,
            frame: Frame {
                scopes: vec![HashMap::new()],
                func: None,
                eager: true,
                fn_name: None,
            },
            depth: 0,
        };
        let args: Vec<Value> = args
            .iter()
            .map(|t| Value::Tensor(TVal::Concrete(t.clone())))
            .collect();
        let result = match &self.func {
            FuncVal::Decl(idx) => {
                let ast = self.shared.ast.clone();
                let ItemKind::Fn(decl) = &ast.items[*idx].kind else {
                    unreachable!("eager bodies are declarations")
                };
                let FnBody::Block(_) = &decl.body else {
                    unreachable!("only block bodies run here")
                };
                ev.frame.fn_name = Some(decl.name.name.clone());
                let span = decl.name.span;
                ev.inline_decl(decl, args, span)
            }
            other => ev.call_func(other, args, Span::default()),
        };
        let value = match result {
            Ok(v) => v,
            Err(Abort::Error(d)) => return Err(*d),
        };
        let mut flat = Vec::new();
        match ev.flatten_tensors(value, Span::default(), &mut flat) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Diagnostic::error(
                    Code::EagerResultMismatch,
                    "the eager function returned no tensor",
                ));
            }
            Err(Abort::Error(d)) => return Err(*d),
        }
        Ok(flat
            .into_iter()
            .map(|t| match t {
                TVal::Concrete(t) => t,
                TVal::Symbolic(..) => unreachable!("eager code has no symbolic values"),
            })
            .collect())
    }
}

/// How `print` shows a value: tensors as numpy prints them.
pub(crate) fn display_value(v: &Value) -> String {
    match v {
        Value::Tensor(TVal::Concrete(t)) => pipec_tensor::format::format_tensor(t),
        Value::Num(crate::value::Num::Int(i)) => i.to_string(),
        Value::Num(crate::value::Num::Float(f)) => format!("{f:?}"),
        Value::Bool(b) => {
            if *b {
                "True".into()
            } else {
                "False".into()
            }
        }
        Value::Str(s) => s.to_string(),
        Value::Tuple(vs) => {
            let parts: Vec<String> = vs.iter().map(display_value).collect();
            format!("({})", parts.join(", "))
        }
        other => other.kind_name(),
    }
}

/// The names an expression refers to (a superset of its free variables is fine here).
fn names_in(e: &pipec_syntax::ast::Expr, out: &mut Vec<String>) {
    use pipec_syntax::ast::{ExprKind, IndexItem};
    match &e.kind {
        ExprKind::Name(n) => out.push(n.clone()),
        ExprKind::Tuple(xs) | ExprKind::List(xs) => xs.iter().for_each(|x| names_in(x, out)),
        ExprKind::Unary { expr, .. } => names_in(expr, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            names_in(lhs, out);
            names_in(rhs, out);
        }
        ExprKind::Call { callee, args } => {
            names_in(callee, out);
            args.iter().for_each(|a| names_in(&a.value, out));
        }
        ExprKind::Method { receiver, args, .. } => {
            names_in(receiver, out);
            args.iter().for_each(|a| names_in(&a.value, out));
        }
        ExprKind::Field { receiver, .. } => names_in(receiver, out),
        ExprKind::Index { base, indices } => {
            names_in(base, out);
            for i in indices {
                match i {
                    IndexItem::Expr(x) => names_in(x, out),
                    IndexItem::Slice {
                        start, stop, step, ..
                    } => {
                        [start, stop, step]
                            .into_iter()
                            .flatten()
                            .for_each(|x| names_in(x, out));
                    }
                    IndexItem::Ellipsis(_) => {}
                }
            }
        }
        ExprKind::Lambda { body, .. } => names_in(body, out),
        ExprKind::Range { start, end } => {
            names_in(start, out);
            names_in(end, out);
        }
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Error => {}
    }
}
