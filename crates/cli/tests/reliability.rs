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

#[test]
fn budget_30000_expand_dims_in_nested_loops() {
    let src = "fn f(x) {\n    let y = x\n    for i in 0..300 {\n        for j in 0..100 {\n            y = expand_dims(y, 0)\n        }\n    }\n    return y\n}\npipeline main = range(3).map(|x| f(cast(x, f32)))\n";
    let case = Case::new("expand", src);
    assert_budget_error(
        &case.run(&["--check", "--compile-memory", "16M"]),
        "this loop ran out of the compile budget",
    );
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
        text(&out.stderr).contains("fused 20000 elementwise ops into one kernel"),
        "{}",
        text(&out.stderr)
    );
}
