//! Issue 21's promises through the real `pipec` binary, on generated programs: compiling
//! is bounded (a program that asks for unbounded work or memory is E0704, naming the
//! construct; long but linear programs compile at `-O2`), and the other reliability
//! fixes (workers, signals, output files, usage values). No test here measures time: each
//! asserts an exit code, a diagnostic code or an output, on sizes that keep it quick.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A fresh directory holding one `.pipe` file; removed on drop.
struct Case {
    dir: PathBuf,
}

impl Case {
    fn new(test: &str, program: &str) -> Case {
        let dir =
            std::env::temp_dir().join(format!("pipec-reliability-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("p.pipe"), program).expect("write program");
        Case { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pipec"))
            .args(args)
            .arg(self.dir.join("p.pipe"))
            .current_dir(&self.dir)
            .output()
            .expect("the pipec binary runs")
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a failed compile with E0704 whose first label is on `construct`.
fn assert_budget_error(out: &Output, construct: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("[E0704]"), "no E0704: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains(construct),
        "the message does not show `{construct}`: {err}"
    );
}

// ---- item 1: bounded compile time and memory -------------------------------------------

/// The programs of issue 21 that blew up compile time or memory, at a small budget (the
/// default budget gives the same error, in a few seconds of release build).
#[test]
fn budget_tuple_doubled_30_times() {
    let mut src = String::from("let t0 = (1, 2)\n");
    for i in 0..30 {
        src += &format!("let t{} = (t{i}, t{i})\n", i + 1);
    }
    src += "pipeline main = range(3)\n";
    let case = Case::new("tuple", &src);
    assert_budget_error(
        &case.run(&["--check", "--compile-memory", "4M"]),
        "this definition ran out of the compile budget",
    );
}

#[test]
fn budget_calls_doubling_40_deep() {
    let mut src = String::from("fn g0(x) { return x + 1.0 }\n");
    for i in 0..40 {
        src += &format!("fn g{}(x) {{ return g{i}(x) + g{i}(x) }}\n", i + 1);
    }
    src += "pipeline main = range(3).map(|x| g40(cast(x, f32)))\n";
    let case = Case::new("calls", &src);
    let out = case.run(&["--check", "--compile-budget", "200000"]);
    assert_budget_error(&out, "this call ran out of the compile budget");
    assert!(text(&out.stderr).contains("g40(cast(x, f32))"));
}

#[test]
fn budget_nested_loops_of_10000() {
    let src = "fn f(x) {\n    let y = x\n    for i in 0..10000 {\n        for j in 0..10000 {\n            y = y + 1.0\n        }\n    }\n    return y\n}\npipeline main = range(3).map(|x| f(cast(x, f32)))\n";
    let case = Case::new("loops", src);
    let out = case.run(&["--check", "--compile-budget", "200000"]);
    assert_budget_error(&out, "this loop ran out of the compile budget");
    assert!(text(&out.stderr).contains("more than 200000 work units"));
}

#[test]
fn budget_zip_with_itself_25_times() {
    let mut src = String::from("let d0 = range(3)\n");
    for i in 0..25 {
        src += &format!("let d{} = zip(d{i}, d{i})\n", i + 1);
    }
    src += "pipeline main = d25\n";
    let case = Case::new("zip", &src);
    let out = case.run(&["--check", "--compile-memory", "4M"]);
    assert_budget_error(&out, "this definition ran out of the compile budget");
    assert!(text(&out.stderr).contains("more than 4 MiB of memory"));
}

/// 30 000 `expand_dims` in nested loops made a rank-30 000 tensor (its shape copied at
/// every op: quadratic memory); a tensor has at most 64 dims, as in numpy.
#[test]
fn budget_30000_expand_dims_in_nested_loops() {
    let src = "fn f(x) {\n    let y = x\n    for i in 0..300 {\n        for j in 0..100 {\n            y = expand_dims(y, 0)\n        }\n    }\n    return y\n}\npipeline main = range(3).map(|x| f(cast(x, f32)))\n";
    let case = Case::new("expand", src);
    let out = case.run(&["--check"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("[E0700]") && err.contains("at most 64 are allowed"),
        "{err}"
    );
    // Without the rank limit, the budget stops the same blow-up.
    let src = "fn f(x) {\n    let y = x\n    for i in 0..300 {\n        for j in 0..100 {\n            y = squeeze(expand_dims(y, 0), 0) + 1.0\n        }\n    }\n    return y\n}\npipeline main = range(3).map(|x| f(cast(x, f32)))\n";
    let case = Case::new("expand-squeeze", src);
    assert_budget_error(
        &case.run(&["--check", "--compile-memory", "4M"]),
        "this loop ran out of the compile budget",
    );
}

// ---- item 5: --max-memory sees buffers' per-element overhead ----------------------------

/// A shuffle buffer of 100 000 scalars holds about 20 MB, not the 800 KB of their data.
#[test]
fn shuffle_buffer_counts_per_element_overhead() {
    let case = Case::new(
        "shuffle-mem",
        "pipeline main = range(100000).shuffle(100000, seed: 1)\n",
    );
    let out = case.run(&["--max-memory", "4M", "--discard"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("[E0701]") && err.contains("shuffle buffer"),
        "{err}"
    );
}

/// A line over `--max-memory` in the middle of a file is E0701 naming the file, after every
/// line before it, at every level and thread count (the reader's blocks go to lanes).
#[test]
fn a_line_over_the_memory_limit_comes_after_the_lines_before_it() {
    let case = Case::new(
        "long-line",
        "pipeline main = read_lines(\"t.txt\").map(|l| length(l))\n",
    );
    let mut t = String::new();
    for i in 0..30_000 {
        t.push_str(&format!("line {i}\n"));
    }
    t.push_str(&"z".repeat(5 << 20));
    t.push_str("\nafter\n");
    std::fs::write(case.dir.join("t.txt"), &t).expect("write");
    for args in [["-O0", "1"], ["-O2", "1"], ["-O2", "2"], ["-O2", "3"]] {
        let out = case.run(&[args[0], "--threads", args[1], "--max-memory", "4M"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("[E0701]") && err.contains("t.txt"),
            "{args:?}: {err}"
        );
        assert_eq!(text(&out.stdout).lines().count(), 30_000, "{args:?}");
    }
}

/// A budget flag with a bad value is a usage error.
#[test]
fn budget_flags_are_checked() {
    let case = Case::new("flags", "pipeline main = range(3)\n");
    for args in [["--compile-budget", "lots"], ["--compile-memory", "-1"]] {
        let out = case.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("E0800"), "{args:?}");
    }
}

/// 2 000 chained maps: `fuse-maps` fuses the chain at once (it copied the growing
/// function once per map: 1 GB at 2 000 maps, an abort at 20 000).
#[test]
fn long_map_chain_compiles_at_o2() {
    let n = 2000;
    let mut src = String::from("let d0 = range(3)\n");
    for i in 0..n {
        src += &format!("let d{} = d{i}.map(|x| x + 1)\n", i + 1);
    }
    src += &format!("pipeline main = d{n}\n");
    let case = Case::new("maps", &src);
    for level in ["-O0", "-O2"] {
        let out = case.run(&[level]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "2000\n2001\n2002\n", "{level}");
    }
    let out = case.run(&["--remarks", "--check"]);
    assert!(text(&out.stderr).contains("fused 2000 consecutive maps"));
}

/// A chain of 20 000 `y = y + 1.0` (over two minutes in `fuse-elementwise`, quadratic
/// remark bookkeeping in `cse`): one fused kernel, the same value as `-O0`.
#[test]
fn long_elementwise_chain_compiles_at_o2() {
    let n = 20_000;
    let mut src = String::from("fn f(x) {\n    let y = cast(x, f32)\n");
    for _ in 0..n {
        src += "    y = y + 1.0\n";
    }
    src += "    return y\n}\npipeline main = range(3).map(f)\n";
    let case = Case::new("adds", &src);
    for level in ["-O0", "-O2"] {
        let out = case.run(&[level]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "20000.0\n20001.0\n20002.0\n", "{level}");
    }
    let out = case.run(&["--remarks", "--check"]);
    assert!(
        text(&out.stderr).contains("fused 20001 elementwise ops into one kernel"),
        "{}",
        text(&out.stderr)
    );
}

// ---- item 3: workers cannot hang pipec or outlive it ------------------------------------

/// Runs `cmd`, killing it if it runs past `secs` (then the test fails: it hung).
fn run_bounded(mut cmd: Command, secs: u64) -> Output {
    use std::process::Stdio;
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pipec starts");
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(out) => out.expect("pipec ran"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
            panic!("pipec did not finish within {secs} s");
        }
    }
}

/// Whether process `pid` still exists (zombies of other parents count as gone).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Waits up to a few seconds for `path` to hold a pid, and returns it.
fn read_pid(path: &std::path::Path) -> String {
    for _ in 0..500 {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s.trim().to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("no pid in {}", path.display());
}

/// A worker that greets and then never reads: a large request fills the pipe and pipec's
/// write blocked for ever (the timeout covered only the answer). Now it is E0504.
#[test]
fn worker_that_stops_reading_times_out() {
    let src = "eager fn f(x: f32[1000000]) -> f32[] = exec(\"sh\", \"-c\", \"printf 'PIPEC-WORKER 1\\\\n'; exec sleep 1000\")\npipeline main = range(2).map(|i| f(zeros([1000000]) + cast(i, f32)))\n";
    let case = Case::new("stops-reading", src);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipec"));
    cmd.args(["--allow-exec", "--worker-timeout", "1"])
        .arg(case.dir.join("p.pipe"));
    let out = run_bounded(cmd, 60);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("[E0504]") && err.contains("did not read its request"),
        "{err}"
    );
}

/// A worker started through a shell that leaves a child behind: the child is killed with
/// the worker's process group when the worker fails (it used to keep running).
#[test]
fn worker_children_do_not_outlive_pipec() {
    let src = "eager fn f(x: f32[]) -> f32[] = exec(\"sh\", \"-c\", \"sleep 1000 & echo $! > child.pid; printf 'PIPEC-WORKER 1\\\\n'; printf 'BAD!'; exec sleep 1000\")\npipeline main = range(2).map(|i| f(cast(i, f32)))\n";
    // The worker stays alive after its garbage answer, so the request always reaches it and
    // the error is the garbage (E0505), whatever the machine's load.
    let case = Case::new("children", src);
    let out = case.run(&["--allow-exec"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("[E0505]"), "{err}");
    let pid = read_pid(&case.dir.join("child.pid"));
    for _ in 0..100 {
        if !alive(&pid) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = Command::new("kill").args(["-9", &pid]).status();
    panic!("the worker's child {pid} outlived pipec");
}

/// SIGTERM to pipec while a worker is busy and an output file is being written: the
/// worker's group is killed, the temporary file removed, and pipec exits with 128 + 15.
#[test]
fn sigterm_ends_workers_and_removes_temporary_output() {
    let src = "eager fn f(x: f32[]) -> f32[] = exec(\"sh\", \"-c\", \"echo $$ > worker.pid; printf 'PIPEC-WORKER 1\\\\n'; exec sleep 1000\")\npipeline main = range(100000).map(|i| cast(i, f32)).take(50000).concatenate(range(2).map(|i| f(cast(i, f32))))\n";
    let case = Case::new("sigterm", src);
    let child = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args([
            "--allow-exec",
            "--worker-timeout",
            "100",
            "--output",
            "out.npy",
        ])
        .arg(case.dir.join("p.pipe"))
        .current_dir(&case.dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pipec starts");
    let worker = read_pid(&case.dir.join("worker.pid"));
    let temps = || {
        std::fs::read_dir(&case.dir)
            .expect("dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .count()
    };
    assert_eq!(
        temps(),
        1,
        "the temporary output exists while the run is on"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("pipec ends");
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert_eq!(temps(), 0, "a temporary file was left behind");
    assert!(!case.dir.join("out.npy").exists());
    for _ in 0..100 {
        if !alive(&worker) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = Command::new("kill").args(["-9", &worker]).status();
    panic!("the worker {worker} outlived pipec");
}

// ---- item 4: no panics ------------------------------------------------------------------

#[test]
fn odd_flag_values_do_not_panic() {
    let case = Case::new("flags4", "pipeline main = range(3)\n");
    let out = case.run(&["--pipeline", ""]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("[E0111]"),
        "{}",
        text(&out.stderr)
    );
    let out = case.run(&["--worker-timeout", "1e20"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0\n1\n2\n");
    let out = case.run(&["--threads", "5000"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0\n1\n2\n");
    assert!(text(&out.stderr).contains("using 64 lanes"));
}

/// `py_function` of an `exec` function calls the worker (it reached unreachable code).
#[test]
fn py_function_of_an_exec_function() {
    let src = "eager fn f(x: f32[]) -> f32[] = exec(\"sh\", \"-c\", \"exit 3\")\npipeline main = range(2).map(|i| py_function(f, [cast(i, f32)], f32))\n";
    let case = Case::new("pyexec", src);
    let out = case.run(&["--allow-exec"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("[E0505]") || err.contains("[E0503]"), "{err}");
    assert!(!err.contains("internal compiler error"), "{err}");
}

// ---- item 6: output ---------------------------------------------------------------------

/// `> /dev/full` is E0605 and exit 1 (it exited 0); a closed pipe stays quiet.
#[test]
fn stdout_write_errors_are_reported() {
    let case = Case::new("devfull", "pipeline main = range(100000)\n");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .arg(case.dir.join("p.pipe"))
        .stdout(full)
        .output()
        .expect("pipec runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("[E0605]"),
        "{}",
        text(&out.stderr)
    );
}

/// A symlink planted where the temporary file used to go (`.NAME.PID.tmp`, predictable)
/// is not followed, and the output is a regular file.
#[test]
fn output_ignores_planted_symlinks() {
    let case = Case::new("symlink", "pipeline main = range(3)\n");
    let victim = case.dir.join("victim");
    std::fs::write(&victim, "keep").expect("victim");
    // Every pid pipec may get is not knowable; plant the names of the next few.
    for pid in 0..64 {
        let name = format!(".out.npy.{}.tmp", std::process::id() + pid);
        let _ = std::os::unix::fs::symlink(&victim, case.dir.join(name));
    }
    let out = case.run(&["--output", "out.npy"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep");
    let meta = std::fs::symlink_metadata(case.dir.join("out.npy")).expect("output");
    assert!(meta.file_type().is_file());
}

// ---- item 7: exactness leftovers --------------------------------------------------------

#[test]
fn negative_integer_power_has_its_own_code() {
    let case = Case::new("negpow", "pipeline main = range(3).map(|x| 2 ** (x - 1))\n");
    for level in ["-O0", "-O2"] {
        let out = case.run(&[level]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("[E0607]") && err.contains("element 0"),
            "{err}"
        );
    }
    let case = Case::new(
        "negpow-const",
        "let a = cast(2, i32) ** cast(-1, i32)\npipeline main = range(3)\n",
    );
    let out = case.run(&["--check"]);
    assert!(
        text(&out.stderr).contains("[E0607]"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn f32_literal_overflow_is_e0121() {
    for (name, src) in [
        (
            "lit-weak",
            "pipeline main = range(3).map(|x| cast(x, f32) + 1e308)\n",
        ),
        (
            "lit-f16",
            "pipeline main = range(3).map(|x| cast(x, f16) * 70000.0)\n",
        ),
    ] {
        let out = Case::new(name, src).run(&["--check"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("[E0121]"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn utf8_bom_is_accepted() {
    let out = Case::new("bom", "\u{FEFF}pipeline main = range(2)\n").run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0\n1\n");
}

/// `--check` and `--emit-ir` never start a worker, even with `--allow-exec`.
#[test]
fn check_starts_no_worker() {
    let src = "eager fn make() -> f32[3] = exec(\"sh\", \"-c\", \"touch started; sleep 5\")\nlet table = make()\npipeline main = from_tensor_slices(table)\n";
    let case = Case::new("check-exec", src);
    for args in [["--allow-exec", "--check"], ["--allow-exec", "--emit-ir"]] {
        let out = case.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains("[E0502]"),
            "{}",
            text(&out.stderr)
        );
        assert!(
            !case.dir.join("started").exists(),
            "{args:?} started the worker"
        );
    }
}

/// `x * 1.0`, `x / 1.0`, `x - 0.0` and `f32 → f64 → f32` quiet a signalling NaN (numpy's
/// too); `simplify` and `fold-casts` removed them at `-O2` for input values, so the output
/// file's bits differed from `-O0`'s.
#[test]
fn signalling_nan_is_quieted_at_every_level() {
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    for bits in [0x7f80_0001u32, 0x3f80_0000] {
        npy.extend_from_slice(&bits.to_le_bytes());
    }
    for body in ["x * 1.0", "x / 1.0", "x - 0.0", "cast(cast(x, f64), f32)"] {
        let src =
            format!("pipeline main = from_tensor_slices(read_npy(\"s.npy\")).map(|x| {body})\n");
        let case = Case::new("snan", &src);
        std::fs::write(case.dir.join("s.npy"), &npy).expect("write npy");
        let mut outs = Vec::new();
        for level in ["-O0", "-O2"] {
            let out = case.run(&[level, "--output", "out.npy"]);
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            outs.push(std::fs::read(case.dir.join("out.npy")).expect("output"));
        }
        assert_eq!(outs[0], outs[1], "{body}: -O0 and -O2 wrote different bits");
        let data = &outs[0][outs[0].len() - 8..outs[0].len() - 4];
        let first = u32::from_le_bytes(data.try_into().expect("4 bytes"));
        assert_eq!(first, 0x7fc0_0001, "{body}: not quieted as numpy does");
    }
}

/// A CSV file whose only line is not numbers: numpy's `loadtxt` fails on it; pipec took
/// it for a header and gave an empty dataset. Now E0604, unless `header: true` says so.
#[test]
fn csv_whose_only_line_is_not_numbers() {
    let case = Case::new("csv1", "pipeline main = read_csv(\"one.csv\")\n");
    std::fs::write(case.dir.join("one.csv"), "a,b\n").expect("csv");
    let out = case.run(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("[E0604]"),
        "{}",
        text(&out.stderr)
    );
    let case = Case::new(
        "csv2",
        "pipeline main = read_csv(\"one.csv\", header: true)\n",
    );
    std::fs::write(case.dir.join("one.csv"), "a,b\n").expect("csv");
    let out = case.run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
}

// ---- item 2: an eager map is a barrier for fuse-maps -----------------------------------

/// A sequential map calling a stateful worker, then a parallel map: `fuse-maps` fused the
/// two, so each lane got its own worker and the count restarted per lane at `-O2`.
#[test]
fn stateful_worker_map_is_not_fused_into_a_parallel_map() {
    let has_numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_numpy {
        assert!(
            std::env::var_os("PIPEC_REQUIRE_NUMPY").is_none(),
            "python3 with numpy is required"
        );
        return;
    }
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python");
    let src = "eager fn count(x: i64[]) -> i64[] = exec(\"python3\", \"count.py\")\npipeline main = range(12).map(count).map(|x| x * 10, num_parallel_calls: 4)\n";
    let case = Case::new("stateful", src);
    let worker = format!(
        "import sys\nsys.path.insert(0, {:?})\nimport numpy as np\nfrom pipec_worker import serve\nn = [0]\ndef count(x):\n    r = np.int64(n[0])\n    n[0] += 1\n    return r\nserve(count)\n",
        python.display().to_string()
    );
    std::fs::write(case.dir.join("count.py"), worker).expect("worker");
    let expect: String = (0..12).map(|i| format!("{}\n", i * 10)).collect();
    for level in ["-O0", "-O2"] {
        let out = case.run(&["--allow-exec", level, "--threads", "3"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), expect, "{level}");
    }
}
