//! What the user sees besides elements, through the real binary:
//!
//! - `--emit-dot`: snapshots of the Graphviz text for a few programs, and every example's
//!   graph rendered by Graphviz's own `dot` (ignored, with the reason in the test summary,
//!   when `dot` is not installed, unless `PIPEC_REQUIRE_DOT` is set, as `.ci/run` does; see
//!   `crates/cli/build.rs`).
//! - `--progress`: never changes stdout or output files, and on a terminal (a pty from
//!   `script`, when installed) it draws.
//! - `docs/language.md` and `docs/tutorial.md`: every program and `$ pipec` command is run
//!   and its output compared with the text shown (see [`check_doc`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn emit_dot(path: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(extra)
        .arg("--emit-dot")
        .arg(path)
        .output()
        .expect("the pipec binary runs")
}

fn dot_text(rel: &str, extra: &[&str]) -> String {
    let out = emit_dot(&root().join(rel), extra);
    assert!(
        out.status.success(),
        "{rel}: exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("DOT output is UTF-8")
}

#[test]
fn dot_snapshots() {
    // A fused elementwise op (nested cluster), an eager call (marked), three maps fused
    // into one, and the same program unoptimized, where the maps are still separate.
    let cases: [(&str, &str, &[&str]); 4] = [
        ("batch_scale", "examples/batch_scale.pipe", &[]),
        ("py_function", "examples/numpy_py_function.pipe", &[]),
        ("fuse_maps", "tests/cases/opt/fuse-maps/chain.pipe", &[]),
        (
            "fuse_maps_O0",
            "tests/cases/opt/fuse-maps/chain.pipe",
            &["-O0"],
        ),
    ];
    for (name, rel, extra) in cases {
        insta::assert_snapshot!(format!("dot_{name}"), dot_text(rel, extra));
    }
}

#[test]
fn dot_output_is_deterministic() {
    let a = dot_text("examples/numpy_eager.pipe", &[]);
    let b = dot_text("examples/numpy_eager.pipe", &[]);
    assert_eq!(a, b);
}

#[test]
fn emit_dot_reports_errors_like_any_compile() {
    let dir = std::env::temp_dir().join(format!("pipec-dot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.pipe");
    std::fs::write(&bad, "pipeline main = range(3).map(|x| x / 2)\n").expect("write case");
    let out = emit_dot(&bad, &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "no graph is printed for a failed compile"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("[E0103]"));
}

/// Fails unless Graphviz `dot` runs. The rendering tests are ignored (with the reason in
/// the summary) when `dot` was missing at build time (`crates/cli/build.rs`), so reaching
/// here without it means `PIPEC_REQUIRE_DOT` is set, or `dot` went away since.
fn require_dot() {
    let found = Command::new("dot")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "Graphviz `dot` is missing (PIPEC_REQUIRE_DOT is set, or `dot` was there when the tests were built)"
    );
}

/// Feeds DOT text to `dot -Tsvg`; `Err` with its exit code and stderr unless it renders
/// cleanly (Graphviz reports bad attributes and escapes as warnings and still exits 0).
fn render_svg(text: &[u8]) -> Result<(), String> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dot starts");
    child
        .stdin
        .take()
        .expect("dot's stdin")
        .write_all(text)
        .expect("feed dot");
    let res = child.wait_with_output().expect("dot finishes");
    let svg = String::from_utf8_lossy(&res.stdout);
    if res.status.success() && res.stderr.is_empty() && svg.contains("<svg") {
        Ok(())
    } else {
        Err(format!(
            "dot -Tsvg exit {:?}\n{}",
            res.status.code(),
            String::from_utf8_lossy(&res.stderr)
        ))
    }
}

