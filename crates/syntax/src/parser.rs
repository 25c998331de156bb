//! The chumsky grammar from tokens to the [`crate::ast`], and the conversion of its errors
//! into diagnostics.
//!
//! Precedence, loosest first (Python's order): `||`, `&&`, comparisons, `+ -`,
//! `* / // % @`, prefix `- !`, `**` (right-associative), then postfix calls, methods,
//! fields and indexing.
//!
//! Errors that need their own code travel through chumsky as `Rich::custom` messages in a
//! small encoding (see [`custom`]) and are decoded in [`convert`].

use chumsky::error::{RichPattern, RichReason};
use chumsky::input::ValueInput;
use chumsky::pratt::{infix, left, prefix, right};
use chumsky::prelude::*;
use pipec_diag::{Code, Diagnostic, Span};

use crate::ast::*;
use crate::lexer::{Token, unescape};

type Extra<'t, 's> = extra::Err<Rich<'t, Token<'s>, SimpleSpan>>;

fn span(s: SimpleSpan) -> Span {
    Span::new(s.start, s.end)
}

const SEP: char = '\u{1f}';
/// Brackets a span in a message, to be replaced by that span's source text in [`convert`]:
/// the grammar sees tokens, but a help line should quote what the user wrote.
const SRC: char = '\u{1e}';

/// A placeholder for the source text of `at`, filled in by [`fill_source`].
fn source_text(at: Span) -> String {
    format!("{SRC}{}:{}{SRC}", at.start, at.end)
}

/// Replaces every [`source_text`] placeholder in `text` by the text it stands for.
fn fill_source(text: &str, source: &str) -> String {
    let mut out = String::new();
    let mut parts = text.split(SRC);
    out.push_str(parts.next().unwrap_or(""));
    while let (Some(range), rest) = (parts.next(), parts.next()) {
        let quoted = range
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
            .and_then(|(a, b)| source.get(a..b));
        // A long or multi-line quote would drown the help line; the label shows the place.
        let quoted = quoted.filter(|q| q.len() <= 60 && !q.contains('\n'));
        out.push_str(quoted.unwrap_or("..."));
        out.push_str(rest.unwrap_or(""));
    }
    out
}

/// Encodes an error with its own code for transport through `Rich::custom`.
fn custom<'t, 's>(
    code: Code,
    at: SimpleSpan,
    message: &str,
    label: &str,
    help: Option<&str>,
    secondary: Option<(Span, &str)>,
) -> Rich<'t, Token<'s>, SimpleSpan> {
    let (sec_start, sec_end, sec_msg) = secondary.map_or((0, 0, ""), |(s, m)| (s.start, s.end, m));
    let text = [
        code.as_str(),
        message,
        label,
        help.unwrap_or(""),
        &sec_start.to_string(),
        &sec_end.to_string(),
        sec_msg,
    ]
    .join(&SEP.to_string());
    Rich::custom(at, text)
}

fn decode(text: &str, at: Span) -> Diagnostic {
    let parts: Vec<&str> = text.split(SEP).collect();
    if parts.len() != 7 {
        return Diagnostic::error(Code::UnexpectedToken, text.to_string()).with_label(at, "");
    }
    let code = Code::parse(parts[0]).unwrap_or(Code::UnexpectedToken);
    let mut diag = Diagnostic::error(code, parts[1]).with_label(at, parts[2]);
    let (start, end) = (parts[4].parse().unwrap_or(0), parts[5].parse().unwrap_or(0));
    if end > start {
        diag = diag.with_label(Span::new(start, end), parts[6]);
    }
    if !parts[3].is_empty() {
        diag = diag.with_help(parts[3]);
    }
    diag
}

fn ident<'t, 's: 't, I>() -> impl Parser<'t, I, Ident, Extra<'t, 's>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = SimpleSpan>,
{
    select! { Token::Ident(name) = e => Ident { name: name.to_string(), span: span(e.span()) } }
        .labelled("identifier")
}

/// One postfix operation, folded onto its base left to right.
enum Post {
    Call(Vec<Arg>),
    Member(Ident, Option<Vec<Arg>>),
    Index(Vec<IndexItem>),
}

