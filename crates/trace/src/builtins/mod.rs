//! Builtin functions: one registry of every builtin (its name, parameters, kind and
//! lowering function), argument binding, and the op-emitting core shared by all families.
//!
//! The op tables' elementwise and reduction ops are builtins by their call names without an
//! entry here: [`table_builtins`] derives them from `UnaryOp::ALL`, `BinaryOp::ALL` and
//! `ReduceOp::ALL`. Every other builtin is one [`REGISTRY`] entry plus its lowering function
//! in the module of its family.

use crate::eval::{Eval, Res, tval_type};
use crate::infer;
use crate::value::{FuncVal, Num, TVal, Value};
use creation::check_elements;
use pipec_diag::{Code, Diagnostic, Span, did_you_mean};
use pipec_ir::{OpKind, TensorType};
use pipec_syntax::ast;
use pipec_tensor::kernels;
use pipec_tensor::ops::{BinaryOp, ReduceOp, UnaryOp};
use pipec_tensor::{DType, Tensor};

/// Unwraps an argument helper's result in a lowering function: `None` means the helper
/// already reported an error (or met a poisoned value), so the call is poisoned.
macro_rules! some {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Ok(Value::Poison),
        }
    };
}

/// The bound argument `$i` as a tensor operand (weak numbers become default-dtype scalars).
macro_rules! tensor {
    ($ev:expr, $a:expr, $i:expr) => {{
        let (v, s) = req(&$a, $i);
        some!($ev.tensor_operand(v, s)?)
    }};
}

mod compute;
mod creation;
mod elementwise;
mod host_only;
mod image;
mod indexing;
mod random;
mod records;
mod shape;
mod sources;
mod strings;

/// Tags a word of a random op's site as a call site it was inlined through
/// (`CALL_SITE | line << 32 | column`).
pub(crate) const CALL_SITE: u64 = 1 << 62;
/// Tags a word of a random op's site as the iteration (from 0) of an unrolled loop.
pub(crate) const LOOP_SITE: u64 = 2 << 62;

pub(crate) use host_only::eager_fix_help;

/// What a builtin is, for the questions callers ask about it (SPEC §5, eager plans).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The result depends only on the dtypes and shapes of its tensor operands (never on
    /// values) and it has no side effects: tracing it once per signature gives the ops an
    /// evaluator run performs (what eager plans rely on).
    ValueIndependent,
    /// Needs concrete values: an error inside traced functions (SPEC §5).
    HostOnly,
    /// Makes a dataset.
    Source,
    /// Anything else: trace-time constructors and queries, `ensure_shape`, `py_function`.
    Other,
}

/// Positional arguments after evaluation.
pub(crate) type Pos = Vec<(Value, Span)>;
/// Named arguments after evaluation.
pub(crate) type Named = Vec<(ast::Ident, Value, Span)>;
/// Arguments bound to a parameter list: one slot per parameter, `None` where not given.
pub(crate) type BoundArgs = Vec<Option<(Value, Span)>>;

/// A builtin call whose arguments are bound to its registry entry's parameters.
pub(crate) struct Call {
    /// The builtin's name (one lowering function may serve several names).
    pub(crate) name: &'static str,
    /// One slot per parameter; the first `required` are always `Some`.
    pub(crate) args: BoundArgs,
    /// The whole call.
    pub(crate) span: Span,
}

/// A bound argument the registry marks required: `bind_args` poisons a call that lacks
/// one, so a bound call always has it (the one place that relies on that).
pub(crate) fn req(a: &BoundArgs, i: usize) -> (Value, Span) {
    a[i].clone().expect("bind_args checked required arguments")
}

