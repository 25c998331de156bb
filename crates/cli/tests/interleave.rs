//! `interleave`/`flat_map` (SPEC §15) through the real `pipec` binary: tf.data's element
//! order on the cases of `tests/tfdata/interleave_cases.txt` (written by tf.data itself,
//! `tests/tfdata/gen_interleave.py`), the nested pipeline in `--emit-ir` and `--emit-dot`,
//! and the errors.

use std::path::Path;
use std::process::Output;

mod common;
use common::text;

fn run(test: &str, program: &str, args: &[&str]) -> Output {
    common::run_program("interleave", test, program, args)
}

/// The cases of `tests/tfdata/interleave_cases.txt`: (name, pipeline, expected lines).
fn cases() -> Vec<(String, String, Vec<String>)> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tfdata/interleave_cases.txt");
    let text = std::fs::read_to_string(&path).expect("tests/tfdata/interleave_cases.txt");
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("== ") {
            let pipeline = lines.next().expect("a pipeline after the name").to_string();
            out.push((name.to_string(), pipeline, Vec::new()));
        } else {
            out.last_mut()
                .expect("a case first")
                .2
                .push(line.to_string());
        }
    }
    out
}

#[test]
fn interleave_and_flat_map_give_tf_datas_order() {
    let cases = cases();
    assert_eq!(cases.len(), 12, "the cases file lost cases");
    for (name, pipeline, expected) in cases {
        let prog = format!("pipeline main = {pipeline}\n");
        for args in [&["-O0"][..], &["-O2"], &["--threads", "3"]] {
            let o = run(&name, &prog, args);
            assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
            let got: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
            assert_eq!(got, expected, "{name} {args:?}");
        }
    }
}

#[test]
fn the_nested_pipeline_is_printed_and_drawn() {
    let prog = "pipeline main = range(1, 6).interleave(|n| range(n * 10, n * 10 + n).map(|x| x + 1), cycle_length: 2, block_length: 3)\n";
    let ir = text(&run("ir", prog, &["--emit-ir=traced"]).stdout);
    let want = "\
pipeline @main -> dataset<i64[]> {
  %d0 = range 1, 6, 1 : dataset<i64[]>
  %d1 = interleave %d0, @lambda.0, cycle_length=2, block_length=3 : dataset<i64[]> {
    %d0 = range %arg0, %arg1, 1 : dataset<i64[]>
    %d1 = map %d0, @lambda.1 : dataset<i64[]>
    yield %d1
  }
  yield %d1
}
";
    assert!(ir.starts_with(want), "{ir}");
    assert!(
        ir.contains("func @lambda.0(%0: i64[]) -> (i64[], i64[])"),
        "{ir}"
    );
    let dot = text(&run("dot", prog, &["--emit-dot"]).stdout);
    assert!(dot.contains("subgraph cluster_p1"), "{dot}");
    assert!(dot.contains("p1_out -> p0_d1 [style=dotted"), "{dot}");
    assert!(dot.contains("@lambda.1"), "{dot}");
}

#[test]
fn functions_that_do_not_build_datasets_are_errors() {
    for (prog, code, says) in [
        (
            "range(3).flat_map(|n| n * 2)",
            "E0411",
            "must return a dataset, found a tensor",
        ),
        (
            "range(3).flat_map(|n| range(4).map(|x| x * n))",
            "E0411",
            "uses `n`",
        ),
        (
            "range(3).interleave(|n| range(n))",
            "E0401",
            "needs `cycle_length:`",
        ),
        (
            "range(3).interleave(|n| range(n), cycle_length: 0)",
            "E0401",
            "at least 1",
        ),
        (
            "from_tensor_slices([[1.0, 2.0]]).flat_map(|x| range(x))",
            "E0107",
            "must be an integer scalar",
        ),
    ] {
        let o = run("err", &format!("pipeline main = {prog}\n"), &["--check"]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{prog}: {err}");
        assert!(err.contains("Error"), "{prog}: {err}");
        assert!(err.contains(&format!("[{code}]")), "{prog}: {err}");
        assert!(err.contains(says), "{prog}: {err}");
        assert!(!err.contains("panicked"), "{prog}: {err}");
    }
}
