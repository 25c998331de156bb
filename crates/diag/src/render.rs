//! Rendering diagnostics to text with ariadne.

use crate::{Diagnostic, Severity};
use ariadne::{Config, IndexType, Label, Report, ReportKind, Source};

/// Renders `diags` against the source `text` of file `name`, as the CLI shows them.
///
/// `color` is off in tests and when stderr is not a terminal.
pub fn render(diags: &[Diagnostic], name: &str, text: &str, color: bool) -> String {
    let mut out = Vec::new();
    // One line index for all reports: building it per report is quadratic when a long
    // program has many remarks.
    let source = Source::from(text);
    for diag in diags {
        render_one(diag, name, text, &source, color, &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn render_one(
    diag: &Diagnostic,
    name: &str,
    text: &str,
    source: &Source<&str>,
    color: bool,
    out: &mut Vec<u8>,
) {
    let kind = match diag.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
        Severity::Remark => ReportKind::Advice,
    };
    let clamp = |r: std::ops::Range<usize>| {
        let end = r.end.min(text.len());
        r.start.min(end)..end
    };
    let offset = diag
        .primary_span()
        .map(|s| clamp(s.range()).start)
        .unwrap_or(0);
    let config = Config::default()
        .with_color(color)
        .with_index_type(IndexType::Byte);
    let mut report = Report::build(kind, (name, offset..offset))
        .with_config(config)
        .with_code(diag.code.as_str())
        .with_message(&diag.message);
    for (i, label) in diag.labels.iter().enumerate() {
        let mut l = Label::new((name, clamp(label.span.range()))).with_order(i as i32);
        if !label.message.is_empty() {
            l = l.with_message(&label.message);
        }
        if i == 0 {
            l = l.with_priority(1);
        }
        report = report.with_label(l);
    }
    for note in &diag.notes {
        report = report.with_note(note);
    }
    if let Some(help) = &diag.help {
        report = report.with_help(help);
    }
    // Writing into a Vec cannot fail; an error here would only lose this one report.
    let _ = report.finish().write((name, source), &mut *out);
    // Without a label ariadne draws no source box, and with it go the notes and the help;
    // a diagnostic about the whole program (no pipeline, bad usage) still needs them.
    if diag.labels.is_empty() {
        for note in &diag.notes {
            out.extend_from_slice(format!("    Note: {note}\n").as_bytes());
        }
        if let Some(help) = &diag.help {
            out.extend_from_slice(format!("    Help: {help}\n").as_bytes());
        }
    }
}
