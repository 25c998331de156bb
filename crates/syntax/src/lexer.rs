//! Tokens of the `.pipe` language and the lexer that produces them.
//!
//! [`lex`] never fails: a lexical error becomes a [`Token::Error`] (so parsing goes on) and a
//! diagnostic. Newlines are kept as tokens; [`crate::layout`] decides which ones end statements.

use std::fmt;

use logos::Logos;
use pipec_diag::{Code, Diagnostic, Span};

/// What went wrong while lexing one token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LexError {
    /// A character that starts no token.
    #[default]
    InvalidCharacter,
    /// An integer literal past `u64::MAX`.
    IntegerTooLarge,
    /// A number such as `1e`, `1__0` or `1e999`.
    MalformedNumber,
    /// A string without its closing quote on the same line.
    UnterminatedString,
    /// A string in single quotes, as Python allows.
    SingleQuoted,
}

/// A token of the `.pipe` language.
#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(error = LexError)]
#[logos(skip r"[ \t\r\f]+")]
#[logos(skip(r"#[^\n]*", allow_greedy = true))]
pub enum Token<'src> {
    /// A line break; whether it ends a statement is decided after lexing.
    #[token("\n")]
    Newline,
    /// A name.
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident(&'src str),
    /// An integer literal, separators removed.
    #[regex(r"[0-9][0-9_]*", lex_int)]
    Int(u64),
    /// A float literal, as written (a finite f64; see [`float_value`]). The text is kept so
    /// that `cast(LITERAL, DTYPE)` can round each number straight to its target dtype.
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9]+)?", lex_float)]
    #[regex(r"[0-9][0-9_]*[eE][+-]?[0-9]+", lex_float)]
    // An exponent without digits: matched so the whole `1e` is one error, not `1` then `e`.
    #[regex(r"[0-9][0-9_]*(\.[0-9][0-9_]*)?[eE][+-]?", malformed)]
    Float(&'src str),
    /// A string literal: the text between the quotes, escapes not yet resolved.
    #[regex(r#""([^"\\\n]|\\[^\n])*""#, |lex| { let s = lex.slice(); &s[1..s.len() - 1] })]
    #[regex(r#""([^"\\\n]|\\[^\n])*\\?"#, unterminated)]
    // Python's `'cat'`: one error with the double-quoted spelling, not three bad tokens.
    #[regex(r"'([^'\\\n]|\\[^\n])*'", single_quoted)]
    Str(&'src str),

    /// `fn`
    #[token("fn")]
    Fn,
    /// `eager`
    #[token("eager")]
    Eager,
    /// `extern`
    #[token("extern")]
    Extern,
    /// `let`
    #[token("let")]
    Let,
    /// `pipeline`
    #[token("pipeline")]
    Pipeline,
    /// `return`
    #[token("return")]
    Return,
    /// `if`
    #[token("if")]
    If,
    /// `else`
    #[token("else")]
    Else,
    /// `for`
    #[token("for")]
    For,
    /// `in`
    #[token("in")]
    In,
    /// `while`
    #[token("while")]
    While,
    /// `true`
    #[token("true")]
    True,
    /// `false`
    #[token("false")]
    False,

    /// `+`
    #[token("+")]
    Plus,
    /// `-`
    #[token("-")]
    Minus,
    /// `*`
    #[token("*")]
    Star,
    /// `/`
    #[token("/")]
    Slash,
    /// `//`
    #[token("//")]
    SlashSlash,
    /// `%`
    #[token("%")]
    Percent,
    /// `**`
    #[token("**")]
    StarStar,
    /// `@`
    #[token("@")]
    At,
    /// `==`
    #[token("==")]
    EqEq,
    /// `!=`
    #[token("!=")]
    NotEq,
    /// `<`
    #[token("<")]
    Lt,
    /// `<=`
    #[token("<=")]
    Le,
    /// `>`
    #[token(">")]
    Gt,
    /// `>=`
    #[token(">=")]
    Ge,
    /// `&&`
    #[token("&&")]
    AndAnd,
    /// `||`
    #[token("||")]
    OrOr,
    /// `!`
    #[token("!")]
    Bang,
    /// `=`
    #[token("=")]
    Eq,
    /// `->`
    #[token("->")]
    Arrow,
    /// `,`
    #[token(",")]
    Comma,
    /// `:`
    #[token(":")]
    Colon,
    /// `;`
    #[token(";")]
    Semi,
    /// `.`
    #[token(".")]
    Dot,
    /// `..`
    #[token("..")]
    DotDot,
    /// `...`
    #[token("...")]
    DotDotDot,
    /// `(`
    #[token("(")]
    LParen,
    /// `)`
    #[token(")")]
    RParen,
    /// `[`
    #[token("[")]
    LBracket,
    /// `]`
    #[token("]")]
    RBracket,
    /// `{`
    #[token("{")]
    LBrace,
    /// `}`
    #[token("}")]
    RBrace,
    /// `|`
    #[token("|")]
    Pipe,
    /// `?`
    #[token("?")]
    Question,

    /// Something the lexer could not read (already reported).
    Error,
}

fn malformed<'src>(_: &mut logos::Lexer<'src, Token<'src>>) -> Result<&'src str, LexError> {
    Err(LexError::MalformedNumber)
}

fn unterminated<'src>(_: &mut logos::Lexer<'src, Token<'src>>) -> Result<&'src str, LexError> {
    Err(LexError::UnterminatedString)
}

fn single_quoted<'src>(_: &mut logos::Lexer<'src, Token<'src>>) -> Result<&'src str, LexError> {
    Err(LexError::SingleQuoted)
}

fn lex_int<'src>(lex: &mut logos::Lexer<'src, Token<'src>>) -> Result<u64, LexError> {
    let text = lex.slice();
    if text.ends_with('_') || text.contains("__") {
        return Err(LexError::MalformedNumber);
    }
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    digits.parse::<u64>().map_err(|_| LexError::IntegerTooLarge)
}

