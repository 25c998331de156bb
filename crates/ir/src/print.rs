//! The one text form of the IR, used by `--emit-ir` and every snapshot.
//!
//! Deterministic: values are numbered densely in definition order, dataset nodes in
//! topological order, and nothing depends on addresses or hash-map order.

use crate::Program;
use crate::function::{Function, FusedBody, FusedOp, Op, OpKind, ReshapeDim};
use crate::pipeline::{DsKind, DsNodeId, Parallelism, Pipeline, Source};
use crate::types::ElemType;
use pipec_tensor::kernels::SliceItem;
use pipec_tensor::{Scalar, Tensor};
use std::collections::HashMap;
use std::fmt::{self, Write};

/// Constants with more elements than this print as a summary, not their data.
const MAX_PRINTED_ELEMENTS: usize = 16;

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for p in &self.pipelines {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write_pipeline(f, self, p)?;
        }
        for func in &self.functions {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{func}")?;
        }
        Ok(())
    }
}

fn write_pipeline(f: &mut fmt::Formatter<'_>, prog: &Program, p: &Pipeline) -> fmt::Result {
    writeln!(
        f,
        "pipeline @{} -> dataset<{}> {{",
        p.name, p.graph[p.output].elem
    )?;
    write_nodes(f, prog, p, "  ")?;
    writeln!(f, "}}")
}

/// The nodes of `p` and its `yield`, each line indented by `indent`; the inner pipeline of
/// an `interleave`/`flat_map` follows its node as a block, indented further.
fn write_nodes(
    f: &mut fmt::Formatter<'_>,
    prog: &Program,
    p: &Pipeline,
    indent: &str,
) -> fmt::Result {
    let order = p.topo_order();
    let names: HashMap<_, _> = order
        .iter()
        .enumerate()
        .map(|(i, &n)| (n, format!("%d{i}")))
        .collect();
    for &node in &order {
        let text = ds_node_text(prog, p, node, &names);
        match &p.graph[node].kind {
            DsKind::Interleave(n) => {
                writeln!(f, "{indent}{text} {{")?;
                write_nodes(f, prog, &n.inner, &format!("{indent}  "))?;
                writeln!(f, "{indent}}}")?;
            }
            _ => writeln!(f, "{indent}{text}")?,
        }
    }
    writeln!(f, "{indent}yield {}", names[&p.output])
}

/// The IR line of every node of `p` (`%d2 = map %d1, @f : dataset<f32[3]>`), named as
/// `--emit-ir` names them: for run-time reports such as `--stats`.
pub fn ds_node_lines(prog: &Program, p: &Pipeline) -> HashMap<DsNodeId, String> {
    let order = p.topo_order();
    let names: HashMap<_, _> = order
        .iter()
        .enumerate()
        .map(|(i, &n)| (n, format!("%d{i}")))
        .collect();
    order
        .iter()
        .map(|&n| (n, ds_node_text(prog, p, n, &names)))
        .collect()
}

