//! Rows of a mapped `.npy` file read in place by a fused map (never copied into a block),
//! through the real binary: the same stdout as element-at-a-time execution (`-O0`) at every
//! thread count, the values numpy's arithmetic gives, the same first error when the map fails
//! in the middle of a block, and the same output when a later step of the block's chain fails
//! (the rows are then made after all).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory for this test process.
fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("pipec-in-place-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A `.npy` file of `dtype` and `shape` holding `data`, with numpy's header (`big_endian`:
/// the header says `>`, for bytes already swapped).
fn write_npy(path: &Path, dtype: pipec::DType, shape: &[usize], data: &[u8], big_endian: bool) {
    let mut out = pipec::io::npy_header(dtype, shape);
    if big_endian {
        let at = out
            .iter()
            .position(|&b| b == b'<')
            .expect("a little-endian descr");
        out[at] = b'>';
    }
    out.extend(data);
    std::fs::write(path, out).expect("write npy");
}

/// `i32[rows, 3]` with values `(i * 7 + j) % 1000 - 500`, written to `name`.
fn int_rows(name: &str, rows: usize) -> PathBuf {
    let path = dir().join(name);
    let data: Vec<u8> = (0..rows * 3)
        .flat_map(|k| ((((k / 3) * 7 + k % 3) % 1000) as i32 - 500).to_le_bytes())
        .collect();
    write_npy(&path, pipec::DType::I32, &[rows, 3], &data, false);
    path
}

/// Runs `program` (written next to the data) with `args`.
fn run(name: &str, program: &str, args: &[&str]) -> Output {
    let file = dir().join(format!("{name}.pipe"));
    std::fs::write(&file, program).expect("write program");
    Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .arg(&file)
        .output()
        .expect("the pipec binary runs")
}

/// The message line of the first diagnostic.
fn first_error(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .find(|l| l.contains("] Error: "))
        .unwrap_or("")
        .to_string()
}

/// `program` gives the same stdout, exit status and first error at `-O0` on one thread as at
/// `-O2` on 1, 2 and 4 threads; returns the reference run.
fn same_everywhere(name: &str, program: &str) -> Output {
    same_everywhere_with(name, program, &[])
}

/// [`same_everywhere`] with `extra` arguments on every run.
fn same_everywhere_with(name: &str, program: &str, extra: &[&str]) -> Output {
    let with = |base: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let reference_args = with(&["-O0", "--threads", "1"]);
    let reference_argv: Vec<&str> = reference_args.iter().map(String::as_str).collect();
    let reference = run(name, program, &reference_argv);
    for threads in ["1", "2", "4"] {
        let these = with(&["-O2", "--threads", threads]);
        let argv: Vec<&str> = these.iter().map(String::as_str).collect();
        let out = run(name, program, &argv);
        assert_eq!(
            out.status.code(),
            reference.status.code(),
            "{name} at {threads} threads: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == reference.stdout,
            "{name}: stdout differs at {threads} threads"
        );
        assert_eq!(
            first_error(&out.stderr),
            first_error(&reference.stderr),
            "{name}"
        );
    }
    reference
}

/// The stdout of a run that must have succeeded, checked to start with `start`.
fn printed(out: &Output, start: &str) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.starts_with(start), "{}", &text[..text.len().min(80)]);
    text
}

#[test]
fn a_fused_map_over_mapped_rows_prints_what_element_at_a_time_execution_does() {
    int_rows("ints.npy", 20_000);
    let out = same_everywhere(
        "scale",
        "pipeline main = from_tensor_slices(read_npy(\"ints.npy\")).batch(256)\n    .map(|b| cast(b, f32) * [1.0, 2.0, 3.0])",
    );
    // Row 1 is [7, 8, 9] - 500 scaled by [1, 2, 3]; the last batch holds 20000 % 256 rows.
    let text = printed(&out, "[[ -500.  -998. -1494.]\n [ -493.  -984. -1473.]");
    let batches = text.lines().filter(|l| l.starts_with("[[")).count();
    assert_eq!(batches, 20_000usize.div_ceil(256));
}

#[test]
fn an_error_in_the_middle_of_a_mapped_block_is_the_first_element_error() {
    int_rows("ints_err.npy", 5_000);
    // The divisor is zero where a value is 77: first in row 225 (225 * 7 + 2 = 1577), so in
    // batch 2.
    let out = same_everywhere(
        "divide",
        "pipeline main = from_tensor_slices(read_npy(\"ints_err.npy\")).batch(100)\n    .map(|b| 1000 // (b - 77))",
    );
    assert!(!out.status.success());
    let error = first_error(&out.stderr);
    assert!(
        error.contains("integer division by zero in element 2"),
        "{error}"
    );
}

#[test]
fn a_later_step_failing_makes_the_rows_after_all() {
    int_rows("ints_chain.npy", 8_000);
    let out = same_everywhere(
        "chain",
        "pipeline main = from_tensor_slices(read_npy(\"ints_chain.npy\"))\n    .map(|x| x * 2)\n    .filter(|x| 10 // (x[0] - 396) > -100)\n    .batch(64)",
    );
    // x[0] * 2 == 396 first in row 814 (814 * 7 % 1000 - 500 = 198).
    let error = first_error(&out.stderr);
    assert!(
        error.contains("integer division by zero in element 814"),
        "{error}"
    );
    let batches = String::from_utf8_lossy(&out.stdout).matches("[[").count();
    assert_eq!(
        batches,
        814 / 64,
        "the whole batches before the failing row are printed"
    );
}