/// How a builtin call is lowered (traced into ops, or evaluated at trace time).
#[derive(Clone, Copy)]
pub(crate) enum Lower {
    /// The arguments are bound to the entry's parameters first: the common case.
    Bound(fn(&mut Eval<'_>, Call) -> Res<Value>),
    /// Variadic builtins (`print`, `zip`) take the raw arguments.
    Raw(fn(&mut Eval<'_>, &'static str, Pos, Named, Span) -> Res<Value>),
}

/// One builtin function.
#[derive(Clone, Copy)]
pub(crate) struct Builtin {
    /// Its name in source.
    pub(crate) name: &'static str,
    /// Its parameter names, in positional order (also the names of named arguments).
    pub(crate) params: &'static [&'static str],
    /// How many leading parameters are required.
    pub(crate) required: usize,
    /// What kind of builtin it is.
    pub(crate) kind: Kind,
    /// Whether `x.name(...)` calls it with the receiver first.
    pub(crate) method: bool,
    /// How a call is lowered.
    pub(crate) lower: Lower,
}

impl Builtin {
    const fn new(
        name: &'static str,
        params: &'static [&'static str],
        required: usize,
        kind: Kind,
        lower: fn(&mut Eval<'_>, Call) -> Res<Value>,
    ) -> Builtin {
        Builtin {
            name,
            params,
            required,
            kind,
            method: true,
            lower: Lower::Bound(lower),
        }
    }

    /// A variadic builtin: it takes the raw arguments (so `params` is empty).
    const fn raw(
        name: &'static str,
        kind: Kind,
        lower: fn(&mut Eval<'_>, &'static str, Pos, Named, Span) -> Res<Value>,
    ) -> Builtin {
        Builtin {
            name,
            params: &[],
            required: 0,
            kind,
            method: true,
            lower: Lower::Raw(lower),
        }
    }

