//! Every diagnostic code is explained, and every explanation's examples are real.
//!
//! `crates/diag/explain/EXXXX.md` (shown by `pipec --explain EXXXX`) starts with
//! `# EXXXX: title`, explains the rule, and has fenced examples after a `Wrong:` line and
//! after `Right:` / `Also right:` lines (more wrong ones after `Also wrong`). This test
//! compiles or runs every example:
//!
//! - by default the code is a compile-time one: the wrong example, compiled with
//!   `pipec::Compiler`, must report exactly that code, and the right one must not (for
//!   codes past the syntax range it must compile cleanly);
//! - `<!-- runtime -->`: the examples are run with the `pipec` binary, with the extra
//!   arguments of `<!-- args: ... -->` (wrong) and `<!-- right-args: ... -->` (right);
//!   the wrong one must fail with the code, the right one must succeed;
//! - `<!-- embedding -->`: run through the library with a registered host function
//!   `checked_sqrt` (as an embedding program would register it);
//! - `<!-- remark -->`: a remark, not an error: both examples compile, the wrong one
//!   gets a remark with the code;
//! - `<!-- unchecked: why -->`: the example needs something this test cannot provide.
//!
//! The block after a `pipec reports:` line must be exactly what pipec prints (stderr) for
//! the first wrong example, run as `pipec example.pipe` from its directory (trailing
//! spaces aside, and that directory shown as `/data`); `PIPEC_BLESS_EXPLAIN=1` rewrites the
//! blocks (and adds missing ones).
//!
//! Examples run in a scratch directory holding the files they mention (`images.npy`,
//! `notes.txt`, `table.csv`, `clean.csv`, record files from `tests/records/data/`, and the worker scripts `hang.py` and `garbage.py`).

use pipec::{Code, CompileOptions, Compiler, SourceFile, Tensor};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The parts of one explanation the checks need.
struct Explained {
    wrong: Vec<String>,
    right: Vec<String>,
    /// The block after the `pipec reports:` line: what pipec prints for the first wrong
    /// example.
    reports: Option<String>,
    markers: Vec<String>,
}

/// Splits an explanation into its examples (by the line before each fence) and markers.
fn parse(md: &str) -> Explained {
    let mut out = Explained {
        wrong: Vec::new(),
        right: Vec::new(),
        reports: None,
        markers: Vec::new(),
    };
    let mut last_text = "";
    let mut lines = md.lines();
    while let Some(line) = lines.next() {
        if let Some(m) = line
            .trim()
            .strip_prefix("<!--")
            .and_then(|l| l.strip_suffix("-->"))
        {
            out.markers.push(m.trim().to_string());
        } else if line.starts_with("```") {
            let mut block = String::new();
            for l in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                block.push_str(l);
                block.push('\n');
            }
            if last_text.starts_with("Wrong") || last_text.starts_with("Also wrong") {
                out.wrong.push(block);
            } else if is_reports_line(last_text) {
                out.reports.get_or_insert(block);
            } else if last_text.starts_with("Right") || last_text.starts_with("Also right") {
                out.right.push(block);
            }
            last_text = "";
        } else if !line.trim().is_empty() {
            last_text = line.trim();
        }
    }
    out
}

/// The line introducing what pipec prints: `pipec reports:`, `pipec reports (with ...):`.
fn is_reports_line(line: &str) -> bool {
    line.trim_start_matches('`').starts_with("pipec") && line.contains("reports")
}