#[test]
fn two_mapped_files_zipped_into_one_map() {
    int_rows("left.npy", 3_000);
    let path = dir().join("right.npy");
    let data: Vec<u8> = (0..3_000)
        .flat_map(|i| (i as f64 * 0.25).to_le_bytes())
        .collect();
    write_npy(&path, pipec::DType::F64, &[3_000], &data, false);
    let out = same_everywhere(
        "pair",
        "pipeline main = from_tensor_slices((read_npy(\"left.npy\"), read_npy(\"right.npy\"))).batch(500)\n    .map(|a, b| cast(a[:, 0], f64) + b)",
    );
    // Row 2: (14 % 1000 - 500) + 0.5.
    printed(&out, "[-5.0000e+02 -4.9275e+02 -4.8550e+02");
}

/// A file truncated by another process while the run reads it ends the run with status 1 and
/// a message (a fault on the mapping's missing pages, or a short read), never a silent death.
#[test]
fn a_file_truncated_during_the_run_is_reported() {
    use std::io::Read;
    let path = int_rows("shrinks.npy", 400_000);
    let file = dir().join("shrinks.pipe");
    std::fs::write(
        &file,
        "pipeline main = from_tensor_slices(read_npy(\"shrinks.npy\")).batch(64)\n    .map(|b| cast(b, f32) * 2.0)",
    )
    .expect("write program");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["--threads", "2"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the pipec binary runs");
    let mut stdout = child.stdout.take().expect("piped");
    // Printing is far slower than computing and stdout is a pipe: after the first bytes, the
    // run is still far from the file's end.
    let mut first = [0u8; 4096];
    stdout.read_exact(&mut first).expect("first output");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(1000))
        .expect("truncates");
    let mut rest = Vec::new();
    let _ = stdout.read_to_end(&mut rest);
    let out = child.wait_with_output().expect("waits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("shrank while pipec was reading it")
            || stderr.contains("changed while being read"),
        "{stderr}"
    );
}

/// `i64[rows]` with values `(i * 37) % 1001 - 300`, written to `name`.
fn long_values(name: &str, rows: usize) -> PathBuf {
    let path = dir().join(name);
    let data: Vec<u8> = (0..rows as i64)
        .flat_map(|i| ((i * 37) % 1001 - 300).to_le_bytes())
        .collect();
    write_npy(&path, pipec::DType::I64, &[rows], &data, false);
    path
}

#[test]
fn a_filter_over_mapped_rows_copies_out_the_kept_ones() {
    long_values("longs.npy", 30_000);
    let out = same_everywhere(
        "keep",
        "pipeline main = from_tensor_slices(read_npy(\"longs.npy\")).filter(|x| x % 3 == 1).batch(1000)",
    );
    let want: Vec<i64> = (0..30_000i64)
        .map(|i| (i * 37) % 1001 - 300)
        .filter(|x| x.rem_euclid(3) == 1)
        .collect();
    let values: Vec<i64> = printed(&out, "[")
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().expect("an integer"))
        .collect();
    assert_eq!(values, want);
}

#[test]
fn a_filter_failing_in_the_middle_of_mapped_rows_reports_the_first_element() {
    long_values("longs_err.npy", 30_000);
    // The predicate divides by zero where x == 400.
    let out = same_everywhere(
        "keep_err",
        "pipeline main = from_tensor_slices(read_npy(\"longs_err.npy\")).filter(|x| 10 // (x - 400) > 0).batch(100)",
    );
    assert!(!out.status.success());
    let first = (0..30_000i64)
        .position(|i| (i * 37) % 1001 - 300 == 400)
        .expect("a zero divisor");
    let error = first_error(&out.stderr);
    assert!(
        error.contains(&format!("division by zero in element {first}")),
        "{error}"
    );
}

/// `global_shuffle` over a mapped file too large to read whole (here: over `--max-memory`
/// itself, which refuses reading the big-endian copy whole) copies rows out of the map as it
/// asks for them: the same elements in the same order as over the same values read whole.
#[test]
fn a_global_shuffle_over_a_mapped_file_is_the_one_over_the_array_read_whole() {
    let rows = 5_000usize;
    let values: Vec<i64> = (0..rows as i64).map(|i| (i * 37) % 1001 - 300).collect();
    let le: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let be: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    for (name, data, big_endian) in [
        ("shuffle_le.npy", &le, false),
        ("shuffle_be.npy", &be, true),
    ] {
        write_npy(
            &dir().join(name),
            pipec::DType::I64,
            &[rows],
            data,
            big_endian,
        );
    }
    for tail in [
        ".batch(64)",
        ".map(|x| x * 3 + 1).batch(7, drop_remainder: true)",
    ] {
        let program = |file: &str| {
            format!(
                "pipeline main = from_tensor_slices(read_npy(\"{file}\")).global_shuffle(seed: 11){tail}"
            )
        };
        let cap = ["--max-memory", "30K"];
        let mapped = same_everywhere_with("shuffle_mapped", &program("shuffle_le.npy"), &cap);
        let whole = same_everywhere("shuffle_whole", &program("shuffle_be.npy"));
        let refused = run("shuffle_refused", &program("shuffle_be.npy"), &cap);
        assert!(first_error(&refused.stderr).contains("[E0701]"), "{tail}");
        assert!(printed(&mapped, "[").len() > 1000, "{tail}");
        assert!(mapped.stdout == whole.stdout, "{tail}: the orders differ");
    }
}
