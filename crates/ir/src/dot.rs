//! The IR as a Graphviz graph (`pipec --emit-dot`).
//!
//! Every pipeline is a cluster of dataset nodes with edges in the direction data flows;
//! every function is a cluster of its dataflow (parameters, ops, the return), linked by a
//! dashed edge to each `map`/`filter` node that runs it. A `fused_elementwise` op is drawn
//! as a nested cluster of its scalar instructions, so the fusion the optimizer did is
//! visible, and eager calls stand out (orange double octagons labelled "eager"), since they
//! are the opaque barriers of the program. Labels reuse the IR printer's text, so the graph
//! and `--emit-ir` say the same words. The output depends only on the program: node ids
//! are positions, never addresses or hash-map order.

use crate::Program;
use crate::function::{Function, FusedOp, OpKind};
use crate::pipeline::{DsKind, Pipeline};
use crate::print::{as_eager_decl, ds_node_text, func_header, fused_inst_text, op_text};
use std::collections::HashMap;
use std::fmt::Write;

/// Attributes of an eager (opaque host) call, in the dataflow and on the dataset graph.
const EAGER_STYLE: &str =
    "shape=doubleoctagon, style=\"filled,bold\", fillcolor=\"#ffd8a8\", color=\"#d9480f\"";

/// Renders `prog` as a Graphviz `digraph` (DOT text, ending with a newline).
pub fn to_dot(prog: &Program) -> String {
    let mut out = String::new();
    out.push_str("digraph pipec {\n");
    out.push_str("  graph [compound=true, rankdir=TB, fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("  node [shape=box, fontname=\"Courier\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Courier\", fontsize=9];\n");
    // Links from map/filter nodes to their functions are drawn after every cluster exists.
    let mut links = Vec::new();
    // Inner pipelines of `interleave`/`flat_map` are clusters of their own, numbered after
    // the named ones, each drawn with a dotted edge to the node that opens it per element.
    let mut queue: Vec<(&Pipeline, Option<String>)> =
        prog.pipelines.iter().map(|p| (p, None)).collect();
    let mut pi = 0;
    while pi < queue.len() {
        let (p, parent) = queue[pi].clone();
        let mut nested = Vec::new();
        pipeline_cluster(&mut out, prog, pi, p, &mut links, &mut nested);
        if let Some(parent) = parent {
            let _ = writeln!(
                out,
                "  p{pi}_out -> {parent} [style=dotted, color=\"#868e96\", label=\"per element\"];"
            );
        }
        queue.extend(nested.into_iter().map(|(p, id)| (p, Some(id))));
        pi += 1;
    }
    let mut anchors = Vec::with_capacity(prog.functions.len());
    for (fi, func) in prog.functions.iter().enumerate() {
        anchors.push(function_cluster(&mut out, fi, func));
    }
    for (from, fi, label) in links {
        if let Some(anchor) = anchors.get(fi) {
            let _ = writeln!(
                out,
                "  {from} -> {anchor} [lhead=cluster_f{fi}, style=dashed, color=\"#868e96\", arrowhead=vee, label=\"{}\"];",
                esc(&label)
            );
        }
    }
    out.push_str("}\n");
    out
}

/// Escapes text for a double-quoted DOT string: quotes and backslashes are escaped (so a
/// path like `C:\data` is not read as DOT's `\d`), and newlines become DOT's `\n`.
fn esc(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => {}
            c => s.push(c),
        }
    }
    s
}

/// Draws pipeline `pi` and records `(node id, function index, label)` for each function it
/// runs.
fn pipeline_cluster<'p>(
    out: &mut String,
    prog: &Program,
    pi: usize,
    p: &'p Pipeline,
    links: &mut Vec<(String, usize, String)>,
    nested: &mut Vec<(&'p Pipeline, String)>,
) {
    let order = p.topo_order();
    let names: HashMap<_, _> = order
        .iter()
        .enumerate()
        .map(|(i, &n)| (n, format!("%d{i}")))
        .collect();
    let ids: HashMap<_, _> = order
        .iter()
        .enumerate()
        .map(|(i, &n)| (n, format!("p{pi}_d{i}")))
        .collect();
    let _ = writeln!(out, "  subgraph cluster_p{pi} {{");
    let title = format!(
        "pipeline @{} -> dataset<{}>",
        p.name, p.graph[p.output].elem
    );
    let _ = writeln!(
        out,
        "    label=\"{}\"; style=rounded; color=\"#1c7ed6\";",
        esc(&title)
    );
    for &node in &order {
        let n = &p.graph[node];
        let text = ds_node_text(prog, p, node, &names);
        let func_id = match &n.kind {
            DsKind::Interleave(nest) => {
                nested.push((&nest.inner, ids[&node].clone()));
                Some(nest.func)
            }
            kind => kind.func(),
        };
        let func = func_id.and_then(|f| prog.functions.get(f.index()));
        let calls_eager = func.is_some_and(Function::has_eager);
        let (label, attrs) = if calls_eager {
            (format!("{text}\n(calls eager)"), format!(", {EAGER_STYLE}"))
        } else {
            (
                text,
                ", style=\"rounded,filled\", fillcolor=\"#e7f5ff\"".to_string(),
            )
        };
        let _ = writeln!(
            out,
            "    {} [label=\"{}\"{attrs}];",
            ids[&node],
            esc(&label)
        );
        if let (Some(f), Some(id)) = (func, func_id) {
            links.push((ids[&node].clone(), id.index(), format!("@{}", f.name)));
        }
    }
    let _ = writeln!(
        out,
        "    p{pi}_out [shape=plaintext, label=\"yield {}\"];",
        esc(&names[&p.output])
    );
    let _ = writeln!(out, "  }}");
    for &node in &order {
        for input in p.inputs(node) {
            let _ = writeln!(
                out,
                "  {} -> {} [label=\"{}\"];",
                ids[&input],
                ids[&node],
                esc(&p.graph[input].elem.to_string())
            );
        }
    }
    let _ = writeln!(
        out,
        "  {} -> p{pi}_out [label=\"{}\"];",
        ids[&p.output],
        esc(&p.graph[p.output].elem.to_string())
    );
}