/// Text as compared and stored: no trailing spaces on a line (ariadne pads some lines).
fn without_trailing_spaces(text: &str) -> String {
    text.lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

/// `md` with `shown` as the block after its `pipec reports:` line, the line and block
/// being added after the first wrong example when missing.
fn with_reports_block(md: &str, shown: &str) -> String {
    let lines: Vec<&str> = md.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut done = false;
    let mut last_text = "";
    while i < lines.len() {
        let line = lines[i];
        if !done && line.starts_with("```") && is_reports_line(last_text) {
            out.push("```text".into());
            out.extend(shown.lines().map(String::from));
            i += 1;
            while i < lines.len() && !lines[i].starts_with("```") {
                i += 1;
            }
            out.push("```".into());
            done = true;
        } else if !done && line.starts_with("```") && last_text.starts_with("Wrong") {
            out.push(line.into());
            i += 1;
            while i < lines.len() && !lines[i].starts_with("```") {
                out.push(lines[i].into());
                i += 1;
            }
            out.push("```".into());
            if !md.lines().any(is_reports_line) {
                out.extend(["".into(), "pipec reports:".into(), "".into()]);
                out.push("```text".into());
                out.extend(shown.lines().map(String::from));
                out.push("```".into());
                done = true;
            }
            last_text = "";
        } else {
            out.push(line.into());
            if !line.trim().is_empty() {
                last_text = line.trim();
            }
        }
        i += 1;
    }
    out.join("\n") + "\n"
}

/// A fresh directory with the files the examples read.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pipec-explain-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let images = Tensor::from_vec::<u8>(&[2, 2, 2], (0..8).collect()).expect("shape fits");
    std::fs::write(dir.join("images.npy"), pipec::io::encode_npy(&images))
        .expect("write images.npy");
    std::fs::write(dir.join("notes.txt"), "not an array\n").expect("write notes.txt");
    std::fs::write(dir.join("table.csv"), "1,2\n3,n/a\n").expect("write table.csv");
    std::fs::write(dir.join("clean.csv"), "1,2\n3,4\n").expect("write clean.csv");
    // Record files written by TensorFlow and pyarrow (tests/records/gen.py).
    let records = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/records/data");
    for f in [
        "plain.tfrecord",
        "bad_crc.tfrecord",
        "nulls.parquet",
        "unsupported.parquet",
    ] {
        std::fs::copy(records.join(f), dir.join(f)).expect("copy a record file");
    }
    // Misbehaving workers, for the worker errors (they need python3, not numpy).
    let workers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/workers");
    for script in ["hang.py", "garbage.py"] {
        std::fs::copy(workers.join(script), dir.join(script)).expect("copy a worker script");
    }
    dir
}

/// Compiles `text` as a file in `dir`, on a big stack (tracing inlines calls 64 deep).
fn compile(
    compiler: &Compiler,
    text: &str,
    dir: &Path,
) -> Result<pipec::Compiled, Vec<pipec::Diagnostic>> {
    let source = SourceFile {
        name: "example.pipe".into(),
        text: text.into(),
        dir: dir.to_path_buf(),
    };
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn_scoped(s, || compiler.compile(&source, &CompileOptions::default()))
            .expect("spawn a compile thread")
            .join()
            .expect("compiling does not panic")
    })
}

/// Compiles and runs `text`, returning the first error, if any.
fn compile_and_run(compiler: &Compiler, text: &str, dir: &Path) -> Option<pipec::Diagnostic> {
    let compiled = match compile(compiler, text, dir) {
        Ok(c) => c,
        Err(diags) => return diags.into_iter().next(),
    };
    let stream = match compiled.run(&pipec::RunOptions::default()) {
        Ok(s) => s,
        Err(d) => return Some(d),
    };
    stream.filter_map(Result::err).next()
}

