//! Links the `pipec` binary without PIE (see `main`), and looks for the outside tools some
//! tests need — python3 with numpy (the `exec` worker tests), Graphviz `dot` (rendering
//! `--emit-dot`), `script` (a terminal for the progress bar) — and sets `pipec_no_numpy`,
//! `pipec_no_dot`, `pipec_no_script` for each one missing. The tests that need a missing
//! tool are then `#[ignore]`d with the reason, so `cargo test` lists them as ignored
//! instead of passing them silently. With `PIPEC_REQUIRE_NUMPY` or `PIPEC_REQUIRE_DOT` set
//! (as `.ci/run` does) nothing is ignored for that tool: the tests run and fail when it is
//! missing.
//!
//! Cargo runs this again when `PATH`, the Python environment or those variables change,
//! or when a found tool changes; after installing a missing tool, `touch crates/cli/build.rs`
//! (or any of those variables changing) brings its tests back.

use std::path::PathBuf;
use std::process::Command;

/// The standard output of `cmd args`, when it runs and succeeds.
fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    // `pipec` is linked as a position-dependent executable: a PIE of this size made the
    // dynamic loader apply 37 754 relative relocations (and fault in the pages they touch)
    // at every start, 0.2-0.35 ms of a 1.2-1.5 ms start (docs/performance.md). Libraries,
    // stack and heap stay randomized; the Python module (a cdylib) is not affected.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
    for var in [
        "PATH",
        "PIPEC_REQUIRE_NUMPY",
        "PIPEC_REQUIRE_DOT",
        "PYTHONPATH",
        "PYTHONHOME",
        "VIRTUAL_ENV",
        "PYENV_VERSION",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let required = |var: &str| std::env::var_os(var).is_some();

    // numpy's own file, so that uninstalling it is noticed too.
    let numpy = run(
        "python3",
        &["-c", "import numpy, sys; sys.stdout.write(numpy.__file__)"],
    );
    flag(
        "pipec_no_numpy",
        numpy.as_deref(),
        required("PIPEC_REQUIRE_NUMPY"),
    );
    let dot = run("dot", &["-V"]).and_then(|_| which("dot"));
    flag(
        "pipec_no_dot",
        dot.as_deref(),
        required("PIPEC_REQUIRE_DOT"),
    );
    let script = run("script", &["--version"]).and_then(|_| which("script"));
    flag("pipec_no_script", script.as_deref(), false);
}

/// Sets `cfg` when the tool was not `found` (its file) and is not `required`.
fn flag(cfg: &str, found: Option<&str>, required: bool) {
    println!("cargo::rustc-check-cfg=cfg({cfg})");
    match found {
        Some(file) => println!("cargo::rerun-if-changed={file}"),
        None if !required => println!("cargo::rustc-cfg={cfg}"),
        None => {}
    }
}

/// The file `PATH` finds for `cmd`.
fn which(cmd: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(cmd))
        .find(|p: &PathBuf| p.is_file())
        .map(|p| p.display().to_string())
}
