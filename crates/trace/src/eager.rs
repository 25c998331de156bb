//! Eager functions as host functions: an `eager fn` body (or any function called through
//! `py_function`) evaluated per element on host arrays by the same evaluator that traces.

use crate::eval::{Abort, Eval, Frame, Guards, Shared};
use crate::value::{FuncVal, TVal, Value};
use pipec_diag::{Code, Diagnostic, Span};
use pipec_ir::{Function, HostFn, HostFunction, HostInstance, OpKind, Shape, TensorType, ValueId};
use pipec_syntax::ast::{self, ExprKind, FnBody, ItemKind, StmtKind};
use pipec_tensor::{DType, Tensor};
use std::cell::OnceCell;
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

    /// A plannable body is pure: a block of rows at once (each path on the rows that take
    /// it) is the same as the rows one by one (which is what the runtime repeats when a
    /// block fails).
    fn runs_on_blocks(&self) -> bool {
        self.plannable()
    }
}

impl EagerBody {
    fn plannable(&self) -> bool {
        plannable_item(&self.shared, self.item)
    }
}

/// Whether item `item` is a function whose body is planned (see [`plannable_decl`]), and
/// the program is optimized (`TraceOptions::plan_eager`).
fn plannable_item(shared: &Shared, item: usize) -> bool {
    match &shared.ast.items[item].kind {
        ItemKind::Fn(decl) => shared.plan_eager && plannable_decl(shared, decl),
        _ => false,
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
            self.plannable(),
        )))
    }

    /// As for an `eager fn`: a declared function whose body plans is pure.
    fn runs_on_blocks(&self) -> bool {
        self.plannable()
    }
}

impl PyFunction {
    /// Whether the function is a declaration whose body can be planned (a lambda or a
    /// builtin always runs on the evaluator).
    fn plannable(&self) -> bool {
        match &self.func {
            FuncVal::Decl(item) => plannable_item(&self.shared, *item),
            _ => false,
        }
    }
}

/// How many argument signatures one instance keeps plans for; calls with further
/// signatures take the evaluator, so data of ever-changing shapes cannot grow memory.
const MAX_PLANS: usize = 8;

/// How many paths through its value-dependent branches one plan traces; calls that take
/// further paths run on the evaluator, so a body branching on every value (a loop in
/// disguise) cannot grow memory either.
const MAX_PATHS: usize = 64;

/// How many ops the paths of one plan may hold in all (a few MB at most): a loop unrolled
/// into long paths stops being traced when they reach it, and its calls take the evaluator.
const MAX_PLAN_OPS: usize = 8192;

/// The dtype and shape of each argument of a call.
type Signature = Vec<(DType, Vec<usize>)>;

/// A running eager function: evaluates the body with concrete values.
struct EagerRun {
    shared: Arc<Shared>,
    func: FuncVal,
    /// Whether the body is simple enough to be planned (see [`plannable_decl`]).
    plannable: bool,
    /// Plans by argument signature (of one call, or of one row of a block: blocks run
    /// the row's plan's paths vectorized); `None` when tracing that signature did not
    /// give one.
    plans: Vec<(Signature, Option<Plan>)>,
    /// Reused per call by the plans, so the steady state allocates only results.
    vals: Vec<Option<Tensor>>,
    inputs: Vec<Tensor>,
}

/// An eager body traced for one argument signature: the ops the evaluator would run, one
/// path per sequence of branches taken at the body's value-dependent conditions (`if x >
/// 0`). A path is traced when a call first takes it; running the plan checks each
/// condition's value (a guard) and carries on in the path that value leads to.
struct Plan {
    /// The argument types, for tracing further paths.
    types: Vec<TensorType>,
    /// The paths, the root (no branch taken) first.
    paths: Vec<Branch>,
    /// The ops the paths hold in all, against [`MAX_PLAN_OPS`].
    ops: usize,
}

/// One path of a [`Plan`], by the branches it takes.
struct Branch {
    /// The branch taken at each of the path's guards, in order.
    taken: Vec<bool>,
    /// The traced path; `None` where tracing it gave no plan (its calls take the evaluator).
    path: Option<Path>,
    /// The complete path vectorized over a leading axis of rows, returning its guards'
    /// values after its results, made for the first block that needs it; `None` inside
    /// when it does not vectorize.
    rows: OnceCell<Option<RowsPath>>,
}

/// A path vectorized over rows. Results that are constants of the path do not vary by
/// row, and `vmap` keeps only results that do: those are left out of `path` and
/// broadcast to the block's rows after it runs.
struct RowsPath {
    path: Path,
    /// Per result of the per-call path: its constant, or `None` for the next result of
    /// `path`.
    consts: Vec<Option<Tensor>>,
}

impl RowsPath {
    /// The path's results for `rows` rows: `ran` (the varying results, in order) with the
    /// constants broadcast in between.
    fn results(&self, ran: Vec<Tensor>, rows: usize) -> Option<Vec<Tensor>> {
        let mut ran = ran.into_iter();
        self.consts
            .iter()
            .map(|c| match c {
                None => ran.next(),
                Some(t) => {
                    let mut shape = vec![rows];
                    shape.extend_from_slice(t.shape());
                    pipec_tensor::kernels::broadcast_to(t, &shape).ok()
                }
            })
            .collect()
    }
}

impl Branch {
    fn new(taken: Vec<bool>, path: Option<Path>) -> Branch {
        Branch {
            taken,
            path,
            rows: OnceCell::new(),
        }
    }

    /// The path over rows (see [`Branch::rows`]), for complete paths only.
    fn rows(&self) -> Option<&RowsPath> {
        self.rows
            .get_or_init(|| {
                let path = self.path.as_ref().filter(|p| p.complete)?;
                let mut func = path.func.clone();
                let consts: Vec<Option<Tensor>> =
                    func.results.iter().map(|&r| constant(&func, r)).collect();
                func.results = func
                    .results
                    .iter()
                    .zip(&consts)
                    .filter(|(_, c)| c.is_none())
                    .map(|(&r, _)| r)
                    .chain(path.guards.iter().map(|&(_, cond)| cond))
                    .collect();
                let func = pipec_ir::vmap::vectorize(&func, pipec_ir::Dim::Unknown).ok()?;
                Some(RowsPath {
                    path: Path::new(func, Vec::new(), true),
                    consts,
                })
            })
            .as_ref()
    }
}

