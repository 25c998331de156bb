//! `read_lines`, `read_csv` and `read_tfrecord` hand out blocks whose rows a lane makes (the
//! consumer only finds where lines or records end): the elements, and the first error with
//! its diagnostic (file, line, record), are those of reading one element at a time, at
//! every level and thread count, with every block handed to a lane.

use pipec::records::{Compression, TfRecordWriter};
use pipec::{CompileOptions, Compiler, RunOptions, SourceFile};
use std::path::{Path, PathBuf};

/// A scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pipec-readers-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// What a run gives: every element printed as numpy prints it, then the error's code and
/// message, if it fails.
fn run(dir: &Path, program: &str, level: u8, threads: usize) -> (Vec<String>, Option<String>) {
    let mut source = SourceFile::from_text("t.pipe", program);
    source.dir = dir.to_path_buf();
    let opts = CompileOptions {
        opt_level: level,
        ..Default::default()
    };
    let compiled = Compiler::new().compile(&source, &opts).expect("compiles");
    let elem = compiled.element_type();
    let run = RunOptions {
        threads,
        lane_min_bytes: 0,
        ..Default::default()
    };
    let mut out = Vec::new();
    for e in compiled.run(&run).expect("opens") {
        match e {
            Ok(leaves) => out.push(pipec::format_element(&elem, &leaves)),
            Err(d) => return (out, Some(format!("{:?} {}", d.code, d.message))),
        }
    }
    (out, None)
}

/// Levels and thread counts every program runs at; the first is the reference.
const CONFIGS: [(u8, usize); 5] = [(0, 1), (0, 3), (2, 1), (2, 2), (2, 3)];

/// Runs `program` at every config and checks that all agree; returns the reference run.
fn agree(dir: &Path, program: &str) -> (Vec<String>, Option<String>) {
    let want = run(dir, program, CONFIGS[0].0, CONFIGS[0].1);
    for (level, threads) in &CONFIGS[1..] {
        let got = run(dir, program, *level, *threads);
        assert_eq!(
            got.1, want.1,
            "{program}: error at -O{level}, {threads} threads"
        );
        assert_eq!(
            got.0.len(),
            want.0.len(),
            "{program}: count at -O{level}, {threads} threads"
        );
        assert_eq!(
            got.0, want.0,
            "{program}: rows at -O{level}, {threads} threads"
        );
    }
    want
}

/// Lines of every length (empty ones, `\r\n` endings, a `\r` alone inside a line).
fn text_lines(n: usize, seed: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let k = (i * 7919 + seed) % 23;
            match k {
                0 => String::new(),
                1 => "a\rb".to_string(),
                _ => format!("line {i} {}", "x".repeat(k * 3)),
            }
        })
        .collect()
}

fn write_text(path: &Path, lines: &[String], last_newline: bool) {
    let mut s = String::new();
    for (i, l) in lines.iter().enumerate() {
        s.push_str(l);
        if i + 1 < lines.len() || last_newline {
            s.push_str(if i % 5 == 0 { "\r\n" } else { "\n" });
        }
    }
    std::fs::write(path, s).expect("write");
}

