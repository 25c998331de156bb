//! The runtime through the real `pipec` binary: output files (`.npy`, `.npz`, `.jsonl`) read
//! back with pipec's own readers and compared with what numpy wrote (`tests/data/expect/`,
//! from `tests/numpy/gen_files.py`), atomic output (a failed run leaves nothing), `--take`,
//! file errors, ragged batches, and determinism across `--threads`.

use pipec::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

/// A fresh directory holding one `.pipe` file; removed on drop.
struct Case {
    dir: PathBuf,
}

impl Case {
    fn new(test: &str, program: &str) -> Case {
        let dir = std::env::temp_dir().join(format!("pipec-runtime-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        // `DATA/` in a program stands for tests/data/.
        let data_dir = data("").display().to_string();
        std::fs::write(dir.join("p.pipe"), program.replace("DATA/", &data_dir))
            .expect("write program");
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

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The directory's files other than the program.
    fn others(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n != "p.pipe")
            .collect();
        v.sort();
        v
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

#[test]
fn npy_output_is_numpys_bytes() {
    for (program, expect) in [
        (
            "pipeline main = range(7).map(|x| cast(x, f32) * 0.5)",
            "halves.npy",
        ),
        ("pipeline main = range(12).batch(3)", "batches.npy"),
        // No element at all: the element type gives the shape (0, 3).
        (
            r#"pipeline main = read_csv("DATA/ints.csv").filter(|r| r[0] > 100.0)"#,
            "empty_rows.npy",
        ),
    ] {
        let case = Case::new("npy", program);
        let out = case.run(&["--output", "out.npy"]);
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), "", "nothing is printed with --output");
        let got = std::fs::read(case.path("out.npy")).expect("output written");
        let want = std::fs::read(data("expect").join(expect)).expect("expected file");
        assert_eq!(got, want, "{program}: bytes differ from numpy.save");
        assert_eq!(
            case.others(),
            vec!["out.npy".to_string()],
            "no temporary file is left"
        );
    }
}

#[test]
fn npz_output_has_one_array_per_component() {
    let case = Case::new(
        "npz",
        r#"pipeline main = from_tensor_slices((read_npz("DATA/pair.npz", "x"), read_npz("DATA/pair_deflated.npz", "y"))).map(|a, b| (a * 2, b + 1.0))"#,
    );
    let out = case.run(&["--output", "out.npz"]);
    assert_exit(&out, 0);
    let path = case.path("out.npz");
    for (member, expect) in [("arr_0", "pair_x.npy"), ("arr_1", "pair_y.npy")] {
        let got = io::read_npz(&path, member).expect("member present");
        let want = std::fs::read(data("expect").join(expect)).expect("expected file");
        assert_eq!(io::encode_npy(&got), want, "{member}");
        assert_eq!(got, io::parse_npy(&want).expect("numpy's file parses"));
    }
    assert!(matches!(
        io::read_npz(&path, "arr_2"),
        Err(io::IoError::MissingMember { .. })
    ));
    assert_eq!(
        case.others(),
        vec!["out.npz".to_string()],
        "component temporaries are removed"
    );
}

#[test]
fn npz_output_names_dict_members_by_key_path() {
    // Like `numpy.savez(path, **{"id": ..., "meta/sq": ..., "meta/half": ...})`.
    let case = Case::new(
        "npz_dict",
        r#"pipeline main = range(5).map(|i| {"id": i, "meta": {"sq": i * i, "half": cast(i, f32) * 0.5}})"#,
    );
    let out = case.run(&["--output", "out.npz"]);
    assert_exit(&out, 0);
    let path = case.path("out.npz");
    for (member, expect) in [
        ("id", "dict_id.npy"),
        ("meta/sq", "dict_meta_sq.npy"),
        ("meta/half", "dict_meta_half.npy"),
    ] {
        let got = io::read_npz(&path, member).expect("member present");
        let want = std::fs::read(data("expect").join(expect)).expect("expected file");
        assert_eq!(io::encode_npy(&got), want, "{member}");
    }
    assert!(matches!(
        io::read_npz(&path, "arr_0"),
        Err(io::IoError::MissingMember { .. })
    ));
    // Two leaves with one name cannot both be members: a usage error, before any output.
    let case = Case::new(
        "npz_dict_clash",
        r#"pipeline main = range(2).map(|i| {"a/b": i, "a": {"b": i}})"#,
    );
    let out = case.run(&["--output", "out.npz"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("\"a/b\""), "{}", stderr(&out));
    assert!(case.others().is_empty(), "nothing written");
}

#[test]
fn jsonl_output_lines() {
    let case = Case::new(
        "jsonl",
        "let v = [[0.1, -2.0], [1e20, 1e-7], [0.0, 0.0]]\n\
         pipeline main = zip(range(3), from_tensor_slices(v)).map(|i, r| (i, (r / cast(i, f32), r > 0.0)))",
    );
    let out = case.run(&["--output", "out.jsonl"]);
    assert_exit(&out, 0);
    let got = std::fs::read_to_string(case.path("out.jsonl")).expect("written");
    let want = "[0, [[\"inf\", \"-inf\"], [true, false]]]\n\
                [1, [[1e+20, 1e-07], [true, true]]]\n\
                [2, [[0.0, 0.0], [false, false]]]\n";
    assert_eq!(got, want);
    // A dict is a JSON object, keys in the order written (what `json.dumps` writes of it).
    let case = Case::new(
        "jsonl_dict",
        r#"pipeline main = range(2).map(|i| {"id": i, "x \"q\"": (cast(i, f32) * 0.5, [i, i])})"#,
    );
    assert_exit(&case.run(&["--output", "d.jsonl"]), 0);
    assert_eq!(
        std::fs::read_to_string(case.path("d.jsonl")).expect("written"),
        "{\"id\": 0, \"x \\\"q\\\"\": [0.0, [0, 0]]}\n{\"id\": 1, \"x \\\"q\\\"\": [0.5, [1, 1]]}\n"
    );
    // A scalar is a bare number; f32 values use the shortest text that reads back as the same f32.
    let case = Case::new(
        "jsonl_scalar",
        "pipeline main = range(3).map(|x| cast(x, f32) / 3.0)",
    );
    assert_exit(&case.run(&["--output", "s.jsonl"]), 0);
    assert_eq!(
        std::fs::read_to_string(case.path("s.jsonl")).expect("written"),
        "0.0\n0.33333334\n0.6666667\n"
    );
}

#[test]
fn a_failed_run_leaves_no_output() {
    // Element 7 divides by zero after 7 elements were produced (and written).
    for ext in ["npy", "npz", "jsonl"] {
        for extra in [&[][..], &["--threads", "4"][..]] {
            let case = Case::new(
                "fail",
                "pipeline main = range(10).map(|x| 10 // (x - 7), num_parallel_calls: 4).map(|x| (x, x * 2))",
            );
            let name = format!("out.{ext}");
            if ext == "npy" {
                std::fs::write(
                    case.path("p.pipe"),
                    "pipeline main = range(10).map(|x| 10 // (x - 7), num_parallel_calls: 4)",
                )
                .expect("rewrite");
            }
            let mut args = vec!["--output", name.as_str()];
            args.extend_from_slice(extra);
            let out = case.run(&args);
            assert_exit(&out, 1);
            assert!(stderr(&out).contains("E0600"), "{}", stderr(&out));
            assert_eq!(
                case.others(),
                Vec::<String>::new(),
                "{ext}: a failed run left files behind"
            );
            // An existing file is left as it was.
            std::fs::write(case.path(&name), b"old").expect("write");
            assert_exit(&case.run(&args), 1);
            assert_eq!(
                std::fs::read(case.path(&name)).expect("still there"),
                b"old"
            );
            assert_eq!(case.others(), vec![name.clone()]);
        }
    }
}

#[test]
fn bad_output_requests_are_usage_errors() {
    let case = Case::new("usage", "pipeline main = range(3).map(|x| (x, x))");
    let out = case.run(&["--output", "out.npy"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(".npz"),
        "suggests .npz: {}",
        stderr(&out)
    );
    assert_exit(&case.run(&["--output", "out.csv"]), 2);
    assert_exit(&case.run(&["--output", "out.npz", "--discard"]), 2);
    assert_eq!(case.others(), Vec::<String>::new());
    // A directory that does not exist: the write fails (exit 1, E0605).
    let out = case.run(&["--output", "no/such/dir/out.npz"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("E0605"), "{}", stderr(&out));
    // Elements of different shapes cannot be one .npy.
    let case = Case::new(
        "ragged_out",
        "eager fn upto(n) -> i64[?] {\n    return arange(item(n) + 1, i64)\n}\npipeline main = range(3).map(upto)",
    );
    let out = case.run(&["--output", "out.npy"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("E0605") && stderr(&out).contains("padded_batch"),
        "{}",
        stderr(&out)
    );
    assert_eq!(case.others(), Vec::<String>::new());
    assert_exit(&case.run(&["--output", "out.jsonl"]), 0);
    assert_eq!(
        std::fs::read_to_string(case.path("out.jsonl")).expect("written"),
        "[0]\n[0, 1]\n[0, 1, 2]\n"
    );
}

#[test]
fn take_pulls_exactly_n() {
    // Element 5 would fail: `--take 5` must never compute it (nor report it).
    for program in [
        "pipeline main = range(10).map(|x| 10 // (x - 5))",
        "pipeline main = range(1000).map(|x| 10 // (x - 5), num_parallel_calls: 4)",
        "pipeline main = range(10).map(|x| 10 // (x - 5)).prefetch(3)",
    ] {
        let case = Case::new("take", program);
        for threads in ["1", "4"] {
            let out = case.run(&["--take", "5", "--threads", threads]);
            assert_exit(&out, 0);
            assert_eq!(stdout(&out).lines().count(), 5, "{program}");
            // Without --take the error is reported after the five good elements.
            let out = case.run(&["--threads", threads]);
            assert_exit(&out, 1);
            assert_eq!(stdout(&out).lines().count(), 5, "{program}");
            assert!(stderr(&out).contains("element 5"), "{}", stderr(&out));
        }
    }
    // An eager function's side effects show how many elements ran.
    let case = Case::new(
        "take_eager",
        "eager fn loud(x) -> i64[] {\n    print(x)\n    return x\n}\npipeline main = range(100).map(loud)",
    );
    let out = case.run(&["--take", "3"]);
    assert_exit(&out, 0);
    assert_eq!(stderr(&out).lines().count(), 3, "{}", stderr(&out));
}

/// A parallel map's lanes take pieces of a chunk and compute the next chunk ahead: an error
/// deep in the run still comes after exactly the elements before it, at every thread
/// count, and `--take` short of it never reports it.
#[test]
fn parallel_map_errors_come_in_order() {
    let good = [
        "rgb_48x64",
        "rgb420_17x33",
        "gray_11x13",
        "progressive_21x29",
    ];
    let paths: Vec<String> = (0..300)
        .map(|i| {
            let name = if i == 200 { "truncated" } else { good[i % 4] };
            format!("\"DATA/../images/src/{name}.jpg\"")
        })
        .collect();
    // Decoding has no block form, so this map is per element on lanes; the resize makes
    // each element slow enough for the lanes to be used at all.
    let program = format!(
        "pipeline main = from_tensor_slices([{}])\n    .map(|p| sum(resize(decode_jpeg(read_file(p)), [128, 128])))",
        paths.join(", ")
    );
    let case = Case::new("parmap_error", &program);
    let mut first = None;
    for threads in ["1", "2", "3"] {
        let out = case.run(&["--threads", threads]);
        assert_exit(&out, 1);
        assert_eq!(stdout(&out).lines().count(), 200, "--threads {threads}");
        assert!(stderr(&out).contains("element 200"), "{}", stderr(&out));
        // The same values at every thread count.
        let text = stdout(&out);
        assert_eq!(first.get_or_insert_with(|| text.clone()), &text);
        let out = case.run(&["--threads", threads, "--take", "150"]);
        assert_exit(&out, 0);
        assert_eq!(stdout(&out).lines().count(), 150, "--threads {threads}");
    }
}

/// A parallel map under a `batch` stacks its results on the lanes that computed them and
/// hands out whole batches: the batches, an error's place and a ragged batch's error are
/// the one-thread run's, with `--stats` too (its timing wrapper passes the batch size on).
#[test]
fn a_parallel_map_under_a_batch_stacks_what_one_thread_stacks() {
    let good = [
        "rgb_48x64",
        "rgb420_17x33",
        "gray_11x13",
        "progressive_21x29",
    ];
    let list = |odd: Option<(usize, &str)>| -> String {
        (0..300)
            .map(|i| match odd {
                Some((at, name)) if i == at => format!("\"DATA/../images/src/{name}.jpg\""),
                _ => format!("\"DATA/../images/src/{}.jpg\"", good[i % 4]),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Two plain leaves, each element slow enough (the large resize) for the lanes to be used.
    let program = format!(
        "fn load(p) {{\n    let img = resize(decode_jpeg(read_file(p), channels: 3), [96, 96])\n    \
         return (img[::8, ::8], sum(img))\n}}\npipeline main = from_tensor_slices([{}]).map(load)\n    \
         .batch(7, drop_remainder: true)",
        list(None)
    );
    let case = Case::new("parmap_batches", &program);
    let one = case.path("one.npz");
    assert_exit(
        &case.run(&["--threads", "1", "--output", one.to_str().unwrap()]),
        0,
    );
    let want = std::fs::read(&one).expect("one thread's batches");
    for args in [
        &["--threads", "2"][..],
        &["--threads", "3"],
        &["--threads", "2", "--stats"],
    ] {
        let out = case.path("many.npz");
        let mut all = args.to_vec();
        all.extend(["--output", out.to_str().unwrap()]);
        assert_exit(&case.run(&all), 0);
        assert!(
            std::fs::read(&out).expect("batches") == want,
            "{args:?} changed the batches"
        );
    }
    let images = io::read_npz(&one, "arr_0").expect("reads back");
    assert_eq!(images.shape(), &[42, 7, 12, 12, 3]);

    // An element that fails, deep in the run: the batches before its batch, then its error.
    let failing = format!(
        "pipeline main = from_tensor_slices([{}])\n    .map(|p| sum(resize(decode_jpeg(read_file(p)), [128, 128])))\n    .batch(7)",
        list(Some((200, "truncated")))
    );
    // A late element of another shape: its batch is ragged, at every thread count.
    let ragged = format!(
        "fn load(p) {{\n    let img = decode_jpeg(read_file(p), channels: 3)\n    \
         return img + cast(sum(resize(img, [96, 96])) * 0.0, u8)\n}}\n\
         pipeline main = from_tensor_slices([{}]).map(load).map(|x| x[:11, :13])\n    .batch(5)",
        list(Some((251, "rgb444_9x15")))
    );
    for (name, program, batches, message) in [
        ("parmap_batch_error", failing, 28, "element 200"),
        ("parmap_ragged", ragged, 50, "(element 251)"),
    ] {
        let case = Case::new(name, &program);
        let first = case.run(&["--threads", "1"]);
        assert_exit(&first, 1);
        assert_eq!(stdout(&first).matches("\n[").count() + 1, batches, "{name}");
        assert!(stderr(&first).contains(message), "{}", stderr(&first));
        for threads in ["2", "3"] {
            let out = case.run(&["--threads", threads]);
            assert_exit(&out, 1);
            assert_eq!(
                stdout(&out),
                stdout(&first),
                "{name} at --threads {threads}"
            );
            assert_eq!(
                stderr(&out),
                stderr(&first),
                "{name} at --threads {threads}"
            );
        }
    }
}

#[test]
fn csv_errors_name_file_line_column_and_cell() {
    let case = Case::new(
        "csv_bad",
        r#"pipeline main = read_csv("DATA/bad_cell.csv")"#,
    );
    let out = case.run(&[]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    for part in ["E0604", "bad_cell.csv", "line 4", "column 2", "`x7`", "f32"] {
        assert!(err.contains(part), "missing {part:?} in:\n{err}");
    }
    assert_eq!(
        stdout(&out).lines().count(),
        2,
        "rows before the bad one are printed"
    );
    let case = Case::new(
        "csv_ragged",
        r#"pipeline main = from_tensor_slices(read_csv("DATA/ragged.csv", i64))"#,
    );
    let out = case.run(&[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("line 3") && stderr(&out).contains("2 cells"),
        "{}",
        stderr(&out)
    );
    let case = Case::new("csv_empty", r#"pipeline main = read_csv("DATA/empty.csv")"#);
    let out = case.run(&[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("E0604") && stderr(&out).contains("empty"),
        "{}",
        stderr(&out)
    );
    let case = Case::new(
        "csv_missing",
        r#"pipeline main = read_csv("DATA/no_such.csv")"#,
    );
    assert!(stderr(&case.run(&[])).contains("E0602"));
}

#[test]
fn bad_array_files_are_errors_not_panics() {
    let case = Case::new(
        "npz_member",
        r#"pipeline main = from_tensor_slices(read_npz("DATA/pair.npz", "z"))"#,
    );
    let out = case.run(&[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("E0603") && stderr(&out).contains("x, y"),
        "{}",
        stderr(&out)
    );
    // Garbage and truncated files, as .npy and .npz.
    let good = std::fs::read(data("pair.npz")).expect("input");
    for (name, bytes) in [
        (
            "g.npy",
            b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'shape': (9".to_vec(),
        ),
        ("g.npz", good[..good.len() / 2].to_vec()),
        ("h.npz", b"PK\x03\x04garbage".to_vec()),
    ] {
        let call = if name.ends_with("npy") {
            format!("read_npy(\"{name}\")")
        } else {
            format!("read_npz(\"{name}\", \"x\")")
        };
        let case = Case::new(
            "garbage",
            &format!("pipeline main = from_tensor_slices({call})"),
        );
        std::fs::write(case.path(name), bytes).expect("write");
        let out = case.run(&[]);
        assert_exit(&out, 1);
        assert!(stderr(&out).contains("E0603"), "{name}: {}", stderr(&out));
    }
}

#[test]
fn ragged_batch_names_component_shapes_and_padded_batch() {
    let case = Case::new(
        "ragged",
        "eager fn upto(n) -> i64[?] {\n    return arange(item(n) + 1, i64)\n}\npipeline main = range(4).map(|x| (x, upto(x))).batch(2)",
    );
    let out = case.run(&[]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    for part in ["component 1", "[1]", "[2]", "padded_batch"] {
        assert!(err.contains(part), "missing {part:?} in:\n{err}");
    }
}

#[test]
fn shuffle_and_parallel_map_are_deterministic_at_any_thread_count() {
    let case = Case::new(
        "determinism",
        "pipeline main = range(2000).shuffle(97, seed: 7).map(|x| x * 3 + 1, num_parallel_calls: AUTOTUNE)\n\
         .map(|x| cast(x, f32) / 7.0, num_parallel_calls: 8, deterministic: true).prefetch(4).batch(50).repeat(2)",
    );
    let first = case.run(&["--threads", "1"]);
    assert_exit(&first, 0);
    assert_eq!(stdout(&first).matches('[').count(), 80, "80 batches");
    for threads in ["1", "2", "4", "8"] {
        let out = case.run(&["--threads", threads]);
        assert_exit(&out, 0);
        assert!(
            stdout(&out) == stdout(&first),
            "--threads {threads} changed the output"
        );
    }
    // The two epochs are shuffled differently (reshuffle each iteration), yet each is a permutation.
    let text = stdout(&first);
    let half = text.len() / 2;
    assert_ne!(text[..half], text[half..]);
}

#[test]
fn mismatched_lengths_are_errors_not_panics() {
    let case = Case::new(
        "unbatch_lengths",
        "pipeline main = zip(range(6).batch(3), range(6).batch(2)).unbatch()",
    );
    let out = case.run(&[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("E0601") && stderr(&out).contains("[3], [2]"),
        "{}",
        stderr(&out)
    );
    // File components have no length at trace time: checked when the pipeline starts.
    let case = Case::new(
        "slices_lengths",
        r#"pipeline main = from_tensor_slices((read_npy("DATA/small.npy"), read_npz("DATA/pair.npz", "y")))"#,
    );
    let out = case.run(&[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("E0601") && stderr(&out).contains("[4, 3], [5]"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn str_elements_round_trip_through_numpy_bytes_arrays() {
    // numpy reads an `S` array's elements with trailing NULs stripped (`b"a\x00b"` keeps its
    // inner NUL); pipec's output is byte for byte what `numpy.save` writes.
    let case = Case::new(
        "str_npz",
        r#"pipeline main = from_tensor_slices(read_npy("DATA/words.npy")).map(|w| upper(w))"#,
    );
    let out = case.run(&["--output", "out.npz"]);
    assert_exit(&out, 0);
    let got = io::read_npz(&case.path("out.npz"), "arr_0").expect("member present");
    let want = std::fs::read(data("expect").join("words_upper.npy")).expect("expected file");
    assert_eq!(io::encode_npy(&got), want);
    let printed = case.run(&[]);
    assert_exit(&printed, 0);
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        "b'CAT'\nb''\nb'GIRAFFE'\nb'A\\x00B'\n"
    );
    let out = case.run(&["--output", "out.jsonl"]);
    assert_exit(&out, 0);
    assert_eq!(
        std::fs::read_to_string(case.path("out.jsonl")).expect("jsonl"),
        "\"CAT\"\n\"\"\n\"GIRAFFE\"\n\"A\\u0000B\"\n"
    );
}
