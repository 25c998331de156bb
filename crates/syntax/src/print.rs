//! A compact, deterministic S-expression dump of the tree with spans, for snapshots.
//!
//! Expressions print on one line; each statement of a block gets its own indented line.

use std::fmt::Write;

use pipec_diag::Span;

use crate::ast::*;

/// Dumps a whole program, one item after another.
pub fn dump(program: &Program) -> String {
    let mut out = String::new();
    for item in &program.items {
        item_sexp(item, &mut out);
        out.push('\n');
    }
    out
}

fn at(s: Span) -> String {
    format!("@{}..{}", s.start, s.end)
}

fn id(i: &Ident) -> String {
    format!("{}{}", i.name, at(i.span))
}

fn item_sexp(item: &Item, out: &mut String) {
    match &item.kind {
        ItemKind::Let { name, value } => {
            let _ = write!(out, "(let {} {} {})", at(item.span), id(name), expr(value));
        }
        ItemKind::Pipeline { name, value } => {
            let _ = write!(
                out,
                "(pipeline {} {} {})",
                at(item.span),
                id(name),
                expr(value)
            );
        }
        ItemKind::Error => {
            let _ = write!(out, "(error {})", at(item.span));
        }
        ItemKind::Fn(decl) => {
            let kind = match decl.kind {
                FnKind::Traced => "fn",
                FnKind::Eager => "eager-fn",
                FnKind::Extern => "extern-eager-fn",
            };
            let params: Vec<String> = decl
                .params
                .iter()
                .map(|p| match &p.ty {
                    Some(ty) => format!("(param {} {} {})", at(p.span), id(&p.name), type_sexp(ty)),
                    None => format!("(param {} {})", at(p.span), id(&p.name)),
                })
                .collect();
            let ret = decl.ret.as_ref().map_or_else(|| "_".to_string(), type_sexp);
            let params = if params.is_empty() {
                "(params)".to_string()
            } else {
                format!("(params {})", params.join(" "))
            };
            let _ = write!(
                out,
                "({kind} {} {} {params} (ret {ret})",
                at(item.span),
                id(&decl.name)
            );
            match &decl.body {
                FnBody::Block(b) => {
                    out.push(' ');
                    block(b, 1, out);
                }
                FnBody::Exec { args, span } => {
                    let args: Vec<String> = args.iter().map(expr).collect();
                    let _ = write!(out, " (exec {} {})", at(*span), args.join(" "));
                }
                FnBody::None => out.push_str(" (no-body)"),
            }
            out.push(')');
        }
    }
}

fn indent(depth: usize, out: &mut String) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn block(b: &Block, depth: usize, out: &mut String) {
    let _ = write!(out, "(block {}", at(b.span));
    for s in &b.stmts {
        indent(depth, out);
        stmt(s, depth, out);
    }
    out.push(')');
}

fn stmt(s: &Stmt, depth: usize, out: &mut String) {
    let sp = at(s.span);
    match &s.kind {
        StmtKind::Let { name, value } => {
            let _ = write!(out, "(let {sp} {} {})", id(name), expr(value));
        }
        StmtKind::Assign { target, value } => {
            let _ = write!(out, "(assign {sp} {} {})", id(target), expr(value));
        }
        StmtKind::Return(Some(v)) => {
            let _ = write!(out, "(return {sp} {})", expr(v));
        }
        StmtKind::Return(None) => {
            let _ = write!(out, "(return {sp})");
        }
        StmtKind::If {
            cond,
            then_block,
            else_block,
        } => {
            let _ = write!(out, "(if {sp} {} ", expr(cond));
            block(then_block, depth + 1, out);
            if let Some(e) = else_block {
                out.push(' ');
                block(e, depth + 1, out);
            }
            out.push(')');
        }
        StmtKind::For { var, iter, body } => {
            let _ = write!(out, "(for {sp} {} {} ", id(var), expr(iter));
            block(body, depth + 1, out);
            out.push(')');
        }
        StmtKind::While { cond, body } => {
            let _ = write!(out, "(while {sp} {} ", expr(cond));
            block(body, depth + 1, out);
            out.push(')');
        }
        StmtKind::Expr(e) => {
            let _ = write!(out, "(expr {sp} {})", expr(e));
        }
        StmtKind::Error => {
            let _ = write!(out, "(error {sp})");
        }
    }
}

