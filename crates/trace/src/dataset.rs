//! Dataset values during tracing, and their conversion to the IR's pipeline graph.

use petgraph::stable_graph::StableDiGraph;
use pipec_diag::Span;
use pipec_ir::{DsKind, DsNode, DsNodeId, ElemType, Pipeline};
use std::collections::HashMap;
use std::sync::Arc;

/// A dataset value: a node and its inputs, shared where a dataset is used twice.
#[derive(Debug)]
pub struct DsExpr {
    /// What the node does.
    pub kind: DsKind,
    /// Its input datasets, in order.
    pub inputs: Vec<Arc<DsExpr>>,
    /// The element type it produces.
    pub elem: ElemType,
    /// The call that made it.
    pub span: Span,
}

/// Builds the pipeline graph rooted at `root`; a dataset value used twice becomes one node.
pub fn to_pipeline(name: &str, span: Span, root: &Arc<DsExpr>) -> Pipeline {
    let mut graph = StableDiGraph::new();
    let mut ids: HashMap<*const DsExpr, DsNodeId> = HashMap::new();
    let output = add(&mut graph, &mut ids, root);
    Pipeline {
        name: name.to_string(),
        span,
        graph,
        output,
    }
}

fn add(
    graph: &mut StableDiGraph<DsNode, u32>,
    ids: &mut HashMap<*const DsExpr, DsNodeId>,
    ds: &Arc<DsExpr>,
) -> DsNodeId {
    if let Some(&id) = ids.get(&Arc::as_ptr(ds)) {
        return id;
    }
    let inputs: Vec<DsNodeId> = ds.inputs.iter().map(|i| add(graph, ids, i)).collect();
    let id = graph.add_node(DsNode {
        kind: ds.kind.clone(),
        elem: ds.elem.clone(),
        span: ds.span,
    });
    for (pos, input) in inputs.into_iter().enumerate() {
        graph.add_edge(input, id, pos as u32);
    }
    ids.insert(Arc::as_ptr(ds), id);
    id
}

use crate::builtins::{BoundArgs, req};
use crate::eval::{Eval, Res};
use crate::value::Value;
use pipec_diag::{Code, Diagnostic, did_you_mean};
use pipec_ir::{Dim, Parallelism, Shape, TensorType};
use pipec_syntax::ast;
use pipec_tensor::{DType, Scalar};

/// The dataset transformations with arms here, for "did you mean" (with the table's).
const METHODS: &[&str] = &[
    "map",
    "filter",
    "batch",
    "padded_batch",
    "unbatch",
    "shuffle",
    "repeat",
    "take",
    "skip",
    "zip",
    "concatenate",
    "enumerate",
    "shard",
    "prefetch",
    "cache",
    "global_shuffle",
    "interleave",
    "flat_map",
    "reduce",
    "get_single_element",
];

