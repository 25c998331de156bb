//! Replays the committed fuzz corpus (`fuzz/corpus/TARGET/`) and every input that once
//! crashed a target (`tests/fuzz_regressions/TARGET/`) through the same checks the fuzz
//! targets run, so `cargo test` keeps them fixed without libFuzzer.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn replay(folder: &str, min_per_target: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Generated programs and traced deep inputs want more than a test thread's stack.
    let mut failures = Vec::new();
    for (name, check) in pipec_fuzzing::TARGETS {
        let dir = root.join(folder).join(name);
        let files = inputs(&dir);
        assert!(
            files.len() >= min_per_target,
            "{}: expected at least {min_per_target} inputs",
            dir.display()
        );
        for file in files {
            let data = std::fs::read(&file).expect("input reads");
            let ok = std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn(move || check(&data))
                .expect("spawn")
                .join()
                .is_ok();
            if !ok {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failing inputs:\n{}",
        failures.join("\n")
    );
}

#[test]
fn seed_corpus_replays() {
    replay("fuzz/corpus", 5);
}

#[test]
fn past_crashes_stay_fixed() {
    replay("tests/fuzz_regressions", 0);
}