fn binary(lhs: Expr, (op, op_span): (BinaryOp, Span), rhs: Expr, whole: SimpleSpan) -> Expr {
    Expr {
        kind: ExprKind::Binary {
            op,
            op_span,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        span: span(whole),
    }
}

fn expr<'t, 's: 't, I>() -> impl Parser<'t, I, Expr, Extra<'t, 's>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = SimpleSpan>,
{
    recursive(|expr| {
        let literal = select! {
            Token::Int(n) => ExprKind::Int(n),
            Token::Float(x) => ExprKind::Float(crate::lexer::float_value(x), x.to_string()),
            Token::True => ExprKind::Bool(true),
            Token::False => ExprKind::Bool(false),
            Token::Str(s) => ExprKind::Str(unescape(s)),
            // Already reported by the lexer; standing in for the bad literal keeps parsing quiet.
            Token::Error => ExprKind::Error,
        }
        .map_with(|kind, e| Expr {
            kind,
            span: span(e.span()),
        });

        let name = ident().map(|id| Expr {
            kind: ExprKind::Name(id.name),
            span: id.span,
        });

        // `seed=42` is Python's keyword syntax: parsed as the named argument it means, with
        // an error that shows the pipec spelling, so the rest of the call is still checked.
        let arg_name = ident().then(choice((
            just(Token::Colon).to(None),
            just(Token::Eq).map_with(|_, e| Some(e.span())),
        )));
        let arg = arg_name.or_not().then(expr.clone()).validate(
            |(name, value): (Option<(Ident, Option<SimpleSpan>)>, Expr), _, emitter| {
                if let Some((id, Some(eq))) = &name {
                    let written = format!("{}: {}", id.name, source_text(value.span));
                    emitter.emit(custom(
                        Code::UnexpectedToken,
                        *eq,
                        &format!(
                            "expected `:` after the argument name `{}`, found `=`",
                            id.name
                        ),
                        "named arguments take `:`, not Python's `=`",
                        Some(&format!("write `{written}`")),
                        None,
                    ));
                }
                Arg {
                    name: name.map(|(id, _)| id),
                    value,
                }
            },
        );
        let args = arg
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LParen), just(Token::RParen))
            .boxed();

        let items = expr
            .clone()
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>();

        let list = items
            .clone()
            .delimited_by(just(Token::LBracket), just(Token::RBracket))
            .map_with(|xs, e| Expr {
                kind: ExprKind::List(xs),
                span: span(e.span()),
            });

        // `()`, `(e)`, `(e,)`, `(a, b)`: the first expression is parsed once, whatever follows.
        let paren = expr
            .clone()
            .then(just(Token::Comma).ignore_then(items.clone()).or_not())
            .or_not()
            .delimited_by(just(Token::LParen), just(Token::RParen))
            .map_with(|inner, e| match inner {
                None => Expr {
                    kind: ExprKind::Tuple(Vec::new()),
                    span: span(e.span()),
                },
                Some((first, None)) => first,
                Some((first, Some(rest))) => {
                    let mut xs = vec![first];
                    xs.extend(rest);
                    Expr {
                        kind: ExprKind::Tuple(xs),
                        span: span(e.span()),
                    }
                }
            });

        // `{"a": x, "b": y}`. A name as a key is a Python habit worth its own message.
        let dict_key = select! {
            Token::Str(s) = e => Ok(Ident { name: unescape(s), span: span(e.span()) }),
            Token::Ident(n) = e => Err(Ident { name: n.to_string(), span: span(e.span()) }),
        }
        .labelled("string key")
        .validate(|key: Result<Ident, Ident>, _, emitter| match key {
            Ok(k) => k,
            Err(k) => {
                emitter.emit(custom(
                    Code::UnexpectedToken,
                    SimpleSpan::from(k.span.range()),
                    "dict keys are string literals",
                    "a name, not a string",
                    Some(&format!("quote the key: `\"{}\": ...`", k.name)),
                    None,
                ));
                k
            }
        });
        let dict = dict_key
            .then_ignore(just(Token::Colon))
            .then(expr.clone())
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBrace), just(Token::RBrace))
            .map_with(|entries, e| Expr {
                kind: ExprKind::Dict(entries),
                span: span(e.span()),
            });

        let lambda_params = choice((
            ident()
                .separated_by(just(Token::Comma))
                .allow_trailing()
                .collect::<Vec<_>>()
                .delimited_by(just(Token::Pipe), just(Token::Pipe)),
            just(Token::OrOr).to(Vec::new()),
        ));
        let lambda = lambda_params
            .then(expr.clone().labelled("lambda body"))
            .map_with(|(params, body), e| Expr {
                kind: ExprKind::Lambda {
                    params,
                    body: Box::new(body),
                },
                span: span(e.span()),
            });

        // Python's `lambda x: BODY`, parsed as the lambda it means (so the body is still
        // checked), with an error that shows the pipec spelling. `lambda` alone stays a name.
        let python_lambda = select! { Token::Ident("lambda") = e => e.span() }
            .then(
                ident()
                    .separated_by(just(Token::Comma))
                    .at_least(1)
                    .collect::<Vec<_>>(),
            )
            .then(just(Token::Colon).map_with(|_, e| e.span()))
            .then(expr.clone().labelled("lambda body"))
            .validate(
                |(((kw, params), colon), body): (((SimpleSpan, Vec<Ident>), SimpleSpan), Expr),
                 e,
                 emitter| {
                    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
                    let written = format!("|{}| {}", names.join(", "), source_text(body.span));
                    emitter.emit(custom(
                        Code::UnexpectedToken,
                        SimpleSpan::from(kw.start..colon.end),
                        "a lambda is written `|x| ...` in pipec, not Python's `lambda x: ...`",
                        "a Python lambda",
                        Some(&format!("write `{written}`")),
                        None,
                    ));
                    Expr {
                        kind: ExprKind::Lambda {
                            params,
                            body: Box::new(body),
                        },
                        span: span(e.span()),
                    }
                },
            );

        // Python's `dict(image=x, label=y)`: parsed as the dict it means, with one error for
        // the whole call (not one per `=`) whose help writes the dict literal.
        let python_dict = select! { Token::Ident("dict") = e => e.span() }
            .then(
                ident()
                    .then_ignore(choice((just(Token::Eq), just(Token::Colon))))
                    .then(expr.clone())
                    .separated_by(just(Token::Comma))
                    .allow_trailing()
                    .at_least(1)
                    .collect::<Vec<_>>()
                    .delimited_by(just(Token::LParen), just(Token::RParen)),
            )
            .validate(
                |(at, entries): (SimpleSpan, Vec<(Ident, Expr)>), e, emitter| {
                    let whole: SimpleSpan = e.span();
                    let written: Vec<String> = entries
                        .iter()
                        .map(|(k, v)| format!("\"{}\": {}", k.name, source_text(v.span)))
                        .collect();
                    emitter.emit(custom(
                        Code::UnexpectedToken,
                        SimpleSpan::from(at.start..whole.end),
                        "`dict(...)` is Python's: pipec writes a dict literal",
                        "a Python dict",
                        Some(&format!("write `{{{}}}`", written.join(", "))),
                        None,
                    ));
                    Expr {
                        kind: ExprKind::Dict(entries),
                        span: span(whole),
                    }
                },
            );

        let atom = choice((
            literal,
            python_lambda,
            python_dict,
            name,
            paren,
            list,
            dict,
            lambda,
        ))
        .labelled("expression")
        .boxed();

        let opt = expr.clone().or_not();
        let slice_tail = just(Token::Colon)
            .ignore_then(opt.clone())
            .then(just(Token::Colon).ignore_then(opt.clone()).or_not());
        let index_item = choice((
            just(Token::DotDotDot).map_with(|_, e| IndexItem::Ellipsis(span(e.span()))),
            expr.clone().then(slice_tail.clone().or_not()).map_with(
                |(first, tail), e| match tail {
                    None => IndexItem::Expr(first),
                    Some((stop, step)) => IndexItem::Slice {
                        start: Some(first),
                        stop,
                        step: step.flatten(),
                        span: span(e.span()),
                    },
                },
            ),
            slice_tail.map_with(|(stop, step), e| IndexItem::Slice {
                start: None,
                stop,
                step: step.flatten(),
                span: span(e.span()),
            }),
        ))
        .labelled("index");
        let index = index_item
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .at_least(1)
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBracket), just(Token::RBracket));

        let post = choice((
            args.clone().map(Post::Call),
            just(Token::Dot)
                .ignore_then(ident().labelled("field or method name"))
                .then(args.clone().or_not())
                .map(|(name, args)| Post::Member(name, args)),
            index.map(Post::Index),
        ));
        let postfix = atom
            .foldl_with(post.repeated(), |base, post, e| {
                let kind = match post {
                    Post::Call(args) => ExprKind::Call {
                        callee: Box::new(base),
                        args,
                    },
                    Post::Member(name, Some(args)) => ExprKind::Method {
                        receiver: Box::new(base),
                        name,
                        args,
                    },
                    Post::Member(name, None) => ExprKind::Field {
                        receiver: Box::new(base),
                        name,
                    },
                    Post::Index(indices) => ExprKind::Index {
                        base: Box::new(base),
                        indices,
                    },
                };
                Expr {
                    kind,
                    span: span(e.span()),
                }
            })
            .boxed();

        let op =
            |tok: Token<'s>, op: BinaryOp| just(tok).to(op).map_with(|op, e| (op, span(e.span())));
        let unary = select! { Token::Minus => UnaryOp::Neg, Token::Bang => UnaryOp::Not };

        postfix
            .pratt((
                infix(
                    right(7),
                    op(Token::StarStar, BinaryOp::Pow),
                    |l, o, r, e| binary(l, o, r, e.span()),
                ),
                prefix(6, unary, |op, rhs, e| Expr {
                    kind: ExprKind::Unary {
                        op,
                        expr: Box::new(rhs),
                    },
                    span: span(e.span()),
                }),
                infix(
                    left(5),
                    choice((
                        op(Token::Star, BinaryOp::Mul),
                        op(Token::Slash, BinaryOp::Div),
                        op(Token::SlashSlash, BinaryOp::FloorDiv),
                        op(Token::Percent, BinaryOp::Mod),
                        op(Token::At, BinaryOp::MatMul),
                    )),
                    |l, o, r, e| binary(l, o, r, e.span()),
                ),
                infix(
                    left(4),
                    choice((
                        op(Token::Plus, BinaryOp::Add),
                        op(Token::Minus, BinaryOp::Sub),
                    )),
                    |l, o, r, e| binary(l, o, r, e.span()),
                ),
                // Left-associative here; chains such as `a < b < c` are rejected after parsing (E0013).
                infix(
                    left(3),
                    choice((
                        op(Token::EqEq, BinaryOp::Eq),
                        op(Token::NotEq, BinaryOp::Ne),
                        op(Token::Lt, BinaryOp::Lt),
                        op(Token::Le, BinaryOp::Le),
                        op(Token::Gt, BinaryOp::Gt),
                        op(Token::Ge, BinaryOp::Ge),
                    )),
                    |l, o, r, e| binary(l, o, r, e.span()),
                ),
                infix(left(2), op(Token::AndAnd, BinaryOp::And), |l, o, r, e| {
                    binary(l, o, r, e.span())
                }),
                infix(left(1), op(Token::OrOr, BinaryOp::Or), |l, o, r, e| {
                    binary(l, o, r, e.span())
                }),
            ))
            .labelled("expression")
            .boxed()
    })
}

