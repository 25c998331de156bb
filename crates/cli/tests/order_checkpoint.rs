//! Checkpoints through `global_shuffle`, `interleave` and `flat_map`, and the epochs random
//! ops draw with (SPEC §13, §15), through the real `pipec` binary: a run cut anywhere and
//! resumed at another `--threads` prints together what one run prints; random ops under
//! `repeat`, under a `global_shuffle` and inside an interleave draw with their true epoch.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod cut_resume;

/// A scratch directory holding `p.pipe` = `program`.
fn scratch(test: &str, program: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pipec-ordck-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("p.pipe"), program).expect("write");
    dir
}

/// Runs `pipec ARGS p.pipe` in `dir`; its stdout, which must be a success.
#[track_caller]
fn ok(dir: &Path, args: &[&str]) -> String {
    let o: Output = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .arg("p.pipe")
        .current_dir(dir)
        .output()
        .expect("the pipec binary runs");
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", text(&o.stderr));
    text(&o.stdout)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ints(s: &str) -> Vec<i64> {
    s.split_whitespace()
        .map(|w| w.trim_matches(|c| c == '[' || c == ']'))
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().expect("an integer"))
        .collect()
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

/// Programs through `global_shuffle`, `interleave` and `flat_map`, with random ops and
/// read-ahead nodes around them.
const PROGRAMS: &[&str] = &[
    "pipeline main = range(37).map(|x| x * 3).global_shuffle(seed: 5).repeat(2).batch(4)\n",
    "pipeline main = range(9).map(|x| x * 100 + random_uniform([], 0, 100, i64, seed: 2))\n\
        .repeat(2).global_shuffle(seed: 9).map(|x| x * 2, num_parallel_calls: 3).repeat(2)\n",
    "pipeline main = range(1, 7).interleave(|n| range(n * 3)\n\
        .map(|x| x * 10 + random_uniform([], 0, 10, i64, seed: 1)).shuffle(4, seed: 3),\n\
        cycle_length: 3, block_length: 2).repeat(2)\n",
    "pipeline main = range(6).flat_map(|n| from_tensors(n).repeat(n)).map(|x| x * 2,\n\
        num_parallel_calls: 2).batch(3).prefetch(2).unbatch()\n",
    "pipeline main = range(3).interleave(|a| range(a + 2).interleave(|b| range(b * 2)\n\
        .map(|x| x + random_uniform([], 0, 50, i64, seed: 4)), cycle_length: 2),\n\
        cycle_length: 2).prefetch(1).repeat(2)\n",
    "pipeline main = range(4).interleave(|n| from_tensors(n * 100 + random_uniform([], 0, 100,\n\
        i64, seed: 6)).repeat(3), cycle_length: 2).repeat(3)\n",
];

#[test]
fn global_shuffle_interleave_and_flat_map_resume_exactly_at_other_threads() {
    for (n, program) in PROGRAMS.iter().enumerate() {
        let dir = scratch(&format!("resume{n}"), program);
        for level in ["-O0", "-O2"] {
            let whole = ok(&dir, &[level, "--threads", "1"]);
            let total = whole.lines().count();
            assert!(total > 10, "program {n} prints too little to cut: {whole}");
            cut_resume::assert_cuts_resume(
                |args| ok(&dir, args),
                &whole,
                level,
                &[0, 1, total / 3, total / 2 + 1, total - 1, total],
                &[("1", "3"), ("3", "1")],
                &format!("program {n}"),
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_random_op_under_repeat_resumes_in_its_epoch() {
    let dir = scratch(
        "epoch",
        "pipeline main = range(5).map(|x| x * 100 + random_uniform([], 0, 100, i64, seed: 7))\n\
            .repeat(3)\n",
    );
    let whole = ok(&dir, &[]);
    let all = ints(&whole);
    assert_eq!(all.len(), 15);
    // Each epoch draws anew (two of five equal draws in a row would be a 1e-10 chance).
    assert_ne!(all[..5], all[5..10]);
    assert_ne!(all[5..10], all[10..]);
    // Cut in the second epoch, resumed: the draws of epochs 1 and 2, not epoch 0's again.
    for cut in ["7", "5", "11"] {
        for level in ["-O0", "-O2"] {
            let first = ok(&dir, &[level, "--take", cut, "--save-state", "s"]);
            let rest = ok(&dir, &[level, "--threads", "3", "--resume", "s"]);
            assert_eq!(format!("{first}{rest}"), whole, "cut at {cut}, {level}");
        }
    }
}

#[test]
fn random_ops_under_a_global_shuffle_draw_with_the_epoch_of_the_map() {
    // A map under a `global_shuffle` draws what the same map draws streaming, epoch by
    // epoch: each opening of the `global_shuffle` starts the map anew, and a `repeat(N)`
    // between them counts N epochs of it.
    let dir = scratch(
        "gshuf-epoch",
        "fn f(x) {\n    return x * 1000 + random_uniform([], 0, 1000, i64, seed: 3)\n}\n\
         pipeline a = range(6).map(f).global_shuffle(seed: 3).repeat(2)\n\
         pipeline b = range(6).map(f).repeat(2)\n\
         pipeline c = range(3).map(f).repeat(2).global_shuffle(seed: 4).repeat(2)\n\
         pipeline d = range(3).map(f).repeat(4)\n",
    );
    for level in ["-O0", "-O2"] {
        for threads in ["1", "4"] {
            let run = |p: &str| ints(&ok(&dir, &[level, "--threads", threads, "--pipeline", p]));
            let (a, b) = (run("a"), run("b"));
            assert_eq!(sorted(a[..6].to_vec()), sorted(b[..6].to_vec()), "epoch 0");
            assert_eq!(sorted(a[6..].to_vec()), sorted(b[6..].to_vec()), "epoch 1");
            assert_ne!(sorted(b[..6].to_vec()), sorted(b[6..].to_vec()));
            let (c, d) = (run("c"), run("d"));
            assert_eq!(
                sorted(c[..6].to_vec()),
                sorted(d[..6].to_vec()),
                "epochs 0-1"
            );
            assert_eq!(
                sorted(c[6..].to_vec()),
                sorted(d[6..].to_vec()),
                "epochs 2-3"
            );
        }
    }
}

#[test]
fn random_ops_in_an_interleave_draw_anew_per_element_and_epoch() {
    let dir = scratch(
        "inner-epoch",
        "pipeline inner = range(3).flat_map(|n| range(4)\n\
             .map(|x| random_uniform([], 0, 1000000, i64, seed: 1))).repeat(2)\n\
         pipeline func = range(4).flat_map(|n| from_tensors(n * 1000000\n\
             + random_uniform([], 0, 1000000, i64, seed: 2))).repeat(2)\n",
    );
    let mut seen = None;
    for level in ["-O0", "-O2"] {
        for threads in ["1", "4"] {
            let inner = ints(&ok(
                &dir,
                &[level, "--threads", threads, "--pipeline", "inner"],
            ));
            let func = ints(&ok(
                &dir,
                &[level, "--threads", threads, "--pipeline", "func"],
            ));
            assert_eq!(inner.len(), 24);
            // Each inner dataset (input element, epoch) draws its own numbers.
            let groups: Vec<&[i64]> = inner.chunks(4).collect();
            for i in 0..groups.len() {
                for j in 0..i {
                    assert_ne!(groups[i], groups[j], "inner datasets {j} and {i}");
                }
            }
            // The function draws per element (its index) and per epoch.
            assert_eq!(func.len(), 8);
            assert_eq!(
                func.iter().map(|v| v / 1000000).collect::<Vec<_>>(),
                [0, 1, 2, 3, 0, 1, 2, 3]
            );
            assert_ne!(func[..4], func[4..], "the second epoch draws anew");
            // The same at every level and thread count.
            let now = (inner, func);
            if let Some(before) = &seen {
                assert_eq!(&now, before, "{level} --threads {threads}");
            }
            seen = Some(now);
        }
    }
}

#[test]
fn an_unseeded_shuffle_inside_an_interleave_resumes_with_the_seeds_it_drew() {
    let dir = scratch(
        "inner-unseeded",
        "pipeline main = range(2, 4).interleave(|n| range(n * 4).global_shuffle()\n\
            .shuffle(8), cycle_length: 2)\n",
    );
    // Both inner datasets are open at the cut (a dataset opened later draws fresh seeds in
    // any run, as an unseeded `shuffle` does).
    // Resumed twice from one state: the same rest both times (the seeds are in the state),
    // and with the first run's prefix every inner dataset is a permutation of its range.
    let first = ints(&ok(&dir, &["--take", "9", "--save-state", "s"]));
    let rest = ok(&dir, &["--resume", "s"]);
    assert_eq!(rest, ok(&dir, &["--threads", "3", "--resume", "s"]));
    let mut all = first;
    all.extend(ints(&rest));
    let want: Vec<i64> = (2..4).flat_map(|n| 0..n * 4).collect();
    assert_eq!(sorted(all), sorted(want));
}
