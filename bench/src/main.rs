//! `cargo run --release -p pipec-bench [-- OPTIONS]`: runs the workloads of the "Performance"
//! issue in pipec, in their fused Rust reference loops and (when installed) in numpy and
//! tf.data, then prints a markdown table of medians, throughputs and ratios. See
//! `docs/performance.md` for how to read it.

mod w6;

use pipec_bench::{Id, Out};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: pipec-bench [OPTIONS]

  --quick          fewer repetitions, no whole-process runs (about a minute)
  --gen            only (re)generate bench/workloads/data/ (.npy, W7's TFRecords, W8's
                   Parquet file) and exit
  --only LIST      comma-separated workloads: w1,w2,w3,w4,w4t,w5,w6,w7,w8 (W6, JPEGs
                   that PIL writes on first use, runs without --quick or when named)
  --reps N         repetitions of each pipec run (default 7, as the loop's; --quick 1)
  --threads N      --threads for pipec (default: the number of cores, like the CLI)
  --no-process     skip whole-process `pipec --discard` timing
  --no-python      skip the numpy and tf.data scripts
  --no-startup     skip the `pipec --check examples/*.pipe` start-up timing
  --no-build       do not run `cargo build --release -p pipec-cli` first";

/// Parsed command line.
struct Args {
    quick: bool,
    gen_only: bool,
    only: Option<Vec<String>>,
    reps: usize,
    threads: usize,
    process: bool,
    python: bool,
    startup: bool,
    build: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        quick: false,
        gen_only: false,
        only: None,
        reps: 0,
        threads: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        process: true,
        python: true,
        startup: true,
        build: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--gen" => a.gen_only = true,
            "--only" => {
                a.only = Some(
                    value("--only")?
                        .split(',')
                        .map(|s| s.trim().to_lowercase())
                        .collect(),
                )
            }
            "--reps" => {
                a.reps = value("--reps")?
                    .parse()
                    .map_err(|e| format!("--reps: {e}"))?
            }
            "--threads" => {
                a.threads = value("--threads")?
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?
            }
            "--no-process" => a.process = false,
            "--no-python" => a.python = false,
            "--no-startup" => a.startup = false,
            "--no-build" => a.build = false,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if a.reps == 0 {
        // As many as the loop gets: a median of 3 on this shared machine still swings.
        a.reps = if a.quick { 1 } else { 7 };
    }
    if a.quick {
        a.process = false;
    }
    Ok(a)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Where things are: the repository root and the `pipec` binary.
struct Paths {
    root: PathBuf,
    workloads: PathBuf,
    pipec: Option<PathBuf>,
}

fn locate(build: bool) -> Paths {
    // The bench is run from the repository through cargo; the manifest path is stable.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf();
    let workloads = root.join("bench/workloads");
    if build {
        eprintln!("building the pipec binary (cargo build --release -p pipec-cli) ...");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "--release", "-q", "-p", "pipec-cli"])
            .current_dir(&root)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "warning: building pipec-cli failed; using whatever target/release/pipec exists"
            );
        }
    }
    // The benchmark binary sits next to `pipec` in target/release.
    let pipec = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.parent()
                .map(|d| d.join(format!("pipec{}", std::env::consts::EXE_SUFFIX)))
        })
        .filter(|p| p.exists());
    Paths {
        root,
        workloads,
        pipec,
    }
}

/// The measurements of one workload (seconds are medians; `None`: not measured).
#[derive(Default)]
struct Row {
    compile: f64,
    /// Median time of `Compiled::run`: building the plan and opening the input files.
    open: Option<f64>,
    pipec: Option<f64>,
    pipec_reps: usize,
    outputs: usize,
    process: Option<f64>,
    /// Median time to read the input file from the page cache into a fresh buffer.
    read: Option<f64>,
    /// `serial share` from `pipec --stats --discard` at the bench's thread count.
    serial: Option<f64>,
    reference: f64,
    ref_outputs: usize,
    numpy: Option<f64>,
    /// The numpy script with `np.load` of its input timed too (`--with-load`).
    numpy_whole: Option<f64>,
    tfdata: Option<f64>,
    note: String,
}

