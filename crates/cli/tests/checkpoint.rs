//! `--save-state`, `--resume` and `--state-every` through the real `pipec` binary (SPEC §15):
//! a run cut anywhere (by `--take` or by SIGINT) and resumed, at another `--threads`, prints
//! together byte for byte what one uninterrupted run prints; a state from another run, or a
//! damaged one, is a coded error.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod cut_resume;

/// A scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pipec-ckpt-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs `pipec ARGS p.pipe` in `dir`.
fn pipec(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(args)
        .arg("p.pipe")
        .current_dir(dir)
        .output()
        .expect("the pipec binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The stdout of a run that must succeed.
#[track_caller]
fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", text(&o.stderr));
    text(&o.stdout)
}

/// The stderr of a run that must fail with exit 1 and `code`.
#[track_caller]
fn fails(o: &Output, code: &str) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr:\n{err}");
    assert!(
        err.contains(&format!("[{code}]")),
        "expected {code}:\n{err}"
    );
    err
}

/// Programs through every transformation of SPEC §7 and the read-ahead nodes.
const PROGRAMS: &[&str] = &[
    "pipeline main = range(100).map(|x| x * x % 7).filter(|x| x < 3).batch(4)\n",
    "pipeline main = range(60).shuffle(9, seed: 4).map(|x| x * 2, num_parallel_calls: 3)\n\
        .batch(5, drop_remainder: true).prefetch(2).unbatch().repeat(3)\n",
    "pipeline main = zip(range(40), range(100, 140).shuffle(5, seed: 1)).enumerate(3)\n\
        .map(|i, ab| ab[0] * i + ab[1]).skip(3).take(50).cache().repeat(2)\n",
    "pipeline main = range(30).concatenate(range(5)).shard(3, 1).map(|x| x * 2)\n\
        .padded_batch(3).shuffle(4, seed: 8).prefetch(1)\n",
    "pipeline main = from_tensor_slices([[1.5, 2.0], [3.0, 4.5], [5.0, 6.0], [7.5, 8.0]])\n\
        .repeat().map(|x| x * 2.0).batch(3).take(9)\n",
];

/// `program` (written to `dir/p.pipe`) at `-O0` and `-O2`: cut at each of `cuts(total
/// lines)` at one thread count and resumed at another, it prints the one-thread whole run.
fn assert_cuts_resume_at_both_levels(
    dir: &Path,
    program: &str,
    label: &str,
    cuts: impl Fn(usize) -> Vec<usize>,
) {
    std::fs::write(dir.join("p.pipe"), program).expect("write");
    for level in ["-O0", "-O2"] {
        let whole = ok(&pipec(dir, &[level, "--threads", "1"]));
        cut_resume::assert_cuts_resume(
            |args| ok(&pipec(dir, args)),
            &whole,
            level,
            &cuts(whole.lines().count()),
            &[("1", "3"), ("3", "1"), ("2", "2")],
            label,
        );
    }
}

#[test]
fn take_then_resume_at_other_threads_prints_the_uninterrupted_run() {
    let dir = scratch("take");
    for (n, program) in PROGRAMS.iter().enumerate() {
        assert_cuts_resume_at_both_levels(&dir, program, &format!("program {n}"), |total| {
            vec![0, 1, total / 3, total / 2 + 1, total]
        });
    }
}

/// A map and a filter over a source that lanes chain into one job per block, then a
/// `batch`: cut anywhere (inside blocks, at their edges, inside a batch) and resumed at
/// other thread counts, they print the whole run; random ops draw as they did.
#[test]
fn chained_map_filter_batch_resumes_at_any_cut() {
    let dir = scratch("chained");
    let programs = [
        "pipeline main = range(50000).map(|x| x * x % 7).filter(|x| x < 3).batch(100)\n",
        "pipeline main = range(30000).map(|x| x + random_uniform([], 0, 9, i64, seed: 2))\n\
            .map(|x| x * 3).filter(|x| random_uniform([], 0.0, 1.0, f32, seed: 4) < 0.3)\n\
            .batch(7)\n",
    ];
    for (n, program) in programs.iter().enumerate() {
        assert_cuts_resume_at_both_levels(&dir, program, &format!("chained {n}"), |total| {
            vec![1, total / 7, total / 3 + 1, total / 2, total - 1]
        });
    }
}