    /// Not callable as a method (sources and `py_function` make no sense with a receiver).
    const fn no_method(self) -> Builtin {
        Builtin {
            method: false,
            ..self
        }
    }
}

use Kind::{HostOnly, Other, Source, ValueIndependent};

/// The most dims a tensor may have (numpy's `NPY_MAXDIMS`).
const MAX_RANK: usize = 64;

/// Every builtin that is not an op-table op (those are [`table_builtins`]).
const REGISTRY: &[Builtin] = &[
    // Elementwise.
    Builtin::new(
        "cast",
        &["x", "dtype"],
        2,
        ValueIndependent,
        elementwise::cast,
    ),
    Builtin::new(
        "where",
        &["cond", "x", "y"],
        3,
        ValueIndependent,
        elementwise::where_,
    ),
    Builtin::new(
        "clip",
        &["x", "lo", "hi"],
        3,
        ValueIndependent,
        elementwise::clip,
    ),
    // Shape.
    Builtin::new(
        "reshape",
        &["x", "shape"],
        2,
        ValueIndependent,
        shape::reshape,
    ),
    Builtin::new(
        "transpose",
        &["x", "perm"],
        1,
        ValueIndependent,
        shape::transpose,
    ),
    Builtin::new(
        "expand_dims",
        &["x", "axis"],
        2,
        ValueIndependent,
        shape::expand_dims,
    ),
    Builtin::new(
        "squeeze",
        &["x", "axis"],
        1,
        ValueIndependent,
        shape::squeeze,
    ),
    Builtin::new(
        "concat",
        &["values", "axis"],
        1,
        ValueIndependent,
        shape::concat_stack,
    ),
    Builtin::new(
        "stack",
        &["values", "axis"],
        1,
        ValueIndependent,
        shape::concat_stack,
    ),
    Builtin::new(
        "broadcast_to",
        &["x", "shape"],
        2,
        ValueIndependent,
        shape::broadcast_to,
    ),
    Builtin::new("tile", &["x", "reps"], 2, ValueIndependent, shape::tile),
    Builtin::new(
        "reverse",
        &["x", "axis"],
        2,
        ValueIndependent,
        shape::reverse,
    ),
    // Compute.
    Builtin::new("matmul", &["a", "b"], 2, ValueIndependent, compute::matmul),
    Builtin::new(
        "one_hot",
        &["indices", "depth", "dtype"],
        2,
        ValueIndependent,
        compute::one_hot,
    ),
    Builtin::new("sort", &["x", "axis"], 1, ValueIndependent, compute::sort),
    // Creation (evaluated at trace time).
    Builtin::new("zeros", &["shape", "dtype"], 1, Other, creation::zeros_ones),
    Builtin::new("ones", &["shape", "dtype"], 1, Other, creation::zeros_ones),
    Builtin::new(
        "fill",
        &["shape", "value", "dtype"],
        2,
        Other,
        creation::fill,
    ),
    Builtin::new("arange", &["n", "dtype"], 1, Other, creation::arange),
    Builtin::new("len", &["x"], 1, Other, shape::len),
    Builtin::new("shape", &["x"], 1, ValueIndependent, shape::shape),
    // Stateless random ops (`seed:` is checked by the lowering: E0140 when missing).
    Builtin::new(
        "random_uniform",
        &["shape", "lo", "hi", "dtype", "seed"],
        1,
        Other,
        random::uniform,
    )
    .no_method(),
    Builtin::new(
        "random_normal",
        &["shape", "mean", "std", "dtype", "seed"],
        1,
        Other,
        random::normal,
    )
    .no_method(),
    Builtin::new(
        "random_crop",
        &["image", "size", "seed"],
        2,
        Other,
        random::image,
    ),
    Builtin::new(
        "random_flip_left_right",
        &["image", "seed"],
        1,
        Other,
        random::image,
    ),
    Builtin::new(
        "random_flip_up_down",
        &["image", "seed"],
        1,
        Other,
        random::image,
    ),
    Builtin::new(
        "random_brightness",
        &["image", "max_delta", "seed"],
        2,
        Other,
        random::image,
    ),
    // Host-only.
    Builtin::new("numpy", &["x"], 1, HostOnly, host_only::numpy),
    Builtin::new("item", &["x"], 1, HostOnly, host_only::item),
    Builtin::raw("print", HostOnly, host_only::print),
    Builtin::new("unique", &["x"], 1, HostOnly, host_only::unique_nonzero),
    Builtin::new("nonzero", &["x"], 1, HostOnly, host_only::unique_nonzero),
    Builtin::new(
        "boolean_mask",
        &["x", "mask"],
        2,
        HostOnly,
        host_only::boolean_mask,
    ),
    Builtin::new(
        "ensure_shape",
        &["x", "shape"],
        2,
        Other,
        shape::ensure_shape,
    ),
    Builtin::new(
        "py_function",
        &["func", "inp", "Tout"],
        3,
        Other,
        host_only::py_function,
    )
    .no_method(),
    // Strings (SPEC §13).
    Builtin::new("length", &["s"], 1, ValueIndependent, strings::unary),
    Builtin::new("lower", &["s"], 1, ValueIndependent, strings::unary),
    Builtin::new("upper", &["s"], 1, ValueIndependent, strings::unary),
    Builtin::new("strip", &["s"], 1, ValueIndependent, strings::unary),
    Builtin::new("basename", &["path"], 1, ValueIndependent, strings::unary),
    Builtin::new("dirname", &["path"], 1, ValueIndependent, strings::unary),
    Builtin::new("as_string", &["x"], 1, ValueIndependent, strings::unary),
    Builtin::new(
        "substr",
        &["s", "pos", "len"],
        3,
        ValueIndependent,
        strings::substr,
    ),
    Builtin::new("split", &["s", "sep"], 1, ValueIndependent, strings::split),
    Builtin::new(
        "join",
        &["parts", "sep"],
        1,
        ValueIndependent,
        strings::join,
    ),
    Builtin::new(
        "regex_full_match",
        &["s", "pattern"],
        2,
        ValueIndependent,
        strings::regex,
    ),
    Builtin::new(
        "regex_replace",
        &["s", "pattern", "rewrite"],
        3,
        ValueIndependent,
        strings::regex,
    ),
    Builtin::new(
        "string_to_number",
        &["s", "dtype"],
        1,
        ValueIndependent,
        strings::string_to_number,
    ),
    Builtin::raw("format", ValueIndependent, strings::format),
    Builtin::new(
        "lookup",
        &["keys", "vocabulary", "default"],
        2,
        ValueIndependent,
        strings::lookup,
    ),
    Builtin::new(
        "read_file",
        &["path"],
        1,
        ValueIndependent,
        strings::read_file,
    ),
    // Dataset sources.
    Builtin::new(
        "list_files",
        &["pattern", "shuffle", "seed"],
        1,
        Source,
        sources::list_files,
    )
    .no_method(),
    Builtin::new("read_lines", &["path"], 1, Source, sources::read_lines).no_method(),
    // Record formats (SPEC §14).
    Builtin::new(
        "read_tfrecord",
        &["path", "compression"],
        1,
        Source,
        records::read_tfrecord,
    )
    .no_method(),
    Builtin::new(
        "read_parquet",
        &["path", "columns"],
        1,
        Source,
        records::read_parquet,
    )
    .no_method(),
    Builtin::new(
        "parse_example",
        &["record", "features", "default"],
        2,
        Other,
        records::parse_example,
    ),
    Builtin::new("read_npy", &["path"], 1, Source, sources::read_npy_npz).no_method(),
    Builtin::new(
        "read_npz",
        &["path", "name"],
        2,
        Source,
        sources::read_npy_npz,
    )
    .no_method(),
    Builtin::new(
        "read_csv",
        &["path", "dtype", "header"],
        1,
        Source,
        sources::read_csv,
    )
    .no_method(),
    Builtin::new(
        "range",
        &["start", "stop", "step"],
        1,
        Source,
        sources::range,
    )
    .no_method(),
    Builtin::new(
        "from_tensor_slices",
        &["tensors"],
        1,
        Source,
        sources::from_tensors,
    )
    .no_method(),
    Builtin::new(
        "from_tensors",
        &["tensors"],
        1,
        Source,
        sources::from_tensors,
    )
    .no_method(),
    Builtin::raw("zip", Source, sources::zip),
];

/// The builtins that are elementwise or reduction ops, by their call names: derived from
/// the op tables, so a new op in a table is a builtin without an edit here.
fn table_builtins() -> impl Iterator<Item = Builtin> {
    let unary = Builtin::new("", &["x"], 1, ValueIndependent, elementwise::unary);
    let binary = Builtin::new("", &["x", "y"], 2, ValueIndependent, elementwise::binary);
    let reduce = Builtin::new(
        "",
        &["x", "axis", "keepdims"],
        1,
        ValueIndependent,
        compute::reduce,
    );
    let named = |t: Builtin| move |name: &'static str| Builtin { name, ..t };
    UnaryOp::ALL
        .iter()
        .map(|op| op.call_name())
        .map(named(unary))
        .chain(
            BinaryOp::ALL
                .iter()
                .map(|op| op.call_name())
                .map(named(binary)),
        )
        .chain(ReduceOp::ALL.iter().map(|op| op.name()).map(named(reduce)))
}

/// Every builtin: the op tables' ops, then the registry, then the image builtins.
pub(crate) fn all() -> impl Iterator<Item = Builtin> {
    table_builtins()
        .chain(REGISTRY.iter().copied())
        .chain(image::BUILTINS.iter().copied())
}

/// Every builtin function name (for did-you-mean).
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    all().map(|b| b.name)
}