/// One dataset node as IR text: `%dN = MNEMONIC INPUTS, ARGS : dataset<ELEM>`, with nodes
/// named by `names` (shared with the Graphviz renderer, so both show the same words).
pub(crate) fn ds_node_text(
    prog: &Program,
    p: &Pipeline,
    node: DsNodeId,
    names: &HashMap<DsNodeId, String>,
) -> String {
    let n = &p.graph[node];
    let mut args: Vec<String> = p.inputs(node).iter().map(|i| names[i].clone()).collect();
    match &n.kind {
        DsKind::Range { start, stop, step } => {
            args.extend([start, stop, step].map(|v| v.to_string()))
        }
        DsKind::RangeOf(bounds) => args.extend(bounds.iter().map(bound_text)),
        DsKind::RepeatOf(count) => args.push(bound_text(count)),
        DsKind::Interleave(n) => {
            args.push(format!("@{}", prog.func(n.func).name));
            if !n.flat {
                args.push(format!("cycle_length={}", n.cycle_length));
                args.push(format!("block_length={}", n.block_length));
            }
            match n.parallelism {
                Parallelism::Sequential => {}
                Parallelism::Fixed(k) => args.push(format!("parallel={k}")),
                Parallelism::Autotune => args.push("parallel=autotune".into()),
            }
            if !n.deterministic {
                args.push("deterministic=false".into());
            }
        }
        DsKind::FromTensorSlices(srcs) | DsKind::FromTensors(srcs) => {
            let parts: Vec<String> = srcs.iter().map(source_text).collect();
            args.push(if parts.len() == 1 {
                parts[0].clone()
            } else {
                format!("({})", parts.join(", "))
            });
        }
        DsKind::ReadCsv { path, header } => {
            args.push(format!("{:?}", path.display().to_string()));
            args.push(format!("header={header}"));
        }
        DsKind::ReadLines(paths) => {
            for p in paths {
                args.push(format!("{:?}", p.display().to_string()));
            }
        }
        DsKind::ReadTfRecord { paths, compression } => {
            for p in paths {
                args.push(format!("{:?}", p.display().to_string()));
            }
            if !compression.is_empty() {
                args.push(format!("compression={compression:?}"));
            }
        }
        DsKind::ReadParquet { paths, columns } => {
            for p in paths {
                args.push(format!("{:?}", p.display().to_string()));
            }
            let cols: Vec<String> = columns.iter().map(|c| format!("{c:?}")).collect();
            args.push(format!("columns=[{}]", cols.join(", ")));
        }
        DsKind::Map {
            func,
            parallelism,
            deterministic,
        } => {
            args.push(format!("@{}", prog.func(*func).name));
            match parallelism {
                Parallelism::Sequential => {}
                Parallelism::Fixed(n) => args.push(format!("parallel={n}")),
                Parallelism::Autotune => args.push("parallel=autotune".into()),
            }
            if !deterministic {
                args.push("deterministic=false".into());
            }
        }
        DsKind::Filter { func } => args.push(format!("@{}", prog.func(*func).name)),
        DsKind::Batch {
            size,
            drop_remainder,
        } => {
            args.push(size.to_string());
            args.push(format!("drop_remainder={drop_remainder}"));
        }
        DsKind::PaddedBatch {
            size,
            padded_shapes,
            padding_values,
            drop_remainder,
        } => {
            args.push(size.to_string());
            let shapes: Vec<String> = padded_shapes
                .iter()
                .map(|s| match s {
                    None => "longest".to_string(),
                    Some(dims) => {
                        let d: Vec<String> = dims
                            .iter()
                            .map(|d| d.map_or("?".to_string(), |n| n.to_string()))
                            .collect();
                        format!("[{}]", d.join(", "))
                    }
                })
                .collect();
            args.push(format!("padded_shapes=({})", shapes.join(", ")));
            let values: Vec<String> = padding_values.iter().map(|s| scalar_text(*s)).collect();
            args.push(format!("padding_values=({})", values.join(", ")));
            args.push(format!("drop_remainder={drop_remainder}"));
        }
        DsKind::Shuffle {
            buffer,
            seed,
            reshuffle,
        } => {
            args.push(buffer.to_string());
            args.push(seed.map_or("seed=none".to_string(), |s| format!("seed={s}")));
            if !reshuffle {
                args.push("reshuffle_each_iteration=false".to_string());
            }
        }
        DsKind::Repeat(count) => args.push(count.map_or("forever".to_string(), |c| c.to_string())),
        DsKind::Take(n) | DsKind::Skip(n) | DsKind::Enumerate(n) => args.push(n.to_string()),
        DsKind::Shard { num, index } => {
            args.push(num.to_string());
            args.push(index.to_string());
        }
        DsKind::Prefetch(n) => args.push(n.to_string()),
        DsKind::GlobalShuffle { seed, reshuffle } => {
            args.push(seed.map_or("seed=none".to_string(), |s| format!("seed={s}")));
            if !reshuffle {
                args.push("reshuffle_each_iteration=false".to_string());
            }
        }
        DsKind::Transform(t) => args.extend(t.arg_texts(prog)),
        DsKind::Unbatch | DsKind::Zip | DsKind::Concatenate | DsKind::Cache => {}
    }
    let mut text = format!("{} = {}", names[&node], n.kind.mnemonic());
    if !args.is_empty() {
        text.push(' ');
        text.push_str(&args.join(", "));
    }
    text.push_str(&format!(" : dataset<{}>", n.elem));
    text
}

/// A `range` bound or `repeat` count of a nested dataset: a number, or `%argK`.
fn bound_text(src: &Source) -> String {
    match src {
        Source::Const(t) if t.rank() == 0 => {
            t.get_flat(0).map_or_else(|| source_text(src), scalar_text)
        }
        _ => source_text(src),
    }
}

fn source_text(src: &Source) -> String {
    match src {
        Source::Const(t) => tensor_text(t),
        Source::Npy(path) => format!("read_npy({:?})", path.display().to_string()),
        Source::Npz(path, name) => format!("read_npz({:?}, {name:?})", path.display().to_string()),
        Source::Arg(k) => format!("%arg{k}"),
    }
}

/// A constant as IR text: its data when small, otherwise its type only.
pub(crate) fn tensor_text(t: &Tensor) -> String {
    let ty = format!("{}{:?}", t.dtype(), t.shape());
    if t.len() > MAX_PRINTED_ELEMENTS {
        return format!("dense<{ty}> {{{} elements}}", t.len());
    }
    let flat: Vec<String> = match t {
        // Strings as JSON-style literals: `"cat"`.
        Tensor::Str(a) => a
            .iter()
            .map(|b| format!("{:?}", String::from_utf8_lossy(b)))
            .collect(),
        _ => (0..t.len())
            .filter_map(|i| t.get_flat(i))
            .map(scalar_text)
            .collect(),
    };
    let mut out = String::new();
    nest(&mut out, t.shape(), &flat);
    format!("dense<{ty}> {out}")
}

