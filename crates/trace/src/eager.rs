//! Eager functions as host functions: an `eager fn` body (or any function called through
//! `py_function`) evaluated per element on host arrays by the same evaluator that traces.

use crate::eval::{Abort, Eval, Frame, Shared};
use crate::value::{FuncVal, TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{Function, HostFn, HostFunction, HostInstance, OpKind, Shape, TensorType};
use pipec_syntax::ast::{self, ExprKind, FnBody, ItemKind, StmtKind};
use pipec_tensor::{DType, Tensor};
use std::collections::{HashMap, HashSet};
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
        Ok(Box::new(EagerRun::new(
            self.shared.clone(),
            FuncVal::Decl(self.item),
            self.plannable(),
        )))
    }

    /// A plannable body is straight-line and pure: a block of rows at once is the same as
    /// the rows one by one (which is what the runtime repeats when a block fails).
    fn runs_on_blocks(&self) -> bool {
        self.plannable()
    }
}

impl EagerBody {
    fn plannable(&self) -> bool {
        match &self.shared.ast.items[self.item].kind {
            ItemKind::Fn(decl) => plannable_decl(&self.shared, decl),
            _ => false,
        }
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
    pub(crate) fn wrap(ev: &mut Eval<'_>, f: FuncVal, span: Span) -> Option<HostFn> {
        // A function without a body to evaluate (an `exec` worker, an `extern` host
        // function) already is a host function: `py_function` calls it as it is.
        if let FuncVal::Decl(idx) = &f {
            let ast = ev.shared.ast.clone();
            if let ItemKind::Fn(decl) = &ast.items[*idx].kind
                && !matches!(decl.body, FnBody::Block(_))
            {
                return ev.host_for(*idx, decl);
            }
        }
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
        Ok(Box::new(EagerRun::new(
            self.shared.clone(),
            self.func.clone(),
            false,
        )))
    }
}

/// How many argument signatures one instance keeps plans for; calls with further
/// signatures take the evaluator, so data of ever-changing shapes cannot grow memory.
const MAX_PLANS: usize = 8;

/// The dtype and shape of each argument of a call.
type Signature = Vec<(DType, Vec<usize>)>;

/// A running eager function: evaluates the body with concrete values.
struct EagerRun {
    shared: Arc<Shared>,
    func: FuncVal,
    /// Whether the body is simple enough to be planned (see [`plannable_decl`]).
    plannable: bool,
    /// Plans by argument signature; `None` when tracing that signature did not give one.
    plans: Vec<(Signature, Option<Plan>)>,
    /// Block plans by row signature: the row's plan vectorized over a leading axis of rows
    /// (see [`HostInstance::call_rows`]); `None` when there is no row plan or it does not
    /// vectorize.
    block_plans: Vec<(Signature, Option<Plan>)>,
    /// Reused per call by [`Plan::run`], so the steady state allocates only results.
    vals: Vec<Option<Tensor>>,
    inputs: Vec<Tensor>,
}

/// An eager body traced once for one argument signature: the ops the evaluator would
/// run, in order. Running it gives the evaluator's tensors without re-walking the AST.
struct Plan {
    /// The traced ops; its results are the flat result leaves, in the order the evaluator
    /// flattens them.
    func: Function,
    /// [`Function::last_uses`]: per op and input, whether to move the value out of the value
    /// table instead of cloning it.
    moves: Vec<Vec<bool>>,
    /// Whether the results are exactly the last op's outputs, which are then returned as
    /// the kernel made them.
    direct: bool,
}

impl EagerRun {
    fn new(shared: Arc<Shared>, func: FuncVal, plannable: bool) -> EagerRun {
        EagerRun {
            shared,
            func,
            plannable,
            plans: Vec::new(),
            block_plans: Vec::new(),
            vals: Vec::new(),
            inputs: Vec::new(),
        }
    }

    /// The plan for `args`' signature, tracing one on the first call with a new signature.
    fn plan_for(&mut self, args: &[Tensor]) -> Option<usize> {
        let FuncVal::Decl(item) = self.func else {
            return None;
        };
        let shared = &self.shared;
        lookup(&mut self.plans, args, 0, |types| {
            trace_plan(shared, item, types)
        })
    }

