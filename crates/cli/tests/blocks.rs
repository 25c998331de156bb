//! Block execution (`-O1` and up) against element-at-a-time execution (`-O0`), through the
//! real binary: the same stdout, the same exit code and the same first error, including
//! errors in the middle of a block, read-ahead that must stay invisible, partial batches,
//! blocks of batches and `--take`.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `program` at `level` with `args`; the program lives in a fresh temp file.
fn run(name: &str, program: &str, level: &str, args: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!("pipec-blocks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file: PathBuf = dir.join(format!("{name}.pipe"));
    std::fs::write(&file, program).expect("write program");
    Command::new(env!("CARGO_BIN_EXE_pipec"))
        .arg(level)
        .args(args)
        .arg(&file)
        .output()
        .expect("the pipec binary runs")
}

/// The message line of the first diagnostic (`[E0xxx] Error: ...`).
fn first_error(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .find(|l| l.starts_with("[E") && l.contains("] Error: "))
        .unwrap_or("")
        .to_string()
}

/// Each case: a name, a program, extra CLI args, and whether it must fail.
const CASES: &[(&str, &str, &[&str], bool)] = &[
    (
        "map_error_mid_block",
        "pipeline main = range(2000).map(|x| 10 // (x - 1500))",
        &[],
        true,
    ),
    (
        "filter_error_mid_block",
        "pipeline main = range(3000).filter(|x| 10 // (x - 2500) > -100).batch(7)",
        &[],
        true,
    ),
    (
        "map_filter_map_batch_error",
        "pipeline main = range(5000).map(|x| x * 2).filter(|x| x % 3 == 0).map(|x| 100 // (x - 3000)).batch(64)",
        &[],
        true,
    ),
    (
        "error_past_take_is_never_reached",
        "pipeline main = range(100000).filter(|x| x % 1000 == 0).map(|x| 1 // (x - 50000)).take(50)",
        &[],
        false,
    ),
    (
        "error_past_cli_take_is_never_reached",
        "pipeline main = range(100000).filter(|x| x % 1000 == 0).map(|x| 1 // (x - 50000))",
        &["--take", "50"],
        false,
    ),
    (
        "ragged_batches_of_batches",
        "pipeline main = range(1003).batch(10).map(|b| b * 2 + 1).batch(3)",
        &[],
        true,
    ),
    (
        "batches_of_batches",
        "pipeline main = range(1000).batch(10).map(|b| b * 2 + 1).batch(3)",
        &[],
        false,
    ),
    (
        "vectorized_batches_then_error",
        "pipeline main = range(1000).map(|x| 100 // (x - 555)).batch(10)",
        &[],
        true,
    ),
    (
        "filter_then_batch_drop_remainder",
        "pipeline main = range(10000).map(|x| x * x % 7).filter(|x| x < 3).batch(1024, drop_remainder: true).map(|b| b + 1)",
        &["--take", "3"],
        false,
    ),
    (
        "repeat_and_cache_in_blocks",
        "pipeline main = range(5).map(|x| x * x).cache().repeat(3).batch(4)",
        &[],
        false,
    ),
    (
        "zip_of_mapped_streams",
        "pipeline main = zip(range(300).map(|x| x * 2), range(250).filter(|x| x % 2 == 1)).batch(32)",
        &[],
        false,
    ),
    (
        // Found by the `interp` fuzz target: the batch before the failing element is printed.
        "complete_batch_before_a_filter_error",
        "pipeline main = from_tensor_slices([[2, -7, 2], [-7, 1, 2147483647], [1, 0, 2147483647], [2147483647, 3, -7]]).filter(|x| any(where((x % x) > 100, maximum(x, -7), -x) != -1)).batch(2, drop_remainder: true).cache()",
        &[],
        true,
    ),
    (
        "take_stops_right_before_an_error",
        "pipeline main = range(100).filter(|x| 10 // (x - 64) > -100).take(64)",
        &[],
        false,
    ),
    (
        "cli_take_stops_right_before_an_error",
        "pipeline main = range(100).filter(|x| 10 // (x - 64) > -100)",
        &["--take", "64"],
        false,
    ),
    (
        "range_down_in_blocks",
        "pipeline main = range(10, 0, -3).batch(3)",
        &[],
        false,
    ),
    (
        "range_up_in_blocks",
        "pipeline main = range(-5, 7, 4).batch(2)",
        &[],
        false,
    ),
    (
        "range_near_the_top_in_blocks",
        "pipeline main = range(9223372036854775800, 9223372036854775807, 3).batch(2)",
        &[],
        false,
    ),
    (
        "range_near_the_bottom_in_blocks",
        "pipeline main = range(-9223372036854775800, -9223372036854775808, -5).map(|x| x + 1).batch(2)",
        &[],
        false,
    ),
    (
        "float_math_in_blocks",
        "pipeline main = range(3000).map(|x| log(1.0 + cast(x, f32)) * 0.5 + 2.0).batch(256)",
        &[],
        false,
    ),
    (
        "eager_sort_over_blocks_of_batches",
        "eager fn f(x) -> f32[?] {\n    return sort(x) * 2.0 - 1.0\n}\npipeline main = range(3003).map(|x| cast(x * 7919 % 101, f32)).batch(4).map(f)",
        &[],
        false,
    ),
    (
        "eager_error_mid_block",
        "eager fn g(x) -> i64[] {\n    return 10 // (x - 1500)\n}\npipeline main = range(2000).map(g)",
        &[],
        true,
    ),
    (
        "eager_two_args_two_results",
        "eager fn two(a, b) -> (i64[], i64[]) {\n    let s = a + b\n    return (s, a * b - s)\n}\npipeline main = range(5000).map(|x| (x, x * 3)).map(two).batch(100)",
        &[],
        false,
    ),
    (
        "eager_branches_on_values",
        "eager fn f(x) -> i64[] {\n    if x % 3 == 0 {\n        return x * 2\n    } else if x % 3 == 1 {\n        return -x\n    }\n    return x + 100\n}\npipeline main = range(5000).map(f).batch(7)",
        &[],
        false,
    ),
    (
        "eager_branch_guards_a_division",
        "eager fn g(x) -> i64[] {\n    if x % 7 != 0 {\n        return 1000 // (x % 7)\n    }\n    return x\n}\npipeline main = range(3000).map(g)",
        &[],
        false,
    ),
    (
        "eager_branch_error_mid_block",
        "eager fn g(x) -> i64[] {\n    if x > 1400 {\n        return 10 // (x - 1500)\n    }\n    return x\n}\npipeline main = range(2000).map(g)",
        &[],
        true,
    ),
    (
        "eager_branches_on_rows",
        "eager fn f(x) -> f32[4] {\n    let y = x\n    if sum(x) > 150.0 {\n        y = sort(x)\n    } else {\n        y = -x * 0.5\n    }\n    return y\n}\npipeline main = range(4000).map(|x| cast(x * 7919 % 101, f32)).batch(4).map(f)",
        &[],
        false,
    ),
    (
        "eager_branches_beyond_the_path_limit",
        "eager fn f(x) -> i64[] {\n    let n = x * 0\n    while x > 0 {\n        x = x - 1\n        n = n + 3\n    }\n    return n\n}\npipeline main = range(3000).map(|x| x % 150).map(f)",
        &[],
        false,
    ),
    (
        "eager_loop_on_values",
        "eager fn f(x) -> i64[] {\n    let n = x * 0\n    while x > 1 {\n        x = x // 2\n        n = n + 1\n    }\n    for i in range(3) {\n        n = n * 2 + i\n    }\n    return n\n}\npipeline main = range(3000).map(f).batch(5)",
        &[],
        false,
    ),
    (
        "eager_indexing_and_helpers",
        "fn clamp(v, hi) {\n    if max(v) > hi {\n        return minimum(v, hi)\n    }\n    return v\n}\neager fn f(x) -> i64[3] {\n    let n = x.shape[0]\n    if x[0] > x[n - 1] {\n        return clamp(x[::-1], 50)\n    }\n    return (x * 2 + x.sum())[::-1]\n}\npipeline main = range(3000).map(|i| (i * 7919) % 101).batch(3, drop_remainder: true).map(f)",
        &[],
        false,
    ),
    (
        // Host numbers: planned under range guards; the rows past them (near i64's ends)
        // and the division by zero at x = 1500 go to the evaluator.
        "eager_host_numbers",
        "eager fn f(x) -> i64[] {\n    let n = item(x)\n    if n * 3 + 1 > 4000 || n % 7 == 2 {\n        return x // 3\n    }\n    if n > 2990 {\n        return cast(1, i64)\n    }\n    return cast(n / 4 > 100.5, i64) + x\n}\npipeline main = range(3000).map(|x| where(x % 1000 == 999, x * 3074457345618258602, x)).map(f).batch(9)",
        &[],
        false,
    ),
    (
        // Results known at trace time: a path's constants, broadcast over a block's rows
        // (every result constant, or some).
        "eager_constant_results",
        "eager fn f(x) -> i64[] {\n    return cast(3, i64)\n}\neager fn g(x) -> (i64[], f32[2]) {\n    if x % 3 == 0 {\n        return (cast(7, i64), cast([1.5, 2.5], f32))\n    }\n    return (x, cast([0.5, 0.5], f32))\n}\npipeline main = range(3000).map(|x| (f(x), g(x))).batch(1000).map(|a, b| (sum(a), sum(b[0]), sum(b[1], axis: 0)))",
        &[],
        false,
    ),
    (
        // Top-level values are constants of a plan.
        "eager_reads_top_level_values",
        "let scale = [0.5, 2.0, -1.0]\nlet limit = 40\neager fn f(x) -> f32[3] {\n    if item(x[0]) > limit {\n        return x * scale\n    }\n    return x - scale[1]\n}\npipeline main = range(3000).map(|i| cast((i * 7919) % 101, f32)).batch(3, drop_remainder: true).map(f)",
        &[],
        false,
    ),
    (
        "eager_host_number_division_by_zero_mid_block",
        "eager fn f(x) -> f32[] {\n    let v = item(x)\n    if 1.0 / (v - 1500.0) > 0.5 {\n        return x\n    }\n    return -x\n}\npipeline main = range(2000).map(|x| cast(x, f32)).map(f)",
        &[],
        true,
    ),
    (
        // Not planned (it prints): must run once per element, each line printed once.
        "eager_with_print_runs_per_element",
        "eager fn p(x) -> i64[] {\n    print(x)\n    return x * 2\n}\npipeline main = range(3000).map(p).filter(|x| x % 3 == 0)",
        &[],
        false,
    ),
    (
        "eager_wrong_result_shape_mid_block",
        "eager fn w(x) -> f32[2] {\n    return sort(x)\n}\npipeline main = range(31).map(|x| cast(x, f32)).batch(2).map(w)",
        &[],
        true,
    ),
    (
        // Lanes read ahead only over pure inputs: these prints happen once per element taken.
        "impure_upstream_is_not_read_ahead",
        "eager fn p(x) -> i64[] {\n    print(x)\n    return x\n}\npipeline main = range(100000).map(p).batch(4).map(|b| b * 2).take(2)",
        &[],
        false,
    ),
    (
        "error_deep_in_a_long_stream",
        "pipeline main = range(300000).map(|x| 10 // (x - 250001)).batch(7)",
        &["--discard"],
        true,
    ),
    (
        "take_early_from_lanes",
        "pipeline main = range(1000000).batch(16).map(|b| b * 3 + 1)",
        &["--take", "5"],
        false,
    ),
    (
        // The map and the filter run as one job per block (lanes chain them): the map fails
        // mid-block, after rows the filter kept and dropped.
        "chained_map_error_mid_block",
        "pipeline main = range(40000).map(|x| 1000 // (x - 31234)).filter(|x| x % 3 != 1).batch(64)",
        &[],
        true,
    ),
    (
        // The filter fails mid-block, the map before it succeeding on the whole block.
        "chained_filter_error_mid_block",
        "pipeline main = range(40000).map(|x| x * 3 - 60000).filter(|x| 100 // x > -1000).batch(64)",
        &[],
        true,
    ),
    (
        // A text that is not a number, deep in a chain of map, map, filter.
        "chained_string_to_number_error",
        "pipeline main = range(40000).map(|x| x * 7 % 40009).map(|x| string_to_number(where(x == 5001, \"x\", as_string(x)), i64)).filter(|x| x % 2 == 0).batch(100)",
        &[],
        true,
    ),
    (
        // Random ops in both: the map draws by its input's positions, the filter by the map's.
        "chained_random_map_and_filter",
        "pipeline main = range(30000).map(|x| x + random_uniform([], 0, 100, i64, seed: 3)).filter(|x| random_uniform([], 0.0, 1.0, f32, seed: 5) < 0.5).batch(128)",
        &[],
        false,
    ),
    (
        "pure_eager_upstream_of_lanes",
        "eager fn e(x) -> i64[] {\n    return x * 2\n}\npipeline main = range(50000).map(e).batch(8).map(|b| b - 1)",
        &[],
        false,
    ),
];

#[test]
fn blocks_give_what_element_at_a_time_gives() {
    let mut failures = Vec::new();
    for (name, program, args, fails) in CASES {
        let reference = run(name, program, "-O0", args);
        assert_eq!(
            !reference.status.success(),
            *fails,
            "{name} at -O0: {}",
            String::from_utf8_lossy(&reference.stderr)
        );
        // `--threads 3`: lanes with two helpers, whatever the machine's cores.
        for (opt, threads) in [("-O1", "1"), ("-O2", "2"), ("-O2", "3")] {
            let args: Vec<&str> = args.iter().copied().chain(["--threads", threads]).collect();
            let level = format!("{opt} --threads {threads}");
            let got = run(name, program, opt, &args);
            if got.stdout != reference.stdout || got.status.code() != reference.status.code() {
                failures.push(format!(
                    "{name} at {level}: exit {:?} vs {:?}, stdout {} vs {} bytes\n{}",
                    got.status.code(),
                    reference.status.code(),
                    got.stdout.len(),
                    reference.stdout.len(),
                    String::from_utf8_lossy(&got.stderr)
                ));
            }
            // A run that succeeds writes only what its eager bodies print to stderr: the
            // same lines, as many times (read-ahead must not run an effect early).
            if !*fails && got.stderr != reference.stderr {
                failures.push(format!(
                    "{name} at {level}: stderr of {} bytes, at -O0 {} bytes",
                    got.stderr.len(),
                    reference.stderr.len()
                ));
            }
            if *fails && first_error(&got.stderr).is_empty() {
                failures.push(format!(
                    "{name} at {level}: no `[E....] Error:` line in stderr"
                ));
            }
            if first_error(&got.stderr) != first_error(&reference.stderr) {
                failures.push(format!(
                    "{name} at {level}: first error\n  {}\nbut at -O0\n  {}",
                    first_error(&got.stderr),
                    first_error(&reference.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn errors_name_the_element_where_blocks_fail() {
    let out = run(
        "element_named",
        "pipeline main = range(2000).map(|x| 10 // (x - 1500))",
        "-O2",
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("element 1500"), "{stderr}");
    // The 1500 elements before it were printed first.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1500);
}

#[test]
fn eager_errors_name_the_element_where_blocks_fail() {
    let out = run(
        "eager_element_named",
        "eager fn g(x) -> i64[] {\n    return 10 // (x - 1500)\n}\npipeline main = range(2000).map(g)",
        "-O2",
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("element 1500"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1500);
}

/// `--stats`' `time:` phases add up to the process's wall time, and the serial share of a
/// one-thread run is all of it.
#[test]
fn stats_time_phases_add_up_and_one_thread_is_all_serial() {
    let out = run(
        "stats_time",
        "pipeline main = range(20000).map(|x| x * 3).batch(64)",
        "-O2",
        &["--stats", "--threads", "1"],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let phases: Vec<(String, f64, f64)> = stderr
        .lines()
        .skip_while(|l| *l != "time:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let secs: f64 = cols[1].parse().expect("seconds");
            let share: f64 = cols[3].trim_end_matches('%').parse().expect("share");
            (cols[0].to_string(), secs, share)
        })
        .collect();
    let names: Vec<&str> = phases.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        names,
        ["compile", "open", "pipeline", "sink", "other"],
        "{stderr}"
    );
    let total: f64 = phases.iter().map(|p| p.2).sum();
    assert!(
        (99.0..=101.0).contains(&total),
        "shares sum to {total}: {stderr}"
    );
    // Printing 313 batches is real work: the sink is not empty.
    assert!(phases[3].1 > 0.0, "{stderr}");
    assert!(
        stderr.contains("serial share: 100.0% of the run"),
        "{stderr}"
    );
}

/// `--stats` ends with one line per node: own time, share, elements handed out, IR line.
#[test]
fn stats_report_every_node_with_its_elements() {
    for level in ["-O0", "-O2"] {
        let out = run(
            "stats",
            "pipeline main = range(100).map(|x| x * 3).filter(|x| x % 2 == 0).batch(8)",
            level,
            &["--stats", "--discard"],
        );
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("elements: 7\n"), "{stderr}");
        let nodes: Vec<&str> = stderr
            .lines()
            .skip_while(|l| *l != "nodes:")
            .skip(2)
            .collect();
        let elements: Vec<(u64, &str)> = nodes
            .iter()
            .map(|l| {
                let mut cols = l.split_whitespace();
                let secs: f64 = cols.next().and_then(|c| c.parse().ok()).expect("seconds");
                assert!(secs >= 0.0);
                assert!(cols.next().is_some_and(|c| c.ends_with('%')), "{l}");
                let n = cols.next().and_then(|c| c.parse().ok()).expect("elements");
                // The share of blocks helper lanes computed: maps on lanes only.
                let helped = cols.next().expect("helped");
                assert!(helped == "-" || helped.ends_with('%'), "{l}");
                (n, cols.next().expect("node name"))
            })
            .collect();
        assert_eq!(
            elements,
            [(100, "%d0"), (100, "%d1"), (50, "%d2"), (7, "%d3")],
            "{level}: {stderr}"
        );
    }
}

/// A map that runs inside the filter above it (one lane job per block through both) still
/// has its own `--stats` line: its elements, some of the time, and the same blocks helped.
#[test]
fn stats_split_a_chained_stage_between_its_nodes() {
    for threads in ["1", "2"] {
        let out = run(
            "stats_chained",
            "pipeline main = range(2000000).map(|x| x * x % 7).filter(|x| x < 3).batch(1024)",
            "-O2",
            &["--stats", "--discard", "--threads", threads],
        );
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let nodes: Vec<Vec<&str>> = stderr
            .lines()
            .skip_while(|l| *l != "nodes:")
            .skip(2)
            .map(|l| l.split_whitespace().collect())
            .collect();
        let elements: Vec<&str> = nodes.iter().map(|cols| cols[2]).collect();
        assert_eq!(
            elements,
            ["2000000", "2000000", "1428572", "1396"],
            "{stderr}"
        );
        for node in &nodes[1..3] {
            let secs: f64 = node[0].parse().expect("seconds");
            assert!(secs > 0.0, "threads {threads}: {stderr}");
        }
        // The map's and the filter's blocks are the same jobs.
        assert_eq!(nodes[1][3], nodes[2][3], "threads {threads}: {stderr}");
    }
}
