//! W6 (issue 17): 2 000 JPEGs of 500x375 -> `decode_jpeg` -> `resize` 224x224 bilinear ->
//! normalize -> `batch(32)`, timed as whole `pipec --discard` processes (decoding runs on
//! the lanes, so the process is what scales with `--threads`), with PIL + numpy (one core)
//! and tf.data (`num_parallel_calls` = the same thread count) from `bench/compare/w6.py`.
//! The JPEGs are written by that script with PIL (quality 90): pipec has no encoder.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Images in W6.
pub(crate) const IMAGES: usize = 2000;

/// W6's measurements (seconds; `None` for what did not run).
pub(crate) struct Row {
    pub(crate) pipec: Option<f64>,
    pub(crate) pil: Option<f64>,
    pub(crate) tf: Option<f64>,
    pub(crate) note: String,
}

/// `python3 bench/compare/w6.py ARGS` from `root`; its `seconds=` line.
fn script(root: &Path, args: &[&str]) -> Option<f64> {
    let out = Command::new("python3")
        .arg(root.join("bench/compare/w6.py"))
        .args(args)
        .current_dir(root)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("warning: bench/compare/w6.py {args:?} failed");
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("seconds=")?.trim().parse().ok())
}

/// Writes the JPEGs (with PIL) unless all are there; false when they cannot be written.
fn generate(root: &Path, dir: &Path, has: &dyn Fn(&str) -> bool) -> bool {
    let count = std::fs::read_dir(dir.join("img")).map_or(0, |d| d.count());
    if count >= IMAGES {
        return true;
    }
    if !has("PIL") {
        return false;
    }
    eprintln!("W6: writing {IMAGES} JPEGs with PIL into {}", dir.display());
    let dir = dir.to_string_lossy();
    Command::new("python3")
        .arg(root.join("bench/compare/w6.py"))
        .args(["gen", &dir])
        .current_dir(root)
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs W6: `reps` timed pipec processes after an untimed one (their median), then the
/// baselines when `python` and their modules are there (`has`: python3 imports it).
pub(crate) fn run(
    root: &Path,
    pipec: Option<&Path>,
    threads: usize,
    reps: usize,
    python: bool,
    has: &dyn Fn(&str) -> bool,
) -> Row {
    let mut row = Row {
        pipec: None,
        pil: None,
        tf: None,
        note: String::new(),
    };
    let workloads = root.join("bench/workloads");
    let data = workloads.join("data/w6");
    if !generate(root, &data, has) {
        row.note = "skipped: no JPEGs, and python3 cannot import PIL to write them \
                    (pip install pillow)"
            .into();
        return row;
    }
    match pipec {
        None => row.note.push_str(" no target/release/pipec binary"),
        Some(bin) => {
            let mut times = Vec::new();
            for rep in 0..=reps {
                let t = Instant::now();
                let ok = Command::new(bin)
                    .args(["--discard", "--threads", &threads.to_string()])
                    .arg(workloads.join("w6.pipe"))
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    row.note.push_str(" pipec failed");
                    break;
                }
                // The first run is untimed: it brings the files into the page cache.
                if rep > 0 {
                    times.push(t.elapsed().as_secs_f64());
                }
            }
            if !times.is_empty() {
                times.sort_by(f64::total_cmp);
                row.pipec = Some(times[times.len() / 2]);
            }
        }
    }
    let dir = data.to_string_lossy();
    if !python {
        row.note.push_str(" baselines skipped (--no-python)");
        return row;
    }
    if has("PIL") {
        row.pil = script(root, &["pil", &dir]);
    }
    if has("tensorflow") {
        row.tf = script(root, &["tf", &dir, &threads.to_string()]);
    } else {
        row.note
            .push_str(" tf.data skipped: python3 cannot import tensorflow");
    }
    row
}

/// Prints W6's table (nothing when it was not asked for).
pub(crate) fn print(row: &Row, threads: usize, reps: usize) {
    let s = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"));
    let ratio = |base: Option<f64>, scale: f64| match (base, row.pipec) {
        (Some(b), Some(p)) => format!("{:.2}x", b / (p * scale)),
        _ => "n/a".into(),
    };
    println!();
    println!(
        "images: `pipec --discard --threads {threads}` processes (median of {reps}), PIL + numpy on \
         one core and tf.data with num_parallel_calls {threads} (median of 3 passes each, \
         bench/compare/w6.py); speed = baseline time / pipec time (higher is better)"
    );
    println!();
    println!(
        "| workload | images | pipec s | PIL + numpy s | pipec speed per core / PIL | tf.data s | pipec speed / tf.data | target | notes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---|");
    println!(
        "| W6 JPEG 500x375 -> decode -> resize 224x224 -> normalize -> batch 32 | {IMAGES} | {} | {} | {} | {} | {} | >= 1x PIL per core, >= 2x tf.data | {} |",
        s(row.pipec),
        s(row.pil),
        ratio(row.pil, threads as f64),
        s(row.tf),
        ratio(row.tf, 1.0),
        row.note.trim()
    );
}
