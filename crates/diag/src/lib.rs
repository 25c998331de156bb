//! Source spans, diagnostics shared by every stage of pipec, and their rendering.
//!
//! Every stage reports problems as [`Diagnostic`] values; nothing below the CLI prints.
//! A diagnostic carries a stable [`Code`] (explained by `pipec --explain`), a message,
//! labelled spans, notes and an optional help line.

#![warn(clippy::print_stdout, clippy::print_stderr)]

mod codes;
mod render;

pub use codes::Code;
pub use render::render;

use std::fmt;

/// A half-open byte range `start..end` in the one source file of a program.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    /// First byte of the range.
    pub start: u32,
    /// One past the last byte of the range.
    pub end: u32,
}

impl Span {
    /// A span covering `start..end`; offsets past `u32::MAX` saturate.
    pub fn new(start: usize, end: usize) -> Span {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Span {
            start: clamp(start),
            end: clamp(end.max(start)),
        }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// The span as a `usize` range, for slicing the source.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Whether the span is empty (`start == end`).
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A value together with the source span it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub node: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Pairs `node` with `span`.
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// An optimizer remark: informational, never fails a run.
    Remark,
    /// A warning: compilation goes on.
    Warning,
    /// An error: the program does not compile or the run fails.
    Error,
}

/// A span with a message drawn under it.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// The range the label points at.
    pub span: Span,
    /// Text shown next to the underline (may be empty).
    pub message: String,
}

/// One problem (or remark) found by any stage of pipec.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Error, warning or remark.
    pub severity: Severity,
    /// The stable code, explained by `pipec --explain CODE`.
    pub code: Code,
    /// One lowercase sentence without a trailing period.
    pub message: String,
    /// The primary label first, then secondary ones.
    pub labels: Vec<Label>,
    /// Extra facts ("note: ...").
    pub notes: Vec<String>,
    /// How to fix it, when a fix is known.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with `code` and `message`, without labels yet.
    pub fn error(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// A remark (an optimizer report) with `code` and `message`.
    pub fn remark(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Remark,
            ..Diagnostic::error(code, message)
        }
    }

    /// Adds a label; the first label added is the primary one.
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// The primary span, if the diagnostic has one.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }

    /// Whether this diagnostic fails compilation or the run.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// A one-line form (`error[E0101]: message`), for logs and panics in tests.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Remark => "remark",
        };
        write!(f, "{kind}[{}]: {}", self.code, self.message)
    }
}

/// Finds the candidate closest to `name` by edit distance, for "did you mean" hints.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Edit distance over chars where swapping two neighbours counts as one edit
/// (optimal string alignment), since transposed letters are the commonest typo.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        assert_eq!(did_you_mean("lgo", ["log", "exp", "abs"]), Some("log"));
        assert_eq!(
            did_you_mean("normalise", ["normalize", "x"]),
            Some("normalize")
        );
        assert_eq!(did_you_mean("zzz", ["log", "exp"]), None);
    }
}