fn type_expr<'t, 's: 't, I>() -> impl Parser<'t, I, TypeExpr, Extra<'t, 's>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = SimpleSpan>,
{
    recursive(|ty| {
        let dim = select! {
            Token::Int(n) = e => DimExpr::Known(n, span(e.span())),
            Token::Question = e => DimExpr::Unknown(span(e.span())),
        }
        .labelled("dimension");
        let dims = dim
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBracket), just(Token::RBracket));
        let tensor = ident()
            .then(dims.or_not())
            .map_with(|(dtype, dims), e| TypeExpr {
                kind: TypeExprKind::Tensor { dtype, dims },
                span: span(e.span()),
            });
        let tuple = ty
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LParen), just(Token::RParen))
            .map_with(|tys, e| TypeExpr {
                kind: TypeExprKind::Tuple(tys),
                span: span(e.span()),
            });
        choice((tensor, tuple)).labelled("type")
    })
}

fn separator<'t, 's: 't, I>() -> impl Parser<'t, I, (), Extra<'t, 's>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = SimpleSpan>,
{
    choice((just(Token::Newline), just(Token::Semi))).ignored()
}

/// Tokens up to the end of the line, delimiters balanced (the layout pass made them so).
fn junk<'t, 's: 't, I>() -> impl Parser<'t, I, (), Extra<'t, 's>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = SimpleSpan>,
{
    let group = recursive(|group| {
        let plain = any()
            .filter(|t: &Token<'s>| t.closer().is_none() && !t.is_closer())
            .ignored();
        let inner = choice((group, plain)).repeated();
        choice((
            inner
                .clone()
                .delimited_by(just(Token::LParen), just(Token::RParen)),
            inner
                .clone()
                .delimited_by(just(Token::LBracket), just(Token::RBracket)),
            inner.delimited_by(just(Token::LBrace), just(Token::RBrace)),
        ))
        .ignored()
    });
    // Never a closer: the junk of a statement stops at its block's `}`.
    let plain = any()
        .filter(|t: &Token<'s>| {
            !(t.closer().is_some() || t.is_closer() || matches!(t, Token::Newline | Token::Semi))
        })
        .ignored();
    choice((group, plain)).repeated().at_least(1)
}