/// Runs the `pipec` binary on `text`, written to `example.pipe` in `dir` and named so from
/// there (as a user in that directory would), with `args`.
fn run_binary(text: &str, args: &[String], dir: &Path) -> (Option<i32>, String) {
    std::fs::write(dir.join("example.pipe"), text).expect("write the example");
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .arg("example.pipe")
        .current_dir(dir)
        .output()
        .expect("the pipec binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The arguments of a `<!-- NAME: ... -->` marker, with `{dir}` replaced by `dir`.
fn marker_args(markers: &[String], name: &str, dir: &Path) -> Vec<String> {
    let prefix = format!("{name}:");
    markers
        .iter()
        .find_map(|m| m.strip_prefix(&prefix))
        .map(|a| {
            a.split_whitespace()
                .map(|w| w.replace("{dir}", &dir.display().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A program that really triggers `code`, for the codes whose shown example can only be
/// sketched (a program nested hundreds deep, or larger than 8 MiB).
fn generated_wrong(code: Code) -> Option<String> {
    match code.as_str() {
        "E0014" => Some(format!(
            "let x = {}1{}\npipeline main = range(1)\n",
            "(".repeat(300),
            ")".repeat(300)
        )),
        "E0019" => Some(format!(
            "# {}\npipeline main = range(1)\n",
            "x".repeat(9 << 20)
        )),
        _ => None,
    }
}

#[test]
fn every_code_has_a_title_an_explanation_and_both_examples() {
    let mut failures = Vec::new();
    for &code in Code::ALL {
        let md = code.explanation();
        let e = parse(md);
        let title = format!("# {code}: ");
        let prose = md
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty() && !l.starts_with("```"))
            .count();
        if !md.starts_with(&title) {
            failures.push(format!("{code}: does not start with `{title}`"));
        }
        if md.contains("(explanation to be written)") || prose < 4 {
            failures.push(format!("{code}: the explanation is still a placeholder"));
        }
        if e.wrong.is_empty() || e.right.is_empty() {
            failures.push(format!("{code}: needs a `Wrong:` and a `Right:` example"));
        }
        let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
            .args(["--explain", code.as_str()])
            .output()
            .expect("pipec runs");
        if !out.status.success() || !String::from_utf8_lossy(&out.stdout).starts_with(&title) {
            failures.push(format!("{code}: `pipec --explain {code}` does not show it"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Whether to rewrite the `pipec reports:` blocks with what pipec prints today
/// (`PIPEC_BLESS_EXPLAIN=1 cargo test --test explain`; review the diff before committing).
fn blessing() -> bool {
    std::env::var_os("PIPEC_BLESS_EXPLAIN").is_some()
}

#[test]
fn wrong_examples_report_their_code_and_right_examples_do_not() {
    let dir = scratch();
    let plain = Compiler::new();
    let mut embedding = Compiler::new();
    embedding.register_host_fn("checked_sqrt", |args| {
        let x = args[0]
            .as_array::<f32>()
            .and_then(|a| a.iter().next().copied())
            .ok_or("expected one f32")?;
        if x < 0.0 {
            return Err(format!("negative input {x}"));
        }
        Ok(vec![Tensor::scalar(x.sqrt())])
    });
    let mut failures = Vec::new();
    let mut checked = 0;
    for &code in Code::ALL {
        let e = parse(code.explanation());
        let has = |m: &str| e.markers.iter().any(|x| x == m);
        if e.markers.iter().any(|m| m.starts_with("unchecked")) {
            continue;
        }
        checked += 1;
        // What pipec prints for the first wrong example, as a user running it sees it.
        let mut printed: Option<String> = None;
        if has("runtime") {
            let (wrong_args, right_args) = (
                marker_args(&e.markers, "args", &dir),
                marker_args(&e.markers, "right-args", &dir),
            );
            let tag = format!("[{code}]");
            for w in &e.wrong {
                let (status, stderr) = run_binary(w, &wrong_args, &dir);
                if status == Some(0) || !stderr.contains(&tag) {
                    failures.push(format!("{code}: the wrong example should fail with {code} (exit {status:?}):\n{w}{stderr}"));
                }
                printed.get_or_insert(stderr);
            }
            for r in &e.right {
                let (status, stderr) = run_binary(r, &right_args, &dir);
                if status != Some(0) || stderr.contains(&tag) {
                    failures.push(format!(
                        "{code}: the right example should run (exit {status:?}):\n{r}{stderr}"
                    ));
                }
            }
        } else if has("embedding") {
            for w in &e.wrong {
                match compile_and_run(&embedding, w, &dir) {
                    Some(d) if d.code == code => {
                        printed
                            .get_or_insert_with(|| pipec::render(&[d], "example.pipe", w, false));
                    }
                    _ => failures.push(format!(
                        "{code}: the wrong example should fail with {code}:\n{w}"
                    )),
                }
            }
            for r in &e.right {
                if let Some(d) = compile_and_run(&embedding, r, &dir) {
                    failures.push(format!(
                        "{code}: the right example should run, got {}:\n{r}",
                        d.code
                    ));
                }
            }
        } else if has("remark") {
            for w in &e.wrong {
                match compile(&plain, w, &dir) {
                    Ok(c) if c.remarks.iter().any(|d| d.code == code) => {
                        printed.get_or_insert_with(|| {
                            pipec::render(&c.remarks, "example.pipe", w, false)
                        });
                    }
                    _ => failures.push(format!(
                        "{code}: the wrong example should compile with a {code} remark:\n{w}"
                    )),
                }
            }
            for r in &e.right {
                if compile(&plain, r, &dir).is_err() {
                    failures.push(format!("{code}: the right example should compile:\n{r}"));
                }
            }
        } else {
            let generated = generated_wrong(code);
            let wrong = match &generated {
                Some(w) => vec![w.clone()],
                None => e.wrong.clone(),
            };
            for w in &wrong {
                match compile(&plain, w, &dir) {
                    Err(diags) if diags.iter().any(|d| d.code == code) => {
                        // A generated program is not the one shown: its output is not either.
                        if generated.is_none() {
                            printed.get_or_insert_with(|| {
                                pipec::render(&diags, "example.pipe", w, false)
                            });
                        }
                    }
                    Err(diags) => {
                        let got: Vec<String> = diags
                            .iter()
                            .map(|d| format!("{} {}", d.code, d.message))
                            .collect();
                        failures.push(format!(
                            "{code}: the wrong example reports {got:?} instead:\n{w}"
                        ));
                    }
                    Ok(_) => failures.push(format!("{code}: the wrong example compiles:\n{w}")),
                }
            }
            // Syntax explanations show fragments (no pipeline); past them, the fix must compile.
            let must_compile = code.as_str() >= "E0100";
            for r in &e.right {
                match compile(&plain, r, &dir) {
                    Err(diags) if diags.iter().any(|d| d.code == code) || must_compile => {
                        let got: Vec<String> = diags
                            .iter()
                            .map(|d| format!("{} {}", d.code, d.message))
                            .collect();
                        failures.push(format!("{code}: the right example reports {got:?}:\n{r}"));
                    }
                    _ => {}
                }
            }
        }
        // Paths pipec resolved against the scratch directory are shown as if the example
        // lived in `/data`.
        let scratch_dir = format!("{}/", dir.display());
        let printed = printed.map(|p| p.replace(&scratch_dir, "/data/"));
        if let Some(printed) = printed.map(|p| without_trailing_spaces(&p)) {
            let shown = e.reports.as_deref().map(without_trailing_spaces);
            if shown.as_deref() == Some(printed.as_str()) {
                continue;
            }
            if blessing() {
                let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("../diag/explain/{code}.md"));
                let md = std::fs::read_to_string(&path).expect("explanation reads");
                std::fs::write(&path, with_reports_block(&md, &printed))
                    .expect("explanation writes");
            } else {
                failures.push(format!(
                    "{code}: the `pipec reports:` block is not what pipec prints \
                     (PIPEC_BLESS_EXPLAIN=1 rewrites it):\n--- shown\n{}--- printed\n{printed}",
                    shown.unwrap_or_else(|| "(no block)\n".into())
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked >= 60, "only {checked} codes were checked");
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
