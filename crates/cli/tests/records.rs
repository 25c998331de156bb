//! Record formats through the binary (SPEC §14): TFRecord and Parquet files written by TF and
//! pyarrow (`tests/records/gen.py`) read, parsed and written back, at `-O0` and `-O2`;
//! run-time errors with their codes, naming file and record or row; atomic record outputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod cut_resume;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/records/data")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pipec-records-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `program` (a file in `dir`) with `args`.
fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    let file = dir.join("p.pipe");
    std::fs::write(&file, program).unwrap();
    Command::new(env!("CARGO_BIN_EXE_pipec"))
        .arg(&file)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

const PARSE: &str = r#"let f = {"image": str, "label": i64, "bbox": "f32[2, 2]", "tokens": "i64[?]", "words": "str[?]", "weight": f32}
"#;

#[test]
fn every_compression_parses_the_same_at_every_level() {
    let dir = scratch("levels");
    let d = data();
    let mut outs = Vec::new();
    for (file, c) in [
        ("plain.tfrecord", ""),
        ("gzip.tfrecord.gz", "GZIP"),
        ("zlib.tfrecord", "ZLIB"),
    ] {
        let p = format!(
            "{PARSE}pipeline main = read_tfrecord({:?}, compression: {c:?}).map(|r| parse_example(r, f, default: {{\"weight\": 0.5}}))\n",
            d.join(file).display().to_string()
        );
        for level in ["-O0", "-O2"] {
            outs.push(stdout(&run(&dir, &p, &[level])));
        }
    }
    assert!(outs.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        outs[0].lines().filter(|l| l.starts_with('{')).count(),
        5,
        "{}",
        outs[0]
    );
    // Batched parsing (after `batch`) gives the same values, padded.
    let p = format!(
        "{PARSE}pipeline main = read_tfrecord({:?}).batch(5).map(|r| parse_example(r, f, default: {{\"weight\": 0.5}}))\n",
        d.join("plain.tfrecord").display().to_string()
    );
    let batched = stdout(&run(&dir, &p, &[]));
    assert!(
        batched.contains("'weight': [1.5 0.5 3.5 0.5 5.5]"),
        "{batched}"
    );
    assert!(
        batched.contains("'label': [-15  -5   5  15  25]"),
        "{batched}"
    );
}

#[test]
fn record_outputs_read_back_the_same() {
    let dir = scratch("roundtrip");
    let d = data();
    let src = format!(
        "pipeline main = read_parquet({:?}, columns: [\"i64\", \"f32\", \"text\", \"vec\", \"mat\", \"flag\"])\n",
        d.join("types.parquet").display().to_string()
    );
    let original = stdout(&run(&dir, &src, &[]));
    let out = dir.join("rows.parquet");
    stdout(&run(&dir, &src, &["--output", out.to_str().unwrap()]));
    let back = "pipeline main = read_parquet(\"rows.parquet\")\n";
    assert_eq!(stdout(&run(&dir, back, &[])), original);
    // Batched straight after the source: column slices, the same rows.
    let b = stdout(&run(
        &dir,
        "pipeline main = read_parquet(\"rows.parquet\").batch(4).unbatch()\n",
        &["-O2"],
    ));
    assert_eq!(b, original);

    let out = dir.join("rows.tfrecord.gz");
    stdout(&run(&dir, &src, &["--output", out.to_str().unwrap()]));
    let parse = "pipeline main = read_tfrecord(\"rows.tfrecord.gz\", compression: \"GZIP\").map(|r| parse_example(r, {\"i64\": i64, \"f32\": f32, \"text\": str, \"vec\": \"f32[3]\", \"mat\": \"i64[2, 2]\", \"flag\": i64}))\n";
    let parsed = stdout(&run(&dir, parse, &[]));
    assert_eq!(parsed.lines().count(), original.lines().count());
    assert!(parsed.contains("'text': b'row 1'"), "{parsed}");
}