#[test]
fn lines_are_the_files_lines_at_every_level_and_thread_count() {
    let dir = scratch("lines");
    let mut a = text_lines(9000, 1);
    // A line longer than the reader's 4 MiB part, so lines cross parts.
    a[4000] = "y".repeat(5 << 20);
    let b = text_lines(1234, 2);
    write_text(&dir.join("a.txt"), &a, true);
    write_text(&dir.join("b.txt"), &b, false);
    std::fs::write(dir.join("empty.txt"), "").expect("write");
    let all: Vec<String> = a.iter().chain(&b).cloned().collect();
    let files = "[\"a.txt\", \"empty.txt\", \"b.txt\"]";
    let (rows, error) = agree(&dir, &format!("pipeline main = read_lines({files})"));
    assert_eq!(error, None);
    assert_eq!(rows.len(), all.len());
    // A `\r` inside a line is kept (only a `\r\n` ending goes).
    let cr = all
        .iter()
        .position(|l| l == "a\rb")
        .expect("a line with a \\r");
    assert_eq!(rows[cr], "b'a\\rb'");
    for program in [
        format!("pipeline main = read_lines({files}).map(|l| l + \"!\").batch(7)"),
        format!("pipeline main = read_lines({files}).batch(7).map(|b| upper(b))"),
        format!("pipeline main = read_lines({files}).map(|l| length(l)).filter(|n| n > 20)"),
        format!(
            "pipeline main = read_lines({files}).skip(100).take(5000).batch(64, drop_remainder: true)"
        ),
    ] {
        let (rows, error) = agree(&dir, &program);
        assert_eq!(error, None, "{program}");
        assert!(!rows.is_empty(), "{program}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CSV file with a header, blank and white-space lines, and `\r\n` endings; a bad cell
/// in the middle is E0604 naming its line, after every row before it.
#[test]
fn csv_rows_and_the_first_bad_cell_at_every_level_and_thread_count() {
    let dir = scratch("csv");
    let mut s = String::from("\u{feff}a,b,c\n\n");
    for i in 0..6000 {
        match i % 97 {
            5 => s.push_str("   \n"),
            6 => s.push_str("\u{a0}\t\r\n"),
            _ => {}
        }
        // Padded (cells are trimmed) so the file spans more than one 4 MiB part.
        let pad = " ".repeat(i % 1500);
        s.push_str(&format!("{i}.5,{pad} {}, -{}e-1\r\n", i * 3, i % 11));
    }
    std::fs::write(dir.join("good.csv"), &s).expect("write");
    let (rows, error) = agree(&dir, "pipeline main = read_csv(\"good.csv\", f32)");
    assert_eq!(error, None);
    assert_eq!(rows.len(), 6000);
    assert_eq!(rows[2], "[ 2.5  6.  -0.2]");
    let (rows, error) = agree(
        &dir,
        "pipeline main = read_csv(\"good.csv\", f64).map(|r| r * 2.0).batch(5)",
    );
    assert_eq!((rows.len(), error), (1200, None));
    // A bad cell, then a ragged row: the first is the error.
    let bad = s
        .replacen(" 12300,", " 12x300,", 1)
        .replacen(" 12600,", "", 1);
    std::fs::write(dir.join("bad.csv"), &bad).expect("write");
    let line = 1 + bad[..bad.find("12x300").expect("the bad cell")]
        .matches('\n')
        .count();
    for program in [
        "pipeline main = read_csv(\"bad.csv\", f32)",
        "pipeline main = read_csv(\"bad.csv\", f32).map(|r| r + 1.0).batch(3)",
        "pipeline main = read_csv(\"bad.csv\", f64, header: true).batch(4096)",
    ] {
        let (rows, error) = agree(&dir, program);
        let error = error.expect("fails");
        assert!(error.starts_with("BadCsvCell"), "{error}");
        assert!(error.contains(&format!("line {line}, column 2")), "{error}");
        if !program.contains("batch") {
            assert_eq!(rows.len(), 4100, "{program}");
        }
    }
    // Not UTF-8 in the middle: the line is named.
    let mut bytes = s.clone().into_bytes();
    let at = s.find("3000.5").expect("row 3000");
    bytes[at + 1] = 0xff;
    std::fs::write(dir.join("bin.csv"), &bytes).expect("write");
    let (rows, error) = agree(&dir, "pipeline main = read_csv(\"bin.csv\", f32)");
    assert_eq!(rows.len(), 3000);
    assert!(error.expect("fails").contains("not UTF-8"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn write_records(path: &Path, records: &[Vec<u8>], compression: Compression) {
    let mut w = TfRecordWriter::create(path, compression).expect("create");
    for r in records {
        w.write_record(r).expect("write");
    }
    w.finish().expect("finish");
}

/// Records of every size (empty ones, some over a 4 MiB read part).
fn records(n: usize, seed: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let len = match (i + seed) % 101 {
                0 => 0,
                _ if i == 303 => (5 << 20) + seed,
                k => k * 13,
            };
            (0..len)
                .map(|j| ((i * 31 + j * 7 + seed) % 251) as u8)
                .collect()
        })
        .collect()
}

#[test]
fn tfrecords_and_the_first_damaged_record_at_every_level_and_thread_count() {
    let dir = scratch("tfrecord");
    let a = records(3000, 1);
    let b = records(700, 2);
    write_records(&dir.join("a.tfrecord"), &a, Compression::None);
    write_records(&dir.join("b.tfrecord"), &b, Compression::None);
    write_records(&dir.join("b.tfrecord.gz"), &b, Compression::Gzip);
    let program =
        "pipeline main = read_tfrecord([\"a.tfrecord\", \"b.tfrecord\"]).map(|r| length(r))";
    let (rows, error) = agree(&dir, program);
    assert_eq!(error, None);
    let lengths: Vec<String> = a.iter().chain(&b).map(|r| r.len().to_string()).collect();
    assert_eq!(rows, lengths);
    let (rows, error) = agree(
        &dir,
        "pipeline main = read_tfrecord([\"b.tfrecord\", \"b.tfrecord\"]).batch(9).map(|r| length(r))",
    );
    assert_eq!((rows.len(), error), ((b.len() * 2).div_ceil(9), None));
    let (gz, error) = agree(
        &dir,
        "pipeline main = read_tfrecord(\"b.tfrecord.gz\", compression: \"GZIP\").map(|r| length(r))",
    );
    assert_eq!(error, None);
    assert_eq!(gz, lengths[a.len()..]);
    let (rows, error) = agree(&dir, "pipeline main = read_tfrecord(\"b.tfrecord\")");
    assert_eq!((rows.len(), error), (b.len(), None));

    // A damaged data byte in record 2500: the 2500 records before it, then E0621 naming it.
    let mut bytes = std::fs::read(dir.join("a.tfrecord")).expect("read");
    let at: usize = a[..2500].iter().map(|r| r.len() + 16).sum::<usize>() + 12;
    bytes[at + a[2500].len() / 2] ^= 1;
    std::fs::write(dir.join("bad.tfrecord"), &bytes).expect("write");
    // And a file cut inside record 2900's data (after the damage: the damage comes first).
    std::fs::write(dir.join("cut.tfrecord"), &bytes[..bytes.len() - 20_000]).expect("write");
    for file in ["bad.tfrecord", "cut.tfrecord"] {
        let program = format!("pipeline main = read_tfrecord(\"{file}\").map(|r| length(r))");
        let (rows, error) = agree(&dir, &program);
        assert_eq!(rows.len(), 2500, "{file}");
        let error = error.expect("fails");
        assert!(
            error.contains("record 2500") && error.contains("data CRC"),
            "{error}"
        );
    }
    // Cut with no damage before: every whole record, then the truncation.
    let good = std::fs::read(dir.join("a.tfrecord")).expect("read");
    std::fs::write(dir.join("short.tfrecord"), &good[..good.len() - 10]).expect("write");
    let (rows, error) = agree(
        &dir,
        "pipeline main = read_tfrecord(\"short.tfrecord\").map(|r| length(r))",
    );
    assert_eq!(rows.len(), a.len() - 1);
    let error = error.expect("fails");
    assert!(
        error.contains(&format!("record {}", a.len() - 1)),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
