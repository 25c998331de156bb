//! Data-driven parser tests: every `tests/cases/parse/ok/*.pipe` parses without errors and
//! its tree is snapshot; every `tests/cases/parse/err/*.pipe` reports errors, each with a
//! code and a span, and the rendered diagnostics are snapshot.

use std::fs;

#[test]
fn ok_cases() {
    insta::glob!("../../../tests/cases/parse", "ok/*.pipe", |path| {
        let src = fs::read_to_string(path).expect("case file is readable");
        let (program, diags) = pipec_syntax::parse(&src);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("case.pipe");
        assert!(
            diags.is_empty(),
            "{name} should parse cleanly:\n{}",
            pipec_diag::render(&diags, name, &src, false)
        );
        insta::assert_snapshot!(pipec_syntax::dump(&program));
    });
}

#[test]
fn err_cases() {
    insta::glob!("../../../tests/cases/parse", "err/*.pipe", |path| {
        let src = fs::read_to_string(path).expect("case file is readable");
        let (_, diags) = pipec_syntax::parse(&src);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("case.pipe");
        assert!(
            diags.iter().any(|d| d.is_error()),
            "{name} should report an error"
        );
        for d in &diags {
            let span = d
                .primary_span()
                .unwrap_or_else(|| panic!("{name}: `{d}` has no span"));
            assert!(!span.is_empty(), "{name}: `{d}` has an empty primary span");
            assert!(
                span.end as usize <= src.len().max(1),
                "{name}: `{d}` points past the end"
            );
        }
        insta::assert_snapshot!(pipec_diag::render(&diags, name, &src, false));
    });
}