#[test]
fn damaged_files_fail_with_codes_and_leave_no_output() {
    let dir = scratch("errors");
    let d = data();
    let cases = [
        (
            format!(
                "pipeline main = read_tfrecord({:?})\n",
                d.join("bad_crc.tfrecord").display().to_string()
            ),
            "E0621",
            "record 2: the data CRC does not match",
        ),
        (
            format!(
                "pipeline main = read_tfrecord({:?})\n",
                d.join("truncated.tfrecord").display().to_string()
            ),
            "E0621",
            "record 3: the file ends inside",
        ),
        (
            format!(
                "pipeline main = read_parquet({:?})\n",
                d.join("nulls.parquet").display().to_string()
            ),
            "E0623",
            "row 2, column `v`",
        ),
        (
            format!(
                "pipeline main = read_parquet({:?})\n",
                d.join("zstd.parquet").display().to_string()
            ),
            "E0621",
            "ZSTD",
        ),
        (
            format!(
                "pipeline main = read_tfrecord({:?}).map(|r| parse_example(r, {{\"weight\": f32}}))\n",
                d.join("plain.tfrecord").display().to_string()
            ),
            "E0622",
            "feature `weight`: missing",
        ),
    ];
    for (i, (p, code, text)) in cases.iter().enumerate() {
        let out = dir.join(format!("o{i}.tfrecord"));
        let o = run(&dir, p, &["--output", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("[{code}]")) && err.to_lowercase().contains(&text.to_lowercase()),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "a failed run left {}", out.display());
    }
    let o = run(
        &dir,
        &format!(
            "pipeline main = read_parquet({:?})\n",
            d.join("unsupported.parquet").display().to_string()
        ),
        &["--check"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("[E0420]") && err.contains("column `when`"),
        "{err}"
    );
}

/// Runs `pipec ARGS p.pipe` in `dir` with `program` as p.pipe; the stdout of a success.
fn ok_in(dir: &Path, program: &str, args: &[&str]) -> String {
    std::fs::write(dir.join("p.pipe"), program).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .arg("p.pipe")
        .current_dir(dir)
        .output()
        .unwrap();
    stdout(&o)
}

/// Record sources checkpoint (SPEC §15): cut anywhere by `--take` — inside a file, at a file's
/// end, in a later file, inside a block a `batch`/`prefetch` read ahead — saved and resumed at
/// another `--threads`, the two runs print byte for byte what one run prints.
#[test]
fn record_sources_resume_exactly_where_they_stopped() {
    let dir = scratch("resume");
    // Inputs written by pipec itself: two plain and two GZIP TFRecord files, two Parquet files.
    let rows = |a: u32, b: u32| {
        format!(
            "pipeline main = range({a}, {b}).map(|i| {{\"id\": i, \"x\": cast(i, f32) * [0.5, 1.5], \"s\": as_string(i)}})\n"
        )
    };
    for (out, a, b) in [
        ("a.tfrecord", 0, 23),
        ("b.tfrecord", 23, 40),
        ("c.tfrecord.gz", 0, 19),
        ("d.tfrecord.gz", 19, 31),
        ("e.parquet", 0, 26),
        ("f.parquet", 26, 45),
    ] {
        ok_in(&dir, &rows(a, b), &["--output", out]);
    }
    let parse = r#"|r| parse_example(r, {"id": i64, "x": "f32[2]", "s": str})"#;
    let programs = [
        format!(
            "pipeline main = read_tfrecord([\"a.tfrecord\", \"b.tfrecord\"]).map({parse})\n\
             .map(|e| (e[\"id\"], e[\"x\"] * 2.0, e[\"s\"]))\n"
        ),
        format!(
            "pipeline main = read_tfrecord([\"c.tfrecord.gz\", \"d.tfrecord.gz\"], compression: \"GZIP\")\n\
             .map({parse}).map(|e| e[\"id\"] * 3).shuffle(5, seed: 2).batch(4).prefetch(2).repeat(2)\n"
        ),
        "pipeline main = read_parquet([\"e.parquet\", \"f.parquet\"]).map(|e| (e[\"id\"], e[\"x\"], e[\"s\"]))\n"
            .to_string(),
        "pipeline main = read_parquet([\"e.parquet\", \"f.parquet\"], columns: [\"x\", \"id\"]).batch(7)\n\
         .map(|b| b[\"x\"][:, 0] + cast(b[\"id\"], f32)).prefetch(1).unbatch().skip(2).repeat(2)\n"
            .to_string(),
        format!(
            "pipeline main = zip(read_tfrecord([\"a.tfrecord\", \"b.tfrecord\"]).map({parse}),\n\
             read_parquet([\"f.parquet\", \"e.parquet\"], columns: [\"id\"])).map(|t, p| t[\"id\"] * 100 + p[\"id\"])\n\
             .batch(3, drop_remainder: true).map(|b| b * 2, num_parallel_calls: 2)\n"
        ),
    ];
    for (n, program) in programs.iter().enumerate() {
        for level in ["-O0", "-O2"] {
            let whole = ok_in(&dir, program, &[level, "--threads", "1"]);
            let total = whole.lines().filter(|l| !l.starts_with(' ')).count();
            assert!(total > 10, "program {n}:\n{whole}");
            cut_resume::assert_cuts_resume(
                |args| ok_in(&dir, program, args),
                &whole,
                level,
                &[0, 1, 5, 19, 23, 24, total / 2 + 1, total - 1, total],
                &[("1", "2"), ("2", "1")],
                &format!("program {n}"),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A state that points past the files (the files were replaced by shorter ones) is a coded
/// error naming the record source, never a wrong resume or a crash.
#[test]
fn a_record_state_past_the_files_is_an_error() {
    let dir = scratch("resume-past");
    let write = |n: u32, out: &str| {
        ok_in(
            &dir,
            &format!("pipeline main = range({n}).map(|i| {{\"id\": i}})\n"),
            &["--output", out],
        );
    };
    write(30, "t.tfrecord");
    write(30, "t.parquet");
    for (program, code) in [
        ("pipeline main = read_tfrecord(\"t.tfrecord\")\n", "E0621"),
        ("pipeline main = read_parquet(\"t.parquet\")\n", "E0621"),
    ] {
        ok_in(&dir, program, &["--take", "20", "--save-state", "s"]);
        write(10, "t.tfrecord");
        write(10, "t.parquet");
        std::fs::write(dir.join("p.pipe"), program).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_pipec"))
            .args(["--resume", "s", "p.pipe"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{program}: {err}");
        assert!(err.contains(code), "{program}: {err}");
        write(30, "t.tfrecord");
        write(30, "t.parquet");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Parquet file the fuzzer found, on which arrow-rs panics ("Decoder for dict should have
/// been set") while reading a page: the run fails with E0621 naming the file as malformed,
/// and stderr holds that diagnostic only (no panic message, no backtrace).
#[test]
fn a_file_arrow_rs_panics_on_is_a_quiet_malformed_file_error() {
    let dir = scratch("arrow-panic");
    let file = data().join("fuzz_dict_decoder.parquet");
    let program = dir.join("p.pipe");
    let text = format!(
        "pipeline main = read_parquet({:?})\n",
        file.display().to_string()
    );
    std::fs::write(&program, text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .arg(&program)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("[E0621]") && err.contains("the file is malformed"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}
