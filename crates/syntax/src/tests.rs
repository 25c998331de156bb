//! Robustness properties of [`parse`]: it never panics, never overflows the stack, and
//! always reports errors with a code and a non-empty span.

use proptest::prelude::*;

use super::*;

fn check_invariants(src: &str) {
    let (_, diags) = parse(src);
    for d in &diags {
        let span = d
            .primary_span()
            .expect("every diagnostic has a primary span");
        assert!(
            span.end as usize <= src.len().max(1),
            "`{d}` points past the end of {src:?}"
        );
    }
    // Rendering must not panic either (spans on char boundaries).
    let _ = pipec_diag::render(&diags, "t.pipe", src, false);
}

#[test]
fn long_flat_chain_is_rejected_without_overflow() {
    let src = format!("let x = {}", vec!["1"; 100_000].join("+"));
    let (program, diags) = parse(&src);
    assert!(program.items.is_empty());
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, Code::NestingTooDeep);
}

#[test]
fn deep_inputs_of_every_kind_are_rejected() {
    let cases = [
        format!("let x = {}1{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("let x = {}1", "-".repeat(100_000)),
        format!("let x = {}1", "!".repeat(100_000)),
        format!("let x = {}", vec!["2"; 50_000].join("**")),
        format!("let x = {}x", "|x| ".repeat(50_000)),
        format!("let x = a{}", ".b()".repeat(50_000)),
        format!("fn f(x) {{ if x {{}} {} }}", "else if x {} ".repeat(50_000)),
        format!("let x = {}", "[".repeat(100_000)),
        "}".repeat(1_000),
    ];
    for src in &cases {
        let (_, diags) = parse(src);
        assert!(
            diags
                .iter()
                .any(|d| d.code == Code::NestingTooDeep || d.code == Code::UnmatchedDelimiter)
        );
        check_invariants(src);
    }
}

#[test]
fn nesting_just_under_the_limit_parses() {
    let src = format!("let x = {}1{}", "(".repeat(100), ")".repeat(100));
    let (_, diags) = parse(&src);
    assert!(diags.is_empty(), "{diags:?}");
}

#[test]
fn oversized_source_is_rejected() {
    let src = "#".repeat(MAX_SOURCE_LEN + 1);
    let (_, diags) = parse(&src);
    assert_eq!(diags[0].code, Code::ProgramTooLarge);
    assert!(!diags[0].primary_span().unwrap_or_default().is_empty());
}

#[test]
fn many_blank_lines_stay_fast() {
    let src = format!("let a = 1{}let b = 2", "\n".repeat(1_000_000));
    let (program, diags) = parse(&src);
    assert!(diags.is_empty());
    assert_eq!(program.items.len(), 2);
}

/// Tokens of the grammar, as text, for token soups.
const TOKENS: &[&str] = &[
    "fn", "eager", "extern", "let", "pipeline", "return", "if", "else", "for", "in", "while",
    "true", "false", "x", "f32", "exec", "0", "1_000", "2.", "0.5", "1e-3", "\"s\"", "\"\\q\"",
    "\"open", "+", "-", "*", "/", "//", "%", "**", "@", "==", "!=", "<", "<=", ">", ">=", "&&",
    "||", "!", "=", "->", ",", ":", ";", ".", "..", "...", "(", ")", "[", "]", "{", "}", "|", "?",
    "\n", "$", "#c\n", "é",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_strings(src in "\\PC{0,200}") {
        check_invariants(&src);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_invariants(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn never_panics_on_token_soup(idx in proptest::collection::vec(0..TOKENS.len(), 0..120)) {
        let src: Vec<&str> = idx.iter().map(|&i| TOKENS[i]).collect();
        check_invariants(&src.join(" "));
        check_invariants(&src.concat());
    }
}