    /// The block plan for `args`, whose leading axis is the rows: the row plan vectorized.
    fn block_plan_for(&mut self, args: &[Tensor]) -> Option<usize> {
        let FuncVal::Decl(item) = self.func else {
            return None;
        };
        let shared = &self.shared;
        lookup(&mut self.block_plans, args, 1, |row_types| {
            let row = trace_plan(shared, item, row_types)?;
            let func = pipec_ir::vmap::vectorize(&row.func, pipec_ir::Dim::Unknown).ok()?;
            Some(Plan {
                moves: func.last_uses(),
                direct: func.results_are_last_outputs(),
                func,
            })
        })
    }

    /// Evaluates the body with the evaluator (every call that has no plan, and every call
    /// whose plan declined: errors always come from here).
    fn evaluate(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        let mut ev = Eval {
            shared: &self.shared,
            comp: None,
            frame: Frame {
                scopes: vec![HashMap::new()],
                func: None,
                eager: true,
                fn_name: None,
                site: Vec::new(),
            },
            depth: 0,
        };
        let args: Vec<Value> = args
            .iter()
            .map(|t| Value::Tensor(TVal::Concrete(t.clone())))
            .collect();
        let result = match &self.func {
            FuncVal::Decl(idx) => {
                let ast = &self.shared.ast;
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

impl HostInstance for EagerRun {
    fn call(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        if self.plannable
            && let Some(at) = self.plan_for(args)
            && let Some(plan) = &self.plans[at].1
            && let Some(outs) = plan.run(args, &mut self.vals, &mut self.inputs)
        {
            return Ok(outs);
        }
        self.evaluate(args)
    }

    /// One run of the block plan over all rows; rows one by one when there is none or it
    /// declines (a kernel error: the per-row calls then meet it through the evaluator).
    fn call_rows(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        let rows = args.first().and_then(|a| a.shape().first().copied());
        if self.plannable
            && rows.is_some_and(|n| n > 0)
            && args.iter().all(|a| a.shape().first().copied() == rows)
            && let Some(at) = self.block_plan_for(args)
            && let Some(plan) = &self.block_plans[at].1
            && let Some(outs) = plan.run(args, &mut self.vals, &mut self.inputs)
        {
            return Ok(outs);
        }
        let mut per_row = PerRow(self);
        per_row.call_rows(args)
    }
}

/// An [`EagerRun`] seen only through [`HostInstance::call`], to reach the trait's default
/// row-by-row `call_rows`.
struct PerRow<'a>(&'a mut EagerRun);

impl HostInstance for PerRow<'_> {
    fn call(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        self.0.call(args)
    }
}

/// The entry of `plans` for `args`' signature with its first `skip` axes left out, made by
/// `make` from the argument types on first sight; `None` when that gave no plan or when
/// the cache is full (a new signature then takes the evaluator).
fn lookup(
    plans: &mut Vec<(Signature, Option<Plan>)>,
    args: &[Tensor],
    skip: usize,
    make: impl FnOnce(&[TensorType]) -> Option<Plan>,
) -> Option<usize> {
    let key = |a: &Tensor| (a.dtype(), a.shape().get(skip..).unwrap_or(&[]).to_vec());
    let found = plans.iter().position(|(sig, _)| {
        sig.len() == args.len()
            && sig.iter().zip(args).all(|((dt, shape), a)| {
                *dt == a.dtype() && Some(shape.as_slice()) == a.shape().get(skip..)
            })
    });
    let at = match found {
        Some(i) => i,
        None if plans.len() < MAX_PLANS => {
            let sig: Signature = args.iter().map(key).collect();
            let types: Vec<TensorType> = sig
                .iter()
                .map(|(dt, shape)| TensorType::new(*dt, Shape::known(shape)))
                .collect();
            plans.push((sig, make(&types)));
            plans.len() - 1
        }
        None => return None,
    };
    plans[at].1.as_ref().map(|_| at)
}

impl Plan {
    /// Runs the ops on `args`; `None` when a kernel fails or a result differs from the
    /// traced type. The caller then re-evaluates with the evaluator, which (kernels being
    /// deterministic and the planned bodies free of side effects) fails or succeeds exactly
    /// as the evaluator alone would, with its own messages.
    fn run(
        &self,
        args: &[Tensor],
        vals: &mut Vec<Option<Tensor>>,
        inputs: &mut Vec<Tensor>,
    ) -> Option<Vec<Tensor>> {
        let outs = self.run_ops(args, vals, inputs);
        // Emptied on every exit: no tensor outlives the call through the buffers.
        vals.clear();
        inputs.clear();
        outs
    }

    fn run_ops(
        &self,
        args: &[Tensor],
        vals: &mut Vec<Option<Tensor>>,
        inputs: &mut Vec<Tensor>,
    ) -> Option<Vec<Tensor>> {
        let f = &self.func;
        vals.clear();
        vals.resize(f.values.len(), None);
        for (p, a) in f.params.iter().zip(args) {
            vals[p.index()] = Some(a.clone());
        }
        for (i, op) in f.ops.iter().enumerate() {
            inputs.clear();
            for (v, &last) in op.inputs.iter().zip(&self.moves[i]) {
                let slot = &mut vals[v.index()];
                inputs.push(if last { slot.take()? } else { slot.clone()? });
            }
            let outs = op.kind.eval(inputs).ok()?;
            inputs.clear();
            // Later builtins decided on the traced types: a kernel that disagrees with the
            // inference would make the plan diverge from the evaluator.
            if outs.len() != op.outputs.len()
                || !op
                    .outputs
                    .iter()
                    .zip(&outs)
                    .all(|(o, t)| is_exactly(f.ty(*o), t))
            {
                return None;
            }
            if self.direct && i + 1 == f.ops.len() {
                return Some(outs);
            }
            for (o, t) in op.outputs.iter().zip(outs) {
                vals[o.index()] = Some(t);
            }
        }
        let results = &self.func.results;
        let mut outs = Vec::with_capacity(results.len());
        for (k, r) in results.iter().enumerate() {
            let slot = &mut vals[r.index()];
            outs.push(if results[k + 1..].contains(r) {
                slot.clone()?
            } else {
                slot.take()?
            });
        }
        Some(outs)
    }
}

/// Whether `t` has exactly the dtype and shape of `ty`; an unknown dimension (only the rows
/// axis of a block plan has one) takes any size.
fn is_exactly(ty: &TensorType, t: &Tensor) -> bool {
    ty.dtype == t.dtype() && ty.shape.admits(t.shape())
}

/// Traces the body of declaration `item` for arguments shaped like `args`, with the same
/// evaluator in tracing mode; `None` when anything would make the traced ops differ from
/// an evaluator run (any error, a poisoned or non-tensor result, a nested host call).
fn trace_plan(shared: &Arc<Shared>, item: usize, types: &[TensorType]) -> Option<Plan> {
    let ast = shared.ast.clone();
    let ItemKind::Fn(decl) = &ast.items.get(item)?.kind else {
        return None;
    };
    let types = types.to_vec();
    let func = Function::new(decl.name.name.clone(), decl.name.span, types.clone());
    let params: Vec<Value> = func
        .params
        .iter()
        .zip(types)
        .map(|(p, ty)| Value::Tensor(TVal::Symbolic(*p, ty)))
        .collect();
    // No compile state: a failure aborts instead of being recorded, which is what we want.
    let mut ev = Eval {
        shared,
        comp: None,
        frame: Frame {
            scopes: vec![HashMap::new()],
            func: Some(func),
            eager: true,
            fn_name: Some(decl.name.name.clone()),
            site: Vec::new(),
        },
        depth: 0,
    };
    let value = ev.inline_decl(decl, params, decl.name.span).ok()?;
    let mut flat = Vec::new();
    if !ev.flatten_tensors(value, Span::default(), &mut flat).ok()? || flat.is_empty() {
        return None;
    }
    let results = flat
        .iter()
        .map(|t| match t {
            TVal::Symbolic(v, _) => Some(*v),
            TVal::Concrete(_) => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let mut func = ev.frame.func.take()?;
    if func
        .ops
        .iter()
        .any(|op| matches!(op.kind, OpKind::Eager(_)))
    {
        return None;
    }
    func.results = results;
    Some(Plan {
        moves: func.last_uses(),
        direct: func.results_are_last_outputs(),
        func,
    })
}

/// Whether an eager body is straight-line code over its parameters: `let`s and a final
/// `return` of literals, locals, operators and value-independent builtin (`crate::builtins::Kind::ValueIndependent`) calls. Anything
/// else (control flow, `print`, globals, user calls, indexing, methods) always runs on
/// the evaluator.
fn plannable_decl(shared: &Shared, decl: &ast::FnDecl) -> bool {
    let FnBody::Block(body) = &decl.body else {
        return false;
    };
    let mut locals: HashSet<&str> = decl.params.iter().map(|p| p.name.name.as_str()).collect();
    let Some((last, init)) = body.stmts.split_last() else {
        return false;
    };
    for s in init {
        match &s.kind {
            StmtKind::Let { name, value } if plannable_expr(shared, &locals, value) => {
                locals.insert(name.name.as_str());
            }
            _ => return false,
        }
    }
    matches!(&last.kind, StmtKind::Return(Some(e)) if plannable_expr(shared, &locals, e))
}

fn plannable_expr(shared: &Shared, locals: &HashSet<&str>, e: &ast::Expr) -> bool {
    match &e.kind {
        ExprKind::Int(_) | ExprKind::Float(..) | ExprKind::Bool(_) => true,
        // A dtype name is a constant unless a local or top-level name hides it.
        ExprKind::Name(n) => {
            locals.contains(n.as_str())
                || (!shared.items.contains_key(n) && DType::from_name(n).is_some())
        }
        ExprKind::Tuple(xs) | ExprKind::List(xs) => {
            xs.iter().all(|x| plannable_expr(shared, locals, x))
        }
        ExprKind::Unary { expr, .. } => plannable_expr(shared, locals, expr),
        // `.numpy()` is the identity on host arrays (the plan traces it so).
        ExprKind::Method {
            receiver,
            name,
            args,
        } if name.name == "numpy" && args.is_empty() => plannable_expr(shared, locals, receiver),
        ExprKind::Call { callee, args }
            if matches!(&callee.kind, ExprKind::Name(n) if n == "numpy" && !locals.contains(n.as_str()) && !shared.items.contains_key(n))
                && args.len() == 1 =>
        {
            plannable_expr(shared, locals, &args[0].value)
        }
        ExprKind::Binary { lhs, rhs, .. } => {
            plannable_expr(shared, locals, lhs) && plannable_expr(shared, locals, rhs)
        }
        ExprKind::Call { callee, args } => {
            // The same shadowing rule as the evaluator's calls: a local or top-level name
            // hides a builtin.
            let ExprKind::Name(name) = &callee.kind else {
                return false;
            };
            !locals.contains(name.as_str())
                && !shared.items.contains_key(name)
                && crate::builtins::lookup(name)
                    .is_some_and(|b| b.kind == crate::builtins::Kind::ValueIndependent)
                && args
                    .iter()
                    .all(|a| plannable_expr(shared, locals, &a.value))
        }
        _ => false,
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
        Value::Dict(fields) => {
            pipec_tensor::format::format_dict(fields.iter().map(|(k, v)| (&**k, display_value(v))))
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
        ExprKind::Dict(entries) => entries.iter().for_each(|(_, x)| names_in(x, out)),
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
        | ExprKind::Float(..)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Error => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    /// An instance of `f` declared in `src`, with or without plans.
    fn instance(src: &str, plannable: bool) -> EagerRun {
        let (ast, diags) = pipec_syntax::parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        let ast = Arc::new(ast);
        let mut items = HashMap::new();
        let mut item = None;
        for (i, it) in ast.items.iter().enumerate() {
            if let ItemKind::Fn(d) = &it.kind {
                items.insert(d.name.name.clone(), i);
                if d.name.name == "f" {
                    item = Some(i);
                }
            }
        }
        let globals = OnceLock::new();
        let _ = globals.set(HashMap::new());
        let shared = Arc::new(Shared {
            ast: ast.clone(),
            items,
            globals,
            externs: Default::default(),
            exec_hosts: OnceLock::new(),
            print_sink: None,
            source: src.into(),
        });
        let item = item.expect("the source declares `f`");
        let ItemKind::Fn(decl) = &ast.items[item].kind else {
            unreachable!("found above")
        };
        let can = plannable_decl(&shared, decl);
        EagerRun::new(shared, FuncVal::Decl(item), plannable && can)
    }

    fn shown(r: Result<Vec<Tensor>, Diagnostic>) -> String {
        match r {
            Ok(ts) => ts
                .iter()
                .map(|t| {
                    format!(
                        "{}{:?} {}",
                        t.dtype(),
                        t.shape(),
                        pipec_tensor::format::format_tensor(t)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            Err(d) => format!("{d:?}"),
        }
    }

    /// Runs every argument list through a planning and a non-planning instance and checks
    /// they agree exactly; returns how many signatures got a plan.
    fn same(src: &str, calls: &[Vec<Tensor>]) -> usize {
        let mut planned = instance(src, true);
        let mut plain = instance(src, false);
        for args in calls {
            let a = shown(planned.call(args));
            let b = shown(plain.call(args));
            assert_eq!(a, b, "{src}");
        }
        planned.plans.iter().filter(|(_, p)| p.is_some()).count()
    }

    fn f32s(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor::from_vec(shape, v).expect("shape fits")
    }

    fn i32s(shape: &[usize], v: Vec<i32>) -> Tensor {
        Tensor::from_vec(shape, v).expect("shape fits")
    }

    /// Runs `args` (leading axis = rows) through `call_rows` of a planning instance and
    /// compares with per-row calls of a non-planning one, stacked; returns how many block
    /// plans were made.
    fn same_rows(src: &str, args: &[Tensor]) -> usize {
        let mut planned = instance(src, true);
        let mut plain = instance(src, false);
        let rows = args[0].shape()[0];
        let mut per_row: Vec<Vec<Tensor>> = Vec::new();
        let mut failed = None;
        for i in 0..rows {
            let row: Vec<Tensor> = args.iter().map(|a| a.index_axis0(i)).collect();
            match plain.call(&row) {
                Ok(outs) => per_row.push(outs),
                Err(d) => {
                    failed = Some(d);
                    break;
                }
            }
        }
        let got = planned.call_rows(args);
        match failed {
            Some(d) => assert_eq!(shown(got), shown(Err(d)), "{src}"),
            None => {
                let stacked: Vec<Tensor> = (0..per_row[0].len())
                    .map(|k| {
                        let parts: Vec<Tensor> = per_row.iter().map(|r| r[k].clone()).collect();
                        pipec_tensor::kernels::stack(&parts, 0).expect("rows stack")
                    })
                    .collect();
                assert_eq!(shown(got), shown(Ok(stacked)), "{src}");
            }
        }
        planned
            .block_plans
            .iter()
            .filter(|(_, p)| p.is_some())
            .count()
    }

    #[test]
    fn a_block_of_rows_equals_the_rows_one_by_one() {
        let sort = "eager fn f(x) -> f32[4] {\n    return sort(x) * 2.0 - 1.0\n}\n";
        let v: Vec<f32> = (0..40).map(|i| ((i * 7919) % 23) as f32 - 11.5).collect();
        assert_eq!(same_rows(sort, &[f32s(&[10, 4], v)]), 1);
        let two = "eager fn f(x, y) -> (f32[], i32[3]) {\n    return (sum(x), y * 2 + 1)\n}\n";
        let x = f32s(&[5, 2], (0..10).map(|i| i as f32 * 0.25).collect());
        let y = i32s(&[5, 3], (0..15).collect());
        assert_eq!(same_rows(two, &[x, y]), 1);
    }

    #[test]
    fn a_failing_block_fails_as_its_first_failing_row() {
        // Row 3 divides by zero: the block plan declines and the per-row calls give the
        // evaluator's error for that row.
        let src = "eager fn f(x) -> i32[2] {\n    return x // (x - 3)\n}\n";
        let x = i32s(&[6, 2], vec![0, 1, 1, 2, 2, 4, 3, 3, 4, 5, 5, 6]);
        assert_eq!(same_rows(src, &[x]), 1);
    }

    #[test]
    fn a_planned_sort_equals_the_evaluator() {
        let src = "eager fn f(x) -> f32[8] {\n    return sort(x)\n}\n";
        let row = f32s(&[8], vec![3.0, -1.0, 7.5, 0.0, 2.0, 2.0, -9.0, 1.0]);
        assert_eq!(same(src, &[vec![row.clone()], vec![row]]), 1);
    }

    #[test]
    fn lets_literals_operators_and_tuples_are_planned() {
        let src = "eager fn f(x, y) -> (f32[?], f32[], i32[?]) {\n    let z = x * 2.0 + 1\n    let w = -z\n    return (sort(w, axis: 0), sum(z), cast(w > 0.0, i32) + y)\n}\n";
        let calls = [
            vec![f32s(&[3], vec![1.0, -2.0, 0.5]), i32s(&[3], vec![1, 2, 3])],
            vec![f32s(&[2], vec![4.0, -0.25]), i32s(&[], vec![7])],
            vec![f32s(&[3], vec![0.0, 0.0, 9.0]), i32s(&[3], vec![0, 0, 0])],
        ];
        assert_eq!(same(src, &calls), 2);
    }

    #[test]
    fn kernel_errors_in_a_plan_are_the_evaluators_errors() {
        let src = "eager fn f(x) -> i32[?] {\n    return x // (x - 1)\n}\n";
        let calls = [
            vec![i32s(&[3], vec![5, 7, 9])],
            vec![i32s(&[3], vec![5, 1, 9])],
            vec![i32s(&[3], vec![4, 2, 3])],
        ];
        assert_eq!(same(src, &calls), 1);
    }

    #[test]
    fn bodies_that_fail_to_trace_run_on_the_evaluator() {
        // A declared-type mismatch, a shape error and a wrong axis: no plan, same messages.
        let cases = [
            "eager fn f(x) -> i32[?] {\n    return cast(x, f32)\n}\n",
            "eager fn f(x) -> i32[?] {\n    return x + [1, 2]\n}\n",
            "eager fn f(x) -> i32[?] {\n    return sort(x, axis: 3)\n}\n",
            "eager fn f(x) -> i32[?] {\n    return reshape(x, [2, -1])\n}\n",
        ];
        for src in cases {
            same(
                src,
                &[
                    vec![i32s(&[3], vec![1, 2, 3])],
                    vec![i32s(&[4], vec![1, 2, 3, 4])],
                ],
            );
        }
    }

    #[test]
    fn only_straight_line_pure_bodies_are_planned() {
        let planned = [
            "eager fn f(x) -> f32[?] {\n    return sort(x)\n}\n",
            "eager fn f(x) -> f32[?] {\n    let y = exp(x)\n    return y / sum(y)\n}\n",
            "eager fn f(x) -> f32[?] {\n    return sort(x.numpy())\n}\n",
            "eager fn f(x) -> f32[?] {\n    return sort(numpy(x)) * 2.0\n}\n",
        ];
        for src in planned {
            assert!(instance(src, true).plannable, "{src}");
        }
        let not_planned = [
            "eager fn f(x) -> f32[?] {\n    print(x)\n    return x\n}\n",
            "eager fn f(x) -> f32[?] {\n    if sum(x) > 0.0 {\n        return x\n    }\n    return -x\n}\n",
            "eager fn f(x) -> f32[?] {\n    return unique(x)\n}\n",
            "eager fn f(x) -> f32[?] {\n    return x[0:2]\n}\n",
            "eager fn f(sort) -> f32[?] {\n    return sort(sort)\n}\n",
            "fn sort(x) {\n    return x\n}\neager fn f(x) -> f32[?] {\n    return sort(x)\n}\n",
            "eager fn f(x) -> f32[?] {\n    let y = x\n    y = sort(y)\n    return y\n}\n",
        ];
        for src in not_planned {
            assert!(!instance(src, true).plannable, "{src}");
        }
    }

    #[test]
    fn signatures_beyond_the_cache_still_run() {
        let src = "eager fn f(x) -> i32[?] {\n    return sort(x)\n}\n";
        let calls: Vec<Vec<Tensor>> = (1..=MAX_PLANS + 3)
            .map(|n| vec![i32s(&[n], (0..n as i32).rev().collect())])
            .collect();
        assert_eq!(same(src, &calls), MAX_PLANS);
    }
}
