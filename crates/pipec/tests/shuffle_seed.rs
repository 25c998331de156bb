//! A `shuffle` without a seed draws a fresh one per run (as in tf.data), unless the run
//! fixes it with `RunOptions::shuffle_seed`; a seed in the program always wins.

use pipec::{CompileOptions, Compiler, RunOptions, SourceFile};

fn order(program: &str, shuffle_seed: Option<u64>) -> Vec<i64> {
    let source = SourceFile::from_text("t.pipe", program);
    let compiled = Compiler::new()
        .compile(&source, &CompileOptions::default())
        .expect("compiles");
    let opts = RunOptions {
        shuffle_seed,
        ..RunOptions::default()
    };
    compiled
        .run(&opts)
        .expect("runs")
        .map(|e| {
            let e = e.expect("no error");
            e[0].as_array::<i64>().expect("i64")[[]]
        })
        .collect()
}

#[test]
fn a_fixed_run_seed_makes_unseeded_shuffles_repeat() {
    let unseeded = "pipeline main = range(200).shuffle(200)\n";
    let a = order(unseeded, Some(7));
    assert_eq!(a, order(unseeded, Some(7)));
    assert_ne!(a, order(unseeded, Some(8)));
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, (0..200).collect::<Vec<_>>());
    // Fresh seeds: two runs of 200 elements agree with probability 1/200!.
    assert_ne!(order(unseeded, None), order(unseeded, None));
}

#[test]
fn a_seed_in_the_program_wins_over_the_run_seed() {
    let seeded = "pipeline main = range(200).shuffle(200, seed: 3)\n";
    assert_eq!(order(seeded, Some(7)), order(seeded, Some(8)));
    assert_eq!(order(seeded, None), order(seeded, Some(8)));
}