/// Whether `name` is a builtin function.
pub(crate) fn is_builtin(name: &str) -> bool {
    lookup(name).is_some()
}

/// The builtin called `name`, if there is one (the first of that name in [`all`]'s order):
/// from a map built once, since a scan over every table compared a string per builtin, and
/// an eager body looks its builtins up on every call.
pub(crate) fn lookup(name: &str) -> Option<Builtin> {
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, Builtin>> =
        std::sync::OnceLock::new();
    let by_name = BY_NAME.get_or_init(|| {
        let mut m = std::collections::HashMap::new();
        for b in all() {
            m.entry(b.name).or_insert(b);
        }
        m
    });
    by_name.get(name).copied()
}

impl Eval<'_> {
    /// Calls a builtin by name: binds the arguments to the registry's parameter list and
    /// runs its lowering function.
    pub(crate) fn call_builtin(
        &mut self,
        name: &str,
        pos: Pos,
        named: Named,
        span: Span,
    ) -> Res<Value> {
        let Some(b) = lookup(name) else {
            let d = Diagnostic::error(Code::UnknownName, format!("`{name}` cannot be called here"))
                .with_label(span, "");
            return self.fail(d);
        };
        if self.tracing()
            && name == "numpy"
            && let [(x, xspan)] = pos.as_slice()
            && named.is_empty()
        {
            // An eager body's plan: the identity, as at run time.
            if self.frame.eager {
                return Ok(x.clone());
            }
            return self.numpy_in_trace(x.clone(), *xspan, span, "numpy(...)");
        }
        // An eager body's plan reads host numbers (`crate::host_num`).
        let planned_item = name == "item" && self.frame.eager && self.guards.is_some();
        if self.tracing() && b.kind == HostOnly && !planned_item {
            return self.host_only_error(&format!("{name}(...)"), span);
        }
        match b.lower {
            Lower::Raw(f) => f(self, b.name, pos, named, span),
            Lower::Bound(f) => {
                let Some(args) = self.bind_args(b.name, b.params, b.required, pos, named, span)?
                else {
                    return Ok(Value::Poison);
                };
                f(
                    self,
                    Call {
                        name: b.name,
                        args,
                        span,
                    },
                )
            }
        }
    }
}