fn params<'t, 's: 't, I>() -> impl Parser<'t, I, Vec<Param>, Extra<'t, 's>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = SimpleSpan>,
{
    let param = ident()
        .labelled("parameter")
        .then(just(Token::Colon).ignore_then(type_expr()).or_not())
        .map_with(|(name, ty), e| Param {
            name,
            ty,
            span: span(e.span()),
        });
    param
        .separated_by(just(Token::Comma))
        .allow_trailing()
        .collect::<Vec<_>>()
        .delimited_by(just(Token::LParen), just(Token::RParen))
        .validate(|params: Vec<Param>, _, emitter| {
            for (i, p) in params.iter().enumerate() {
                if let Some(first) = params[..i].iter().find(|q| q.name.name == p.name.name) {
                    let s = p.name.span;
                    emitter.emit(custom(
                        Code::DuplicateParameter,
                        SimpleSpan::from(s.range()),
                        &format!("parameter `{}` is declared twice", p.name.name),
                        "declared again here",
                        Some("give each parameter its own name"),
                        Some((first.name.span, "first declared here")),
                    ));
                }
            }
            params
        })
}

fn block<'t, 's: 't, I>() -> impl Parser<'t, I, Block, Extra<'t, 's>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = SimpleSpan>,
{
    recursive(|block| {
        let expr = expr();
        let stmt_of = |kind, e: SimpleSpan| Stmt {
            kind,
            span: span(e),
        };

        let let_stmt = just(Token::Let)
            .ignore_then(ident().labelled("name"))
            .then_ignore(just(Token::Eq))
            .then(expr.clone())
            .map_with(move |(name, value), e| stmt_of(StmtKind::Let { name, value }, e.span()));

        let return_stmt = just(Token::Return)
            .ignore_then(expr.clone().or_not())
            .map_with(move |value, e| stmt_of(StmtKind::Return(value), e.span()));

        let if_stmt = recursive(|if_stmt| {
            just(Token::If)
                .ignore_then(expr.clone())
                .then(block.clone())
                .then(
                    just(Token::Else)
                        .ignore_then(choice((
                            block.clone(),
                            if_stmt.map(|s: Stmt| Block {
                                span: s.span,
                                stmts: vec![s],
                            }),
                        )))
                        .or_not(),
                )
                .map_with(move |((cond, then_block), else_block), e| {
                    stmt_of(
                        StmtKind::If {
                            cond,
                            then_block,
                            else_block,
                        },
                        e.span(),
                    )
                })
        });

        let iter = expr
            .clone()
            .then(just(Token::DotDot).ignore_then(expr.clone()).or_not())
            .map_with(|(start, end), e| match end {
                None => start,
                Some(end) => Expr {
                    kind: ExprKind::Range {
                        start: Box::new(start),
                        end: Box::new(end),
                    },
                    span: span(e.span()),
                },
            });
        let for_stmt = just(Token::For)
            .ignore_then(ident().labelled("loop variable"))
            .then_ignore(just(Token::In))
            .then(iter)
            .then(block.clone())
            .map_with(move |((var, iter), body), e| {
                stmt_of(StmtKind::For { var, iter, body }, e.span())
            });

        let while_stmt = just(Token::While)
            .ignore_then(expr.clone())
            .then(block.clone())
            .map_with(move |(cond, body), e| stmt_of(StmtKind::While { cond, body }, e.span()));

        let misplaced = choice((
            just(Token::Fn),
            just(Token::Eager),
            just(Token::Extern),
            just(Token::Pipeline),
        ))
        .map_with(|tok, e| (tok, e.span()))
        .then_ignore(junk().or_not())
        .validate(|(tok, at), e, emitter| {
            let what = if tok == Token::Pipeline {
                "a pipeline"
            } else {
                "a function"
            };
            emitter.emit(custom(
                Code::MisplacedItem,
                at,
                &format!("{what} cannot be declared inside a function body"),
                "only statements may appear here",
                Some("move the declaration to the top level of the file"),
                None,
            ));
            Stmt {
                kind: StmtKind::Error,
                span: span(e.span()),
            }
        });

        let expr_stmt = expr
            .clone()
            .then(just(Token::Eq).ignore_then(expr.clone()).or_not())
            .validate(|(lhs, rhs), e, emitter| {
                let kind = match rhs {
                    None => StmtKind::Expr(lhs),
                    Some(value) => match lhs.kind {
                        ExprKind::Name(name) => StmtKind::Assign { target: Ident { name, span: lhs.span }, value },
                        _ => {
                            emitter.emit(custom(
                                Code::InvalidAssignTarget,
                                SimpleSpan::from(lhs.span.range()),
                                "invalid assignment target",
                                "only a name can be assigned to",
                                Some("tensors are immutable: bind the new value to a name with `let`"),
                                None,
                            ));
                            StmtKind::Error
                        }
                    },
                };
                Stmt { kind, span: span(e.span()) }
            });

        let stmt = choice((
            let_stmt,
            return_stmt,
            if_stmt,
            for_stmt,
            while_stmt,
            misplaced,
            expr_stmt,
        ))
        .labelled("statement");
        let stmt_end =
            choice((just(Token::Newline), just(Token::Semi), just(Token::RBrace))).rewind();
        let stmt_line = stmt
            .then_ignore(stmt_end)
            .recover_with(via_parser(junk().map_with(|_, e| Stmt {
                kind: StmtKind::Error,
                span: span(e.span()),
            })))
            .boxed();

        separator()
            .repeated()
            .ignore_then(
                stmt_line
                    .then_ignore(separator().repeated())
                    .repeated()
                    .collect::<Vec<_>>(),
            )
            .delimited_by(just(Token::LBrace), just(Token::RBrace))
            .map_with(|stmts, e| Block {
                stmts,
                span: span(e.span()),
            })
            .boxed()
    })
}