/// Batches of large rows, stacked as the rows arrive (`Batch::next_stacking`, from the
/// second batch on), resume exactly at every cut.
#[test]
fn batches_of_large_rows_resume_at_any_cut() {
    let dir = scratch("large_rows");
    let program = "pipeline main = range(11)\n\
        .map(|i| broadcast_to(i * 7, [300, 1000]) + reshape(arange(300000, i64), [300, 1000]))\n\
        .batch(4).map(|b| (b[:, 299, 999], sum(b)))\n";
    assert_cuts_resume_at_both_levels(&dir, program, "large rows", |total| (0..=total).collect());
}

/// A state whose map below a filter was saved in the middle of a block (as a build that
/// runs the map as a stage of its own may save it: its input at an earlier mark, then rows
/// to drop) resumes with the map opened as a stage of its own: the same rows.
#[test]
fn a_map_saved_mid_block_resumes_as_a_stage_of_its_own() {
    let dir = scratch("midblock");
    std::fs::write(
        dir.join("p.pipe"),
        "pipeline main = range(50000).map(|x| x * x % 7).filter(|x| x < 3).batch(100)\n",
    )
    .expect("write");
    let whole = ok(&pipec(&dir, &[]));
    for threads in ["1", "2"] {
        let first = ok(&pipec(&dir, &["--take", "40", "--save-state", "s"]));
        let bytes = std::fs::read(dir.join("s")).expect("read the state");
        std::fs::write(dir.join("s"), move_map_mark_back(&bytes, 1000)).expect("write");
        let rest = ok(&pipec(&dir, &["--threads", threads, "--resume", "s"]));
        assert_eq!(format!("{first}{rest}"), whole, "threads {threads}");
    }
}