fn lex_float<'src>(lex: &mut logos::Lexer<'src, Token<'src>>) -> Result<&'src str, LexError> {
    let text = lex.slice();
    if text.contains("__") || text.contains("_.") || text.contains("_e") || text.contains("_E") {
        return Err(LexError::MalformedNumber);
    }
    if float_value(text).is_finite() {
        Ok(text)
    } else {
        Err(LexError::MalformedNumber)
    }
}

/// The f64 a float literal's text denotes (correctly rounded; separators ignored): infinite
/// or NaN for text the lexer rejects.
pub fn float_value(text: &str) -> f64 {
    float_digits(text).parse::<f64>().unwrap_or(f64::NAN)
}

/// A number literal's text without its `_` separators and a trailing `.` (`1_000.` is
/// `1000`), as Rust's float parsers take it.
pub fn float_digits(text: &str) -> String {
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    match digits.strip_suffix('.') {
        Some(d) => d.to_string(),
        None => digits,
    }
}

impl Token<'_> {
    /// Whether this token is a binary operator (including `-`, which is also prefix).
    pub fn is_binary_op(&self) -> bool {
        use Token::*;
        matches!(
            self,
            Plus | Minus
                | Star
                | Slash
                | SlashSlash
                | Percent
                | StarStar
                | At
                | EqEq
                | NotEq
                | Lt
                | Le
                | Gt
                | Ge
                | AndAnd
                | OrOr
        )
    }

    /// The closing delimiter matching this opening one, if it is one.
    pub fn closer(&self) -> Option<Token<'static>> {
        match self {
            Token::LParen => Some(Token::RParen),
            Token::LBracket => Some(Token::RBracket),
            Token::LBrace => Some(Token::RBrace),
            _ => None,
        }
    }

    /// Whether this token closes a delimiter.
    pub fn is_closer(&self) -> bool {
        matches!(self, Token::RParen | Token::RBracket | Token::RBrace)
    }
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sym = match self {
            Token::Newline => return f.write_str("end of line"),
            Token::Ident(name) => return write!(f, "`{name}`"),
            Token::Int(n) => return write!(f, "`{n}`"),
            Token::Float(x) => return write!(f, "`{x}`"),
            Token::Str(s) => return write!(f, "string \"{s}\""),
            Token::Error => return f.write_str("invalid token"),
            Token::Fn => "fn",
            Token::Eager => "eager",
            Token::Extern => "extern",
            Token::Let => "let",
            Token::Pipeline => "pipeline",
            Token::Return => "return",
            Token::If => "if",
            Token::Else => "else",
            Token::For => "for",
            Token::In => "in",
            Token::While => "while",
            Token::True => "true",
            Token::False => "false",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::SlashSlash => "//",
            Token::Percent => "%",
            Token::StarStar => "**",
            Token::At => "@",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::AndAnd => "&&",
            Token::OrOr => "||",
            Token::Bang => "!",
            Token::Eq => "=",
            Token::Arrow => "->",
            Token::Comma => ",",
            Token::Colon => ":",
            Token::Semi => ";",
            Token::Dot => ".",
            Token::DotDot => "..",
            Token::DotDotDot => "...",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::Pipe => "|",
            Token::Question => "?",
        };
        write!(f, "`{sym}`")
    }
}

