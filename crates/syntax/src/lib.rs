//! The `.pipe` front end: tokens ([`lexer`]), the syntax tree ([`ast`]) and the parser.
//!
//! [`parse`] never fails and never panics: it returns a tree (with `Error` nodes where it
//! recovered) and every syntax error found, as diagnostics.
//!
//! The stages: [`lexer::lex`] (logos) → delimiter balancing and the nesting limit
//! ([`layout`], on the flat token list, so recursion is bounded before parsing) →
//! significant newlines ([`layout::drop_newlines`]) → the chumsky grammar → checks on the
//! tree (depth, chained comparisons).

#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod ast;
mod check;
pub mod layout;
pub mod lexer;
mod parser;
mod print;

pub use print::dump;

use pipec_diag::{Code, Diagnostic, Span};

/// The largest source accepted, in bytes.
pub const MAX_SOURCE_LEN: usize = 8 << 20;

/// Parses a whole `.pipe` file. The tree is usable even when errors are returned.
///
/// Diagnostics come sorted by position.
pub fn parse(source: &str) -> (ast::Program, Vec<Diagnostic>) {
    if source.len() > MAX_SOURCE_LEN {
        let diag = Diagnostic::error(Code::ProgramTooLarge, "source file is too large")
            .with_label(
                Span::new(0, 1),
                format!("the file is {} bytes long", source.len()),
            )
            .with_help(format!(
                "the limit is {MAX_SOURCE_LEN} bytes (8 MiB); split the data into `.npy` files"
            ));
        return (ast::Program::default(), vec![diag]);
    }
    // A UTF-8 byte-order mark (editors on Windows write one) is not part of the program.
    // It becomes three spaces, so byte offsets (spans) still index the file as it is.
    let unmarked;
    let source = match source.strip_prefix('\u{FEFF}') {
        Some(rest) => {
            unmarked = format!("   {rest}");
            unmarked.as_str()
        }
        None => source,
    };
    let (tokens, mut diags) = lexer::lex(source);
    let (tokens, synthetic) = layout::balance(tokens, &mut diags);
    let tokens = layout::drop_newlines(tokens);
    if let Some(diag) = layout::check_depth(&tokens) {
        diags.push(diag);
        sort(&mut diags);
        return (ast::Program::default(), diags);
    }
    let (mut program, parse_diags) = parser::parse_tokens(&tokens, source, &synthetic);
    diags.extend(parse_diags);
    check::check(&mut program, source, &mut diags);
    sort(&mut diags);
    (program, diags)
}

/// At most this many diagnostics are returned; past it they are mostly echoes of the first.
pub const MAX_DIAGNOSTICS: usize = 100;

fn sort(diags: &mut Vec<Diagnostic>) {
    diags.sort_by_key(|d| d.primary_span().map(|s| (s.start, s.end)));
    diags.truncate(MAX_DIAGNOSTICS);
}

#[cfg(test)]
mod tests;