impl Eval<'_> {
    /// Matches arguments to a builtin's parameter list; `params[..required]` are required.
    pub(crate) fn bind_args(
        &mut self,
        fname: &str,
        params: &[&str],
        required: usize,
        pos: Pos,
        named: Named,
        span: Span,
    ) -> Res<Option<BoundArgs>> {
        let mut out: Vec<Option<(Value, Span)>> = vec![None; params.len()];
        if pos.len() > params.len() {
            let d = Diagnostic::error(
                Code::WrongArity,
                format!(
                    "`{fname}` takes at most {} argument(s) but {} were given",
                    params.len(),
                    pos.len()
                ),
            )
            .with_label(pos[params.len()].1, "unexpected argument")
            .with_help(format!("`{fname}({})`", params.join(", ")));
            self.fail(d)?;
            return Ok(None);
        }
        for (i, p) in pos.into_iter().enumerate() {
            out[i] = Some(p);
        }
        for (name, v, vspan) in named {
            match params.iter().position(|p| *p == name.name) {
                Some(i) if out[i].is_none() => out[i] = Some((v, vspan)),
                Some(_) => {
                    let d = Diagnostic::error(
                        Code::BadNamedArgument,
                        format!("argument `{}` of `{fname}` is given twice", name.name),
                    )
                    .with_label(name.span, "already given positionally");
                    self.fail(d)?;
                    return Ok(None);
                }
                None => {
                    let mut d = Diagnostic::error(
                        Code::BadNamedArgument,
                        format!("`{fname}` has no argument named `{}`", name.name),
                    )
                    .with_label(name.span, "unknown argument");
                    d = match did_you_mean(&name.name, params.iter().copied()) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!("`{fname}` takes: {}", params.join(", "))),
                    };
                    self.fail(d)?;
                    return Ok(None);
                }
            }
        }
        if let Some(missing) = (0..required).find(|&i| out[i].is_none()) {
            let d = Diagnostic::error(
                Code::WrongArity,
                format!("`{fname}` needs argument `{}`", params[missing]),
            )
            .with_label(span, format!("missing `{}`", params[missing]))
            .with_help(format!("`{fname}({})`", params.join(", ")));
            self.fail(d)?;
            return Ok(None);
        }
        if out
            .iter()
            .flatten()
            .any(|(v, _)| matches!(v, Value::Poison))
        {
            return Ok(None);
        }
        Ok(Some(out))
    }

    /// Emits (while tracing) or evaluates (when every input is known) one op, typed by the
    /// op's own rule (`OpKind::infer`, which the verifier re-runs): the call sites check the
    /// operands and report user errors first, so a rule that rejects them is a compiler bug.
    pub(crate) fn emit(&mut self, kind: OpKind, inputs: Vec<TVal>, span: Span) -> Res<Value> {
        if inputs.iter().all(|t| matches!(t, TVal::Concrete(_))) {
            let tensors: Vec<Tensor> = inputs
                .into_iter()
                .map(|t| match t {
                    TVal::Concrete(t) => t,
                    TVal::Symbolic(..) => unreachable!("checked above"),
                })
                .collect();
            return match kind.eval(&tensors) {
                Ok(mut outs) => {
                    let out = outs.remove(0);
                    if out.rank() > MAX_RANK {
                        return self.too_many_dims(out.rank(), &kind, span);
                    }
                    // Trace-time constants cost their size (a loop may repeat a big op).
                    if !self.charge(1 + out.len() as u64 / 256, 0, span) {
                        return Ok(Value::Poison);
                    }
                    Ok(Value::Tensor(TVal::Concrete(out)))
                }
                Err(e) => {
                    let code = pipec_ir::kernel_error_code(&e).unwrap_or(match e {
                        kernels::KernelError::Broadcast { .. } => Code::BroadcastMismatch,
                        _ => Code::WrongKind,
                    });
                    let d = Diagnostic::error(code, e.to_string())
                        .with_label(span, format!("in this `{}`", kind.mnemonic()));
                    self.fail(d)
                }
            };
        }
        // One type rule per op: the tracer types what it emits by the rule the verifier
        // re-runs, so the two cannot disagree.
        let in_tys: Vec<TensorType> = inputs.iter().map(tval_type).collect();
        let refs: Vec<&TensorType> = in_tys.iter().collect();
        let out = match kind.infer(&refs) {
            Some(Ok(mut tys)) if tys.len() == 1 => tys.remove(0),
            other => {
                let found = match other {
                    Some(Ok(tys)) => format!("{} results", tys.len()),
                    Some(Err(e)) => e,
                    None => "no type (the op has no type rule)".to_string(),
                };
                let d = Diagnostic::error(
                    Code::InternalError,
                    format!(
                        "internal compiler error: `{}` passed the tracer's checks, but its type rule gives {found}",
                        kind.mnemonic()
                    ),
                )
                .with_label(span, "in this operation")
                .with_help("this is a bug in pipec; please report it with the program that triggers it");
                return self.fail(d);
            }
        };
        if out.shape.rank() > MAX_RANK {
            return self.too_many_dims(out.shape.rank(), &kind, span);
        }
        let bytes = crate::budget::op_bytes(inputs.len(), &[&out]);
        if !self.charge(1 + out.shape.rank() as u64, bytes, span) {
            return Ok(Value::Poison);
        }
        let ids: Vec<_> = inputs
            .into_iter()
            .map(|t| self.materialize(t, span))
            .collect();
        let func = self
            .frame
            .func
            .as_mut()
            .expect("symbolic values exist only while tracing");
        let v = func.push(kind, ids, out.clone(), span);
        Ok(Value::Tensor(TVal::Symbolic(v, out)))
    }

    /// numpy's limit on dims (`NPY_MAXDIMS`): beyond it shapes cost quadratic memory along
    /// an op chain, and printing cannot follow numpy.
    fn too_many_dims(&mut self, rank: usize, kind: &OpKind, span: Span) -> Res<Value> {
        let d = Diagnostic::error(
            Code::TensorTooLarge,
            format!("a tensor would have {rank} dims; at most {MAX_RANK} are allowed, as in numpy"),
        )
        .with_label(
            span,
            format!("this `{}` adds the dim past the limit", kind.mnemonic()),
        );
        self.fail(d)
    }

    fn tensor_of(&mut self, v: Value, span: Span) -> Res<Option<TVal>> {
        self.tensor_operand(v, span)
    }

    /// A dtype argument.
    pub(crate) fn dtype_arg(&mut self, (v, s): (Value, Span)) -> Res<Option<DType>> {
        match v {
            Value::DType(d) => Ok(Some(d)),
            Value::Str(st) if DType::from_name(&st).is_some() => Ok(DType::from_name(&st)),
            Value::Poison => Ok(None),
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("expected a dtype, found {}", other.kind_name()),
                )
                .with_label(s, "not a dtype")
                .with_help(
                    "dtypes are bool, i8, u8, i16, u16, i32, u32, i64, u64, f16, bf16, f32, f64, str",
                );
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    /// Axis arguments: an int or a list/tuple of ints, normalized against `rank`.
    pub(crate) fn axes_arg(
        &mut self,
        v: Option<(Value, Span)>,
        rank: usize,
    ) -> Res<Option<Vec<usize>>> {
        let Some((v, s)) = v else {
            return Ok(Some((0..rank).collect()));
        };
        let raw: Vec<Value> = match v {
            Value::Tuple(vs) | Value::List(vs) => vs,
            Value::Tensor(TVal::Concrete(t)) if t.rank() == 1 && t.dtype().is_int() => {
                let t = kernels::cast(&t, DType::I64);
                t.as_array::<i64>()
                    .map(|a| a.iter().map(|&i| Value::Num(Num::Int(i as i128))).collect())
                    .unwrap_or_default()
            }
            other => vec![other],
        };
        let mut axes = Vec::new();
        for v in raw {
            let Some(i) = self.int_value(v, s, "an axis")? else {
                return Ok(None);
            };
            match infer::norm_axis(i, rank) {
                Some(a) if !axes.contains(&a) => axes.push(a),
                Some(_) => {
                    let d = Diagnostic::error(Code::BadAxis, format!("axis {i} is repeated"))
                        .with_label(s, "");
                    self.fail(d)?;
                    return Ok(None);
                }
                None => {
                    let d = Diagnostic::error(
                        Code::BadAxis,
                        format!("axis {i} is out of range for a tensor of rank {rank}"),
                    )
                    .with_label(
                        s,
                        format!("valid axes are {} to {}", -(rank as i64), rank as i64 - 1),
                    )
                    .with_help("negative axes count from the end: -1 is the last");
                    self.fail(d)?;
                    return Ok(None);
                }
            }
        }
        axes.sort_unstable();
        Ok(Some(axes))
    }

    /// A bool argument known at trace time.
    pub(crate) fn bool_arg(
        &mut self,
        v: Option<(Value, Span)>,
        default: bool,
    ) -> Res<Option<bool>> {
        match v {
            None => Ok(Some(default)),
            Some((Value::Bool(b), _)) => Ok(Some(b)),
            Some((Value::Poison, _)) => Ok(None),
            Some((other, s)) => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("expected `true` or `false`, found {}", other.kind_name()),
                )
                .with_label(s, "not a bool");
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    /// The function value of an argument (for `map`, `filter`, `py_function`).
    pub(crate) fn func_arg(&mut self, (v, s): (Value, Span), what: &str) -> Res<Option<FuncVal>> {
        match v {
            Value::Func(f) => Ok(Some(f)),
            Value::Poison => Ok(None),
            other => {
                let d = Diagnostic::error(
                    Code::WrongKind,
                    format!("`{what}` needs a function, found {}", other.kind_name()),
                )
                .with_label(s, "not a function")
                .with_help(format!(
                    "pass a function name or a lambda: `.{what}(|x| ...)`"
                ));
                self.fail(d)?;
                Ok(None)
            }
        }
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
            if matches!(v, Value::SymDim(_)) {
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
                .any(|v| matches!(v, Value::SymDim(_) | Value::Tensor(TVal::Symbolic(..))))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_name_is_declared_once() {
        let mut names: Vec<&str> = names().collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            n,
            "a name is both in an op table and in REGISTRY, or twice"
        );
    }

    #[test]
    fn required_parameters_exist() {
        for b in all() {
            assert!(b.required <= b.params.len(), "`{}`", b.name);
            if let Lower::Raw(_) = b.lower {
                assert!(b.params.is_empty(), "`{}` is variadic", b.name);
            }
        }
    }

    #[test]
    fn op_table_ops_are_value_independent_builtins() {
        for op in UnaryOp::ALL.iter().filter(|op| !op.call_name().is_empty()) {
            let b = lookup(op.call_name()).expect("a unary op with a call name is a builtin");
            assert_eq!((b.kind, b.params), (Kind::ValueIndependent, &["x"][..]));
        }
        for op in ReduceOp::ALL {
            let b = lookup(op.name()).expect("every reduction is a builtin");
            assert_eq!(b.params, &["x", "axis", "keepdims"][..]);
        }
        assert_eq!(lookup("print").map(|b| b.kind), Some(Kind::HostOnly));
        assert_eq!(
            lookup("range").map(|b| (b.kind, b.method)),
            Some((Kind::Source, false))
        );
        assert!(lookup("no_such_builtin").is_none());
    }
}
