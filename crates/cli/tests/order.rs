//! SPEC §15 order through the real `pipec` binary: `global_shuffle` (a permutation, per
//! epoch, uniform, through every random-access transformation, E0410) and `--shard I/N`
//! around it.

use std::collections::HashMap;
use std::process::Output;

mod common;
use common::text;

fn run(test: &str, program: &str, args: &[&str]) -> Output {
    common::run_program("order", test, program, args)
}

/// The printed elements, one per line, when the run succeeds.
#[track_caller]
fn lines(o: &Output) -> Vec<String> {
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", text(&o.stderr));
    text(&o.stdout).lines().map(String::from).collect()
}

fn ints(ls: &[String]) -> Vec<i64> {
    ls.iter().map(|l| l.parse().expect("an integer")).collect()
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

#[test]
fn global_shuffle_is_a_permutation_the_same_at_every_level_and_thread_count() {
    for n in [0i64, 1, 2, 7, 4096, 4097, 20_000] {
        let prog = format!("pipeline main = range({n}).global_shuffle(seed: 11)\n");
        let o2 = ints(&lines(&run("perm", &prog, &[])));
        assert_eq!(sorted(&o2), (0..n).collect::<Vec<_>>(), "n={n}");
        if n > 20 {
            assert_ne!(o2, (0..n).collect::<Vec<_>>(), "n={n}: not shuffled");
        }
        for args in [&["-O0"][..], &["--threads", "3"], &["--take", "5"]] {
            let other = ints(&lines(&run("perm", &prog, args)));
            let want = &o2[..other.len()];
            assert_eq!(other, want, "n={n} {args:?}");
        }
    }
    // Another seed, another order.
    let a = ints(&lines(&run(
        "seed",
        "pipeline main = range(100).global_shuffle(seed: 1)",
        &[],
    )));
    let b = ints(&lines(&run(
        "seed",
        "pipeline main = range(100).global_shuffle(seed: 2)",
        &[],
    )));
    assert_ne!(a, b);
}

#[test]
fn each_epoch_draws_a_new_order_unless_told_not_to() {
    for (n, opts) in [(50i64, ""), (5000, "")] {
        let prog = format!("pipeline main = range({n}).global_shuffle(seed: 5{opts}).repeat(3)\n");
        let all = ints(&lines(&run("epochs", &prog, &[])));
        let epochs: Vec<&[i64]> = all.chunks(n as usize).collect();
        assert_eq!(epochs.len(), 3);
        for e in &epochs {
            assert_eq!(sorted(e), (0..n).collect::<Vec<_>>());
        }
        assert_ne!(epochs[0], epochs[1]);
        assert_ne!(epochs[1], epochs[2]);
        let fixed = format!(
            "pipeline main = range({n}).global_shuffle(seed: 5, reshuffle_each_iteration: false).repeat(3)\n"
        );
        let all_fixed = ints(&lines(&run("fixed", &fixed, &[])));
        let fixed_epochs: Vec<&[i64]> = all_fixed.chunks(n as usize).collect();
        assert_eq!(fixed_epochs[0], fixed_epochs[1]);
        assert_eq!(fixed_epochs[0], fixed_epochs[2]);
        // Epoch 0 is the same order either way.
        assert_eq!(fixed_epochs[0], epochs[0]);
    }
}

/// Large enough that helper threads permute blocks ahead (2^18 elements and up): the same
/// order at every thread count as element by element (-O0); a position-weighted checksum
/// per batch keeps the output short (`batch` pulls blocks; the printed element stream alone
/// would not).
#[test]
fn global_shuffle_permuted_ahead_is_the_same_at_every_thread_count() {
    let prog = "pipeline main = range(300000).global_shuffle(seed: 11).batch(100000)\n\
                .map(|b| sum(b * arange(100000, i64) % 1000003))\n";
    let want = lines(&run("ahead", prog, &["-O0"]));
    assert_eq!(want.len(), 3);
    for threads in ["1", "2", "3"] {
        let got = lines(&run("ahead", prog, &["--threads", threads]));
        assert_eq!(got, want, "--threads {threads}");
    }
}

/// Pearson's chi-square statistic of `counts` against equal expectations over `cats`.
fn chi_square(counts: &HashMap<Vec<i64>, u64>, cats: u64, total: u64) -> f64 {
    let e = total as f64 / cats as f64;
    let seen: f64 = counts.values().map(|&c| (c as f64 - e).powi(2) / e).sum();
    seen + (cats - counts.len() as u64) as f64 * e
}

/// Every order of a tiny dataset is equally likely: over many epochs (each its own
/// permutation) of a few fixed seeds, the counts of the `n!` orders pass a chi-square test
/// at the 0.1% level (critical values for n! - 1 degrees of freedom).
#[test]
fn global_shuffle_is_uniform_over_small_datasets() {
    for (n, cats, critical, epochs) in [(3i64, 6u64, 20.52, 3000u64), (4, 24, 49.73, 4800)] {
        for seed in [1u64, 29, 4242] {
            let prog = format!(
                "pipeline main = range({n}).global_shuffle(seed: {seed}).repeat({epochs})\n"
            );
            let all = ints(&lines(&run("uniform", &prog, &[])));
            let mut counts: HashMap<Vec<i64>, u64> = HashMap::new();
            for e in all.chunks(n as usize) {
                *counts.entry(e.to_vec()).or_default() += 1;
            }
            let chi = chi_square(&counts, cats, epochs);
            assert!(
                chi < critical,
                "n={n} seed={seed}: chi-square {chi:.1} >= {critical} ({counts:?})"
            );
        }
    }
    // A larger dataset: where element 0 lands is uniform over the 16 quarters-of-a-quarter.
    let n = 6400i64;
    let prog = format!("pipeline main = range({n}).global_shuffle(seed: 8).repeat(800)\n");
    let all = ints(&lines(&run("uniform-large", &prog, &[])));
    let mut counts: HashMap<Vec<i64>, u64> = HashMap::new();
    for e in all.chunks(n as usize) {
        let at = e.iter().position(|&v| v == 0).expect("0 is there") as i64;
        *counts.entry(vec![at * 16 / n]).or_default() += 1;
    }
    let chi = chi_square(&counts, 16, 800);
    assert!(chi < 37.70, "chi-square {chi:.1} ({counts:?})");
}

/// Through every random-access transformation, `global_shuffle` delivers the same elements
/// as the unshuffled pipeline (as a multiset), at -O0 and -O2.
#[test]
fn global_shuffle_reads_through_every_random_access_transformation() {
    let inputs = [
        "range(10, 40, 3).map(|x| x * x)",
        "from_tensor_slices([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]).batch(2, drop_remainder: true)",
        "range(30).batch(4, drop_remainder: true).map(|b| sum(b))",
        "range(20).skip(3).take(9)",
        "range(5).repeat(3)",
        "range(7).zip(range(100, 103))",
        "range(4).concatenate(range(50, 53))",
        "range(9).enumerate(100)",
        "range(17).shard(3, 1)",
        "from_tensors([1.5, 2.5]).repeat(4)",
        "range(12).map(|x| (x, cast(x, f32) / 2.0)).take(-1).skip(-1).concatenate(range(2).map(|x| (x, 0.5)))",
    ];
    for ds in inputs {
        let plain = lines(&run("ra", &format!("pipeline main = {ds}\n"), &["-O0"]));
        assert!(!plain.is_empty() || ds.contains("skip(-1)"), "{ds}");
        for level in ["-O0", "-O2"] {
            let shuffled = lines(&run(
                "ra",
                &format!("pipeline main = {ds}.global_shuffle(seed: 3)\n"),
                &[level],
            ));
            assert_eq!(sorted(&shuffled), sorted(&plain), "{ds} at {level}");
        }
    }
    // Under `repeat`, each epoch is a new permutation of the input's positions.
    let o = ints(&lines(&run(
        "ra",
        "pipeline main = range(6).map(|x| x * 10).global_shuffle(seed: 1).batch(6).unbatch()\n",
        &[],
    )));
    assert_eq!(sorted(&o), vec![0, 10, 20, 30, 40, 50]);
}

#[test]
fn global_shuffle_without_random_access_is_e0410_naming_the_node() {
    for (ds, node) in [
        ("range(10).filter(|x| x > 2)", "filter"),
        ("range(10).shuffle(4, seed: 1)", "shuffle"),
        ("range(10).batch(3)", "batch"),
        ("range(10).repeat()", "repeat"),
        ("range(10).prefetch(2)", "prefetch"),
        ("range(3).zip(range(10).filter(|x| x > 2))", "filter"),
    ] {
        let o = run(
            "e0410",
            &format!("pipeline main = {ds}.map(|x| x).global_shuffle(seed: 1)\n"),
            &["--check"],
        );
        assert_eq!(o.status.code(), Some(1), "{ds}");
        let err = text(&o.stderr);
        assert!(err.contains("[E0410]"), "{ds}: {err}");
        assert!(err.contains(&format!("`{node}` breaks it")), "{ds}: {err}");
        assert!(
            err.contains(&format!("`{node}` has no random access")),
            "{ds}: {err}"
        );
        assert!(err.contains("Help:"), "{ds}: {err}");
    }
}

#[test]
fn global_shuffle_shows_in_the_ir() {
    let o = run(
        "ir",
        "pipeline main = range(10).global_shuffle(seed: 4, reshuffle_each_iteration: false)\n",
        &["--emit-ir"],
    );
    let ir = text(&o.stdout);
    assert!(
        ir.contains(
            "= global_shuffle %d0, seed=4, reshuffle_each_iteration=false : dataset<i64[]>"
        ),
        "{ir}"
    );
}

/// The elements a run prints, as numbers (one line may hold a batch).
fn numbers(ls: &[String]) -> Vec<i64> {
    ls.iter()
        .flat_map(|l| {
            l.replace(['[', ']', '(', ')', ','], " ")
                .split_whitespace()
                .map(|v| v.parse::<i64>().expect("a number"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `--shard I/N` for N = 1..5: the shards are disjoint and together the unsharded run's
/// records, with and without `global_shuffle`; with one, the shard comes right after it.
#[test]
fn shards_are_disjoint_and_whole_with_and_without_global_shuffle() {
    let programs = [
        "pipeline main = range(37).zip(range(100, 137)).map(|a, b| a * 1000 + b).batch(3)\n",
        "pipeline main = range(37).map(|x| x * 7).global_shuffle(seed: 9).batch(3)\n",
        "pipeline main = range(20).concatenate(range(50, 67)).global_shuffle(seed: 2).map(|x| x + 1)\n",
        "pipeline main = range(37).global_shuffle(seed: 9).repeat(2)\n",
    ];
    for prog in programs {
        let whole = sorted(&numbers(&lines(&run("shard", prog, &[]))));
        for n in 1..=5u64 {
            let mut all = Vec::new();
            for i in 0..n {
                let part = numbers(&lines(&run(
                    "shard",
                    prog,
                    &["--shard", &format!("{i}/{n}")],
                )));
                all.extend(part);
            }
            assert_eq!(sorted(&all), whole, "{prog} in {n} shards");
        }
    }
    // After a global shuffle, shard i holds positions i, i + N, ... of the shuffled order.
    let prog = "pipeline main = range(37).global_shuffle(seed: 9)\n";
    let full = numbers(&lines(&run("shard", prog, &[])));
    let part = numbers(&lines(&run("shard", prog, &["--shard", "1/3"])));
    let want: Vec<i64> = full.iter().skip(1).step_by(3).copied().collect();
    assert_eq!(part, want);
    let ir = text(&run("shard", prog, &["--shard", "1/3", "--emit-ir=traced"]).stdout);
    assert!(ir.contains("%d1 = global_shuffle %d0, seed=9"), "{ir}");
    assert!(ir.contains("%d2 = shard %d1, 3, 1"), "{ir}");
    // Without a seed, shard processes would draw different permutations.
    let o = run(
        "shard",
        "pipeline main = range(37).global_shuffle()\n",
        &["--shard", "0/2"],
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("needs the `global_shuffle` it follows to have a seed"));
}

/// Over sources that only move data (tensor slices, `zip`, `enumerate`, `skip`, `take`,
/// `shard`) a block is gathered one tensor per leaf; at `-O0` (no blocks) and through a `map`
/// it is read element by element. All give the same elements in the same order (the
/// permutation depends only on the length and the seed), and batches after it stack the
/// same rows.
#[test]
fn gathered_blocks_equal_elements_read_one_by_one() {
    let source = "zip(from_tensor_slices(reshape(arange(3 * 50000, i64), [50000, 3])), \
                  from_tensor_slices(cast(arange(50000, i64) % 7, f32))).enumerate(5)";
    let gathered =
        format!("pipeline main = {source}.skip(11).take(40000).global_shuffle(seed: 4).batch(7)\n");
    let by_element = format!(
        "pipeline main = {source}.map(|i, x| (i * 2 - i, x)).skip(11).take(40000)\
         .global_shuffle(seed: 4).batch(7)\n"
    );
    let want = lines(&run("gather", &gathered, &["-O0"]));
    assert!(want.len() > 1000, "{} lines", want.len());
    for threads in ["1", "2"] {
        let a = lines(&run("gather", &gathered, &["--threads", threads]));
        assert_eq!(a, want, "gathered, --threads {threads}");
        let b = lines(&run("gather", &by_element, &["--threads", threads]));
        assert_eq!(b, want, "through a map, --threads {threads}");
    }
}