/// A token with its byte span.
pub type Spanned<'src> = (Token<'src>, Span);

/// Lexes `source` into tokens (newlines included) and the lexical errors found.
pub fn lex(source: &str) -> (Vec<Spanned<'_>>, Vec<Diagnostic>) {
    let mut tokens: Vec<Spanned<'_>> = Vec::new();
    let mut diags = Vec::new();
    let mut lexer = Token::lexer(source);
    // Start of a run of invalid characters still to report, so `$$$` is one error, not three.
    let mut bad_run: Option<(usize, usize)> = None;
    while let Some(res) = lexer.next() {
        let range = lexer.span();
        if let Err(LexError::InvalidCharacter) = res {
            let end = char_end(source, range.start).max(range.end);
            bad_run = Some(match bad_run {
                Some((start, prev_end)) if prev_end >= range.start => (start, end.max(prev_end)),
                Some(run) => {
                    report_invalid(source, run, &mut tokens, &mut diags);
                    (range.start, end)
                }
                None => (range.start, end),
            });
            continue;
        }
        if let Some(run) = bad_run.take() {
            report_invalid(source, run, &mut tokens, &mut diags);
        }
        let span = Span::new(range.start, range.end);
        match res {
            Ok(Token::Str(raw)) => {
                check_escapes(raw, range.start + 1, &mut diags);
                tokens.push((Token::Str(raw), span));
            }
            Ok(tok) => tokens.push((tok, span)),
            Err(err) => {
                diags.push(lex_error(err, span, lexer.slice()));
                tokens.push((Token::Error, span));
            }
        }
    }
    if let Some(run) = bad_run.take() {
        report_invalid(source, run, &mut tokens, &mut diags);
    }
    (merge_trailing_dot_floats(source, tokens), diags)
}

/// The end of the char starting at (or containing) byte `at`, so spans never split a char.
fn char_end(source: &str, at: usize) -> usize {
    let mut end = (at + 1).min(source.len());
    while end < source.len() && !source.is_char_boundary(end) {
        end += 1;
    }
    end
}

fn report_invalid(
    source: &str,
    (start, end): (usize, usize),
    tokens: &mut Vec<Spanned<'_>>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut start = start;
    while start > 0 && !source.is_char_boundary(start) {
        start -= 1;
    }
    let span = Span::new(start, end);
    let text = source.get(start..end).unwrap_or("");
    let shown: String = text.chars().flat_map(char::escape_debug).collect();
    let plural = if text.chars().count() > 1 {
        "characters"
    } else {
        "character"
    };
    diags.push(
        Diagnostic::error(
            Code::InvalidCharacter,
            format!("invalid {plural} `{shown}`"),
        )
        .with_label(span, "not part of any token"),
    );
    tokens.push((Token::Error, span));
}

