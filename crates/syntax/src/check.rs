//! Checks on the parsed tree that the grammar does not express: the depth limit (E0014)
//! and chained comparisons (E0013).
//!
//! Both walks use an explicit stack, and a too-deep item is taken apart iteratively, so
//! no input can overflow the stack here.

use pipec_diag::{Code, Diagnostic, Span};

use crate::ast::*;
use crate::layout::{MAX_DEPTH, too_deep};

enum Node<'a> {
    Expr(&'a Expr),
    Stmt(&'a Stmt),
    Block(&'a Block),
    Type(&'a TypeExpr),
}

/// Runs the checks on every item; an item nested past [`MAX_DEPTH`] is replaced by an
/// `Error` item.
pub fn check(program: &mut Program, source: &str, diags: &mut Vec<Diagnostic>) {
    for item in &mut program.items {
        if let Some(at) = check_item(item, source, diags) {
            diags.push(too_deep(at));
            let span = item.span;
            let old = std::mem::replace(
                item,
                Item {
                    kind: ItemKind::Error,
                    span,
                },
            );
            dismantle(old);
        }
    }
}

/// Walks one item; returns where it first goes past the depth limit, if it does.
fn check_item(item: &Item, source: &str, diags: &mut Vec<Diagnostic>) -> Option<Span> {
    let mut stack: Vec<(Node<'_>, usize)> = Vec::new();
    match &item.kind {
        ItemKind::Let { value, .. } | ItemKind::Pipeline { value, .. } => {
            stack.push((Node::Expr(value), 1))
        }
        ItemKind::Fn(decl) => {
            for p in &decl.params {
                if let Some(ty) = &p.ty {
                    stack.push((Node::Type(ty), 1));
                }
            }
            if let Some(ty) = &decl.ret {
                stack.push((Node::Type(ty), 1));
            }
            match &decl.body {
                FnBody::Block(b) => stack.push((Node::Block(b), 1)),
                FnBody::Exec { args, .. } => stack.extend(args.iter().map(|a| (Node::Expr(a), 1))),
                FnBody::None => {}
            }
        }
        ItemKind::Error => {}
    }
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            let at = match node {
                Node::Expr(e) => e.span,
                Node::Stmt(s) => s.span,
                Node::Block(b) => b.span,
                Node::Type(t) => t.span,
            };
            return Some(at);
        }
        let d = depth + 1;
        match node {
            Node::Block(b) => stack.extend(b.stmts.iter().map(|s| (Node::Stmt(s), d))),
            Node::Type(t) => {
                if let TypeExprKind::Tuple(tys) = &t.kind {
                    stack.extend(tys.iter().map(|t| (Node::Type(t), d)));
                }
            }
            Node::Stmt(s) => match &s.kind {
                StmtKind::Let { value, .. } | StmtKind::Assign { value, .. } => {
                    stack.push((Node::Expr(value), d))
                }
                StmtKind::Return(value) => stack.extend(value.iter().map(|v| (Node::Expr(v), d))),
                StmtKind::If {
                    cond,
                    then_block,
                    else_block,
                } => {
                    stack.push((Node::Expr(cond), d));
                    stack.push((Node::Block(then_block), d));
                    stack.extend(else_block.iter().map(|b| (Node::Block(b), d)));
                }
                StmtKind::For { iter, body, .. } => {
                    stack.push((Node::Expr(iter), d));
                    stack.push((Node::Block(body), d));
                }
                StmtKind::While { cond, body } => {
                    stack.push((Node::Expr(cond), d));
                    stack.push((Node::Block(body), d));
                }
                StmtKind::Expr(e) => stack.push((Node::Expr(e), d)),
                StmtKind::Error => {}
            },
            Node::Expr(e) => {
                check_chain(e, source, diags);
                match &e.kind {
                    ExprKind::Int(_)
                    | ExprKind::Float(..)
                    | ExprKind::Bool(_)
                    | ExprKind::Str(_)
                    | ExprKind::Name(_)
                    | ExprKind::Error => {}
                    ExprKind::Tuple(xs) | ExprKind::List(xs) => {
                        stack.extend(xs.iter().map(|x| (Node::Expr(x), d)))
                    }
                    ExprKind::Dict(entries) => {
                        stack.extend(entries.iter().map(|(_, x)| (Node::Expr(x), d)))
                    }
                    ExprKind::Unary { expr, .. } => stack.push((Node::Expr(expr), d)),
                    ExprKind::Binary { lhs, rhs, .. }
                    | ExprKind::Range {
                        start: lhs,
                        end: rhs,
                    } => {
                        stack.push((Node::Expr(lhs), d));
                        stack.push((Node::Expr(rhs), d));
                    }
                    ExprKind::Call { callee: base, args }
                    | ExprKind::Method {
                        receiver: base,
                        args,
                        ..
                    } => {
                        stack.push((Node::Expr(base), d));
                        stack.extend(args.iter().map(|a| (Node::Expr(&a.value), d)));
                    }
                    ExprKind::Field { receiver, .. } => stack.push((Node::Expr(receiver), d)),
                    ExprKind::Index { base, indices } => {
                        stack.push((Node::Expr(base), d));
                        for index in indices {
                            match index {
                                IndexItem::Expr(x) => stack.push((Node::Expr(x), d)),
                                IndexItem::Slice {
                                    start, stop, step, ..
                                } => {
                                    for x in [start, stop, step].into_iter().flatten() {
                                        stack.push((Node::Expr(x), d));
                                    }
                                }
                                IndexItem::Ellipsis(_) => {}
                            }
                        }
                    }
                    ExprKind::Lambda { body, .. } => stack.push((Node::Expr(body), d)),
                }
            }
        }
    }
    None
}

fn is_comparison(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
    )
}

/// Reports `a < b < c`. A parenthesized `(a < b) < c` is allowed: there the outer span
/// starts at the `(`, before the inner comparison's own span.
fn check_chain(e: &Expr, source: &str, diags: &mut Vec<Diagnostic>) {
    let ExprKind::Binary {
        op,
        op_span,
        lhs,
        rhs,
    } = &e.kind
    else {
        return;
    };
    let ExprKind::Binary {
        op: first_op,
        op_span: first_span,
        lhs: a,
        rhs: b,
    } = &lhs.kind
    else {
        return;
    };
    if !is_comparison(*op) || !is_comparison(*first_op) || lhs.span.start != e.span.start {
        return;
    }
    let text = |s: Span| source.get(s.range()).unwrap_or("");
    let (a, b, c) = (text(a.span), text(b.span), text(rhs.span));
    let help =
        if a.len() + b.len() + c.len() <= 60 && !a.is_empty() && !b.is_empty() && !c.is_empty() {
            format!(
                "compare each pair and combine them: `({a} {} {b}) && ({b} {} {c})`",
                first_op.symbol(),
                op.symbol()
            )
        } else {
            "compare each pair and combine them with `&&`".to_string()
        };
    diags.push(
        Diagnostic::error(
            Code::ChainedComparison,
            "comparison operators cannot be chained",
        )
        .with_label(*op_span, "second comparison here")
        .with_label(*first_span, "first comparison here")
        .with_help(help),
    );
}

/// Drops a tree without recursion: a too-deep tree would overflow the stack in the
/// derived recursive `Drop`.
fn dismantle(item: Item) {
    enum Owned {
        Expr(Expr),
        Stmt(Stmt),
    }
    let mut stack: Vec<Owned> = Vec::new();
    let push_block =
        |stack: &mut Vec<Owned>, b: Block| stack.extend(b.stmts.into_iter().map(Owned::Stmt));
    match item.kind {
        ItemKind::Let { value, .. } | ItemKind::Pipeline { value, .. } => {
            stack.push(Owned::Expr(value))
        }
        ItemKind::Fn(decl) => match decl.body {
            FnBody::Block(b) => push_block(&mut stack, b),
            FnBody::Exec { args, .. } => stack.extend(args.into_iter().map(Owned::Expr)),
            FnBody::None => {}
        },
        ItemKind::Error => {}
    }
    while let Some(node) = stack.pop() {
        match node {
            Owned::Stmt(s) => match s.kind {
                StmtKind::Let { value, .. } | StmtKind::Assign { value, .. } => {
                    stack.push(Owned::Expr(value))
                }
                StmtKind::Return(value) => stack.extend(value.map(Owned::Expr)),
                StmtKind::If {
                    cond,
                    then_block,
                    else_block,
                } => {
                    stack.push(Owned::Expr(cond));
                    push_block(&mut stack, then_block);
                    if let Some(b) = else_block {
                        push_block(&mut stack, b);
                    }
                }
                StmtKind::For {
                    iter: cond, body, ..
                }
                | StmtKind::While { cond, body } => {
                    stack.push(Owned::Expr(cond));
                    push_block(&mut stack, body);
                }
                StmtKind::Expr(e) => stack.push(Owned::Expr(e)),
                StmtKind::Error => {}
            },
            Owned::Expr(e) => match e.kind {
                ExprKind::Tuple(xs) | ExprKind::List(xs) => {
                    stack.extend(xs.into_iter().map(Owned::Expr))
                }
                ExprKind::Dict(entries) => {
                    stack.extend(entries.into_iter().map(|(_, x)| Owned::Expr(x)))
                }
                ExprKind::Unary { expr, .. } | ExprKind::Field { receiver: expr, .. } => {
                    stack.push(Owned::Expr(*expr))
                }
                ExprKind::Lambda { body, .. } => stack.push(Owned::Expr(*body)),
                ExprKind::Binary { lhs, rhs, .. }
                | ExprKind::Range {
                    start: lhs,
                    end: rhs,
                } => {
                    stack.push(Owned::Expr(*lhs));
                    stack.push(Owned::Expr(*rhs));
                }
                ExprKind::Call { callee: base, args }
                | ExprKind::Method {
                    receiver: base,
                    args,
                    ..
                } => {
                    stack.push(Owned::Expr(*base));
                    stack.extend(args.into_iter().map(|a| Owned::Expr(a.value)));
                }
                ExprKind::Index { base, indices } => {
                    stack.push(Owned::Expr(*base));
                    for index in indices {
                        match index {
                            IndexItem::Expr(x) => stack.push(Owned::Expr(x)),
                            IndexItem::Slice {
                                start, stop, step, ..
                            } => {
                                stack.extend(
                                    [start, stop, step].into_iter().flatten().map(Owned::Expr),
                                );
                            }
                            IndexItem::Ellipsis(_) => {}
                        }
                    }
                }
                _ => {}
            },
        }
    }
}