fn time_pipec(id: Id, paths: &Paths, args: &Args, row: &mut Row) -> Result<(), String> {
    let file = paths.workloads.join(id.file());
    let t = Instant::now();
    let compiled = pipec_bench::compile(&file)?;
    row.compile = secs(t.elapsed());
    let mut times = Vec::new();
    let mut opens = Vec::new();
    // One untimed run first, as for the loop: the first run of a process starts the lane
    // helpers and faults in its buffers (the process column keeps that cost).
    pipec_bench::drain(&compiled, args.threads)?;
    for rep in 0..args.reps {
        // The loop runs on an input already in memory. pipec reads a sliced `.npy` a block of
        // rows at a time as the run pulls them (on the lanes), so its `pipec` time includes
        // reading the file from the page cache; `open` is the rest of opening the run.
        let t = Instant::now();
        let stream = pipec_bench::open(&compiled, args.threads)?;
        opens.push(secs(t.elapsed()));
        let mut stream = stream;
        let t = Instant::now();
        row.outputs = pipec_bench::drain_stream(&mut stream)?;
        let s = secs(t.elapsed());
        times.push(s);
        // Freeing the loaded input is the load's counterpart, not the pipeline's work (the
        // loop's input outlives its timing too): it happens here, outside the clock.
        drop(stream);
        eprintln!("  {} pipec run {}: {:.3} ms", id.name(), rep + 1, s * 1e3);
        // A run of more than a minute says all there is to say: keep the suite near 3 minutes.
        if s > 60.0 {
            row.note = format!("pipec: {} of {} reps (slow)", rep + 1, args.reps);
            break;
        }
    }
    row.pipec_reps = times.len();
    row.pipec = Some(median(times));
    row.open = Some(median(opens));
    Ok(())
}

/// Median wall time of the whole `pipec --discard FILE` process over `reps` runs.
fn time_process(id: Id, paths: &Paths, args: &Args, reps: usize) -> Option<f64> {
    let bin = paths.pipec.as_ref()?;
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let status = Command::new(bin)
            .arg("--discard")
            .arg("--threads")
            .arg(args.threads.to_string())
            .arg(paths.workloads.join(id.file()))
            .stdout(Stdio::null())
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        times.push(secs(t.elapsed()));
    }
    Some(median(times))
}

/// Median time to read `id`'s input file from the page cache into a fresh buffer, as a
/// program that reads its input whole before computing pays it.
fn time_read(id: Id, paths: &Paths, reps: usize) -> Option<f64> {
    let path = paths
        .workloads
        .join("data")
        .join(format!("{}.npy", id.data()?));
    // The first read fills the page cache (and is not timed).
    std::hint::black_box(std::fs::read(&path).ok()?);
    let times = (0..reps)
        .map(|_| {
            let t = Instant::now();
            let bytes = std::fs::read(&path).ok();
            let s = secs(t.elapsed());
            std::hint::black_box(bytes);
            s
        })
        .collect();
    Some(median(times))
}

/// The median `serial share` `pipec --stats --discard` reports for `id`, as a fraction.
fn serial_share(id: Id, paths: &Paths, args: &Args, reps: usize) -> Option<f64> {
    let bin = paths.pipec.as_ref()?;
    let mut shares = Vec::new();
    for _ in 0..reps {
        let out = Command::new(bin)
            .args(["--stats", "--discard", "--threads"])
            .arg(args.threads.to_string())
            .arg(paths.workloads.join(id.file()))
            .stdout(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stderr);
        let share = text.lines().find_map(|l| {
            l.strip_prefix("serial share: ")?
                .split('%')
                .next()?
                .trim()
                .parse::<f64>()
                .ok()
        })?;
        shares.push(share / 100.0);
    }
    Some(median(shares))
}