fn lex_error(err: LexError, span: Span, text: &str) -> Diagnostic {
    match err {
        LexError::InvalidCharacter => {
            Diagnostic::error(Code::InvalidCharacter, "invalid character").with_label(span, "")
        }
        LexError::IntegerTooLarge => {
            Diagnostic::error(Code::IntegerTooLarge, "integer literal is too large")
                .with_label(span, "does not fit in 64 bits")
                .with_help(format!("the largest integer literal is {}", u64::MAX))
        }
        LexError::MalformedNumber => Diagnostic::error(
            Code::MalformedNumber,
            format!("malformed number `{text}`"),
        )
        .with_label(span, "not a valid number")
        .with_help(
            "write digits after an exponent (`1e-3`), single `_` between digits, and finite values",
        ),
        LexError::UnterminatedString => {
            Diagnostic::error(Code::UnterminatedString, "unterminated string literal")
                .with_label(
                    Span::new(span.start as usize, span.start as usize + 1),
                    "this string is never closed",
                )
                .with_help("close the string with `\"` before the end of the line")
        }
        LexError::SingleQuoted => {
            let inner = &text[1..text.len() - 1];
            // `'say "hi"'` keeps its meaning with the double quotes escaped.
            let inner = inner.replace("\\'", "'").replace('"', "\\\"");
            Diagnostic::error(
                Code::InvalidCharacter,
                "strings are written in double quotes",
            )
            .with_label(span, "Python's single quotes")
            .with_help(format!("write `\"{inner}\"`"))
        }
    }
}

/// Reports escapes other than `\" \\ \n \t` in the raw text of a string starting at byte `base`.
fn check_escapes(raw: &str, base: usize, diags: &mut Vec<Diagnostic>) {
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            continue;
        }
        if let Some((j, next)) = chars.next()
            && !matches!(next, '"' | '\\' | 'n' | 't')
        {
            let span = Span::new(base + i, base + j + next.len_utf8());
            let shown: String = next.escape_debug().collect();
            diags.push(
                Diagnostic::error(
                    Code::InvalidEscape,
                    format!("unknown escape `\\{shown}` in string"),
                )
                .with_label(span, "unknown escape")
                .with_help(
                    "the escapes are `\\\"`, `\\\\`, `\\n` and `\\t`; write `\\\\` for a backslash",
                ),
            );
        }
    }
}

/// Resolves the escapes of a string's raw text; an unknown escape is kept as written
/// (it was reported by [`lex`]).
pub fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Turns `2.` into a float. Logos cannot look ahead, so `2.` is lexed as `2` then `.`; they
/// merge unless the dot starts something else (`2.exp()`, or `0..5` which lexes as `..`).
fn merge_trailing_dot_floats<'src>(
    source: &'src str,
    tokens: Vec<Spanned<'src>>,
) -> Vec<Spanned<'src>> {
    let mut out: Vec<Spanned<'src>> = Vec::with_capacity(tokens.len());
    for (tok, span) in tokens {
        if tok == Token::Dot
            && let Some((Token::Int(_), int_span)) = out.last()
            && int_span.end == span.start
        {
            let after = source.as_bytes().get(span.end as usize).copied();
            let starts_more =
                after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
            if !starts_more {
                let whole = int_span.to(span);
                let merged = (Token::Float(&source[whole.range()]), whole);
                out.pop();
                out.push(merged);
                continue;
            }
        }
        out.push((tok, span));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<String> {
        lex(src).0.iter().map(|(t, _)| t.to_string()).collect()
    }

    #[test]
    fn numbers() {
        assert_eq!(kinds("0..5"), ["`0`", "`..`", "`5`"]);
        // Floats show (and keep) their text as written.
        assert_eq!(kinds("2."), ["`2.`"]);
        assert_eq!(kinds("2.exp"), ["`2`", "`.`", "`exp`"]);
        assert_eq!(
            kinds("1e-3 3.5e2 1_000_000"),
            ["`1e-3`", "`3.5e2`", "`1000000`"]
        );
        assert_eq!(float_value("1_000.5e-1"), 100.05);
        assert_eq!(float_value("2."), 2.0);
        assert_eq!(float_digits("1_0."), "10");
        assert_eq!(kinds("x[1:]"), ["`x`", "`[`", "`1`", "`:`", "`]`"]);
        let (_, diags) = lex("99999999999999999999");
        assert_eq!(diags[0].code, Code::IntegerTooLarge);
    }

    #[test]
    fn strings() {
        assert_eq!(unescape(r#"a\"b\\c\nd\te"#), "a\"b\\c\nd\te");
        assert_eq!(lex(r#""a\q""#).1[0].code, Code::InvalidEscape);
        assert_eq!(lex("\"abc\nx").1[0].code, Code::UnterminatedString);
    }

    #[test]
    fn invalid_characters_group() {
        let (toks, diags) = lex("a $$é b");
        assert_eq!(diags.len(), 1);
        assert_eq!(toks.len(), 3);
    }
}
