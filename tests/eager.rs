//! The escape hatch end to end: eager functions, `py_function`, and `exec` workers,
//! including workers that crash, hang, answer garbage or flood stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pipec(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("pipec runs");
    (out, start.elapsed())
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

fn no_worker_left(script: &str) -> bool {
    let out = Command::new("pgrep").args(["-f", script]).output();
    // pgrep missing: cannot check; exit 1 means no process matched.
    out.map_or(true, |o| {
        o.status.code() == Some(1) || o.status.code() == Some(127)
    })
}

#[test]
fn failing_workers_are_errors_and_are_reaped() {
    let cases = [
        ("crash", "E0503", "exit status: 3"),
        ("hang", "E0504", "no answer within"),
        ("garbage", "E0505", "answered garbage"),
        ("no_hello", "E0505", "did not greet"),
        ("flood", "E050", "stderr"),
    ];
    for (name, code, text) in cases {
        let case = format!("tests/cases/eager/exec_{name}.pipe");
        let (out, took) = pipec(&["--allow-exec", "--worker-timeout", "2", &case]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(code) && stderr.contains(text),
            "{name}: expected {code} and `{text}` in:\n{stderr}"
        );
        assert!(took < Duration::from_secs(20), "{name} took {took:?}");
        assert!(
            no_worker_left(&format!("workers/{name}.py")),
            "{name}: the worker process was not reaped"
        );
    }
}

#[test]
fn exec_needs_allow_exec() {
    let (out, _) = pipec(&["tests/cases/eager/exec_sort.pipe"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("E0502") && stderr.contains("exec_sort.pipe:2"),
        "{stderr}"
    );
}

#[test]
#[cfg_attr(pipec_no_numpy, ignore = "python3 with numpy is not installed")]
fn numpy_worker_sorts_and_result_types_are_checked() {
    require_numpy();
    let (out, _) = pipec(&["--allow-exec", "tests/cases/eager/exec_sort.pipe"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[1. 2. 3.]\n[7. 8. 9.]\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, _) = pipec(&["--allow-exec", "tests/cases/eager/exec_wrong_type.pipe"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("E0500")
            && stderr.contains("f64[3]")
            && stderr.contains("f32[3]")
            && stderr.contains("element 0"),
        "{stderr}"
    );
}

#[test]
fn eager_print_goes_to_stderr_per_element() {
    let (out, _) = pipec(&["tests/cases/eager/print_each.pipe"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[1 3]\n[2]\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "[3 1 3]\n[2 2 2]\n");
}

#[test]
#[cfg_attr(pipec_no_numpy, ignore = "python3 with numpy is not installed")]
fn exec_workers_serve_parallel_lanes_in_order() {
    require_numpy();
    let expected: String = ["[1. 2. 3.]", "[7. 8. 9.]", "[4. 5. 6.]", "[-1.  0.  1.]"]
        .map(|l| format!("{l}\n"))
        .concat()
        .repeat(50);
    for threads in ["1", "4"] {
        let (out, _) = pipec(&[
            "--allow-exec",
            "--threads",
            threads,
            "tests/cases/eager/exec_parallel.pipe",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "threads {threads}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
#[cfg_attr(pipec_no_numpy, ignore = "python3 with numpy is not installed")]
fn worker_exiting_mid_run_is_an_error_after_the_elements_it_answered() {
    require_numpy();
    let case = "tests/cases/eager/exec_exit_mid_run.pipe";
    let (out, took) = pipec(&["--allow-exec", "--worker-timeout", "5", case]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The two answered elements were printed; the third names the element and the exit.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n10\n");
    assert!(
        stderr.contains("E0503")
            && stderr.contains("element 2")
            && stderr.contains("exit status: 4")
            && stderr.contains("worker leaving after two answers"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(no_worker_left("workers/exit_after_two.py"));
    // Stopping before the worker would leave: a clean run, and the worker is still reaped.
    let (out, _) = pipec(&["--allow-exec", "--take", "2", case]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n10\n");
    assert!(no_worker_left("workers/exit_after_two.py"));
}

/// A `.pipe` file named without a directory part (`pipec f.pipe` inside its folder) still
/// starts its workers there: the working directory is `.`, not the empty path.
#[test]
#[cfg_attr(pipec_no_numpy, ignore = "python3 with numpy is not installed")]
fn workers_start_when_the_file_is_named_without_a_directory() {
    require_numpy();
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["--allow-exec", "numpy_worker.pipe"])
        .current_dir(root().join("examples"))
        .output()
        .expect("pipec runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(root().join("examples/numpy_worker.stdout"))
        .expect("expected output");
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}
