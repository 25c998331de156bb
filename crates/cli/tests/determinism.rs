//! Determinism: the programs in `tests/cases/determinism/` (seeded shuffles, parallel maps,
//! eager functions and `py_function`, filters, batches, caches) print byte-identical output
//! on every run, at every `--threads` count and at every optimization level, and write
//! byte-identical `--output` files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Stdout of a successful run.
fn run(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("pipec runs");
    assert!(
        out.status.success(),
        "pipec {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn programs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("tests/cases/determinism"))
        .expect("determinism cases")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pipe"))
        .map(|p| {
            p.strip_prefix(root())
                .unwrap_or(&p)
                .to_string_lossy()
                .to_string()
        })
        .collect();
    v.sort();
    assert!(v.len() >= 4, "determinism cases are missing");
    v
}

#[test]
fn stdout_is_identical_across_runs_threads_and_levels() {
    for prog in programs() {
        let reference = run(&["--threads", "1", "-O2", &prog]);
        assert!(!reference.is_empty(), "{prog} printed nothing");
        let mut variants: Vec<Vec<&str>> = vec![vec![]; 2];
        for t in ["1", "2", "3", "4", "8"] {
            variants.push(vec!["--threads", t]);
        }
        for level in ["-O0", "-O1", "-O2"] {
            variants.push(vec![level, "--threads", "3"]);
        }
        for mut args in variants {
            args.push(&prog);
            assert!(
                run(&args) == reference,
                "{prog}: `pipec {}` printed something else",
                args.join(" ")
            );
        }
    }
}

#[test]
fn output_files_are_identical() {
    let dir = std::env::temp_dir().join(format!("pipec-determinism-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for prog in programs() {
        // .jsonl takes any element shapes; .npy needs one shape, which these batches vary in.
        let mut outputs = Vec::new();
        for (i, args) in [
            vec!["--threads", "1", "-O0"],
            vec!["--threads", "4", "-O2"],
            vec!["--threads", "8", "-O1"],
            vec!["--threads", "2", "-O2"],
        ]
        .into_iter()
        .enumerate()
        {
            let path = dir.join(format!("out{i}.jsonl"));
            let path_text = path.to_string_lossy().to_string();
            let mut full = args.clone();
            full.extend(["--output", &path_text, &prog]);
            run(&full);
            outputs.push(std::fs::read(&path).expect("output written"));
        }
        assert!(!outputs[0].is_empty(), "{prog}: empty output file");
        assert!(
            outputs.windows(2).all(|w| w[0] == w[1]),
            "{prog}: output files differ across threads and levels"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