fn item<'t, 's: 't, I>() -> impl Parser<'t, I, Item, Extra<'t, 's>> + Clone
where
    I: ValueInput<'t, Token = Token<'s>, Span = SimpleSpan>,
{
    let expr = expr();
    let let_item = just(Token::Let)
        .ignore_then(ident().labelled("name"))
        .then_ignore(just(Token::Eq))
        .then(expr.clone())
        .map(|(name, value)| ItemKind::Let { name, value });

    let pipeline_item = just(Token::Pipeline)
        .ignore_then(ident().labelled("pipeline name"))
        .then_ignore(just(Token::Eq))
        .then(expr.clone())
        .map(|(name, value)| ItemKind::Pipeline { name, value });

    let fn_kind = choice((
        just(Token::Extern)
            .then(just(Token::Eager))
            .then(just(Token::Fn))
            .to(FnKind::Extern),
        just(Token::Eager).then(just(Token::Fn)).to(FnKind::Eager),
        just(Token::Fn).to(FnKind::Traced),
    ));
    let exec_call = select! { Token::Ident("exec") => () }
        .labelled("`exec(...)`")
        .ignore_then(
            expr.clone()
                .separated_by(just(Token::Comma))
                .allow_trailing()
                .collect::<Vec<_>>()
                .delimited_by(just(Token::LParen), just(Token::RParen)),
        )
        .map_with(|args, e| FnBody::Exec {
            args,
            span: span(e.span()),
        });
    let body = choice((
        block().map(FnBody::Block),
        just(Token::Eq).ignore_then(exec_call),
    ))
    .or_not()
    .map(|b| b.unwrap_or(FnBody::None));
    let fn_item = fn_kind
        .then(ident().labelled("function name"))
        .then(params())
        .then(just(Token::Arrow).ignore_then(type_expr()).or_not())
        .then(body)
        .validate(|((((kind, name), params), ret), body), e, emitter| {
            let name_at = SimpleSpan::from(name.span.range());
            if kind != FnKind::Traced && ret.is_none() {
                let decl = if kind == FnKind::Extern { "extern eager fn" } else { "eager fn" };
                emitter.emit(custom(
                    Code::MissingReturnType,
                    name_at,
                    &format!("`{decl}` `{}` has no return type", name.name),
                    "the return type is required here",
                    Some(&format!(
                        "declare what it returns after the parameters, e.g. `{decl} {}(...) -> f32[?]`",
                        name.name
                    )),
                    None,
                ));
            }
            match (&body, kind) {
                (FnBody::Exec { span: at, .. }, FnKind::Traced) => emitter.emit(custom(
                    Code::EagerOnlyForm,
                    SimpleSpan::from(at.range()),
                    "`= exec(...)` needs an `eager fn`",
                    "a traced function cannot be served by a worker process",
                    Some(&format!(
                        "declare it `eager fn {}(...) -> TYPE = exec(...)`, with its return type",
                        name.name
                    )),
                    None,
                )),
                (FnBody::Block(b), FnKind::Extern) => emitter.emit(custom(
                    Code::UnexpectedToken,
                    SimpleSpan::from(b.span.range()),
                    "an `extern eager fn` cannot have a body",
                    "unexpected body",
                    Some("remove the body (the embedding program supplies it), or drop `extern`"),
                    None,
                )),
                (FnBody::Exec { span: at, .. }, FnKind::Extern) => emitter.emit(custom(
                    Code::UnexpectedToken,
                    SimpleSpan::from(at.range()),
                    "an `extern eager fn` cannot have a body",
                    "unexpected `= exec(...)`",
                    Some("drop `extern` to serve the function by a worker process"),
                    None,
                )),
                (FnBody::None, FnKind::Traced | FnKind::Eager) => emitter.emit(custom(
                    Code::UnexpectedToken,
                    name_at,
                    &format!("function `{}` has no body", name.name),
                    "expected `{` after the signature",
                    Some("write the body in `{ ... }` (or declare a host function with `extern eager fn`)"),
                    None,
                )),
                _ => {}
            }
            let _ = e;
            ItemKind::Fn(FnDecl { kind, name, params, ret, body })
        });

    let stray_stmt = choice((just(Token::Return), just(Token::If), just(Token::For), just(Token::While)))
        .map_with(|tok, e| (tok, e.span()))
        .then_ignore(junk().or_not())
        .validate(|(tok, at), _, emitter| {
            emitter.emit(custom(
                Code::MisplacedItem,
                at,
                &format!("{tok} statement outside a function body"),
                "statements belong in a `fn` body",
                Some("only `let`, `fn`, `eager fn`, `extern eager fn` and `pipeline` may appear at the top level"),
                None,
            ));
            ItemKind::Error
        });
    let stray_expr = expr
        .then(just(Token::Eq).ignore_then(junk()).or_not())
        .validate(|(lhs, _), _, emitter| {
            emitter.emit(custom(
                Code::MisplacedItem,
                SimpleSpan::from(lhs.span.range()),
                "expected an item, found an expression",
                "expressions belong in a `fn` body or a `let`",
                Some("bind it with `let NAME = ...`, or name a dataset with `pipeline NAME = ...`"),
                None,
            ));
            ItemKind::Error
        });

    choice((let_item, pipeline_item, fn_item, stray_stmt, stray_expr))
        .labelled("item")
        .map_with(|kind, e| Item {
            kind,
            span: span(e.span()),
        })
}