/// Draws function `fi` as a cluster of its dataflow and returns the id of a node inside
/// it (the anchor that links from dataset nodes point at).
fn function_cluster(out: &mut String, fi: usize, func: &Function) -> String {
    let _ = writeln!(out, "  subgraph cluster_f{fi} {{");
    let mut title = func_header(func);
    if let Some(flavor) = as_eager_decl(func) {
        title.push(' ');
        title.push_str(flavor);
    }
    let _ = writeln!(
        out,
        "    label=\"{}\"; style=rounded; color=\"#495057\";",
        esc(&title)
    );
    // The node that defines each value: a parameter, an op, or a fused op's result register.
    let mut def: Vec<Option<String>> = vec![None; func.values.len()];
    let mut edges = Vec::new();
    for (k, &p) in func.params.iter().enumerate() {
        let id = format!("f{fi}_p{k}");
        let label = format!("{p}: {}", func.ty(p));
        let _ = writeln!(out, "    {id} [shape=ellipse, label=\"{}\"];", esc(&label));
        if let Some(slot) = def.get_mut(p.index()) {
            *slot = Some(id);
        }
    }
    let lookup = |def: &[Option<String>], v: crate::ValueId| def.get(v.index()).cloned().flatten();
    for (oi, op) in func.ops.iter().enumerate() {
        let id = format!("f{fi}_op{oi}");
        match &op.kind {
            OpKind::Fused(body) => {
                let _ = writeln!(out, "    subgraph cluster_f{fi}_op{oi} {{");
                let _ = writeln!(
                    out,
                    "      label=\"{}\"; style=\"rounded,filled\"; fillcolor=\"#ebfbee\"; color=\"#2b8a3e\";",
                    esc(&op_text(func, op))
                );
                for (i, inst) in body.insts.iter().enumerate() {
                    let reg = format!("{id}_r{i}");
                    let _ = writeln!(
                        out,
                        "      {reg} [style=filled, fillcolor=white, label=\"{}\"];",
                        esc(&fused_inst_text(body, i, inst))
                    );
                    let regs: Vec<u32> = match inst {
                        FusedOp::Input(n) => {
                            if let Some(src) = op.inputs.get(*n).and_then(|&v| lookup(&def, v)) {
                                edges.push((src, reg.clone()));
                            }
                            Vec::new()
                        }
                        FusedOp::Const(_) => Vec::new(),
                        FusedOp::Unary(_, a) | FusedOp::Cast(a) => vec![*a],
                        FusedOp::Binary(_, a, b) => vec![*a, *b],
                        FusedOp::Select(a, b, c) | FusedOp::Clip(a, b, c) => vec![*a, *b, *c],
                    };
                    for r in regs {
                        edges.push((format!("{id}_r{r}"), reg.clone()));
                    }
                }
                let _ = writeln!(out, "    }}");
                for (k, &o) in op.outputs.iter().enumerate() {
                    if let (Some(&r), Some(slot)) = (body.results.get(k), def.get_mut(o.index())) {
                        *slot = Some(format!("{id}_r{r}"));
                    }
                }
            }
            kind => {
                let text = op_text(func, op);
                let (label, attrs) = match kind {
                    OpKind::Eager(_) => (format!("eager\n{text}"), format!(", {EAGER_STYLE}")),
                    OpKind::Const(_) => (text, ", shape=note".to_string()),
                    _ => (text, String::new()),
                };
                let _ = writeln!(out, "    {id} [label=\"{}\"{attrs}];", esc(&label));
                for &v in &op.inputs {
                    if let Some(src) = lookup(&def, v) {
                        edges.push((src, id.clone()));
                    }
                }
                for &o in &op.outputs {
                    if let Some(slot) = def.get_mut(o.index()) {
                        *slot = Some(id.clone());
                    }
                }
            }
        }
    }
    let ret = format!("f{fi}_ret");
    let res: Vec<String> = func.results.iter().map(|r| r.to_string()).collect();
    let _ = writeln!(
        out,
        "    {ret} [shape=plaintext, label=\"{}\"];",
        esc(&format!("return {}", res.join(", ")))
    );
    for &r in &func.results {
        if let Some(src) = lookup(&def, r) {
            edges.push((src, ret.clone()));
        }
    }
    let _ = writeln!(out, "  }}");
    for (from, to) in edges {
        let _ = writeln!(out, "  {from} -> {to};");
    }
    if func.params.is_empty() {
        ret
    } else {
        format!("f{fi}_p0")
    }
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn labels_escape_quotes_backslashes_and_newlines() {
        assert_eq!(
            esc("read_npy(\"C:\\d.npy\")\nx"),
            "read_npy(\\\"C:\\\\d.npy\\\")\\nx"
        );
    }
}