/// The tensor `v` is when a constant op of `func` makes it.
fn constant(func: &Function, v: ValueId) -> Option<Tensor> {
    func.ops.iter().find_map(|op| match &op.kind {
        OpKind::Const(t) if op.outputs.first() == Some(&v) => Some(t.clone()),
        _ => None,
    })
}

/// What the paths of a plan made of a block of rows: per path that some rows took, those
/// rows (their positions in the block) and their results; and the rows no traced path
/// took, left for calls one by one.
struct RowsRun {
    parts: Vec<(Vec<usize>, Vec<Tensor>)>,
    left: Vec<usize>,
}

/// The traced ops of one path through an eager body.
struct Path {
    /// The ops; when the path is complete, its results are the flat result leaves in the
    /// order the evaluator flattens them.
    func: Function,
    /// The path's value-dependent conditions in order: before op `at` runs, the `bool`
    /// value `cond` must be the branch the path took there. An open path's last guard
    /// has no branch yet, and its ops end there.
    guards: Vec<(usize, ValueId)>,
    /// Whether the path reaches `return` (otherwise it ends at an undecided guard).
    complete: bool,
    /// Per op and input, whether to move the value out of the value table instead of
    /// cloning it: [`Function::last_uses`] after the last guard, never before it (another
    /// path may go on from any guard and still need the value).
    moves: Vec<Vec<bool>>,
    /// Whether the results are exactly the last op's outputs, checked after every guard,
    /// which are then returned as the kernel made them.
    direct: bool,
}

impl EagerRun {
    fn new(shared: Arc<Shared>, func: FuncVal, plannable: bool) -> EagerRun {
        EagerRun {
            shared,
            func,
            plannable,
            plans: Vec::new(),
            vals: Vec::new(),
            inputs: Vec::new(),
        }
    }

