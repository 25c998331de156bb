//! Token passes between the lexer and the parser: delimiter balancing, the nesting limit,
//! and which newlines end statements.
//!
//! Doing these on the flat token list keeps the grammar simple (the parser sees balanced
//! delimiters and only significant newlines) and bounds recursion before any recursive
//! parsing starts.

use pipec_diag::{Code, Diagnostic, Span};

use crate::lexer::{Spanned, Token};

/// Deepest nesting of `()`, `[]` and `{}` accepted.
pub const MAX_BRACKET_DEPTH: usize = 128;

/// Deepest expression or statement nesting accepted (brackets plus operator chains).
pub const MAX_DEPTH: usize = 256;

/// Makes delimiters balanced: an unmatched closer is reported (E0012) and dropped; an
/// unclosed opener is reported (E0011) and closed by a synthetic zero-width token.
///
/// Returns the repaired tokens and the offsets of the synthetic closers, so that parse
/// errors caused by them can be dropped.
pub fn balance<'src>(
    tokens: Vec<Spanned<'src>>,
    diags: &mut Vec<Diagnostic>,
) -> (Vec<Spanned<'src>>, Vec<u32>) {
    let mut out: Vec<Spanned<'src>> = Vec::with_capacity(tokens.len());
    let mut synthetic = Vec::new();
    let mut stack: Vec<(Token<'src>, Span)> = Vec::new();
    // Only the innermost of several openers closed at once is reported: one mistake, one error.
    let mut close_unclosed = |out: &mut Vec<Spanned<'src>>,
                              opener: (Token<'src>, Span),
                              at: u32,
                              diags: &mut Vec<Diagnostic>,
                              hint: Option<(Span, String)>| {
        let (tok, span) = opener;
        let closer = tok.closer().unwrap_or(Token::RParen);
        out.push((closer.clone(), Span { start: at, end: at }));
        synthetic.push(at);
        if synthetic.len() > 1 && synthetic[synthetic.len() - 2] == at {
            return;
        }
        let mut diag = Diagnostic::error(Code::UnclosedDelimiter, format!("unclosed {tok}"))
            .with_label(span, "this delimiter is never closed");
        if let Some((hint_span, msg)) = hint {
            diag = diag.with_label(hint_span, msg);
        }
        diags.push(diag.with_help(format!("add the missing {closer}")));
    };
    let mut i = 0;
    while i < tokens.len() {
        let (tok, span) = tokens[i].clone();
        i += 1;
        if tok.closer().is_some() {
            stack.push((tok.clone(), span));
            out.push((tok, span));
            continue;
        }
        if tok.is_closer() {
            if stack.last().and_then(|(o, _)| o.closer()) == Some(tok.clone()) {
                stack.pop();
                out.push((tok, span));
            } else if let Some(pos) = stack
                .iter()
                .rposition(|(o, _)| o.closer() == Some(tok.clone()))
            {
                let at = out.last().map_or(span.start, |(_, s)| s.end);
                while stack.len() > pos + 1 {
                    let opener = stack.pop().expect("stack is deeper than pos");
                    let hint = Some((span, format!("{tok} found here")));
                    close_unclosed(&mut out, opener, at, diags, hint);
                }
                stack.pop();
                out.push((tok, span));
            } else if let Some((opener, opener_span)) = stack.pop() {
                // `(1, 2]`: most likely a typo for the expected closer, so it stands in for it.
                let expected = opener.closer().unwrap_or(Token::RParen);
                diags.push(
                    Diagnostic::error(
                        Code::UnmatchedDelimiter,
                        format!("mismatched closing delimiter {tok}"),
                    )
                    .with_label(span, format!("expected {expected}"))
                    .with_label(opener_span, format!("to close this {opener}"))
                    .with_help(format!("replace {tok} with {expected}")),
                );
                out.push((expected, span));
            } else {
                diags.push(
                    Diagnostic::error(Code::UnmatchedDelimiter, format!("unmatched closing {tok}"))
                        .with_label(span, "no opening delimiter matches this")
                        .with_help("remove it, or add the opening delimiter it was meant to close"),
                );
            }
            continue;
        }
        // A new line starting a statement inside `(` or `[` means the bracket was left open:
        // close it there rather than swallowing the rest of the file.
        if tok == Token::Newline
            && matches!(stack.last(), Some((Token::LParen | Token::LBracket, _)))
            && tokens
                .get(i)
                .is_some_and(|(next, _)| starts_statement(next))
        {
            let at = out.last().map_or(span.start, |(_, s)| s.end);
            while matches!(stack.last(), Some((Token::LParen | Token::LBracket, _))) {
                let opener = stack.pop().expect("checked non-empty");
                close_unclosed(&mut out, opener, at, diags, None);
            }
        }
        out.push((tok, span));
    }
    let at = out.last().map_or(0, |(_, s)| s.end);
    while let Some(opener) = stack.pop() {
        close_unclosed(&mut out, opener, at, diags, None);
    }
    (out, synthetic)
}

/// Keywords that can only begin a statement or an item.
fn starts_statement(tok: &Token<'_>) -> bool {
    use Token::*;
    matches!(
        tok,
        Let | Fn | Eager | Extern | Pipeline | Return | If | For | While
    )
}

/// Drops the newlines that do not end a statement (SPEC §2): inside `()`/`[]` and dict
/// literals' `{}`, after a token
/// that needs a continuation, before a `.`, `else` or `{`, and repeated blank lines.
pub fn drop_newlines(tokens: Vec<Spanned<'_>>) -> Vec<Spanned<'_>> {
    let mut out: Vec<Spanned<'_>> = Vec::with_capacity(tokens.len());
    let mut stack: Vec<bool> = Vec::new(); // true: a `(`, `[` or a dict's `{`
    // The first token after each position that is not a newline, found in one backward pass
    // so that long runs of blank lines stay linear.
    let mut next_real: Vec<Option<usize>> = vec![None; tokens.len() + 1];
    for i in (0..tokens.len()).rev() {
        next_real[i] = if tokens[i].0 == Token::Newline {
            next_real[i + 1]
        } else {
            Some(i)
        };
    }
    for i in 0..tokens.len() {
        let (tok, span) = &tokens[i];
        if *tok == Token::Newline {
            if stack.last() == Some(&true) {
                continue;
            }
            let next = next_real[i + 1].map(|j| &tokens[j]);
            // A keyword that can only start a statement never continues an expression, so
            // `let a = 1 +` then `fn f() ...` reports the `+` rather than swallowing the `fn`.
            if next.is_some_and(|(t, _)| starts_statement(t))
                && out.last().is_some_and(|(t, _)| *t != Token::Newline)
            {
                out.push((tok.clone(), *span));
                continue;
            }
            let prev_continues = match out.last() {
                None => true,
                Some((prev, _)) => continues_after(prev),
            };
            if prev_continues {
                continue;
            }
            if next.is_some_and(|(t, _)| continues_before(t)) {
                continue;
            }
            out.push((tok.clone(), *span));
            continue;
        }
        match tok {
            Token::LParen | Token::LBracket => stack.push(true),
            // A dict literal's braces are brackets (newlines inside do not end anything); a
            // block's are not. A dict starts with `"key":` (an empty `{}` has no newlines to drop).
            Token::LBrace => {
                let key = next_real[i + 1].filter(|&j| matches!(tokens[j].0, Token::Str(_)));
                let dict = key
                    .and_then(|j| next_real[j + 1])
                    .is_some_and(|j| tokens[j].0 == Token::Colon);
                stack.push(dict)
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                stack.pop();
            }
            _ => {}
        }
        out.push((tok.clone(), *span));
    }
    out
}

/// Whether a line ending with `tok` must continue on the next line.
fn continues_after(tok: &Token<'_>) -> bool {
    use Token::*;
    tok.is_binary_op()
        || matches!(
            tok,
            Newline
                | Semi
                | Comma
                | Eq
                | Arrow
                | LParen
                | LBracket
                | LBrace
                | Dot
                | DotDot
                | Colon
                | Pipe
                | Bang
        )
}

/// Whether a line starting with `tok` continues the previous one.
fn continues_before(tok: &Token<'_>) -> bool {
    use Token::*;
    matches!(tok, Dot | Else | LBrace | Semi) || (tok.is_binary_op() && *tok != Minus)
}

/// Checks the nesting limits on the final token list, before parsing. Returns the error
/// for the first token past a limit.
///
/// Each bracket level counts the operators seen since its last separator: chains of
/// prefix operators, right-associative `**`, method chains and long operator chains all
/// become deep trees that later stages walk recursively.
pub fn check_depth(tokens: &[Spanned<'_>]) -> Option<Diagnostic> {
    let mut frames: Vec<usize> = vec![0];
    for (tok, span) in tokens {
        use Token::*;
        match tok {
            LParen | LBracket | LBrace => {
                if let Some(ops) = frames.last_mut() {
                    *ops += 1;
                }
                frames.push(0);
                if frames.len() - 1 > MAX_BRACKET_DEPTH {
                    return Some(
                        Diagnostic::error(Code::NestingTooDeep, "brackets nested too deeply")
                            .with_label(
                                *span,
                                format!("more than {MAX_BRACKET_DEPTH} levels deep here"),
                            )
                            .with_help(
                                "split the expression with `let` bindings or helper functions",
                            ),
                    );
                }
            }
            RParen | RBracket | RBrace => {
                if frames.len() > 1 {
                    frames.pop();
                }
            }
            Comma | Semi | Newline | Colon => {
                if let Some(ops) = frames.last_mut() {
                    *ops = 0;
                }
            }
            _ if tok.is_binary_op() || matches!(tok, Bang | Dot | Pipe | If | Else) => {
                if let Some(ops) = frames.last_mut() {
                    *ops += 1;
                }
            }
            _ => continue,
        }
        let depth = frames.len() - 1 + frames.iter().sum::<usize>();
        if depth > MAX_DEPTH {
            return Some(too_deep(*span));
        }
    }
    None
}

/// The E0014 error for an expression or statement nested past [`MAX_DEPTH`].
pub fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::error(Code::NestingTooDeep, "expression nested too deeply")
        .with_label(span, format!("more than {MAX_DEPTH} levels deep here"))
        .with_help("split the expression with `let` bindings or helper functions")
}