fn program<'t, 's: 't, I>() -> impl Parser<'t, I, Program, Extra<'t, 's>>
where
    I: ValueInput<'t, Token = Token<'s>, Span = SimpleSpan>,
{
    let item_end = choice((separator(), end()));
    let item_line = item()
        .then_ignore(item_end.rewind())
        .recover_with(via_parser(junk().map_with(|_, e| Item {
            kind: ItemKind::Error,
            span: span(e.span()),
        })));
    separator()
        .repeated()
        .ignore_then(
            item_line
                .then_ignore(separator().repeated())
                .repeated()
                .collect::<Vec<_>>(),
        )
        .then_ignore(end())
        .map(|items| Program { items })
}

/// Parses the laid-out tokens of `source`. Errors caused by the synthetic closers of the
/// layout pass (at `synthetic` offsets) were already reported and are dropped.
pub fn parse_tokens(
    tokens: &[(Token<'_>, Span)],
    source: &str,
    synthetic: &[u32],
) -> (Program, Vec<Diagnostic>) {
    let len = source.len();
    let input: Vec<(Token<'_>, SimpleSpan)> = tokens
        .iter()
        .map(|(t, s)| (t.clone(), SimpleSpan::from(s.range())))
        .collect();
    let eoi = SimpleSpan::from(len..len);
    let (program, errors) = program()
        .parse(input.as_slice().split_token_span(eoi))
        .into_output_errors();
    let mut diags = Vec::new();
    for err in errors {
        if let Some(diag) = convert(&err, tokens, source, synthetic) {
            diags.push(diag);
        }
    }
    (program.unwrap_or_default(), diags)
}

/// Turns a chumsky error into a diagnostic, or `None` when it only echoes an error already
/// reported (a lexer error token, a synthetic closer).
fn convert(
    err: &Rich<'_, Token<'_>, SimpleSpan>,
    tokens: &[(Token<'_>, Span)],
    source: &str,
    synthetic: &[u32],
) -> Option<Diagnostic> {
    let mut at = span(*err.span());
    match err.reason() {
        RichReason::Custom(text) => Some(decode(&fill_source(text, source), at)),
        RichReason::ExpectedFound { expected, found } => {
            if matches!(found.as_deref(), Some(Token::Error)) {
                return None;
            }
            if at.is_empty() && synthetic.contains(&at.start) {
                return None;
            }
            if at.is_empty() {
                // End of input: point at the last token, as the thing left unfinished.
                if let Some((_, last)) = tokens
                    .iter()
                    .rev()
                    .find(|(_, s)| s.end <= at.start && !s.is_empty())
                {
                    at = *last;
                }
            }
            let found = found
                .as_deref()
                .map_or_else(|| "end of input".to_string(), |t| t.to_string());
            let expected = describe_expected(expected);
            Some(
                Diagnostic::error(
                    Code::UnexpectedToken,
                    format!("expected {expected}, found {found}"),
                )
                .with_label(at, format!("expected {expected}")),
            )
        }
    }
}

/// "X", "X or Y", or "one of X, Y, or Z", words before tokens, binary operators collapsed.
fn describe_expected(expected: &[RichPattern<'_, Token<'_>>]) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut toks: Vec<String> = Vec::new();
    let mut operator = false;
    for pat in expected {
        match pat {
            RichPattern::Token(t) if t.is_binary_op() => operator = true,
            RichPattern::Token(t) if **t == Token::Newline => words.push("end of line".into()),
            RichPattern::Token(t) => toks.push(t.to_string()),
            RichPattern::Label(l) => words.push(l.to_string()),
            RichPattern::Identifier(s) => toks.push(format!("`{s}`")),
            RichPattern::EndOfInput => words.push("end of input".into()),
            RichPattern::Any => words.push("any token".into()),
            _ => {}
        }
    }
    if words.iter().any(|w| w == "expression") {
        // Everything that can start an expression is summed up by the word.
        toks.retain(|t| {
            !matches!(
                t.as_str(),
                "`-`" | "`!`" | "`(`" | "`[`" | "`{`" | "`|`" | "`||`"
            )
        });
    }
    words.sort();
    words.dedup();
    toks.sort();
    toks.dedup();
    let mut all: Vec<String> = words.into_iter().chain(toks).collect();
    if operator {
        all.push("an operator".into());
    }
    match all.len() {
        0 => "something else".into(),
        1 => all.remove(0),
        2 => format!("{} or {}", all[0], all[1]),
        _ => {
            let last = all.pop().unwrap_or_default();
            format!("one of {}, or {last}", all.join(", "))
        }
    }
}