    /// The plan for `args`' signature with its first `skip` axes left out (1 for a block,
    /// whose leading axis is the rows: the plan of one row), tracing its root path on
    /// first sight of the signature.
    fn plan_for(&mut self, args: &[Tensor], skip: usize) -> Option<usize> {
        let FuncVal::Decl(item) = self.func else {
            return None;
        };
        let shared = &self.shared;
        lookup(&mut self.plans, args, skip, |types| {
            Plan::new(shared, item, types)
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
            guards: None,
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
            Err(Abort::Undecided) => unreachable!("only plan tracing sets guards"),
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
            Err(Abort::Undecided) => unreachable!("only plan tracing sets guards"),
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
            && let FuncVal::Decl(item) = self.func
            && let Some(at) = self.plan_for(args, 0)
            && let Some(plan) = &mut self.plans[at].1
            && let Some(outs) = emptied_after(&mut self.vals, &mut self.inputs, |vals, inputs| {
                plan.run(&self.shared, item, args, vals, inputs)
            })
        {
            return Ok(outs);
        }
        self.evaluate(args)
    }

    /// The row plan's paths, each vectorized over the rows that take it; rows no traced
    /// path takes yet one by one. The whole block one row at a time when there is no
    /// plan or a path declines (a kernel error: the per-row calls then meet it through
    /// the evaluator).
    fn call_rows(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        let rows = args.first().and_then(|a| a.shape().first().copied());
        if self.plannable
            && rows.is_some_and(|n| n > 0)
            && args.iter().all(|a| a.shape().first().copied() == rows)
            && let Some(at) = self.plan_for(args, 1)
            && let Some(plan) = &self.plans[at].1
            && let Some(run) = emptied_after(&mut self.vals, &mut self.inputs, |vals, inputs| {
                plan.run_rows(args, vals, inputs)
            })
            && let Some(outs) = self.gather_rows(args, run)?
        {
            return Ok(outs);
        }
        let mut per_row = PerRow(self);
        per_row.call_rows(args)
    }
}

impl EagerRun {
    /// The block's results in row order from what the paths made of it and calls of the
    /// rows they left; `None` when the rows' results do not join (their shapes differ:
    /// the caller then reports through calls one row at a time).
    fn gather_rows(
        &mut self,
        args: &[Tensor],
        mut run: RowsRun,
    ) -> Result<Option<Vec<Tensor>>, Diagnostic> {
        if run.left.is_empty() && run.parts.len() == 1 {
            // Every row took one path (`parts` lists rows in block order).
            return Ok(run.parts.pop().map(|(_, outs)| outs));
        }
        if !run.left.is_empty() {
            let mut per_row = Vec::with_capacity(run.left.len());
            for &r in &run.left {
                let row: Vec<Tensor> = args.iter().map(|a| a.index_axis0(r)).collect();
                per_row.push(self.call(&row)?);
            }
            let count = per_row.first().map_or(0, Vec::len);
            let mut stacked = Vec::with_capacity(count);
            for k in 0..count {
                let parts: Option<Vec<Tensor>> =
                    per_row.iter().map(|outs| outs.get(k).cloned()).collect();
                match parts.and_then(|p| pipec_tensor::kernels::stack(&p, 0).ok()) {
                    Some(t) => stacked.push(t),
                    None => return Ok(None),
                }
            }
            run.parts.push((std::mem::take(&mut run.left), stacked));
        }
        let rows = args
            .first()
            .and_then(|a| a.shape().first().copied())
            .unwrap_or(0);
        // Where each row's results are once the parts are joined in order.
        let mut at = vec![0; rows];
        let mut next = 0;
        for (positions, _) in &run.parts {
            for &r in positions {
                at[r] = next;
                next += 1;
            }
        }
        let count = run.parts[0].1.len();
        let mut outs = Vec::with_capacity(count);
        for k in 0..count {
            let pieces: Option<Vec<Tensor>> =
                run.parts.iter().map(|(_, o)| o.get(k).cloned()).collect();
            let joined = pieces
                .and_then(|p| pipec_tensor::kernels::concat(&p, 0).ok())
                .and_then(|j| j.take_rows(&at));
            match joined {
                Some(t) => outs.push(t),
                None => return Ok(None),
            }
        }
        Ok(Some(outs))
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
    /// A plan for arguments of `types` with its root path traced; `None` when that fails.
    fn new(shared: &Arc<Shared>, item: usize, types: &[TensorType]) -> Option<Plan> {
        let root = trace_path(shared, item, types, Vec::new(), MAX_PLAN_OPS)?;
        Some(Plan {
            types: types.to_vec(),
            ops: root.func.ops.len(),
            paths: vec![Branch::new(Vec::new(), Some(root))],
        })
    }

    /// Runs the paths on `args`, tracing a path the first time a guard leads to it; `None`
    /// when a kernel fails, a result differs from the traced type, or the path has no
    /// plan. The caller then re-evaluates with the evaluator, which (kernels being
    /// deterministic and the planned bodies free of side effects) fails or succeeds exactly
    /// as the evaluator alone would, with its own messages. The value table and input
    /// buffer are left as they are: the caller empties them ([`emptied_after`]).
    fn run(
        &mut self,
        shared: &Arc<Shared>,
        item: usize,
        args: &[Tensor],
        vals: &mut Vec<Option<Tensor>>,
        inputs: &mut Vec<Tensor>,
    ) -> Option<Vec<Tensor>> {
        let mut p = 0;
        let root = self.paths.first()?.path.as_ref()?;
        vals.clear();
        vals.resize(root.func.values.len(), None);
        for (param, a) in root.func.params.iter().zip(args) {
            vals[param.index()] = Some(a.clone());
        }
        let mut g = 0;
        let mut i = 0;
        loop {
            let mut path = self.paths[p].path.as_ref()?;
            while let Some(&(at, cond)) = path.guards.get(g)
                && at == i
            {
                let taken = truth(vals.get(cond.index())?.as_ref()?)?;
                if self.paths[p].taken.get(g) != Some(&taken) {
                    p = self.branch(shared, item, p, g, taken)?;
                    path = self.paths[p].path.as_ref()?;
                    if vals.len() < path.func.values.len() {
                        vals.resize(path.func.values.len(), None);
                    }
                }
                g += 1;
            }
            let Some(op) = path.func.ops.get(i) else {
                break;
            };
            let outs = run_op(&path.func, op, &path.moves[i], vals, inputs)?;
            if path.direct && i + 1 == path.func.ops.len() {
                return Some(outs);
            }
            for (o, t) in op.outputs.iter().zip(outs) {
                vals[o.index()] = Some(t);
            }
            i += 1;
        }
        let path = self.paths[p].path.as_ref()?;
        if !path.complete {
            return None;
        }
        take_results(&path.func.results, vals)
    }

    /// The path that takes branch `taken` at guard `g` and the branches of path `p` before
    /// it, traced now if no call has taken it yet; `None` once [`MAX_PATHS`] are traced.
    fn branch(
        &mut self,
        shared: &Arc<Shared>,
        item: usize,
        p: usize,
        g: usize,
        taken: bool,
    ) -> Option<usize> {
        let before = &self.paths[p].taken[..g.min(self.paths[p].taken.len())];
        let found = self
            .paths
            .iter()
            .position(|b| b.taken.get(g) == Some(&taken) && b.taken[..g] == *before);
        if found.is_some() {
            return found;
        }
        if self.paths.len() >= MAX_PATHS || self.ops >= MAX_PLAN_OPS {
            return None;
        }
        let mut branches = before.to_vec();
        branches.push(taken);
        let allowance = MAX_PLAN_OPS - self.ops;
        let path =
            trace_path(shared, item, &self.types, branches.clone(), allowance).filter(|new| {
                self.paths[p]
                    .path
                    .as_ref()
                    .is_some_and(|old| same_up_to(old, new, g))
            });
        self.ops += path.as_ref().map_or(0, |p| p.func.ops.len());
        self.paths.push(Branch::new(branches, path));
        Some(self.paths.len() - 1)
    }

    /// Runs each complete path, vectorized, on the rows of `args` no earlier path took,
    /// keeping the rows whose guard values are the path's branches. A path that declines
    /// (a kernel error, perhaps on rows that take another path: `if x != 0 { return 1 //
    /// x }`) is tried again once other paths have taken rows, and whatever no path took
    /// is left for calls one by one.
    fn run_rows(
        &self,
        args: &[Tensor],
        vals: &mut Vec<Option<Tensor>>,
        inputs: &mut Vec<Tensor>,
    ) -> Option<RowsRun> {
        let rows = args.first()?.shape().first().copied()?;
        let mut parts = Vec::new();
        // The rows still to place, by their position in the block, and their arguments
        // (`None`: all of `args`).
        let mut positions: Vec<usize> = (0..rows).collect();
        let mut rest: Option<Vec<Tensor>> = None;
        // Paths that ran: the rows still to place do not take them.
        let mut ran = vec![false; self.paths.len()];
        let mut progress = true;
        while progress && !positions.is_empty() {
            progress = false;
            for (branch, ran) in self.paths.iter().zip(&mut ran) {
                if positions.is_empty() {
                    break;
                }
                if *ran {
                    continue;
                }
                let Some(block) = branch.rows() else {
                    *ran = true;
                    continue;
                };
                let here = rest.as_deref().unwrap_or(args);
                let Some(mut outs) = block.path.run_straight(here, vals, inputs) else {
                    continue;
                };
                *ran = true;
                let Some(guards_at) = outs.len().checked_sub(branch.taken.len()) else {
                    continue;
                };
                let conds = outs.split_off(guards_at);
                let outs = block.results(outs, positions.len())?;
                if conds.is_empty() {
                    // A path without guards (a straight body) takes every row.
                    parts.push((std::mem::take(&mut positions), outs));
                    break;
                }
                let mut took = vec![true; positions.len()];
                for (cond, &want) in conds.iter().zip(&branch.taken) {
                    let values = cond.as_array::<bool>()?;
                    if values.len() != took.len() {
                        return None;
                    }
                    for (t, &v) in took.iter_mut().zip(values.iter()) {
                        *t &= v == want;
                    }
                }
                let count = took.iter().filter(|&&t| t).count();
                if count == 0 {
                    continue;
                }
                progress = true;
                if count == took.len() {
                    parts.push((std::mem::take(&mut positions), outs));
                    break;
                }
                let kept = outs.iter().map(|t| t.compress_rows(&took)).collect();
                let others: Vec<bool> = took.iter().map(|t| !t).collect();
                let (mine, left): (Vec<_>, Vec<_>) =
                    positions.iter().zip(&took).partition(|(_, t)| **t);
                parts.push((mine.into_iter().map(|(r, _)| *r).collect(), kept));
                positions = left.into_iter().map(|(r, _)| *r).collect();
                rest = Some(here.iter().map(|t| t.compress_rows(&others)).collect());
            }
        }
        Some(RowsRun {
            parts,
            left: positions,
        })
    }
}

/// Whether `new` is `old` up to and including guard `g`: the same ops before it, testing
/// the same value. Tracing is deterministic, so this holds by construction; checking it
/// (once per path) keeps a value table filled by `old` valid for `new` even if it did not.
fn same_up_to(old: &Path, new: &Path, g: usize) -> bool {
    let (Some(&(at, cond)), Some(&(new_at, new_cond))) = (old.guards.get(g), new.guards.get(g))
    else {
        return false;
    };
    at == new_at
        && cond == new_cond
        && old.guards[..g] == new.guards[..g]
        && old.func.params == new.func.params
        && new.func.ops.len() >= at
        && format!("{:?}", &old.func.ops[..at]) == format!("{:?}", &new.func.ops[..at])
}

/// The truth of a guard's `bool` value (one element, checked when traced).
fn truth(t: &Tensor) -> Option<bool> {
    t.as_array::<bool>()?.iter().next().copied()
}

impl Path {
    fn new(func: Function, guards: Vec<(usize, ValueId)>, complete: bool) -> Path {
        let last_guard = guards.last().map(|&(at, _)| at);
        let mut moves = func.last_uses();
        if let Some(at) = last_guard {
            for m in &mut moves[..at.min(func.ops.len())] {
                m.iter_mut().for_each(|x| *x = false);
            }
        }
        let direct = complete
            && func.results_are_last_outputs()
            && last_guard.is_none_or(|at| at < func.ops.len());
        Path {
            func,
            guards,
            complete,
            moves,
            direct,
        }
    }

    /// Runs a path without guards (vectorized over rows) on `args`; `None` as for
    /// [`Plan::run`], whose caller empties the buffers too.
    fn run_straight(
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
            let outs = run_op(f, op, &self.moves[i], vals, inputs)?;
            if self.direct && i + 1 == f.ops.len() {
                return Some(outs);
            }
            for (o, t) in op.outputs.iter().zip(outs) {
                vals[o.index()] = Some(t);
            }
        }
        take_results(&f.results, vals)
    }
}

/// Runs `f` with the reused value table and input buffer, emptying both on every exit: no
/// tensor outlives a call through them.
fn emptied_after<T>(
    vals: &mut Vec<Option<Tensor>>,
    inputs: &mut Vec<Tensor>,
    f: impl FnOnce(&mut Vec<Option<Tensor>>, &mut Vec<Tensor>) -> T,
) -> T {
    let out = f(vals, inputs);
    vals.clear();
    inputs.clear();
    out
}

/// Runs one op of a plan on the value table; `None` when its kernel fails or its results
/// differ from the traced types (later builtins decided on the traced types: a kernel that
/// disagrees with the inference would make the plan diverge from the evaluator).
fn run_op(
    f: &Function,
    op: &pipec_ir::Op,
    moves: &[bool],
    vals: &mut [Option<Tensor>],
    inputs: &mut Vec<Tensor>,
) -> Option<Vec<Tensor>> {
    inputs.clear();
    for (v, &last) in op.inputs.iter().zip(moves) {
        let slot = &mut vals[v.index()];
        inputs.push(if last { slot.take()? } else { slot.clone()? });
    }
    let outs = op.kind.eval(inputs).ok()?;
    inputs.clear();
    let typed = outs.len() == op.outputs.len()
        && op
            .outputs
            .iter()
            .zip(&outs)
            .all(|(o, t)| is_exactly(f.ty(*o), t));
    typed.then_some(outs)
}

/// The result values out of the value table (moved, except for a value returned twice).
fn take_results(results: &[ValueId], vals: &mut [Option<Tensor>]) -> Option<Vec<Tensor>> {
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

/// Whether `t` has exactly the dtype and shape of `ty`; an unknown dimension (only the rows
/// axis of a block plan has one) takes any size.
fn is_exactly(ty: &TensorType, t: &Tensor) -> bool {
    ty.dtype == t.dtype() && ty.shape.admits(t.shape())
}

/// Traces the body of declaration `item` for arguments shaped like `args` with the same
/// evaluator in tracing mode, taking the given branches at its value-dependent conditions:
/// a complete path, or one ending at the first condition past them. `None` when anything
/// would make the traced ops differ from an evaluator run (any error, a poisoned or
/// non-tensor result, a nested host call).
fn trace_path(
    shared: &Arc<Shared>,
    item: usize,
    types: &[TensorType],
    branches: Vec<bool>,
    max_ops: usize,
) -> Option<Path> {
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
        guards: Some(Guards {
            decisions: branches,
            met: Vec::new(),
            iterations: 0,
            max_ops,
        }),
    };
    let traced = ev.inline_decl(decl, params, decl.name.span);
    let guards = ev.guards.take()?.met;
    let value = match traced {
        Ok(v) => Some(v),
        Err(Abort::Undecided) => None,
        Err(Abort::Error(_)) => return None,
    };
    let results = match value {
        Some(value) => {
            let mut flat = Vec::new();
            if !ev.flatten_tensors(value, Span::default(), &mut flat).ok()? || flat.is_empty() {
                return None;
            }
            // A result known at trace time (`return 1` in a branch) is a constant of the
            // path: the evaluator returns that very tensor on every call taking it.
            Some(
                flat.into_iter()
                    .map(|t| ev.materialize(t, decl.name.span))
                    .collect::<Vec<_>>(),
            )
        }
        None => None,
    };
    let mut func = ev.frame.func.take()?;
    if func.ops.len() > max_ops
        || func
            .ops
            .iter()
            .any(|op| matches!(op.kind, OpKind::Eager(_)))
    {
        return None;
    }
    let complete = results.is_some();
    func.results = results.unwrap_or_default();
    Some(Path::new(func, guards, complete))
}

/// Whether an eager body is pure code over its parameters that tracing follows exactly:
/// `let`s, assignments, `if`/`else`, `while`, `for` over a range and `return`s of literals,
/// locals, operators, indexing and slicing, tensor fields (`x.shape`), value-independent
/// builtins (`crate::builtins::Kind::ValueIndependent`, called or as methods), `item`
/// (a host number, `crate::host_num`) and calls of traced `fn`s whose bodies are such code
/// too, over parameters, locals and top-level `let`s. Anything else (`print`, lambdas,
/// other eager functions) always runs on the evaluator.
fn plannable_decl(shared: &Shared, decl: &ast::FnDecl) -> bool {
    plannable_fn(shared, decl, MAX_PLANNED_CALL_DEPTH)
}

/// How deep calls of user functions from a planned body are followed when checking it
/// (deeper, or recursive, bodies run on the evaluator).
const MAX_PLANNED_CALL_DEPTH: usize = 8;

fn plannable_fn(shared: &Shared, decl: &ast::FnDecl, calls_left: usize) -> bool {
    let FnBody::Block(body) = &decl.body else {
        return false;
    };
    let locals: HashSet<&str> = decl.params.iter().map(|p| p.name.name.as_str()).collect();
    let check = Check { shared, calls_left };
    check.block(locals, &body.stmts)
}

/// The plannability check of one function body: the program, and how many more calls
/// deep it may follow.
struct Check<'s> {
    shared: &'s Shared,
    calls_left: usize,
}

impl Check<'_> {
    /// Whether every statement of a block is plannable, with `locals` the names in scope.
    fn block<'a>(&self, mut locals: HashSet<&'a str>, stmts: &'a [ast::Stmt]) -> bool {
        stmts.iter().all(|s| match &s.kind {
            StmtKind::Let { name, value } => {
                let ok = self.expr(&locals, value);
                locals.insert(name.name.as_str());
                ok
            }
            StmtKind::Assign { target, value } => {
                locals.contains(target.name.as_str()) && self.expr(&locals, value)
            }
            StmtKind::Return(Some(e)) => self.expr(&locals, e),
            StmtKind::If {
                cond,
                then_block,
                else_block,
            } => {
                self.expr(&locals, cond)
                    && self.block(locals.clone(), &then_block.stmts)
                    && else_block
                        .as_ref()
                        .is_none_or(|b| self.block(locals.clone(), &b.stmts))
            }
            StmtKind::While { cond, body } => {
                self.expr(&locals, cond) && self.block(locals.clone(), &body.stmts)
            }
            StmtKind::For { var, iter, body } => {
                let bounds: Vec<&ast::Expr> = match &iter.kind {
                    ExprKind::Range { start, end } => vec![start, end],
                    ExprKind::Call { callee, args }
                        if self.is_builtin(&locals, callee, "range")
                            && (1..=2).contains(&args.len()) =>
                    {
                        args.iter().map(|a| &a.value).collect()
                    }
                    _ => return false,
                };
                let mut inner = locals.clone();
                inner.insert(var.name.as_str());
                bounds.iter().all(|b| self.expr(&locals, b)) && self.block(inner, &body.stmts)
            }
            _ => false,
        })
    }

    /// Whether `callee` is the builtin `name`, not hidden by a local or top-level name
    /// (the evaluator's shadowing rule).
    fn is_builtin(&self, locals: &HashSet<&str>, callee: &ast::Expr, name: &str) -> bool {
        matches!(&callee.kind, ExprKind::Name(n) if n == name && !locals.contains(n.as_str()) && !self.shared.items.contains_key(n))
    }

    fn args(&self, locals: &HashSet<&str>, args: &[ast::Arg]) -> bool {
        args.iter().all(|a| self.expr(locals, &a.value))
    }

    fn expr(&self, locals: &HashSet<&str>, e: &ast::Expr) -> bool {
        let value_independent = |name: &str| {
            crate::builtins::lookup(name)
                .is_some_and(|b| b.kind == crate::builtins::Kind::ValueIndependent)
        };
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Float(..) | ExprKind::Bool(_) | ExprKind::Str(_) => true,
            // A dtype name is a constant unless a local or top-level name hides it; a
            // top-level `let` is a value computed at compile time, a constant of the plan.
            ExprKind::Name(n) => {
                locals.contains(n.as_str())
                    || match self.shared.items.get(n) {
                        Some(&item) => {
                            matches!(self.shared.ast.items[item].kind, ItemKind::Let { .. })
                        }
                        None => DType::from_name(n).is_some(),
                    }
            }
            ExprKind::Tuple(xs) | ExprKind::List(xs) => xs.iter().all(|x| self.expr(locals, x)),
            ExprKind::Unary { expr, .. } | ExprKind::Field { receiver: expr, .. } => {
                self.expr(locals, expr)
            }
            ExprKind::Binary { lhs, rhs, .. } => self.expr(locals, lhs) && self.expr(locals, rhs),
            ExprKind::Index { base, indices } => {
                self.expr(locals, base)
                    && indices.iter().all(|i| match i {
                        ast::IndexItem::Expr(x) => self.expr(locals, x),
                        ast::IndexItem::Slice {
                            start, stop, step, ..
                        } => [start, stop, step]
                            .into_iter()
                            .flatten()
                            .all(|x| self.expr(locals, x)),
                        ast::IndexItem::Ellipsis(_) => true,
                    })
            }
            // `.numpy()` is the identity on host arrays (the plan traces it so), `item` a
            // host number (`crate::host_num`); other methods are builtins with the
            // receiver first.
            ExprKind::Method {
                receiver,
                name,
                args,
            } => {
                (matches!(name.name.as_str(), "numpy" | "item") && args.is_empty()
                    || value_independent(&name.name))
                    && self.expr(locals, receiver)
                    && self.args(locals, args)
            }
            ExprKind::Call { callee, args } => {
                let ExprKind::Name(name) = &callee.kind else {
                    return false;
                };
                if locals.contains(name.as_str()) {
                    return false;
                }
                if let Some(&item) = self.shared.items.get(name) {
                    // A traced `fn` is inlined by the evaluator in both modes.
                    let ItemKind::Fn(decl) = &self.shared.ast.items[item].kind else {
                        return false;
                    };
                    return decl.kind == ast::FnKind::Traced
                        && self.calls_left > 0
                        && plannable_fn(self.shared, decl, self.calls_left - 1)
                        && self.args(locals, args);
                }
                (matches!(name.as_str(), "numpy" | "item") && args.len() == 1
                    || value_independent(name))
                    && self.args(locals, args)
            }
            _ => false,
        }
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
            match &it.kind {
                ItemKind::Fn(d) => {
                    items.insert(d.name.name.clone(), i);
                    if d.name.name == "f" {
                        item = Some(i);
                    }
                }
                ItemKind::Let { name, .. } => {
                    items.insert(name.name.clone(), i);
                }
                _ => {}
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
            plan_eager: true,
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
    /// compares with per-row calls of a non-planning one, stacked; returns how many paths
    /// were vectorized over rows.
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
        let want = match failed {
            Some(d) => shown(Err(d)),
            None => {
                let stacked: Vec<Tensor> = (0..per_row[0].len())
                    .map(|k| {
                        let parts: Vec<Tensor> = per_row.iter().map(|r| r[k].clone()).collect();
                        pipec_tensor::kernels::stack(&parts, 0).expect("rows stack")
                    })
                    .collect();
                shown(Ok(stacked))
            }
        };
        // Twice: a body that branches on values traces its paths on the first block (row
        // by row) and runs them over rows on the second.
        for _ in 0..2 {
            assert_eq!(shown(planned.call_rows(args)), want, "{src}");
        }
        vectorized_paths(&planned)
    }

    /// How many paths of an instance's plans were vectorized over rows.
    fn vectorized_paths(run: &EagerRun) -> usize {
        run.plans
            .iter()
            .filter_map(|(_, p)| p.as_ref())
            .flat_map(|p| &p.paths)
            .filter(|b| b.rows.get().is_some_and(Option::is_some))
            .count()
    }

    /// How many paths of the (first) plan were traced, and how many of them are complete.
    fn traced_paths(run: &EagerRun) -> (usize, usize) {
        let plan = run.plans[0].1.as_ref().expect("a plan");
        let complete = plan
            .paths
            .iter()
            .filter(|b| b.path.as_ref().is_some_and(|p| p.complete))
            .count();
        (plan.paths.len(), complete)
    }

    fn i64s(v: Vec<i64>) -> Tensor {
        Tensor::from_vec(&[v.len()], v).expect("shape fits")
    }

    /// Calls of `src` on each scalar of `xs` through a planning and a non-planning
    /// instance agree; and a block of all of them (twice: the first block traces paths
    /// row by row, the second runs them over rows) equals the rows one by one. Returns
    /// the planning instance.
    fn same_on_scalars(src: &str, xs: &[i64]) -> EagerRun {
        let calls: Vec<Vec<Tensor>> = xs
            .iter()
            .map(|&x| vec![Tensor::from_vec(&[], vec![x]).expect("a scalar")])
            .collect();
        let mut planned = instance(src, true);
        let mut plain = instance(src, false);
        for args in &calls {
            assert_eq!(shown(planned.call(args)), shown(plain.call(args)), "{src}");
        }
        same_rows(src, &[i64s(xs.to_vec())]);
        planned
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
    fn only_pure_bodies_are_planned() {
        let planned = [
            "eager fn f(x) -> f32[?] {\n    return sort(x)\n}\n",
            "eager fn f(x) -> f32[?] {\n    let y = exp(x)\n    return y / sum(y)\n}\n",
            "eager fn f(x) -> f32[?] {\n    return sort(x.numpy())\n}\n",
            "eager fn f(x) -> f32[?] {\n    return sort(numpy(x)) * 2.0\n}\n",
            "eager fn f(x) -> f32[?] {\n    return x[0:2]\n}\n",
            "fn sort(x) {\n    return x\n}\neager fn f(x) -> f32[?] {\n    return sort(x)\n}\n",
            "eager fn f(x) -> f32[?] {\n    if x.shape[0] > 2 && x[0] > x[-1] {\n        return x.sum(axis: 0, keepdims: true)\n    }\n    return x[::-1]\n}\n",
            "eager fn f(x) -> f32[?] {\n    while sum(x) > 0.0 {\n        x = x - 1.0\n    }\n    return x\n}\n",
            "eager fn f(x) -> f32[?] {\n    for i in 0..3 {\n        x = x * 2.0\n    }\n    return x\n}\n",
            "eager fn f(x) -> f32[?] {\n    if sum(x) > 0.0 {\n        return x\n    }\n    return -x\n}\n",
            "eager fn f(x) -> f32[?] {\n    let y = x\n    y = sort(y)\n    return y\n}\n",
            "let k = 2.0\neager fn f(x) -> f32[?] {\n    return x * k\n}\n",
            "eager fn f(x) -> f32[?] {\n    if item(x[0]) > 0 {\n        return x\n    }\n    return -x\n}\n",
            "eager fn f(x) -> f32[?] {\n    if x.item() > 0 {\n        return x\n    }\n    return -x\n}\n",
            "eager fn f(x) -> f32[?] {\n    let y = x\n    if max(x) > 1.0 {\n        y = x / max(x)\n    } else {\n        let z = -x\n        y = z\n    }\n    return y\n}\n",
        ];
        for src in planned {
            assert!(instance(src, true).plannable, "{src}");
        }
        let not_planned = [
            "eager fn f(x) -> f32[?] {\n    print(x)\n    return x\n}\n",
            "eager fn f(x) -> f32[?] {\n    return unique(x)\n}\n",
            "eager fn f(sort) -> f32[?] {\n    return sort(sort)\n}\n",
            // A call of another eager function, of a lambda, of a recursive function.
            "eager fn g(x) -> f32[?] {\n    return x\n}\neager fn f(x) -> f32[?] {\n    return g(x)\n}\n",
            "eager fn f(x) -> f32[?] {\n    let g = |y| y * 2.0\n    return g(x)\n}\n",
            "fn g(x) {\n    return g(x)\n}\neager fn f(x) -> f32[?] {\n    return g(x)\n}\n",
            "eager fn f(x) -> f32[?] {\n    for i in x {\n        x = x - 1.0\n    }\n    return x\n}\n",
            // A name declared inside a branch is not in scope after it.
            "eager fn f(x) -> f32[?] {\n    if true {\n        let y = x\n    }\n    return y\n}\n",
        ];
        for src in not_planned {
            assert!(!instance(src, true).plannable, "{src}");
        }
    }

    #[test]
    fn value_dependent_branches_are_planned_path_by_path() {
        let src = "eager fn f(x) -> i64[] {\n    if x % 3 == 0 {\n        return x * 2\n    } else if x % 3 == 1 {\n        return -x\n    }\n    return x + 100\n}\n";
        let xs: Vec<i64> = (-20..40).collect();
        let run = same_on_scalars(src, &xs);
        // The root (open at the first condition), `[true]`, `[false]` (open at the
        // second), `[false, true]` and `[false, false]`.
        assert_eq!(traced_paths(&run), (5, 3));
    }

    #[test]
    fn branches_over_rows_place_every_row_in_its_path() {
        let src = "eager fn f(x) -> i64[] {\n    if x % 3 == 0 {\n        return x * 2\n    }\n    return -x\n}\n";
        let mut planned = instance(src, true);
        let mut plain = instance(src, false);
        let block = i64s((0..50).map(|i| (i * 7919) % 97 - 40).collect());
        let per_row: Vec<Tensor> = (0..50)
            .map(|i| plain.call(&[block.index_axis0(i)]).expect("no error")[0].clone())
            .collect();
        let want = pipec_tensor::kernels::stack(&per_row, 0).expect("rows stack");
        // The first block traces the paths row by row, the second runs them over rows.
        for _ in 0..2 {
            let got = planned.call_rows(std::slice::from_ref(&block));
            assert_eq!(shown(got), shown(Ok(vec![want.clone()])));
        }
        assert_eq!(vectorized_paths(&planned), 2);
    }

    #[test]
    fn a_branch_that_fails_on_rows_of_another_path_still_runs_over_rows() {
        // Over all rows, `100 // (x % 7)` divides by zero; the rows that take it do not.
        let src = "eager fn f(x) -> i64[] {\n    if x % 7 != 0 {\n        return 100 // (x % 7)\n    }\n    return x\n}\n";
        let xs: Vec<i64> = (0..60).collect();
        let run = same_on_scalars(src, &xs);
        assert_eq!(traced_paths(&run), (3, 2));
        let block = [i64s(xs)];
        let mut planned = instance(src, true);
        for _ in 0..2 {
            planned.call_rows(&block).expect("no row fails");
        }
        assert_eq!(vectorized_paths(&planned), 2);
    }

    #[test]
    fn errors_on_a_taken_branch_are_the_evaluators() {
        let src = "eager fn f(x) -> i64[] {\n    if x > 10 {\n        return 100 // (x - 15)\n    }\n    return x\n}\n";
        same_on_scalars(src, &[1, 12, 15, 3, 20]);
        // A condition of more than one value: the evaluator's message.
        let ambiguous = "eager fn f(x) -> i32[?] {\n    if x > 0 {\n        return x\n    }\n    return -x\n}\n";
        same(
            ambiguous,
            &[vec![i32s(&[2], vec![1, 2])], vec![i32s(&[1], vec![-1])]],
        );
    }

    #[test]
    fn indexing_fields_methods_and_helpers_are_planned() {
        let src = "fn clamp(v, hi) {\n    if max(v) > hi {\n        return minimum(v, hi)\n    }\n    return v\n}\neager fn f(x) -> i32[?] {\n    let n = x.shape[0]\n    if x[0] > x[n - 1] {\n        return clamp(x[::-1], 5)\n    }\n    return (x * 2 + x.sum())[::-1]\n}\n";
        assert!(instance(src, true).plannable);
        let calls: Vec<Vec<Tensor>> = [
            vec![3, 1, 9, 2],
            vec![1, 2, 3],
            vec![8, 7, 6, 5, 4],
            vec![0, 0],
            vec![2, 9, 1],
        ]
        .into_iter()
        .map(|v| vec![i32s(&[v.len()], v)])
        .collect();
        assert_eq!(same(src, &calls), 4);
        let rows = i32s(
            &[6, 3],
            vec![3, 1, 2, 1, 2, 3, 9, 9, 1, 0, 5, 0, 7, 7, 7, 2, 2, 8],
        );
        assert_eq!(same_rows(src, &[rows]), 3);
    }

    #[test]
    fn loops_are_unrolled_into_paths() {
        // A loop on a value: one path per trip count.
        let halving = "eager fn f(x) -> i64[] {\n    let n = x * 0\n    while x > 1 {\n        x = x // 2\n        n = n + 1\n    }\n    return n * 100 + x\n}\n";
        let xs: Vec<i64> = (-3..60).collect();
        let run = same_on_scalars(halving, &xs);
        // Trip counts 0 to 5: six complete paths, and the open ones between them.
        assert_eq!(traced_paths(&run).1, 6);
        // A loop over a constant range: one straight path, vectorized over rows.
        let sum = "eager fn f(x) -> i64[] {\n    let s = x * 0\n    for i in range(4) {\n        s = s + x * i\n    }\n    return s\n}\n";
        let run = same_on_scalars(sum, &xs);
        assert_eq!(traced_paths(&run), (1, 1));
        assert_eq!(same_rows(sum, &[i64s(xs)]), 1);
    }

    #[test]
    fn loops_too_long_to_plan_run_on_the_evaluator() {
        let src = "eager fn f(x) -> i64[] {\n    let s = x\n    for i in 0..20000 {\n        s = s + 1\n    }\n    return s\n}\n";
        let mut planned = instance(src, true);
        let mut plain = instance(src, false);
        let args = [Tensor::from_vec(&[], vec![5i64]).expect("a scalar")];
        assert_eq!(shown(planned.call(&args)), shown(plain.call(&args)));
        assert!(planned.plans[0].1.is_none());
        // Fewer iterations, but more ops than a plan may hold.
        let src = "eager fn f(x) -> i64[] {\n    let s = x\n    for i in 0..3000 {\n        s = s + x * i\n    }\n    return s\n}\n";
        let mut planned = instance(src, true);
        let mut plain = instance(src, false);
        assert_eq!(shown(planned.call(&args)), shown(plain.call(&args)));
        assert!(planned.plans[0].1.is_none());
    }

    #[test]
    fn paths_beyond_the_limit_run_on_the_evaluator() {
        // One path per trip count, 0 to 99: more than `MAX_PATHS`.
        let src = "eager fn f(x) -> i64[] {\n    let n = x * 0\n    while x > 0 {\n        x = x - 1\n        n = n + 3\n    }\n    return n\n}\n";
        let xs: Vec<i64> = (0..100).collect();
        let run = same_on_scalars(src, &xs);
        assert_eq!(traced_paths(&run).0, MAX_PATHS);
    }

    #[test]
    fn signatures_beyond_the_cache_still_run() {
        let src = "eager fn f(x) -> i32[?] {\n    return sort(x)\n}\n";
        let calls: Vec<Vec<Tensor>> = (1..=MAX_PLANS + 3)
            .map(|n| vec![i32s(&[n], (0..n as i32).rev().collect())])
            .collect();
        assert_eq!(same(src, &calls), MAX_PLANS);
    }

    /// Integers around every bound the host-number guards test, and small ones.
    fn edge_i64s() -> Vec<i64> {
        let mut xs = vec![i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1];
        for b in [(1i64 << 62) - 1, (1 << 31) - 1, 3_037_000_499, i64::MAX / 3] {
            xs.extend([b - 1, b, b + 1, -b - 1, -b, 1 - b]);
        }
        xs.extend(-9..=9);
        xs
    }

    #[test]
    fn host_numbers_from_item_are_planned_exactly() {
        let bodies = [
            "    if item(x) > 0 {\n        return x\n    }\n    return -x\n",
            "    if x.item() {\n        return x\n    }\n    return x * 2\n",
            "    let n = item(x)\n    if n + 1 > 0 && n - 3 < 100 {\n        return x\n    }\n    return -x\n",
            "    let n = item(x) * 3\n    if n % 2 == 0 {\n        return x // 2\n    }\n    return x\n",
            "    let n = item(x)\n    if -n > 5 {\n        return x\n    }\n    return x + 1\n",
            "    let n = item(x)\n    if n // -2 == 3 || n // 7 < -1 {\n        return x\n    }\n    return x - 1\n",
            "    let n = item(x)\n    if n / 4 > 1.5 {\n        return x\n    }\n    return x - 1\n",
            "    let n = item(x)\n    if n * n > 1000 {\n        return x\n    }\n    return x * 0\n",
            "    if item(x) * 3 > 0 || -2 * item(x) > 4 {\n        return x\n    }\n    return -x\n",
            "    if item(x) // -1 > 0 {\n        return x * 0\n    }\n    return x * 0 + 1\n",
            "    if item(x) * 2.5 > 10.0 {\n        return cast(1, i64)\n    }\n    return cast(item(x) + 2, i64)\n",
            // A loop on a host number, counted by a trace-time number (a constant per path).
            "    let n = item(x) % 50\n    let steps = 0\n    while n > 1 {\n        if n % 2 == 0 {\n            n = n // 2\n        } else {\n            n = 3 * n + 1\n        }\n        steps = steps + 1\n    }\n    return cast(steps, i64)\n",
            // A host number meeting a tensor takes its dtype.
            "    return x * item(x)\n",
            "    return x - item(x) // 2 + x * cast(item(x) % 5 == 0, i64)\n",
            // Not planned: indexing.
            "    let v = [10, 20, 30]\n    return cast(v[item(x) % 3], i64)\n",
        ];
        let xs = edge_i64s();
        for body in bodies {
            let src = format!("eager fn f(x) -> i64[] {{\n{body}}}\n");
            same_on_scalars(&src, &xs);
        }
        // Planned, and the blocks' rows run vectorized (the paths with constant results
        // too).
        for body in [bodies[0], bodies[2], bodies[8]] {
            let src = format!("eager fn f(x) -> i64[] {{\n{body}}}\n");
            let run = same_on_scalars(&src, &xs);
            assert!(run.plans.iter().any(|(_, p)| p.is_some()), "{src}");
            let mut planned = instance(&src, true);
            let block = [i64s(xs.clone())];
            for _ in 0..2 {
                planned.call_rows(&block).expect("runs");
            }
            assert!(vectorized_paths(&planned) >= 2, "{src}");
        }
    }

    #[test]
    fn operands_out_of_the_planned_range_run_on_the_evaluator() {
        let src = "eager fn f(x) -> i64[] {\n    if item(x) + 1 > 0 {\n        return x\n    }\n    return -x\n}\n";
        let run = same_on_scalars(src, &[i64::MAX, 5, -5, (1 << 62) - 1, 1 << 62]);
        // Two paths by the comparison, one (untraceable) past the range guard.
        let plan = run.plans[0].1.as_ref().expect("a plan");
        assert!(plan.paths.iter().any(|b| b.path.is_none()));
        assert_eq!(traced_paths(&run).1, 2);
    }

    #[test]
    fn float_host_numbers_are_planned_exactly() {
        let bodies = [
            "    let v = item(x)\n    if v * 2.0 > 1.0e30 {\n        return x\n    }\n    if v / 3.0 != v {\n        return -x\n    }\n    return x * 2.0\n",
            "    if item(x) {\n        return x\n    }\n    return x + 1.0\n",
            "    let v = item(x) - 1\n    if v < 0 || v >= 0.5 {\n        return x\n    }\n    return x - 1.0\n",
            "    if item(x) / item(x) == 1.0 {\n        return x\n    }\n    return x + 1.0\n",
            // `//` of floats is not planned (numpy's divmod is not floor(x / y)).
            "    if item(x) // 0.1 > 3.0 {\n        return x\n    }\n    return x + 1.0\n",
        ];
        let xs = [
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            0.5,
            0.3,
            1e30,
            -1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            3.0e38,
        ];
        for body in bodies {
            let src = format!("eager fn f(x) -> f32[] {{\n{body}}}\n");
            let calls: Vec<Vec<Tensor>> = xs.iter().map(|&x| vec![f32s(&[], vec![x])]).collect();
            same(&src, &calls);
            same_rows(&src, &[f32s(&[xs.len()], xs.to_vec())]);
        }
    }

    #[test]
    fn host_numbers_take_the_dtype_of_the_tensor_they_meet() {
        let ints = [
            i32::MIN,
            -300,
            -129,
            -1,
            0,
            1,
            127,
            128,
            255,
            256,
            70_000,
            i32::MAX,
        ];
        for (body, out) in [
            ("    return x * item(x[0]) + item(x[1])\n", "i32[3]"),
            ("    return cast(x, u8) + item(x[2])\n", "u8[3]"),
            ("    return cast(x, i8) * item(x[1] // 2)\n", "i8[3]"),
            (
                "    return cast(x, f32) * item(x[0]) - item(x[1]) / 7\n",
                "f32[3]",
            ),
            ("    return cast(x, f64) + item(x[1]) * 0.5\n", "f64[3]"),
            ("    return cast(x, u64) + item(x[0])\n", "u64[3]"),
        ] {
            planned_on_windows(&format!("eager fn f(x) -> {out} {{\n{body}}}\n"), &ints);
        }
        let floats = [
            0.5f32,
            -1.5,
            3.0e38,
            -3.0e38,
            f32::MAX,
            f32::INFINITY,
            f32::NAN,
            1e-30,
            7.0,
        ];
        for body in [
            "    return x * item(x[0] * 2.0) + item(x[1])\n",
            "    let v = item(x[0]) * 1.0e10\n    return x - v\n",
        ] {
            planned_on_windows(&format!("eager fn f(x) -> f32[3] {{\n{body}}}\n"), &floats);
        }
    }

    /// `src` called on every window of three of `values` (a planned signature, agreeing
    /// with the evaluator) and on all the windows as one block's rows.
    fn planned_on_windows<T: pipec_tensor::TensorElem + Copy>(src: &str, values: &[T]) {
        let calls: Vec<Vec<Tensor>> = values
            .windows(3)
            .map(|w| vec![Tensor::from_vec(&[3], w.to_vec()).expect("shape fits")])
            .collect();
        assert_eq!(same(src, &calls), 1, "planned: {src}");
        let rows: Vec<T> = values.windows(3).flatten().copied().collect();
        let block = Tensor::from_vec(&[rows.len() / 3, 3], rows).expect("shape fits");
        same_rows(src, &[block]);
    }
}
