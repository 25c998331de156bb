//! End-to-end cases, run through the real `pipec` binary.
//!
//! - `tests/cases/run/*.pipe`: the output must equal `NAME.stdout`, which numpy itself
//!   produced (`tests/numpy/gen_run_expect.py`), at `-O0` and at `-O2` alike.
//! - `tests/cases/parse/err/*.pipe`: `pipec --check` reports coded errors and exits 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pipec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .output()
        .expect("the pipec binary runs")
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pipe"))
        .collect();
    v.sort();
    v
}

#[test]
fn run_cases_match_numpy_at_every_opt_level() {
    let mut failures = Vec::new();
    let all = cases("tests/cases/run");
    assert!(all.len() >= 5, "run cases are missing");
    for case in &all {
        let expected =
            std::fs::read_to_string(case.with_extension("stdout")).unwrap_or_else(|_| {
                panic!(
                    "{} has no .stdout; run tests/numpy/gen_run_expect.py",
                    case.display()
                )
            });
        for level in ["-O0", "-O2"] {
            let out = pipec(&[level, case.to_str().expect("utf-8 path")]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || stdout != expected {
                failures.push(format!(
                    "{} at {level}: exit {:?}\n--- expected\n{expected}--- got\n{stdout}--- stderr\n{}",
                    case.display(),
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn syntax_errors_exit_1_with_coded_diagnostics() {
    let mut failures = Vec::new();
    let all = cases("tests/cases/parse/err");
    assert!(all.len() >= 25, "syntax error cases are missing");
    for case in &all {
        let out = pipec(&["--check", case.to_str().expect("utf-8 path")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let coded = stderr.contains("[E0");
        if out.status.code() != Some(1) || !coded || stderr.contains("panicked") {
            failures.push(format!(
                "{}: exit {:?}\n{stderr}",
                case.display(),
                out.status.code()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(pipec(&["--no-such-flag"]).status.code(), Some(2));
    assert_eq!(pipec(&["/no/such/file.pipe"]).status.code(), Some(2));
    assert_eq!(pipec(&["--explain", "E9999"]).status.code(), Some(2));
    assert_eq!(pipec(&["--explain", "10101"]).status.code(), Some(2));
}

#[test]
fn explain_knows_every_code() {
    let out = pipec(&["--explain", "E0101"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.starts_with("# E0101: "), "{text}");
    // The code as users type it or copy it from a diagnostic.
    for spelling in ["101", "e0101", "0101", "[E0101]"] {
        let again = pipec(&["--explain", spelling]);
        assert!(again.status.success(), "--explain {spelling}");
        assert_eq!(
            String::from_utf8_lossy(&again.stdout),
            text,
            "--explain {spelling}"
        );
    }
    // The markers that direct the explanation tests are not shown.
    let runtime = pipec(&["--explain", "E0605"]);
    let shown = String::from_utf8_lossy(&runtime.stdout);
    assert!(
        shown.starts_with("# E0605: ") && !shown.contains("<!--"),
        "{shown}"
    );
}

/// Compiles `path` and returns what a user sees: the traced IR, or the rendered diagnostics.
fn traced_or_diagnostics(path: &Path) -> String {
    let source = pipec::SourceFile::from_path(path).expect("case file reads");
    let name = path
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .to_string();
    // Tracing inlines calls up to 64 deep (the recursion case reaches that limit), which
    // needs more than a test thread's stack in a debug build; the CLI uses a big one too.
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn_scoped(s, || {
                match pipec::Compiler::new().compile(&source, &pipec::CompileOptions::default()) {
                    Ok(c) => c.traced.to_string(),
                    Err(diags) => pipec::render(&diags, &name, &source.text, false),
                }
            })
            .expect("spawn a compile thread")
            .join()
            .expect("compiling does not panic")
    })
}

#[test]
fn trace_cases_snapshot() {
    insta::glob!("cases/trace/*.pipe", |path| {
        insta::assert_snapshot!(traced_or_diagnostics(path));
    });
}

/// The IR before and after one pass, and the pass's remarks.
fn before_after(path: &Path, pass: &str) -> String {
    let source = pipec::SourceFile::from_path(path).expect("case file reads");
    let name = path
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .to_string();
    let opts = pipec::CompileOptions {
        passes: Some(vec![pass.to_string()]),
        ..Default::default()
    };
    match pipec::Compiler::new().compile(&source, &opts) {
        Ok(c) => format!(
            "{}\n// ----- after {pass} -----\n{}\n// ----- remarks -----\n{}",
            c.traced,
            c.optimized,
            pipec::render(&c.remarks, &name, &source.text, false)
        ),
        Err(diags) => pipec::render(&diags, &name, &source.text, false),
    }
}

#[test]
fn opt_pass_cases_snapshot() {
    insta::glob!("cases/opt/*/*.pipe", |path| {
        let pass = path
            .parent()
            .and_then(|p| p.file_name())
            .expect("pass folder")
            .to_string_lossy()
            .to_string();
        insta::assert_snapshot!(before_after(path, &pass));
    });
}

#[test]
fn opt_cases_run_identically_at_o0_and_o2() {
    let mut failures = Vec::new();
    for dir in std::fs::read_dir(root().join("tests/cases/opt"))
        .expect("opt cases")
        .flatten()
    {
        for case in cases(&format!(
            "tests/cases/opt/{}",
            dir.file_name().to_string_lossy()
        )) {
            let c = case.to_str().expect("utf-8 path");
            let (a, b) = (pipec(&["-O0", c]), pipec(&["-O2", c]));
            if a.stdout != b.stdout || a.status.code() != b.status.code() {
                failures.push(format!(
                    "{c}\n--- -O0\n{}--- -O2\n{}",
                    String::from_utf8_lossy(&a.stdout),
                    String::from_utf8_lossy(&b.stdout)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs the examples that start a worker (`exec`) or the others, as `workers` says, and
/// compares their output with the `.stdout` numpy computed; returns how many ran.
fn check_examples(workers: bool) -> usize {
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in &cases("examples") {
        let text = std::fs::read_to_string(case).expect("example reads");
        if text.contains("exec(") != workers {
            continue;
        }
        ran += 1;
        let Ok(expected) = std::fs::read_to_string(case.with_extension("stdout")) else {
            failures.push(format!(
                "{} has no .stdout (add a `# numpy:` line and run tests/numpy/gen_run_expect.py)",
                case.display()
            ));
            continue;
        };
        let mut args: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# args:"))
            .flat_map(|a| a.split_whitespace().map(String::from))
            .collect();
        args.push(case.to_str().expect("utf-8 path").to_string());
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = pipec(&arg_refs);
        if String::from_utf8_lossy(&out.stdout) != expected || !out.status.success() {
            failures.push(format!(
                "{}\n--- expected\n{expected}--- got\n{}--- stderr\n{}",
                case.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    ran
}

#[test]
fn examples_print_what_numpy_prints() {
    assert!(check_examples(false) >= 6, "examples are missing");
}

/// The examples that run a numpy worker (`exec`), left out by the test above.
#[test]
#[cfg_attr(pipec_no_numpy, ignore = "python3 with numpy is not installed")]
fn worker_examples_print_what_numpy_prints() {
    require_numpy();
    assert!(check_examples(true) >= 1, "the worker example is missing");
}

#[test]
fn example_ir_snapshot() {
    insta::glob!("../examples", "*.pipe", |path| {
        let source = pipec::SourceFile::from_path(path).expect("example reads");
        let opts = pipec::CompileOptions {
            allow_exec: true,
            ..Default::default()
        };
        let text = match pipec::Compiler::new().compile(&source, &opts) {
            Ok(c) => format!(
                "{}\n// ----- optimized (-O2) -----\n{}",
                c.traced, c.optimized
            ),
            Err(diags) => pipec::render(&diags, "example", &source.text, false),
        };
        // Data file paths are resolved to absolute ones when traced; keep the checkout's
        // location out of the snapshots.
        let dir = path
            .parent()
            .and_then(|d| d.canonicalize().ok())
            .map(|d| format!("{}/", d.display()))
            .unwrap_or_default();
        let text = if dir.is_empty() {
            text
        } else {
            text.replace(&dir, "")
        };
        insta::assert_snapshot!(text);
    });
}

/// A header line `# KEY: VALUE` of a case file.
fn header<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("# {key}:")))
        .map(str::trim)
}

/// Codes whose message must say which element failed (run-time failures inside a node).
const PER_ELEMENT: &[&str] = &[
    "E0500", "E0503", "E0504", "E0505", "E0600", "E0601", "E0606",
];

/// Fails unless python3 with numpy runs. The tests that call this are ignored (with the
/// reason in the summary) when numpy was missing at build time (`crates/cli/build.rs`), so
/// reaching here without it means `PIPEC_REQUIRE_NUMPY` is set, or numpy went away since.
fn require_numpy() {
    let found = Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "python3 with numpy is missing (PIPEC_REQUIRE_NUMPY is set, or numpy was there when the tests were built)"
    );
}

/// Whether a bad case runs a Python worker (an `exec` with `--allow-exec`).
fn runs_worker(text: &str, args: &[&str]) -> bool {
    text.contains("exec(") && args.contains(&"--allow-exec")
}

/// Runs `args` from the repository root (so paths in messages are relative and stable).
fn pipec_at_root(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the pipec binary runs")
}

#[test]
fn bad_cases_fail_with_their_code() {
    assert!(
        cases("tests/cases/bad").len() >= 60,
        "bad cases are missing"
    );
    check_bad_cases(false);
}

/// The bad cases with Python workers (`wk_*`), left out by the test above.
#[test]
#[cfg_attr(pipec_no_numpy, ignore = "python3 with numpy is not installed")]
fn worker_bad_cases_fail_with_their_code() {
    require_numpy();
    check_bad_cases(true);
}

/// `tests/cases/bad/*.pipe` that run a Python worker, or the others, as `workers` says: each
/// declares `# exit: N`, `# code: EXXXX` and optionally `# args: FLAGS`. Through the real
/// binary: that exit code, that code in brackets, no panic text, and stderr as reviewed in
/// the snapshot. Run-time failures must name the element; with `--output` a failed run must
/// leave no file behind.
fn check_bad_cases(workers: bool) {
    let out_dir = std::env::temp_dir().join(format!("pipec-bad-{}-{workers}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let mut failures = Vec::new();
    insta::glob!("cases/bad/*.pipe", |path| {
        let text = std::fs::read_to_string(path).expect("case reads");
        let rel = path
            .strip_prefix(root().canonicalize().expect("root"))
            .unwrap_or(path)
            .to_string_lossy()
            .to_string();
        let exit: i32 = header(&text, "exit")
            .and_then(|e| e.parse().ok())
            .unwrap_or_else(|| panic!("{rel}: no `# exit:` header"));
        let code = header(&text, "code").unwrap_or_else(|| panic!("{rel}: no `# code:` header"));
        let args: Vec<&str> = header(&text, "args")
            .map(|a| a.split_whitespace().collect())
            .unwrap_or_default();
        if runs_worker(&text, &args) != workers {
            return;
        }
        let mut full = args.clone();
        full.push(&rel);
        let out = pipec_at_root(&full);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let mut problems = Vec::new();
        if out.status.code() != Some(exit) {
            problems.push(format!("exit {:?}, expected {exit}", out.status.code()));
        }
        if !stderr.contains(&format!("[{code}]")) {
            problems.push(format!("no [{code}] in stderr"));
        }
        if stderr.contains("panicked") || stderr.contains("internal compiler error") {
            problems.push("panic text in stderr".into());
        }
        if PER_ELEMENT.contains(&code) && !stderr.contains("element") {
            problems.push("the message does not name the element".into());
        }
        if exit == 1
            && !args.contains(&"--check")
            && !args.iter().any(|a| a.starts_with("--output"))
        {
            let target = out_dir.join("out.npy");
            let mut with_output = args.clone();
            let target_text = target.to_string_lossy().to_string();
            with_output.extend(["--output", &target_text, &rel]);
            let again = pipec_at_root(&with_output);
            let left: Vec<_> = std::fs::read_dir(&out_dir)
                .expect("temp dir")
                .flatten()
                .map(|e| e.file_name())
                .collect();
            for name in &left {
                let _ = std::fs::remove_file(out_dir.join(name));
            }
            if again.status.code() != Some(1) || !left.is_empty() {
                problems.push(format!(
                    "with --output: exit {:?}, left {left:?}",
                    again.status.code()
                ));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{rel}: {}\n{stderr}", problems.join("; ")));
        }
        // Named as the test was before worker cases had their own: the same snapshot files.
        insta::assert_snapshot!("bad_cases_fail_with_their_code", stderr);
    });
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
