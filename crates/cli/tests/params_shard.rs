//! `--set NAME=VALUE` (parameters) and `--shard I/N` through the real `pipec` binary.

mod common;

use common::text;
use std::process::Output;

/// Runs `pipec ARGS FILE` on `program`, written to a fresh file.
fn run(test: &str, program: &str, args: &[&str]) -> Output {
    common::run_program("params", test, program, args)
}

/// The printed elements, one per line, when the run succeeds.
#[track_caller]
fn lines(o: &Output) -> Vec<String> {
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", text(&o.stderr));
    text(&o.stdout).lines().map(String::from).collect()
}

const PARAMS: &str = r#"
let scale = 2
let offset = 0.5
let xs = [1, 2, 3]
let label = "x"
let flag = false
pipeline main = from_tensor_slices(xs).map(|x| cast(x * scale, f32) + offset)
"#;

#[test]
fn set_replaces_literal_bindings() {
    assert_eq!(lines(&run("none", PARAMS, &[])), ["2.5", "4.5", "6.5"]);
    let o = run(
        "all",
        PARAMS,
        &[
            "--set",
            "scale=-3",
            "--set",
            "offset=1",
            "--set",
            "xs=[10, 20]",
            "--set",
            "label=some text",
            "--set",
            "flag=true",
        ],
    );
    // An integer fits where a float is written (`offset=1` is 1.0).
    assert_eq!(lines(&o), ["-29.0", "-59.0"]);
}

#[test]
fn set_errors_are_coded_and_name_the_binding() {
    let o = run("unknown", PARAMS, &["--set", "scael=3"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("[E0810]"), "{err}");
    assert!(err.contains("did you mean `scale`?"), "{err}");
    assert!(
        err.contains("the parameters of this program are: scale, offset, xs, label, flag"),
        "{err}"
    );

    for (value, why) in [
        ("scale=0.5", "expected an integer, got a float"),
        ("xs=[[1]]", "expected an integer, got a list"),
        ("xs=3", "expected a list, got an integer"),
        ("flag=1", "expected a boolean, got an integer"),
        ("offset=abc", "expected a float, got a string"),
    ] {
        let o = run("mismatch", PARAMS, &["--set", value]);
        assert_eq!(o.status.code(), Some(1), "{value}");
        let err = text(&o.stderr);
        assert!(err.contains("[E0811]"), "{value}: {err}");
        assert!(err.contains(why), "{value}: {err}");
        // The label points at the literal in the file.
        assert!(
            err.contains(":2:13")
                || err.contains(":3:14")
                || err.contains(":4:10")
                || err.contains(":6:12"),
            "{value}: {err}"
        );
    }

    let computed = "let n = 1 + 2\npipeline main = range(n)\n";
    let o = run("computed", computed, &["--set", "n=5"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("`n` cannot be set: its value is not a literal"));

    for bad in ["noequals", "1x=2", "=3"] {
        let o = run("usage", PARAMS, &["--set", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(text(&o.stderr).contains("[E0800]"), "{bad}");
    }
}

const SHARDED: &str = r#"
pipeline main = range(23).zip(range(100, 123)).map(|a, b| a * 1000 + b).batch(3)
"#;

#[test]
fn shards_are_disjoint_and_together_the_whole() {
    let whole: Vec<String> = lines(&run("whole", SHARDED, &["-O0", "--pipeline", "main"]));
    let numbers = |ls: &[String]| -> Vec<i64> {
        ls.iter()
            .flat_map(|l| {
                l.trim_matches(|c| c == '[' || c == ']')
                    .split_whitespace()
                    .map(|v| v.parse::<i64>().expect("a number"))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut all = Vec::new();
    for i in 0..4 {
        let shard = format!("{i}/4");
        for level in ["-O0", "-O2"] {
            let part = numbers(&lines(&run("part", SHARDED, &[level, "--shard", &shard])));
            // Shard i holds records i, i + 4, ...: `zip` keeps pairing the same records.
            let want: Vec<i64> = (i..23).step_by(4).map(|r| r * 1000 + 100 + r).collect();
            assert_eq!(part, want, "shard {shard} at {level}");
            if level == "-O2" {
                all.extend(part);
            }
        }
    }
    all.sort();
    assert_eq!(all, numbers(&whole));
}

#[test]
fn each_shard_batches_its_own_records() {
    let o = run("batches", SHARDED, &["--shard", "1/2"]);
    assert_eq!(
        lines(&o),
        [
            "[1101 3103 5105]",
            "[ 7107  9109 11111]",
            "[13113 15115 17117]",
            "[19119 21121]"
        ]
    );
    // The shard is visible in the IR, right after the sources.
    let ir = run("ir", SHARDED, &["--shard", "1/2", "--emit-ir=traced"]);
    assert_eq!(
        text(&ir.stdout).matches("shard").count(),
        2,
        "{}",
        text(&ir.stdout)
    );
}

#[test]
fn bad_shards_are_usage_errors() {
    for bad in ["2/2", "0/0", "1", "a/b", "-1/2"] {
        let o = run("bad", SHARDED, &["--shard", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(text(&o.stderr).contains("[E0800]"), "{bad}");
    }
}
