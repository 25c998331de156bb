//! Every diagnostic code is explained, and every explanation's examples are real.
//!
//! `crates/diag/explain/EXXXX.md` (shown by `pipec --explain EXXXX`) starts with
//! `# EXXXX: title`, explains the rule, and has fenced examples after a `Wrong:` line and
//! after `Right:` / `Also right:` lines. This test compiles or runs every example:
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
//! Examples run in a scratch directory holding the files they mention (`images.npy`,
//! `notes.txt`, `table.csv`, `clean.csv`).

use pipec::{Code, CompileOptions, Compiler, SourceFile, Tensor};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The parts of one explanation the checks need.
struct Explained {
    wrong: Vec<String>,
    right: Vec<String>,
    markers: Vec<String>,
}

/// Splits an explanation into its examples (by the line before each fence) and markers.
fn parse(md: &str) -> Explained {
    let mut out = Explained {
        wrong: Vec::new(),
        right: Vec::new(),
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
            if last_text.starts_with("Wrong") {
                out.wrong.push(block);
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

/// Compiles and runs `text`, returning the first error's code, if any.
fn compile_and_run(compiler: &Compiler, text: &str, dir: &Path) -> Option<Code> {
    let compiled = match compile(compiler, text, dir) {
        Ok(c) => c,
        Err(diags) => return diags.first().map(|d| d.code),
    };
    let stream = match compiled.run(&pipec::RunOptions::default()) {
        Ok(s) => s,
        Err(d) => return Some(d.code),
    };
    stream.filter_map(Result::err).map(|d| d.code).next()
}

/// Runs the `pipec` binary on `text` (written into `dir`) with `args`.
fn run_binary(code: Code, text: &str, args: &[String], dir: &Path) -> (Option<i32>, String) {
    let path = dir.join(format!("{code}.pipe"));
    std::fs::write(&path, text).expect("write the example");
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .arg(&path)
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
        if has("runtime") {
            let (wrong_args, right_args) = (
                marker_args(&e.markers, "args", &dir),
                marker_args(&e.markers, "right-args", &dir),
            );
            let tag = format!("[{code}]");
            for w in &e.wrong {
                let (status, stderr) = run_binary(code, w, &wrong_args, &dir);
                if status == Some(0) || !stderr.contains(&tag) {
                    failures.push(format!("{code}: the wrong example should fail with {code} (exit {status:?}):\n{w}{stderr}"));
                }
            }
            for r in &e.right {
                let (status, stderr) = run_binary(code, r, &right_args, &dir);
                if status != Some(0) || stderr.contains(&tag) {
                    failures.push(format!(
                        "{code}: the right example should run (exit {status:?}):\n{r}{stderr}"
                    ));
                }
            }
        } else if has("embedding") {
            for w in &e.wrong {
                if compile_and_run(&embedding, w, &dir) != Some(code) {
                    failures.push(format!(
                        "{code}: the wrong example should fail with {code}:\n{w}"
                    ));
                }
            }
            for r in &e.right {
                if let Some(c) = compile_and_run(&embedding, r, &dir) {
                    failures.push(format!(
                        "{code}: the right example should run, got {c}:\n{r}"
                    ));
                }
            }
        } else if has("remark") {
            for w in &e.wrong {
                match compile(&plain, w, &dir) {
                    Ok(c) if c.remarks.iter().any(|d| d.code == code) => {}
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
            let wrong = match generated_wrong(code) {
                Some(w) => vec![w],
                None => e.wrong.clone(),
            };
            for w in &wrong {
                match compile(&plain, w, &dir) {
                    Err(diags) if diags.iter().any(|d| d.code == code) => {}
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