fn time_reference(id: Id, paths: &Paths, args: &Args, row: &mut Row) -> Result<(), String> {
    // The loop reads the very bytes pipec reads; loading them is not part of either timing
    // (pipec's run time does include its own read of the .npy: see docs/performance.md).
    let input = match id.data() {
        Some(stem) => {
            let p = paths.workloads.join("data").join(format!("{stem}.npy"));
            Some(pipec::io::read_npy(&p).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    let reps = if args.quick { 3 } else { 7 };
    let mut times = Vec::new();
    // The first pass is untimed, like pipec's: it warms the caches and the branch predictors.
    for _ in 0..=reps {
        let mut n = 0usize;
        let t = Instant::now();
        pipec_bench::reference(id, input.as_ref(), pipec_bench::W3_N, &mut |out: Out<
            '_,
        >| {
            // Keeps the optimizer from deleting the work: the buffer "escapes" each batch.
            std::hint::black_box(out);
            n += 1;
        });
        times.push(secs(t.elapsed()));
        row.ref_outputs = n;
    }
    times.remove(0);
    row.reference = median(times);
    Ok(())
}

/// `python3 -c "import MODULE"` succeeds.
fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `bench/compare/KIND_wN.py` and reads its `seconds=` line.
fn time_script(kind: &str, id: Id, paths: &Paths, reps: usize, extra: &[&str]) -> Option<f64> {
    let script = paths
        .root
        .join("bench/compare")
        .join(format!("{kind}_{}.py", id.script()));
    let out = Command::new("python3")
        .arg(&script)
        .arg("--reps")
        .arg(reps.to_string())
        .args(extra)
        .current_dir(&paths.root)
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("warning: {} failed", script.display());
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("seconds=")?.trim().parse().ok())
}

/// The whole-process view (issue 20): `pipec --discard FILE` against (a) reading the input
/// from the page cache plus the loop's compute, and (b) numpy's `np.load` plus its
/// whole-array computation; and the serial share `--stats` reports.
fn print_whole_process(rows: &[(Id, Row)], args: &Args) {
    println!();
    println!(
        "whole process, {} threads: (a) = read the input file + the loop; (b) = numpy `np.load` + compute (both in-process, no interpreter start-up)",
        args.threads
    );
    println!();
    println!(
        "| workload | process | read | loop | (a) | process / (a) | target | (b) | (b) / process | (b) / pipec in-process | target | serial share | target |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (id, r) in rows {
        let Some(process) = r.process else { continue };
        let a = r.reference + r.read.unwrap_or(0.0);
        let ratio = |base: Option<f64>| match (r.numpy_whole, base) {
            (Some(b), Some(t)) => format!("{:.2}x", b / t),
            _ => "n/a".into(),
        };
        println!(
            "| {} | {process:.4} | {} | {:.4} | {a:.4} | {:.2}x | <= 1.3x | {} | {} | {} | >= 1.0x | {} | <= 5% |",
            id.name(),
            r.read.map_or_else(|| "-".into(), |s| format!("{s:.4}")),
            r.reference,
            process / a,
            opt_s(r.numpy_whole),
            ratio(Some(process)),
            ratio(r.pipec),
            r.serial
                .map_or_else(|| "n/a".into(), |s| format!("{:.1}%", s * 100.0)),
        );
    }
}

/// Median wall time of `pipec --check FILE` over `reps` runs, in ms.
fn startup(bin: &Path, file: &Path, reps: usize) -> Option<f64> {
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        // `--allow-exec`: a worker example must compile too; `--check` never starts workers.
        let ok = Command::new(bin)
            .args(["--check", "--allow-exec"])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        times.push(secs(t.elapsed()) * 1e3);
    }
    Some(median(times))
}

fn rate(elements: usize, s: f64) -> String {
    let r = elements as f64 / s;
    if r >= 1e6 {
        format!("{:.1}M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |s| format!("{s:.3}"))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    // The same thread budget for pipec's kernels as for its parallel maps.
    pipec::set_kernel_threads(args.threads);
    let paths = locate(args.build && !args.gen_only);
    let t = Instant::now();
    match pipec_bench::generate(&paths.workloads, false) {
        Ok(w) if w.is_empty() => {}
        Ok(w) => eprintln!("generated {} in {:.1} s", w.join(", "), secs(t.elapsed())),
        Err(e) => {
            eprintln!("error: generating inputs: {e}");
            std::process::exit(1);
        }
    }
    let t = Instant::now();
    match pipec_bench::records::generate_records(
        &paths.workloads.join("data"),
        pipec_bench::records::W7_RECORDS,
        pipec_bench::records::W8_ROWS,
    ) {
        Ok(w) if w.is_empty() => {}
        Ok(w) => eprintln!("generated {} in {:.1} s", w.join(", "), secs(t.elapsed())),
        Err(e) => {
            eprintln!("error: generating the record inputs: {e}");
            std::process::exit(1);
        }
    }
    let t = Instant::now();
    match pipec_bench::text::generate_text(
        &paths.workloads.join("data"),
        pipec_bench::text::W9_LINES,
        pipec_bench::text::W10_ROWS,
    ) {
        Ok(w) if w.is_empty() => {}
        Ok(w) => eprintln!("generated {} in {:.1} s", w.join(", "), secs(t.elapsed())),
        Err(e) => {
            eprintln!("error: generating the text inputs: {e}");
            std::process::exit(1);
        }
    }
    if args.gen_only {
        return;
    }
    let ids: Vec<Id> = pipec_bench::ALL
        .into_iter()
        .filter(|id| {
            args.only
                .as_ref()
                .is_none_or(|o| o.iter().any(|w| w.eq_ignore_ascii_case(id.name())))
        })
        .collect();
    let has_numpy = args.python && python_has("numpy");
    let has_tf = args.python && python_has("tensorflow");
    let py_reps = if args.quick { 2 } else { 5 };
    let mut rows = Vec::new();
    for &id in &ids {
        eprintln!("{}: {}", id.name(), id.description());
        let mut row = Row::default();
        if let Err(e) = time_pipec(id, &paths, &args, &mut row) {
            row.note = format!("pipec failed: {}", e.lines().next().unwrap_or(""));
            eprintln!("{e}");
        }
        if let (true, Some(p)) = (args.process, row.pipec) {
            // A slow workload is measured once as a process: its in-process median already
            // has the repetitions, and the start-up difference is noise at that scale.
            let reps = if p > 5.0 { 1 } else { args.reps };
            row.process = time_process(id, &paths, &args, reps);
            row.read = time_read(id, &paths, args.reps.max(3));
            row.serial = serial_share(id, &paths, &args, args.reps.max(3));
        }
        if let Err(e) = time_reference(id, &paths, &args, &mut row) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        if row.pipec.is_some() && row.outputs != row.ref_outputs {
            row.note.push_str(&format!(
                " outputs differ: pipec {} vs loop {}",
                row.outputs, row.ref_outputs
            ));
        }
        if has_numpy {
            row.numpy = time_script("numpy", id, &paths, py_reps, &[]);
            if args.process && id.data().is_some() {
                row.numpy_whole = time_script("numpy", id, &paths, py_reps, &["--with-load"]);
            }
        }
        if has_tf {
            row.tfdata = time_script("tfdata", id, &paths, py_reps, &[]);
        }
        rows.push((id, row));
    }

    let record_rows = run_records(&paths, &args);
    let image_row = run_w6(&paths, &args);
    if rows.is_empty() {
        print_records(&record_rows, &args);
        if let Some(r) = &image_row {
            w6::print(r, args.threads, args.reps);
        }
        return;
    }
    println!();
    println!(
        "pipec-bench: {} threads, pipec median of {} run(s), loop median of {}, numpy median of {}{}",
        args.threads,
        args.reps,
        if args.quick { 3 } else { 7 },
        py_reps,
        if has_numpy {
            ""
        } else {
            " (numpy not installed)"
        }
    );
    println!(
        "times in seconds; rates in input elements/s; ratios are time / loop time (lower is better)"
    );
    println!();
    println!(
        "| workload | elements | compile | open | pipec | pipec el/s | process | loop | loop el/s | pipec speed / loop | target | numpy | numpy speed / loop | tf.data | notes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (id, r) in &rows {
        let n = id.input_elements();
        let (p, pr, ratio) = match r.pipec {
            Some(p) => (
                format!("{p:.3}"),
                rate(n, p),
                format!("{:.2}x", r.reference / p),
            ),
            None => ("n/a".into(), "n/a".into(), "n/a".into()),
        };
        let np_ratio = r
            .numpy
            .map_or_else(|| "n/a".into(), |s| format!("{:.2}x", r.reference / s));
        println!(
            "| {} {} | {n} | {:.3} | {} | {p} | {pr} | {} | {:.4} | {} | {ratio} | {} | {} | {np_ratio} | {} | {} |",
            id.name(),
            id.description(),
            r.compile,
            opt_s(r.open),
            opt_s(r.process),
            r.reference,
            rate(n, r.reference),
            id.target(),
            opt_s(r.numpy),
            opt_s(r.tfdata),
            r.note.trim()
        );
    }

    if args.process {
        print_whole_process(&rows, &args);
    }

    print_records(&record_rows, &args);
    if let Some(r) = &image_row {
        w6::print(r, args.threads, args.reps);
    }

    if args.startup {
        match &paths.pipec {
            None => println!(
                "\n(start-up: no target/release/pipec binary; run `cargo build --release` first)"
            ),
            Some(bin) => {
                let reps = if args.quick { 5 } else { 20 };
                println!("\nstart-up + compile, `pipec --check FILE`, median of {reps} runs:\n");
                println!("| file | ms |");
                println!("|---|---:|");
                let mut files: Vec<PathBuf> = std::fs::read_dir(paths.root.join("examples"))
                    .map(|d| {
                        d.filter_map(|e| e.ok().map(|e| e.path()))
                            .filter(|p| p.extension().is_some_and(|x| x == "pipe"))
                            .collect()
                    })
                    .unwrap_or_default();
                files.sort();
                for f in files {
                    let ms = startup(bin, &f, reps)
                        .map_or_else(|| "failed".into(), |m| format!("{m:.1}"));
                    println!(
                        "| {} | {ms} |",
                        f.strip_prefix(&paths.root).unwrap_or(&f).display()
                    );
                }
            }
        }
    }
}

/// W6, when named in `--only`, or with no `--only` and no `--quick` (it takes a minute).
fn run_w6(paths: &Paths, args: &Args) -> Option<w6::Row> {
    let wanted = match &args.only {
        Some(o) => o.iter().any(|w| w == "w6"),
        None => !args.quick,
    };
    if !wanted {
        return None;
    }
    eprintln!("W6: JPEG 500x375 -> decode -> resize 224x224 -> normalize -> batch 32");
    Some(w6::run(
        &paths.root,
        paths.pipec.as_deref(),
        args.threads,
        args.reps,
        args.python,
        &python_has,
    ))
}

/// A record workload's measurements: pipec's median and each baseline's.
struct RecordRow {
    id: pipec_bench::records::RecordId,
    compile: f64,
    pipec: Option<f64>,
    outputs: usize,
    /// (what, seconds, outputs) per baseline that ran.
    baselines: Vec<(String, f64, usize)>,
    note: String,
}

/// Runs `bench/compare/SCRIPT --reps N --threads T EXTRA...`; its `seconds=`/`elements=`.
fn time_record_script(
    paths: &Paths,
    script: &str,
    reps: usize,
    threads: usize,
    extra: &[&str],
) -> Option<(f64, usize)> {
    let out = Command::new("python3")
        .arg(paths.root.join("bench/compare").join(script))
        .args([
            "--reps",
            &reps.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .args(extra)
        .current_dir(&paths.root)
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("warning: {script} failed");
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<f64>().ok())
    };
    Some((
        field("seconds=")?,
        field("elements=").unwrap_or(0.0) as usize,
    ))
}

/// W7 and W8: pipec in process, then tf.data / pyarrow at the same thread count.
fn run_records(paths: &Paths, args: &Args) -> Vec<RecordRow> {
    use pipec_bench::records::{RECORD_ALL, RecordId};
    let mut out = Vec::new();
    let wanted = |id: RecordId| {
        args.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|w| w.eq_ignore_ascii_case(id.name())))
    };
    for id in RECORD_ALL.into_iter().filter(|&id| wanted(id)) {
        eprintln!("{}: {}", id.name(), id.description());
        let mut row = RecordRow {
            id,
            compile: 0.0,
            pipec: None,
            outputs: 0,
            baselines: Vec::new(),
            note: String::new(),
        };
        let file = paths.workloads.join(id.file());
        let t = Instant::now();
        match pipec_bench::compile(&file) {
            Err(e) => {
                eprintln!("{e}");
                row.note = "pipec failed to compile".into();
            }
            Ok(compiled) => {
                row.compile = secs(t.elapsed());
                let mut times = Vec::new();
                // One untimed run first, as for the other workloads (page cache, lanes).
                let mut ok = pipec_bench::drain(&compiled, args.threads).map(|_| ());
                for rep in 0..args.reps {
                    if ok.is_err() {
                        break;
                    }
                    let t = Instant::now();
                    match pipec_bench::drain(&compiled, args.threads) {
                        Ok(n) => {
                            row.outputs = n;
                            let s = secs(t.elapsed());
                            eprintln!("  {} pipec run {}: {:.3} ms", id.name(), rep + 1, s * 1e3);
                            times.push(s);
                        }
                        Err(e) => ok = Err(e),
                    }
                }
                match ok {
                    Ok(()) => row.pipec = Some(median(times)),
                    Err(e) => {
                        eprintln!("{e}");
                        row.note = format!("pipec failed: {}", e.lines().next().unwrap_or(""));
                    }
                }
            }
        }
        let (script, what) = id.script();
        if !args.python {
            row.note.push_str(" baseline skipped (--no-python)");
        } else if !python_has(id.module()) {
            row.note.push_str(&format!(
                " {what} skipped: python3 cannot import {} (pip install {})",
                id.module(),
                if id == RecordId::W7 {
                    "tensorflow-cpu"
                } else {
                    "pyarrow"
                }
            ));
        } else {
            let reps = if args.quick { 2 } else { 5 };
            if let Some((s, n)) = time_record_script(paths, script, reps, args.threads, &[]) {
                row.baselines.push((what.to_string(), s, n));
            }
            if id == RecordId::W7
                && let Some((s, n)) =
                    time_record_script(paths, script, reps, args.threads, &["--batched"])
            {
                row.baselines
                    .push(("tf.data, batch then parse_example".to_string(), s, n));
            }
        }
        out.push(row);
    }
    out
}

fn print_records(rows: &[RecordRow], args: &Args) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!(
        "record formats: {} threads for pipec and the baseline alike; pipec median of {} run(s); speed = baseline time / pipec time (higher is better)",
        args.threads, args.reps
    );
    println!();
    println!(
        "| workload | records | compile | pipec | pipec rec/s | baseline | baseline s | pipec speed / baseline | target | notes |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|---:|---|");
    for r in rows {
        let n = r.id.input_elements();
        let (p, pr) = r.pipec.map_or(("n/a".into(), "n/a".into()), |p| {
            (format!("{p:.3}"), rate(n, p))
        });
        let mut lines: Vec<(String, String, String, String)> = r
            .baselines
            .iter()
            .map(|(what, s, outs)| {
                let ratio = r.pipec.map_or("n/a".into(), |p| format!("{:.2}x", s / p));
                let note = if *outs != r.outputs {
                    format!("outputs differ: pipec {} vs {outs}", r.outputs)
                } else {
                    String::new()
                };
                (what.clone(), format!("{s:.3}"), ratio, note)
            })
            .collect();
        if lines.is_empty() {
            lines.push(("n/a".into(), "n/a".into(), "n/a".into(), String::new()));
        }
        for (k, (what, s, ratio, note)) in lines.iter().enumerate() {
            let note = format!("{note}{}", if k == 0 { r.note.as_str() } else { "" });
            println!(
                "| {} {} | {n} | {:.3} | {p} | {pr} | {what} | {s} | {ratio} | >= {:.1}x | {} |",
                r.id.name(),
                r.id.description(),
                r.compile,
                r.id.target(),
                note.trim()
            );
        }
    }
}