fn type_sexp(t: &TypeExpr) -> String {
    match &t.kind {
        TypeExprKind::Tensor { dtype, dims: None } => format!("(ty {} {})", dtype.name, at(t.span)),
        TypeExprKind::Tensor {
            dtype,
            dims: Some(dims),
        } => {
            let dims: Vec<String> = dims
                .iter()
                .map(|d| match d {
                    DimExpr::Known(n, s) => format!("{n}{}", at(*s)),
                    DimExpr::Unknown(s) => format!("?{}", at(*s)),
                })
                .collect();
            format!("(ty {} [{}] {})", dtype.name, dims.join(" "), at(t.span))
        }
        TypeExprKind::Tuple(tys) => {
            let tys: Vec<String> = tys.iter().map(type_sexp).collect();
            format!("(ty-tuple {} {})", at(t.span), tys.join(" ")).replace(" )", ")")
        }
        TypeExprKind::Error => format!("(ty-error {})", at(t.span)),
    }
}

fn list(head: &str, span: Span, parts: Vec<String>) -> String {
    if parts.is_empty() {
        format!("({head} {})", at(span))
    } else {
        format!("({head} {} {})", at(span), parts.join(" "))
    }
}

fn args(args: &[Arg]) -> Vec<String> {
    args.iter()
        .map(|a| match &a.name {
            Some(n) => format!("({} {})", id(n), expr(&a.value)),
            None => expr(&a.value),
        })
        .collect()
}

fn opt(e: &Option<Expr>) -> String {
    e.as_ref().map_or_else(|| "_".to_string(), expr)
}

fn expr(e: &Expr) -> String {
    let sp = e.span;
    match &e.kind {
        ExprKind::Int(n) => format!("(int {n} {})", at(sp)),
        ExprKind::Float(x, _) => format!("(float {x:?} {})", at(sp)),
        ExprKind::Bool(b) => format!("(bool {b} {})", at(sp)),
        ExprKind::Str(s) => format!("(str {s:?} {})", at(sp)),
        ExprKind::Name(n) => format!("(name {n} {})", at(sp)),
        ExprKind::Tuple(xs) => list("tuple", sp, xs.iter().map(expr).collect()),
        ExprKind::List(xs) => list("list", sp, xs.iter().map(expr).collect()),
        ExprKind::Dict(entries) => list(
            "dict",
            sp,
            entries
                .iter()
                .map(|(k, v)| format!("(key {:?} {} {})", k.name, at(k.span), expr(v)))
                .collect(),
        ),
        ExprKind::Unary { op, expr: x } => {
            let op = match op {
                UnaryOp::Neg => "-",
                UnaryOp::Not => "!",
            };
            format!("(unary {op} {} {})", at(sp), expr(x))
        }
        ExprKind::Binary { op, lhs, rhs, .. } => {
            format!(
                "(binary {} {} {} {})",
                op.symbol(),
                at(sp),
                expr(lhs),
                expr(rhs)
            )
        }
        ExprKind::Call { callee, args: a } => {
            let mut parts = vec![expr(callee)];
            parts.extend(args(a));
            list("call", sp, parts)
        }
        ExprKind::Method {
            receiver,
            name,
            args: a,
        } => {
            let mut parts = vec![id(name), expr(receiver)];
            parts.extend(args(a));
            list("method", sp, parts)
        }
        ExprKind::Field { receiver, name } => list("field", sp, vec![id(name), expr(receiver)]),
        ExprKind::Index { base, indices } => {
            let mut parts = vec![expr(base)];
            parts.extend(indices.iter().map(|i| match i {
                IndexItem::Expr(x) => expr(x),
                IndexItem::Slice {
                    start,
                    stop,
                    step,
                    span,
                } => {
                    format!(
                        "(slice {} {} {} {})",
                        at(*span),
                        opt(start),
                        opt(stop),
                        opt(step)
                    )
                }
                IndexItem::Ellipsis(s) => format!("(ellipsis {})", at(*s)),
            }));
            list("index", sp, parts)
        }
        ExprKind::Lambda { params, body } => {
            let ps: Vec<String> = params.iter().map(id).collect();
            format!("(lambda {} ({}) {})", at(sp), ps.join(" "), expr(body))
        }
        ExprKind::Range { start, end } => {
            format!("(range {} {} {})", at(sp), expr(start), expr(end))
        }
        ExprKind::Error => format!("(error {})", at(sp)),
    }
}