impl Eval<'_> {
    /// A transformation applied to a dataset (`ds.map(f)`, `ds.batch(32)`, ...).
    pub(crate) fn dataset_method(
        &mut self,
        ds: Arc<DsExpr>,
        name: &ast::Ident,
        pos: Vec<(Value, Span)>,
        named: Vec<(ast::Ident, Value, Span)>,
        span: Span,
    ) -> Res<Value> {
        let v = self.dataset_method_inner(ds, name, pos, named, span)?;
        // A node stores its element type: `zip(d, d)` doubles it.
        if let Value::Dataset(ds) = &v {
            let nodes = crate::budget::elem_nodes(&ds.elem);
            if !self.charge(nodes, crate::budget::node_bytes(nodes), span) {
                return Ok(Value::Poison);
            }
        }
        Ok(v)
    }

    fn dataset_method_inner(
        &mut self,
        ds: Arc<DsExpr>,
        name: &ast::Ident,
        pos: Vec<(Value, Span)>,
        named: Vec<(ast::Ident, Value, Span)>,
        span: Span,
    ) -> Res<Value> {
        let m = name.name.as_str();
        // The node is the `.name(...)` call, not the whole chain before it.
        let span = Span {
            start: name.span.start,
            end: span.end,
        };
        macro_rules! bind {
            ($params:expr, $req:expr) => {
                match self.bind_ds_args(m, $params, $req, pos, named, span)? {
                    Some(a) => a,
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
        let node = |kind: DsKind, inputs: Vec<Arc<DsExpr>>, elem: ElemType| {
            Ok(Value::Dataset(Arc::new(DsExpr {
                kind,
                inputs,
                elem,
                span,
            })))
        };
        match m {
            "map" => {
                let a = bind!(&["func", "num_parallel_calls", "deterministic"], 1);
                let f = some!(self.func_arg(req(&a, 0), "map")?);
                let parallelism = match a[1].clone() {
                    None => Parallelism::Sequential,
                    Some((v, s)) => match some!(self.int_value(v, s, "num_parallel_calls")?) {
                        -1 => Parallelism::Autotune,
                        n if n >= 1 => Parallelism::Fixed(n as usize),
                        n => {
                            let d = Diagnostic::error(
                                Code::BadDatasetArgument,
                                format!("num_parallel_calls must be at least 1, found {n}"),
                            )
                            .with_label(s, "")
                            .with_help("use a positive number or AUTOTUNE");
                            return self.fail(d);
                        }
                    },
                };
                let deterministic = some!(self.bool_arg(a[2].clone(), true)?);
                if let (false, Some((_, s))) = (deterministic, &a[2]) {
                    self.remark(
                        *s,
                        "`deterministic: false` allows any order; this `map` keeps the input order"
                            .into(),
                        "pipec's parallel maps always deliver in input order, at no cost in speed",
                    );
                }
                let Some((func, out)) = self.trace_fn(&f, &ds.elem, span, "map") else {
                    return Ok(Value::Poison);
                };
                node(
                    DsKind::Map {
                        func,
                        parallelism,
                        deterministic,
                    },
                    vec![ds],
                    out,
                )
            }
            "filter" => {
                let a = bind!(&["predicate"], 1);
                let pred = req(&a, 0);
                let func = some!(self.predicate(pred, &ds.elem, span, "filter")?);
                let elem = ds.elem.clone();
                node(DsKind::Filter { func }, vec![ds], elem)
            }
            "batch" => {
                let a = bind!(&["batch_size", "drop_remainder"], 1);
                let size = some!(self.positive(req(&a, 0), "batch_size")?);
                let drop_remainder = some!(self.bool_arg(a[1].clone(), false)?);
                let dim = if drop_remainder {
                    Dim::Known(size)
                } else {
                    Dim::Unknown
                };
                let elem = ds
                    .elem
                    .map_leaves(&mut |t| TensorType::new(t.dtype, t.shape.prepend(dim)));
                node(
                    DsKind::Batch {
                        size,
                        drop_remainder,
                    },
                    vec![ds],
                    elem,
                )
            }
            "padded_batch" => {
                let a = bind!(
                    &[
                        "batch_size",
                        "padded_shapes",
                        "padding_value",
                        "drop_remainder"
                    ],
                    1
                );
                let size = some!(self.positive(req(&a, 0), "batch_size")?);
                let drop_remainder = some!(self.bool_arg(a[3].clone(), false)?);
                let leaves: Vec<TensorType> = ds.elem.leaves().into_iter().cloned().collect();
                let padded_shapes: Vec<Option<Vec<Option<usize>>>> = match a[1].clone() {
                    None => vec![None; leaves.len()],
                    Some((v, s)) => {
                        let per_leaf: Vec<Value> = match (&v, leaves.len()) {
                            _ if ds.elem.has_dict() => {
                                some!(self.align_dict(&v, &ds.elem, s, "padded_shapes")?)
                            }
                            (Value::Tuple(vs), n) if n > 1 => vs.clone(),
                            _ => vec![v.clone()],
                        };
                        if per_leaf.len() != leaves.len() {
                            let d = Diagnostic::error(
                                Code::BadDatasetArgument,
                                format!(
                                    "padded_shapes has {} entries, the elements have {} components",
                                    per_leaf.len(),
                                    leaves.len()
                                ),
                            )
                            .with_label(s, "");
                            return self.fail(d);
                        }
                        let mut out = Vec::new();
                        for (v, leaf) in per_leaf.into_iter().zip(&leaves) {
                            let dims = some!(self.int_list((v, s), "a padded shape")?);
                            if dims.len() != leaf.rank() {
                                let d = Diagnostic::error(Code::BadDatasetArgument, format!("padded shape {dims:?} has rank {}, the component {leaf} has rank {}", dims.len(), leaf.rank())).with_label(s, "");
                                return self.fail(d);
                            }
                            for (want, have) in dims.iter().zip(&leaf.shape.0) {
                                if let (true, Dim::Known(h)) = (*want >= 0, have)
                                    && (*want as usize) < *h
                                {
                                    let d = Diagnostic::error(Code::BadDatasetArgument, format!("padded shape {dims:?} is smaller than the component {leaf}")).with_label(s, "");
                                    return self.fail(d);
                                }
                            }
                            out.push(Some(
                                dims.iter()
                                    .map(|&d| (d >= 0).then_some(d as usize))
                                    .collect(),
                            ));
                        }
                        out
                    }
                };
                let padding_values: Vec<Scalar> = match a[2].clone() {
                    None => leaves
                        .iter()
                        .map(|l| {
                            pipec_tensor::kernels::scalar_from_i128(0, l.dtype)
                                .unwrap_or(Scalar::Bool(false))
                        })
                        .collect(),
                    Some((v, s)) => {
                        let per_leaf: Vec<Value> = match (&v, leaves.len()) {
                            (Value::Dict(_) | Value::Tuple(_), _) if ds.elem.has_dict() => {
                                some!(self.align_dict(&v, &ds.elem, s, "padding_value")?)
                            }
                            (Value::Tuple(vs), n) if n > 1 => vs.clone(),
                            _ => vec![v.clone(); leaves.len()],
                        };
                        let mut out = Vec::new();
                        for (v, leaf) in per_leaf.iter().zip(&leaves) {
                            if leaf.dtype == pipec_tensor::DType::Str {
                                // A `str` component pads with `""` (tf.data's default for
                                // `tf.string`); its padding scalar is only a placeholder.
                                if matches!(v, Value::Str(text) if text.is_empty()) {
                                    out.push(Scalar::Bool(false));
                                    continue;
                                }
                                let d = Diagnostic::error(
                                    Code::BadDatasetArgument,
                                    format!(
                                        "a `str` component is padded with `\"\"`; {} cannot be its padding value",
                                        match v {
                                            Value::Str(text) => format!("{text:?}"),
                                            other => other.kind_name(),
                                        }
                                    ),
                                )
                                .with_label(s, "padding value")
                                .with_help("leave the `str` component's padding value out (or give `\"\"`); other strings are not supported as padding yet");
                                self.fail(d)?;
                                return Ok(Value::Poison);
                            }
                            let t = some!(self.weak_scalar(v, leaf.dtype, s)?);
                            match t {
                                crate::value::TVal::Concrete(t) => {
                                    out.push(t.get_flat(0).expect("scalar"))
                                }
                                _ => return Ok(Value::Poison),
                            }
                        }
                        out
                    }
                };
                let dim0 = if drop_remainder {
                    Dim::Known(size)
                } else {
                    Dim::Unknown
                };
                let mut it = leaves.iter().zip(&padded_shapes).map(|(leaf, ps)| {
                    let dims: Vec<Dim> = match ps {
                        Some(ds) => ds
                            .iter()
                            .map(|d| d.map_or(Dim::Unknown, Dim::Known))
                            .collect(),
                        None => leaf.shape.0.iter().map(|_| Dim::Unknown).collect(),
                    };
                    TensorType::new(leaf.dtype, Shape(dims).prepend(dim0))
                });
                let elem = ds.elem.rebuild(&mut it);
                node(
                    DsKind::PaddedBatch {
                        size,
                        padded_shapes,
                        padding_values,
                        drop_remainder,
                    },
                    vec![ds],
                    elem,
                )
            }
            "unbatch" => {
                let _ = bind!(&[], 0);
                if let Some(l) = ds.elem.leaves().into_iter().find(|l| l.rank() == 0) {
                    let d = Diagnostic::error(
                        Code::BadDatasetArgument,
                        format!(
                            "`unbatch` needs every component to have rank 1 or more, found {l}"
                        ),
                    )
                    .with_label(span, "");
                    return self.fail(d);
                }
                let elem = ds
                    .elem
                    .map_leaves(&mut |t| TensorType::new(t.dtype, Shape(t.shape.0[1..].to_vec())));
                node(DsKind::Unbatch, vec![ds], elem)
            }
            "shuffle" => {
                let a = bind!(&["buffer_size", "seed", "reshuffle_each_iteration"], 1);
                let buffer = some!(self.positive(req(&a, 0), "buffer_size")?);
                let seed = match a[1].clone() {
                    None => None,
                    Some((v, s)) => {
                        let n = some!(self.int_value(v, s, "the seed")?);
                        Some(n as u64)
                    }
                };
                let reshuffle = some!(self.bool_arg(a[2].clone(), true)?);
                let elem = ds.elem.clone();
                node(
                    DsKind::Shuffle {
                        buffer,
                        seed,
                        reshuffle,
                    },
                    vec![ds],
                    elem,
                )
            }
            "global_shuffle" => {
                let a = bind!(&["seed", "reshuffle_each_iteration"], 0);
                let seed = match a[0].clone() {
                    None => None,
                    Some((v, s)) => Some(some!(self.int_value(v, s, "the seed")?) as u64),
                };
                let reshuffle = some!(self.bool_arg(a[1].clone(), true)?);
                if let Some(breaker) = random_access_breaker(&ds) {
                    let d = no_random_access(&breaker, span);
                    return self.fail(d);
                }
                let elem = ds.elem.clone();
                node(DsKind::GlobalShuffle { seed, reshuffle }, vec![ds], elem)
            }
            "interleave" | "flat_map" => {
                let a = if m == "flat_map" {
                    bind!(&["map_func"], 1)
                } else {
                    bind!(
                        &[
                            "map_func",
                            "cycle_length",
                            "block_length",
                            "num_parallel_calls",
                            "deterministic"
                        ],
                        1
                    )
                };
                let Some((kind, elem)) =
                    self.dataset_interleave(ds.clone(), m == "flat_map", a, span)?
                else {
                    return Ok(Value::Poison);
                };
                node(kind, vec![ds], elem)
            }
            "reduce" => {
                let a = bind!(&["initial_state", "reduce_func"], 2);
                let init = req(&a, 0);
                let f = req(&a, 1);
                self.dataset_reduce(ds, init, f, span)
            }
            "get_single_element" => {
                let _ = bind!(&[], 0);
                self.dataset_single(ds, span)
            }
            "repeat" => {
                let a = bind!(&["count"], 0);
                // Inside an `interleave`/`flat_map` function the count may come from the element.
                if let Some((v @ Value::Tensor(crate::value::TVal::Symbolic(..)), s)) = a[0].clone()
                    && self.building_nested()
                {
                    let count = some!(self.range_bound(v, s)?);
                    let elem = ds.elem.clone();
                    return node(DsKind::RepeatOf(count), vec![ds], elem);
                }
                let count = match a[0].clone() {
                    None => None,
                    Some((v, s)) => {
                        let n = some!(self.int_value(v, s, "the count")?);
                        if n < 0 { None } else { Some(n as u64) }
                    }
                };
                let elem = ds.elem.clone();
                node(DsKind::Repeat(count), vec![ds], elem)
            }
            "take" | "skip" => {
                let a = bind!(&["count"], 1);
                let (v, s) = req(&a, 0);
                let n = some!(self.int_value(v, s, "the count")?);
                let elem = ds.elem.clone();
                node(
                    if m == "take" {
                        DsKind::Take(n)
                    } else {
                        DsKind::Skip(n)
                    },
                    vec![ds],
                    elem,
                )
            }
            "zip" => {
                let mut inputs = vec![ds];
                if let Some((n, _, _)) = named.first() {
                    let d =
                        Diagnostic::error(Code::BadNamedArgument, "`zip` takes no named arguments")
                            .with_label(n.span, "");
                    return self.fail(d);
                }
                for (v, s) in pos {
                    match v {
                        Value::Dataset(d) => inputs.push(d),
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
                let elem = ElemType::Tuple(inputs.iter().map(|d| d.elem.clone()).collect());
                node(DsKind::Zip, inputs, elem)
            }
            "concatenate" => {
                let a = bind!(&["dataset"], 1);
                let (v, s) = req(&a, 0);
                let Value::Dataset(other) = v else {
                    if matches!(v, Value::Poison) {
                        return Ok(Value::Poison);
                    }
                    let d = Diagnostic::error(
                        Code::WrongKind,
                        format!("`concatenate` takes a dataset, found {}", v.kind_name()),
                    )
                    .with_label(s, "not a dataset");
                    return self.fail(d);
                };
                let Some(elem) = ElemType::join(&ds.elem, &other.elem) else {
                    let d = Diagnostic::error(Code::DatasetTypeMismatch, format!("cannot concatenate datasets of {} and {}", ds.elem, other.elem))
                        .with_label(ds.span, format!("elements {}", ds.elem))
                        .with_label(s, format!("elements {}", other.elem))
                        .with_help("both datasets need the same dtypes and ranks; `cast` or `reshape` in a `map` first");
                    return self.fail(d);
                };
                node(DsKind::Concatenate, vec![ds, other], elem)
            }
            "enumerate" => {
                let a = bind!(&["start"], 0);
                let start = match a[0].clone() {
                    None => 0,
                    Some((v, s)) => some!(self.int_value(v, s, "the start")?),
                };
                let elem = ElemType::Tuple(vec![
                    ElemType::Tensor(TensorType::scalar(DType::I64)),
                    ds.elem.clone(),
                ]);
                node(DsKind::Enumerate(start), vec![ds], elem)
            }
            "shard" => {
                let a = bind!(&["num_shards", "index"], 2);
                let num = some!(self.positive(req(&a, 0), "num_shards")?);
                let (v, s) = req(&a, 1);
                let index = some!(self.int_value(v, s, "the shard index")?);
                if index < 0 || index as usize >= num {
                    let d = Diagnostic::error(Code::BadDatasetArgument, format!("shard index {index} is out of range for {num} shards"))
                        .with_label(s, format!("must be 0 to {}", num - 1))
                        .with_help("shard `index` counts from 0: the shards of `shard(n, i)` are i = 0, 1, ..., n - 1");
                    return self.fail(d);
                }
                let elem = ds.elem.clone();
                node(
                    DsKind::Shard {
                        num: num as u64,
                        index: index as u64,
                    },
                    vec![ds],
                    elem,
                )
            }
            "prefetch" => {
                let a = bind!(&["buffer_size"], 0);
                let n = match a[0].clone() {
                    None => 1,
                    Some((v, s)) => match some!(self.int_value(v, s, "the buffer size")?) {
                        -1 => {
                            self.remark(
                                s,
                                "`prefetch(AUTOTUNE)` buffers 1 element".into(),
                                "pipec does not tune prefetch buffers; write `prefetch(N)` to buffer N elements",
                            );
                            1
                        }
                        n if n < 0 => {
                            let d = Diagnostic::error(
                                Code::BadDatasetArgument,
                                format!("the prefetch buffer size must be 0 or more (or AUTOTUNE), found {n}"),
                            )
                            .with_label(s, format!("{n} is not a buffer size"))
                            .with_help("write `prefetch(N)` with N >= 0, or `prefetch(AUTOTUNE)`");
                            return self.fail(d);
                        }
                        n if n as u64 > pipec_ir::MAX_PREFETCH as u64 => {
                            self.remark(
                                s,
                                format!("`prefetch({n})` buffers at most {} elements", pipec_ir::MAX_PREFETCH),
                                "a larger buffer would only hold more memory: the consumer takes one element at a time",
                            );
                            pipec_ir::MAX_PREFETCH
                        }
                        n => n as usize,
                    },
                };
                let elem = ds.elem.clone();
                node(DsKind::Prefetch(n), vec![ds], elem)
            }
            "cache" => {
                let a = bind!(&["filename"], 0);
                match a[0].clone() {
                    None => {}
                    Some((Value::Str(f), _)) if f.is_empty() => {}
                    Some((Value::Str(f), s)) => self.remark(
                        s,
                        format!("`cache(\"{f}\")` caches in memory; no file is written or read"),
                        "pipec keeps a cache in memory for the run; drop the file name",
                    ),
                    Some((Value::Poison, _)) => return Ok(Value::Poison),
                    Some((other, s)) => {
                        let d = Diagnostic::error(
                            Code::WrongKind,
                            format!(
                                "the cache file name must be a string, found {}",
                                other.kind_name()
                            ),
                        )
                        .with_label(s, "not a string");
                        return self.fail(d);
                    }
                }
                let elem = ds.elem.clone();
                node(DsKind::Cache, vec![ds], elem)
            }
            other => {
                if let Some(decl) = pipec_ir::transform_decl(other) {
                    return self.table_transform(decl, ds, pos, named, span);
                }
                let mut d = Diagnostic::error(
                    Code::UnknownName,
                    format!("datasets have no method `{other}`"),
                )
                .with_label(name.span, "unknown transformation");
                let methods = || {
                    METHODS
                        .iter()
                        .copied()
                        .chain(pipec_ir::TRANSFORMS.iter().map(|t| t.name))
                };
                d = match did_you_mean(other, methods()) {
                    Some(s) => d.with_help(format!("did you mean `.{s}(...)`?")),
                    None => d.with_help(format!(
                        "the transformations are: {}",
                        methods().collect::<Vec<_>>().join(", ")
                    )),
                };
                self.fail(d)
            }
        }
    }

    fn bind_ds_args(
        &mut self,
        m: &str,
        params: &[&str],
        required: usize,
        pos: Vec<(Value, Span)>,
        named: Vec<(ast::Ident, Value, Span)>,
        span: Span,
    ) -> Res<Option<BoundArgs>> {
        // Reuse the builtin binder; its messages name the method.
        self.bind_args(m, params, required, pos, named, span)
    }

    /// A per-component argument written as a dict for a dict element (`padded_shapes:
    /// {"a": [4], "b": []}`), as one value per leaf in leaf order.
    fn align_dict(
        &mut self,
        v: &Value,
        elem: &ElemType,
        s: Span,
        what: &str,
    ) -> Res<Option<Vec<Value>>> {
        match (v, elem) {
            (Value::Dict(given), ElemType::Dict(fields)) => {
                let mut out = Vec::new();
                for (k, sub) in fields {
                    let Some((_, part)) = given.iter().find(|(g, _)| &**g == k) else {
                        let d = Diagnostic::error(
                            Code::BadDatasetArgument,
                            format!(
                                "{what} has no entry for the key \"{k}\" of the elements {elem}"
                            ),
                        )
                        .with_label(s, format!("no \"{k}\" here"))
                        .with_help(format!("give {what} one entry per key of the element"));
                        self.fail(d)?;
                        return Ok(None);
                    };
                    match sub {
                        ElemType::Tensor(_) => out.push(part.clone()),
                        _ => match self.align_dict(part, sub, s, what)? {
                            Some(vs) => out.extend(vs),
                            None => return Ok(None),
                        },
                    }
                }
                if let Some((g, _)) = given
                    .iter()
                    .find(|(g, _)| !fields.iter().any(|(k, _)| k == &**g))
                {
                    let d = Diagnostic::error(
                        Code::BadDatasetArgument,
                        format!(
                            "{what} has the key \"{g}\", which the elements {elem} do not have"
                        ),
                    )
                    .with_label(s, "");
                    self.fail(d)?;
                    return Ok(None);
                }
                Ok(Some(out))
            }
            (Value::Tuple(vs), ElemType::Tuple(parts)) if vs.len() == parts.len() => {
                let mut out = Vec::new();
                for (v, sub) in vs.iter().zip(parts) {
                    match sub {
                        ElemType::Tensor(_) => out.push(v.clone()),
                        _ => match self.align_dict(v, sub, s, what)? {
                            Some(vs) => out.extend(vs),
                            None => return Ok(None),
                        },
                    }
                }
                Ok(Some(out))
            }
            _ => {
                let d = Diagnostic::error(
                    Code::BadDatasetArgument,
                    format!("{what} does not match the structure of the elements {elem}"),
                )
                .with_label(s, "")
                .with_help(format!(
                    "write {what} with the element's structure: a dict for a dict"
                ));
                self.fail(d)?;
                Ok(None)
            }
        }
    }

    /// A positive size argument.
    fn positive(&mut self, (v, s): (Value, Span), what: &str) -> Res<Option<usize>> {
        let Some(n) = self.int_value(v, s, what)? else {
            return Ok(None);
        };
        if n < 1 {
            let d = Diagnostic::error(
                Code::BadDatasetArgument,
                format!("{what} must be at least 1, found {n}"),
            )
            .with_label(s, format!("{n} is not a valid {what}"))
            .with_help(format!("pass a positive {what}"));
            self.fail(d)?;
            return Ok(None);
        }
        Ok(Some(n as usize))
    }
}

/// The node nearest to `ds`'s output that takes random access away from it (SPEC §15), if any.
fn random_access_breaker(ds: &Arc<DsExpr>) -> Option<Arc<DsExpr>> {
    let mut stack = vec![ds.clone()];
    while let Some(d) = stack.pop() {
        if !d.kind.keeps_random_access() {
            return Some(d);
        }
        stack.extend(d.inputs.iter().rev().cloned());
    }
    None
}

/// E0410 for a `global_shuffle` at `span` whose input loses random access at `breaker`.
fn no_random_access(breaker: &DsExpr, span: Span) -> Diagnostic {
    let name = breaker.kind.mnemonic();
    let why = match &breaker.kind {
        DsKind::Batch { .. } => {
            "a `batch` without `drop_remainder: true` may end with a short batch"
        }
        DsKind::Repeat(None) => "an endless `repeat` has no length",
        DsKind::ReadCsv { .. } => "a CSV file's rows are found only by reading it",
        DsKind::Prefetch(_) | DsKind::Cache => "it is not a random-access transformation",
        _ => "its output positions do not map to known input positions",
    };
    let help = match &breaker.kind {
        DsKind::Prefetch(_) | DsKind::Cache => format!(
            "move `.{name}(...)` after `global_shuffle`, or shuffle with a buffer: `.shuffle(BUFFER, seed: ...)`"
        ),
        DsKind::Batch { .. } => "write `batch(n, drop_remainder: true)`, move `global_shuffle` before the batch, or shuffle with a buffer: `.shuffle(BUFFER, seed: ...)`".to_string(),
        _ => format!(
            "move `global_shuffle` before the `{name}`, or shuffle with a buffer: `.shuffle(BUFFER, seed: ...)`"
        ),
    };
    Diagnostic::error(
        Code::NoRandomAccess,
        format!("`global_shuffle` needs random access to its input, but `{name}` breaks it: {why}"),
    )
    .with_label(span, "shuffles the whole input by position")
    .with_label(breaker.span, format!("`{name}` has no random access"))
    .with_help(help)
}