fn nest(out: &mut String, shape: &[usize], flat: &[String]) {
    match shape.split_first() {
        None => out.push_str(&flat[0]),
        Some((&n, rest)) => {
            let stride: usize = rest.iter().product();
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push_str(", ");
                }
                nest(out, rest, &flat[i * stride..(i + 1) * stride]);
            }
            out.push(']');
        }
    }
}

/// A scalar as IR text: integers plainly, floats with a `.` so they read as floats.
pub(crate) fn scalar_text(s: Scalar) -> String {
    match s {
        Scalar::Bool(v) => v.to_string(),
        Scalar::I8(v) => v.to_string(),
        Scalar::U8(v) => v.to_string(),
        Scalar::I16(v) => v.to_string(),
        Scalar::U16(v) => v.to_string(),
        Scalar::I32(v) => v.to_string(),
        Scalar::U32(v) => v.to_string(),
        Scalar::I64(v) => v.to_string(),
        Scalar::U64(v) => v.to_string(),
        Scalar::F16(v) => format!("{:?}", v.to_f32()),
        Scalar::BF16(v) => format!("{:?}", v.to_f32()),
        Scalar::F32(v) => format!("{v:?}"),
        Scalar::F64(v) => format!("{v:?}"),
    }
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

fn slice_text(items: &[SliceItem]) -> String {
    let opt = |v: &Option<i64>| v.map_or(String::new(), |n| n.to_string());
    let parts: Vec<String> = items
        .iter()
        .map(|it| match it {
            SliceItem::Index(i) => i.to_string(),
            SliceItem::NewAxis => "newaxis".to_string(),
            SliceItem::Range { start, stop, step } => {
                if *step == 1 {
                    format!("{}:{}", opt(start), opt(stop))
                } else {
                    format!("{}:{}:{}", opt(start), opt(stop), step)
                }
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Whether `func` is one eager call on its parameters: printed as an `eager` declaration.
pub(crate) fn as_eager_decl(func: &Function) -> Option<&str> {
    match func.ops.as_slice() {
        [op] if op.inputs == func.params && op.outputs == func.results => match &op.kind {
            OpKind::Eager(host) => Some(host.flavor()),
            _ => None,
        },
        _ => None,
    }
}

/// One op as IR text, without a fused body: `OUTPUTS = MNEMONIC OPERANDS, ATTRIBUTES : TYPES`.
pub(crate) fn op_text(func: &Function, op: &Op) -> String {
    let outs: Vec<String> = op.outputs.iter().map(|o| o.to_string()).collect();
    let ins: Vec<String> = op.inputs.iter().map(|i| i.to_string()).collect();
    let mut text = format!("{} = {}", outs.join(", "), op.kind.mnemonic());
    let mut args = ins.join(", ");
    let mut attr = |t: String| {
        if !args.is_empty() {
            args.push_str(", ");
        }
        args.push_str(&t);
    };
    match &op.kind {
        OpKind::Const(t) => attr(tensor_text(t)),
        OpKind::Reduce { axes, keepdims, .. } => {
            attr(format!("axes={}", list(axes)));
            attr(format!("keepdims={keepdims}"));
        }
        OpKind::Reshape(dims) => {
            let d: Vec<String> = dims
                .iter()
                .map(|d| match d {
                    ReshapeDim::Fixed(n) => n.to_string(),
                    ReshapeDim::Infer => "-1".into(),
                })
                .collect();
            attr(format!("[{}]", d.join(", ")));
        }
        OpKind::Transpose(v)
        | OpKind::Squeeze(v)
        | OpKind::BroadcastTo(v)
        | OpKind::Tile(v)
        | OpKind::Reverse(v) => attr(list(v)),
        OpKind::ExpandDims(a) | OpKind::Concat(a) | OpKind::Stack(a) | OpKind::Sort(a) => {
            attr(format!("axis={a}"))
        }
        OpKind::Slice(items) => attr(slice_text(items)),
        OpKind::OneHot { depth, .. } => attr(format!("depth={depth}")),
        OpKind::EnsureShape(shape) => attr(shape.to_string()),
        OpKind::Random { draw, seed, key } => {
            use pipec_tensor::kernels::random::Draw;
            match draw {
                Draw::Uniform { shape, lo, hi } => {
                    attr(format!("shape={}", list(shape)));
                    attr(format!("lo={}", scalar_text(*lo)));
                    attr(format!("hi={}", scalar_text(*hi)));
                }
                Draw::Normal {
                    shape, mean, std, ..
                } => {
                    attr(format!("shape={}", list(shape)));
                    attr(format!("mean={mean:?}"));
                    attr(format!("std={std:?}"));
                }
                Draw::Crop { size } => attr(format!("size={}", list(size))),
                Draw::Brightness { max_delta } => attr(format!("max_delta={max_delta:?}")),
                Draw::FlipLeftRight | Draw::FlipUpDown => {}
            }
            attr(format!("seed={seed}"));
            attr(format!("key={key:#018x}"));
        }
        OpKind::Image(op) => attr(op.attr_text()),
        OpKind::Str(op) => {
            use pipec_tensor::kernels::strings::{FormatPiece, StrOp};
            let text = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
            match op {
                StrOp::Split(Some(sep)) => attr(format!("sep={}", text(sep))),
                StrOp::Join(sep) => attr(format!("sep={}", text(sep))),
                StrOp::RegexFullMatch(p) => attr(format!("pattern={:?}", p.text())),
                StrOp::RegexReplace(p, r) => {
                    attr(format!("pattern={:?}", p.text()));
                    attr(format!("rewrite={}", text(r)));
                }
                StrOp::Format(pieces) => {
                    let t: String = pieces
                        .iter()
                        .map(|p| match p {
                            FormatPiece::Text(t) => t.replace('{', "{{").replace('}', "}}"),
                            FormatPiece::Hole => "{}".into(),
                        })
                        .collect();
                    attr(format!("template={t:?}"))
                }
                StrOp::Lookup(v, default) => {
                    attr(format!("{v:?}"));
                    attr(format!("default={default}"));
                }
                _ => {}
            }
        }
        OpKind::Eager(host) => {
            let a = std::mem::take(&mut args);
            args = format!("{}:@{}({a})", host.flavor(), host.name());
        }
        _ => {}
    }
    if !args.is_empty() {
        text.push(' ');
        text.push_str(&args);
    }
    let tys: Vec<String> = op.outputs.iter().map(|&o| func.ty(o).to_string()).collect();
    text.push_str(&format!(" : {}", tys.join(", ")));
    text
}

/// One instruction of a fused body as IR text: `^I = INSTRUCTION : DTYPE`.
pub(crate) fn fused_inst_text(body: &FusedBody, i: usize, inst: &FusedOp) -> String {
    let text = match inst {
        FusedOp::Input(n) => format!("input {n}"),
        FusedOp::Const(s) => format!("const {}", scalar_text(*s)),
        FusedOp::Unary(op, a) => format!("{} ^{a}", op.name()),
        FusedOp::Binary(op, a, b) => format!("{} ^{a}, ^{b}", op.name()),
        FusedOp::Cast(a) => format!("cast ^{a}"),
        FusedOp::Select(c, a, b) => format!("where ^{c}, ^{a}, ^{b}"),
        FusedOp::Clip(x, lo, hi) => format!("clip ^{x}, ^{lo}, ^{hi}"),
    };
    format!("^{i} = {text} : {}", body.dtypes[i])
}

/// A function's signature line: `func @NAME(%0: TYPE, ...) -> RESULT`.
pub(crate) fn func_header(func: &Function) -> String {
    let params: Vec<String> = func
        .params
        .iter()
        .map(|&p| format!("{p}: {}", func.ty(p)))
        .collect();
    let results: Vec<String> = func
        .results
        .iter()
        .map(|&r| func.ty(r).to_string())
        .collect();
    let ret = if results.len() == 1 {
        results[0].clone()
    } else {
        format!("({})", results.join(", "))
    };
    format!("func @{}({}) -> {}", func.name, params.join(", "), ret)
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", func_header(self))?;
        if let Some(flavor) = as_eager_decl(self) {
            return writeln!(f, " {flavor}");
        }
        writeln!(f, " {{")?;
        for op in &self.ops {
            write!(f, "  {}", op_text(self, op))?;
            if let OpKind::Fused(body) = &op.kind {
                writeln!(f, " {{")?;
                for (i, inst) in body.insts.iter().enumerate() {
                    writeln!(f, "    {}", fused_inst_text(body, i, inst))?;
                }
                let res: Vec<String> = body.results.iter().map(|r| format!("^{r}")).collect();
                writeln!(f, "    yield {}", res.join(", "))?;
                write!(f, "  }}")?;
            }
            writeln!(f)?;
        }
        let res: Vec<String> = self.results.iter().map(|r| r.to_string()).collect();
        writeln!(f, "  return {}", res.join(", "))?;
        writeln!(f, "}}")
    }
}

/// Renders an element type the way dataset types print (`dataset<...>` payloads).
pub fn elem_text(elem: &ElemType) -> String {
    let mut s = String::new();
    let _ = write!(s, "{elem}");
    s
}