#[test]
#[cfg_attr(pipec_no_dot, ignore = "Graphviz `dot` is not installed")]
fn labels_with_quotes_and_backslashes_render() {
    require_dot();
    // The data file's absolute path appears in a label: a directory named with a quote and
    // a backslash must not break the DOT string.
    let dir = std::env::temp_dir().join(format!("pipec-dot-\"q\\{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(
        root().join("examples/data/labels.npy"),
        dir.join("labels.npy"),
    )
    .expect("copy data");
    let case = dir.join("p.pipe");
    std::fs::write(
        &case,
        "pipeline main = from_tensor_slices(read_npy(\"labels.npy\")).map(|x| x * 2)\n",
    )
    .expect("write case");
    let out = emit_dot(&case, &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // The IR text shows the path as a Rust string (`\"q\\`); DOT escaping doubles that again.
    assert!(text.contains(r#"pipec-dot-\\\"q\\\\"#), "{text}");
    render_svg(&out.stdout).expect("renders");
}

#[test]
#[cfg_attr(pipec_no_dot, ignore = "Graphviz `dot` is not installed")]
fn every_example_renders_with_graphviz() {
    require_dot();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pipe"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 6, "examples are missing");
    let mut failures = Vec::new();
    for ex in &examples {
        // Tracing an `exec` declaration needs --allow-exec; --emit-dot starts no worker.
        let out = emit_dot(ex, &["--allow-exec"]);
        if !out.status.success() {
            failures.push(format!(
                "{}: --emit-dot failed\n{}",
                ex.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        if let Err(e) = render_svg(&out.stdout) {
            failures.push(format!("{}: {e}", ex.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn pipec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .output()
        .expect("the pipec binary runs")
}

#[test]
fn progress_never_changes_the_output() {
    let ex = root().join("examples/batch_scale.pipe");
    let ex = ex.to_str().expect("utf-8 path");
    let plain = pipec(&[ex]);
    let with_bar = pipec(&["--progress", ex]);
    assert!(plain.status.success() && with_bar.status.success());
    assert_eq!(plain.stdout, with_bar.stdout);
    // stderr is a pipe here: indicatif draws nothing on a non-terminal.
    assert!(
        with_bar.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&with_bar.stderr)
    );

    let dir = std::env::temp_dir().join(format!("pipec-progress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (a, b) = (dir.join("a.npy"), dir.join("b.npy"));
    let out_a = pipec(&["--output", a.to_str().expect("utf-8"), ex]);
    let out_b = pipec(&[
        "--progress",
        "--take",
        "1",
        "--output",
        b.to_str().expect("utf-8"),
        ex,
    ]);
    let (bytes_a, bytes_b) = (std::fs::read(&a), std::fs::read(&b));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out_a.status.success() && out_b.status.success());
    assert!(out_b.stdout.is_empty());
    // batch_scale has one element, so `--take 1` writes the same file.
    assert_eq!(
        bytes_a.expect("a.npy written"),
        bytes_b.expect("b.npy written")
    );
}

#[test]
fn progress_keeps_run_time_errors_and_stats() {
    let dir = std::env::temp_dir().join(format!("pipec-progress-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let case = dir.join("div.pipe");
    std::fs::write(&case, "pipeline main = range(3).map(|x| 6 // (x - 1))\n").expect("write case");
    let out = pipec(&["--progress", "--stats", case.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "-6\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("[E0600]"));

    let ok = root().join("tests/cases/run/filter_range.pipe");
    let out = pipec(&["--progress", "--stats", ok.to_str().expect("utf-8 path")]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("elements: "), "{stderr}");
}

/// A ```pipe (or ```sh) block of a document, and the ```text block right after it, if any.
struct DocBlock {
    /// 1-based line of the opening fence, for messages.
    line: usize,
    /// Whether it is a ```sh block (a `$ pipec ...` command) rather than a program.
    shell: bool,
    code: String,
    expected: Option<String>,
}

/// The ```pipe blocks of a Markdown file, each with the ```text block that follows it
/// (separated by nothing but blank lines).
fn doc_blocks(text: &str) -> Vec<DocBlock> {
    let lines: Vec<&str> = text.lines().collect();
    let fenced = |start: usize| -> (String, usize) {
        let mut body = String::new();
        let mut i = start + 1;
        while i < lines.len() && lines[i].trim_end() != "```" {
            body.push_str(lines[i]);
            body.push('\n');
            i += 1;
        }
        (body, i + 1)
    };
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_end();
        if fence != "```pipe" && fence != "```sh" {
            i += 1;
            continue;
        }
        let (code, next) = fenced(i);
        let mut j = next;
        while j < lines.len() && lines[j].trim().is_empty() {
            j += 1;
        }
        let expected = (j < lines.len() && lines[j].trim_end() == "```text").then(|| fenced(j).0);
        blocks.push(DocBlock {
            line: i + 1,
            shell: fence == "```sh",
            code,
            expected,
        });
        i = next;
    }
    blocks
}

/// The value of a `# KEY: VALUE` marker line in a block.
fn marker<'a>(code: &'a str, key: &str) -> Option<&'a str> {
    code.lines()
        .find_map(|l| l.strip_prefix(&format!("# {key}:")))
        .map(str::trim)
}

/// A file's program text without its leading `#` header lines (the `# numpy:` oracle and
/// the description), which documents leave out.
fn without_header(text: &str) -> String {
    let body: Vec<&str> = text.lines().skip_while(|l| l.starts_with('#')).collect();
    body.join("\n").trim().to_string()
}

/// Runs every ```pipe block of `doc` as its markers say (see docs/architecture.md, "Testing
/// map"): a block whose first line names a repository file (`# examples/x.pipe`) must be
/// that file's program and runs it; any other block runs from a temporary `example.pipe`.
/// `# args:` adds flags. With a ```text block after it, the output must be exactly that
/// text: stdout on success, stderr on failure (or with `# show: stderr`). Without one, the
/// block must compile, or fail to compile with the code of an `# error:` marker. ```sh
/// blocks are commands, checked by [`check_command`]. Only the blocks that need numpy (an
/// `exec` worker run with `--allow-exec`), or only the others, are run, as `numpy` says;
/// returns how many blocks were run, and the failures.
fn check_doc(doc: &str, numpy: bool) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(root().join(doc)).expect("document reads");
    let blocks = doc_blocks(&text);
    // One directory per call: the worker blocks of a document are checked at the same
    // time as its other blocks.
    let tmp = std::env::temp_dir().join(format!(
        "pipec-doc-{}-{}-{numpy}",
        std::process::id(),
        doc.replace('/', "_")
    ));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let mut failures = Vec::new();
    let mut run_blocks = 0;
    for b in &blocks {
        let at = format!("{doc}:{}", b.line);
        if needs_numpy(b) != numpy {
            continue;
        }
        run_blocks += 1;
        if b.shell {
            if let Some(f) = check_command(b) {
                failures.push(format!("{at}: {f}"));
            }
            continue;
        }
        let first = b.code.lines().next().unwrap_or("");
        let named = first
            .strip_prefix("# ")
            .filter(|p| p.ends_with(".pipe") && !p.contains(' '));
        let (dir, file) = match named {
            Some(rel) => {
                let Ok(real) = std::fs::read_to_string(root().join(rel)) else {
                    failures.push(format!("{at}: `{rel}` does not exist"));
                    continue;
                };
                let shown: String = b.code.lines().skip(1).collect::<Vec<_>>().join("\n");
                if without_header(&real) != without_header(&shown) {
                    failures.push(format!(
                        "{at}: the block is not the program of `{rel}`\n--- file\n{}\n--- block\n{}",
                        without_header(&real),
                        without_header(&shown)
                    ));
                    continue;
                }
                (root(), rel.to_string())
            }
            None => {
                std::fs::write(tmp.join("example.pipe"), &b.code).expect("write block");
                (tmp.clone(), "example.pipe".to_string())
            }
        };
        let mut args: Vec<String> = marker(&b.code, "args")
            .map(|a| a.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        let run = |args: &[String]| {
            Command::new(env!("CARGO_BIN_EXE_pipec"))
                .args(args)
                .arg(&file)
                .current_dir(&dir)
                .output()
                .expect("the pipec binary runs")
        };
        match &b.expected {
            Some(expected) => {
                let out = run(&args);
                let show_stderr =
                    !out.status.success() || marker(&b.code, "show") == Some("stderr");
                let got = String::from_utf8_lossy(if show_stderr {
                    &out.stderr
                } else {
                    &out.stdout
                });
                if got != *expected || out.status.code().is_none_or(|c| c > 1) {
                    failures.push(format!(
                        "{at}: exit {:?}\n--- expected\n{expected}--- got\n{got}--- stderr\n{}",
                        out.status.code(),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            None => {
                args.push("--check".to_string());
                let out = run(&args);
                let stderr = String::from_utf8_lossy(&out.stderr);
                let ok = match marker(&b.code, "error") {
                    Some(code) => {
                        out.status.code() == Some(1) && stderr.contains(&format!("[{code}]"))
                    }
                    None => out.status.success(),
                };
                if !ok {
                    failures.push(format!(
                        "{at}: --check exit {:?}\n{stderr}",
                        out.status.code()
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        blocks.len() >= 3,
        "{doc} has too few ```pipe/```sh blocks: is the fence spelled ```pipe?"
    );
    (run_blocks, failures)
}

/// Whether a block runs an `exec` worker: a program or a command with `--allow-exec`.
fn needs_numpy(b: &DocBlock) -> bool {
    b.code.contains("--allow-exec") && (b.shell || b.code.contains("exec("))
}

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

/// Checks a ```sh block `$ pipec ARGS` followed by a ```text block: run from the repository
/// root, it must print exactly that text (stdout on success, stderr on failure; with a
/// trailing `2>&1`, stderr then stdout). Other shell blocks (pipes, other commands, no
/// output shown) are illustrations and are not run.
fn check_command(b: &DocBlock) -> Option<String> {
    let expected = b.expected.as_ref()?;
    let line = b.code.trim();
    let cmd = line.strip_prefix("$ pipec ")?;
    let (cmd, merged) = match cmd.strip_suffix(" 2>&1") {
        Some(c) => (c, true),
        None => (cmd, false),
    };
    if line.lines().count() != 1 || cmd.contains(['|', '>', '<', ';', '&']) {
        return None;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(cmd.split_whitespace())
        .current_dir(root())
        .output()
        .expect("the pipec binary runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let got = if merged {
        format!("{stderr}{stdout}")
    } else if out.status.success() {
        stdout.to_string()
    } else {
        stderr.to_string()
    };
    (got != *expected).then(|| {
        format!(
            "`{line}`: exit {:?}\n--- expected\n{expected}--- got\n{got}",
            out.status.code()
        )
    })
}

#[test]
fn tutorial_commands_and_programs_run_as_shown() {
    let (_, failures) = check_doc("docs/tutorial.md", false);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn language_reference_examples_run_as_shown() {
    let (_, failures) = check_doc("docs/language.md", false);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The blocks the two tests above leave out: those running a numpy `exec` worker.
#[test]
#[cfg_attr(pipec_no_numpy, ignore = "python3 with numpy is not installed")]
fn doc_examples_with_numpy_workers_run_as_shown() {
    require_numpy();
    let (tutorial, mut failures) = check_doc("docs/tutorial.md", true);
    let (language, more) = check_doc("docs/language.md", true);
    failures.extend(more);
    assert!(tutorial + language >= 3, "the worker examples are missing");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
#[cfg_attr(
    pipec_no_script,
    ignore = "`script` is not installed: no terminal to draw on"
)]
fn progress_draws_on_a_terminal_and_leaves_the_output_alone() {
    // `script` (util-linux) runs the command on a pseudo-terminal, the only place the bar
    // is drawn.
    let dir = std::env::temp_dir().join(format!("pipec-progress-tty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let case = dir.join("long.pipe");
    std::fs::write(
        &case,
        "pipeline main = range(400000).map(|x| x * 2).filter(|x| x % 3 == 0)\n",
    )
    .expect("write case");
    let (plain, shown) = (dir.join("plain.npy"), dir.join("shown.npy"));
    let bin = env!("CARGO_BIN_EXE_pipec");
    let out = pipec(&[
        "--output",
        plain.to_str().expect("utf-8"),
        case.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success());
    let cmd = format!(
        "'{bin}' --progress --output '{}' '{}'",
        shown.display(),
        case.display()
    );
    let tty = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script runs");
    let drawn = String::from_utf8_lossy(&tty.stdout).to_string();
    let (a, b) = (std::fs::read(&plain), std::fs::read(&shown));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(tty.status.success(), "{drawn}");
    assert!(drawn.contains(" elements, "), "no bar drawn:\n{drawn}");
    assert_eq!(a.expect("plain output"), b.expect("output with a bar"));
}