/// `bytes`, the state of [`a_map_saved_mid_block_resumes_as_a_stage_of_its_own`]'s run, with
/// the map's mark `k` rows earlier and `k` outputs to drop after it: the same position.
fn move_map_mark_back(bytes: &[u8], k: u64) -> Vec<u8> {
    let at = b"pipec-state\n".len() + 4;
    let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
    let json = std::str::from_utf8(&bytes[at + 8..at + 8 + len]).expect("a utf-8 header");
    let range = r#"{"kind":"range","cur":"#;
    let cur_at = json.find(range).expect("a range state") + range.len();
    let cur_len = json[cur_at..].find(',').expect("a comma after cur");
    let cur: u64 = json[cur_at..cur_at + cur_len].parse().expect("a number");
    assert!(cur >= k, "{json}");
    let old = format!(r#"{{"kind":"range","cur":{cur},"stop":50000}},"skip":0,"count":{cur},"#);
    assert!(json.contains(&old), "{json}");
    let back = cur - k;
    let new = format!(r#"{{"kind":"range","cur":{back},"stop":50000}},"skip":{k},"count":{back},"#);
    let json = json.replacen(&old, &new, 1);
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(&bytes[at + 8 + len..]);
    out
}

#[test]
fn a_resumed_run_can_be_cut_and_resumed_again() {
    let dir = scratch("chain");
    std::fs::write(dir.join("p.pipe"), PROGRAMS[1]).expect("write");
    let whole = ok(&pipec(&dir, &[]));
    let mut got = ok(&pipec(&dir, &["--take", "7", "--save-state", "s"]));
    for threads in ["3", "1", "2"] {
        got += &ok(&pipec(
            &dir,
            &[
                "--threads",
                threads,
                "--resume",
                "s",
                "--take",
                "11",
                "--save-state",
                "s",
            ],
        ));
    }
    got += &ok(&pipec(&dir, &["--resume", "s"]));
    assert_eq!(got, whole);
}

#[test]
fn state_every_leaves_the_last_state_before_an_error() {
    // Element 23 divides by zero: the run fails; the state written at element 20 resumes
    // with elements 20, 21, 22 and the same error.
    let dir = scratch("every");
    std::fs::write(
        dir.join("p.pipe"),
        "pipeline main = range(40).map(|x| 100 // (x - 23))\n",
    )
    .expect("write");
    let o = pipec(&dir, &["--save-state", "s", "--state-every", "5"]);
    let err = fails(&o, "E0600");
    let printed: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
    assert_eq!(printed.len(), 23);
    let r = pipec(&dir, &["--resume", "s"]);
    assert_eq!(
        fails(&r, "E0600"),
        err,
        "the same error, at the same element"
    );
    let resumed: Vec<String> = text(&r.stdout).lines().map(String::from).collect();
    assert_eq!(resumed, printed[20..]);
}

#[test]
fn sigint_stops_saves_and_resumes_exactly() {
    let dir = scratch("sigint");
    // Endless: the signal lands mid-run (pipec blocks on the full pipe until it is read).
    let program = "pipeline main = range(1000000000).map(|x| x * x % 1009).prefetch(4)\n";
    std::fs::write(dir.join("p.pipe"), program).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["--threads", "2", "--save-state", "s", "p.pipe"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pipec starts");
    let mut stdout = child.stdout.take().expect("stdout");
    // Read until some elements arrived, then interrupt.
    let mut first = Vec::new();
    let mut buf = [0u8; 4096];
    while first.iter().filter(|&&b| b == b'\n').count() < 50 {
        let n = stdout.read(&mut buf).expect("read");
        assert!(n > 0, "pipec ended early");
        first.extend_from_slice(&buf[..n]);
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    stdout.read_to_end(&mut first).expect("read the rest");
    let exit = child.wait().expect("pipec exits");
    assert_eq!(
        exit.code(),
        Some(130),
        "exit status of a run stopped by SIGINT"
    );
    let first = text(&first);
    let n = first.lines().count();
    assert!(first.ends_with('\n'), "the last element printed whole");
    // Resumed at another thread count, for as many again: one uninterrupted run of 2n.
    let rest = ok(&pipec(
        &dir,
        &["--threads", "1", "--resume", "s", "--take", &n.to_string()],
    ));
    let whole = ok(&pipec(&dir, &["--take", &(2 * n).to_string()]));
    assert_eq!(format!("{first}{rest}"), whole);
}

#[test]
fn a_state_from_another_run_is_refused_naming_what_differs() {
    let dir = scratch("mismatch");
    std::fs::write(
        dir.join("p.pipe"),
        "let n = 3\npipeline main = range(20).map(|x| x * n)\npipeline other = range(5)\n",
    )
    .expect("write");
    ok(&pipec(
        &dir,
        &[
            "--set",
            "n=4",
            "--shard",
            "1/2",
            "--take",
            "3",
            "--save-state",
            "s",
        ],
    ));
    let err = fails(&pipec(&dir, &["--resume", "s", "--shard", "1/2"]), "E0821");
    assert!(
        err.contains("the parameters (--set) differ (saved: `n=4`, now: none)"),
        "{err}"
    );
    let err = fails(&pipec(&dir, &["--resume", "s", "--set", "n=4"]), "E0821");
    assert!(
        err.contains("the shard (--shard) differs (saved: `1/2`, now: none)"),
        "{err}"
    );
    let err = fails(
        &pipec(
            &dir,
            &["--resume", "s", "--set", "n=4", "--shard", "1/2", "-O0"],
        ),
        "E0821",
    );
    assert!(
        err.contains("the optimization passes (-O, --passes) differ"),
        "{err}"
    );
    let err = fails(
        &pipec(
            &dir,
            &[
                "--resume",
                "s",
                "--set",
                "n=4",
                "--shard",
                "1/2",
                "--pipeline",
                "other",
            ],
        ),
        "E0821",
    );
    assert!(
        err.contains("the pipeline (--pipeline) differs (saved: `main`, now: `other`)"),
        "{err}"
    );
    // `--threads` is not part of it.
    let rest = ok(&pipec(
        &dir,
        &[
            "--resume",
            "s",
            "--set",
            "n=4",
            "--shard",
            "1/2",
            "--threads",
            "3",
        ],
    ));
    assert_eq!(rest, "28\n36\n44\n52\n60\n68\n76\n");
    // Another program text.
    std::fs::write(
        dir.join("p.pipe"),
        "let n = 3\npipeline main = range(20).map(|x| x * n + 1)\npipeline other = range(5)\n",
    )
    .expect("write");
    let err = fails(
        &pipec(&dir, &["--resume", "s", "--set", "n=4", "--shard", "1/2"]),
        "E0821",
    );
    assert!(err.contains("the program text (its hash) differs"), "{err}");
}

#[test]
fn a_damaged_or_missing_state_is_an_error_never_a_crash() {
    let dir = scratch("damaged");
    std::fs::write(dir.join("p.pipe"), PROGRAMS[1]).expect("write");
    ok(&pipec(&dir, &["--take", "10", "--save-state", "s"]));
    let good = std::fs::read(dir.join("s")).expect("state written");
    assert!(good.starts_with(b"pipec-state\n"));
    let err = fails(&pipec(&dir, &["--resume", "missing"]), "E0820");
    assert!(
        err.contains("cannot read the state file `missing`"),
        "{err}"
    );
    for cut in [0, 5, 12, 20, good.len() / 2, good.len() - 1] {
        std::fs::write(dir.join("bad"), &good[..cut]).expect("write");
        fails(&pipec(&dir, &["--resume", "bad"]), "E0820");
    }
    std::fs::write(dir.join("bad"), b"not a state at all").expect("write");
    let err = fails(&pipec(&dir, &["--resume", "bad"]), "E0820");
    assert!(err.contains("does not start with `pipec-state`"), "{err}");
    // A damaged header (a key renamed) is E0820 with the JSON error's place.
    let damaged = String::from_utf8_lossy(&good).replacen("\"epoch\"", "\"epoxh\"", 1);
    std::fs::write(dir.join("bad"), damaged.as_bytes()).expect("write");
    fails(&pipec(&dir, &["--resume", "bad"]), "E0820");
    // Another format version.
    let mut v2 = good.clone();
    v2[12] = 2;
    std::fs::write(dir.join("bad"), &v2).expect("write");
    let err = fails(&pipec(&dir, &["--resume", "bad"]), "E0820");
    assert!(err.contains("format version 2"), "{err}");
}

#[test]
fn shards_resume_as_themselves() {
    let dir = scratch("shard");
    std::fs::write(
        dir.join("p.pipe"),
        "pipeline main = range(50).shuffle(8, seed: 2).map(|x| x * 10).batch(3)\n",
    )
    .expect("write");
    for i in 0..3 {
        let shard = format!("{i}/3");
        let whole = ok(&pipec(&dir, &["--shard", &shard]));
        let first = ok(&pipec(
            &dir,
            &["--shard", &shard, "--take", "2", "--save-state", "s"],
        ));
        let rest = ok(&pipec(
            &dir,
            &["--shard", &shard, "--threads", "3", "--resume", "s"],
        ));
        assert_eq!(format!("{first}{rest}"), whole, "shard {shard}");
        let other = format!("{}/3", (i + 1) % 3);
        fails(&pipec(&dir, &["--shard", &other, "--resume", "s"]), "E0821");
    }
}

#[test]
fn an_unseeded_shuffle_resumes_with_the_seed_it_drew() {
    let dir = scratch("unseeded");
    std::fs::write(
        dir.join("p.pipe"),
        "pipeline main = range(40).shuffle(40).repeat(2)\n",
    )
    .expect("write");
    let first = ok(&pipec(&dir, &["--take", "30", "--save-state", "s"]));
    let rest = ok(&pipec(&dir, &["--resume", "s"]));
    let mut all: Vec<i64> = format!("{first}{rest}")
        .lines()
        .map(|l| l.parse().expect("a number"))
        .collect();
    // Each epoch is a permutation: the first run's epoch 0 finished by the resumed run.
    assert_eq!(all.len(), 80);
    let (a, b) = all.split_at_mut(40);
    a.sort_unstable();
    b.sort_unstable();
    let want: Vec<i64> = (0..40).collect();
    assert_eq!((a.to_vec(), b.to_vec()), (want.clone(), want));
}

/// The file readers whose blocks a lane makes (`read_lines`, `read_csv`, `read_tfrecord`)
/// resume exactly where they were cut, inside a file or between two, at any thread count.
#[test]
fn file_readers_resume_where_they_were_cut() {
    let dir = scratch("readers");
    let mut text = String::new();
    let mut csv = String::from("x,y\n");
    for i in 0..20_000 {
        text.push_str(&format!("line {i} {}\n", "w".repeat(i % 37)));
        csv.push_str(&format!("{i},{}.25\n", i % 13));
        if i % 1000 == 7 {
            csv.push('\n');
        }
    }
    std::fs::write(dir.join("a.txt"), &text).expect("write");
    std::fs::write(dir.join("b.txt"), &text[..text.len() / 3]).expect("write");
    std::fs::write(dir.join("c.csv"), &csv).expect("write");
    for name in ["a", "b"] {
        let mut w = pipec::records::TfRecordWriter::create(
            &dir.join(format!("{name}.tfrecord")),
            pipec::records::Compression::None,
        )
        .expect("create");
        for i in 0..9000 {
            w.write_record(format!("{name} {i} {}", "r".repeat(i % 50)).as_bytes())
                .expect("write");
        }
        w.finish().expect("finish");
    }
    for program in [
        "pipeline main = read_lines([\"a.txt\", \"b.txt\"]).map(|l| length(l)).batch(4)\n",
        "pipeline main = read_csv(\"c.csv\", f64).map(|r| r[0] * 2.0 + r[1]).batch(4)\n",
        "pipeline main = read_tfrecord([\"a.tfrecord\", \"b.tfrecord\"]).map(|r| length(r)).batch(4)\n",
    ] {
        assert_cuts_resume_at_both_levels(&dir, program, program, |total| {
            vec![1, total / 3, total / 2 + 1, total - 1]
        });
    }
}
