//! Helpers shared by the CLI test binaries that run small programs.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `pipec ARGS FILE` on `program`, written to a fresh file under a directory named
/// after the suite and the test (so parallel tests never share one).
pub fn run_program(suite: &str, test: &str, program: &str, args: &[&str]) -> Output {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("pipec-{suite}-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("p.pipe");
    std::fs::write(&path, program).expect("write program");
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .arg(&path)
        .output()
        .expect("the pipec binary runs");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Bytes of a stream as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
