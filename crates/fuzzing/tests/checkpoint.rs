//! Checkpoints as a property (SPEC §15): random pipelines over the transformations of §7
//! and §15 (and `prefetch`, `cache`, `shard`, parallel maps, `global_shuffle`, `interleave`,
//! `flat_map`, random ops), cut after a random number of elements,
//! their state saved, and resumed at another `--threads` and pull pattern, give together
//! exactly the elements (and the error) of one uninterrupted run.

use pipec_fuzzing::compile_text as compiled;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn cut_and_resumed_runs_equal_one_run(
        program in proptest::collection::vec(any::<u8>(), 0..40),
        cut in 0usize..40,
        threads in (1usize..4, 1usize..4),
        o0 in any::<bool>(),
        sizes in prop_oneof![Just([1, 1, 1]), Just([7, 3, 64]), Just([64, 1, 5])],
    ) {
        let text = pipec_fuzzing::checkpoint_program(&program);
        let verdict = pipec_fuzzing::check_generated_resume(&text, o0, cut, threads, &sizes);
        prop_assert!(verdict.is_ok(), "{}", verdict.unwrap_err());
    }
}

/// Cuts at every position of one pipeline that holds every kind of read-ahead at once.
#[test]
fn every_cut_of_a_read_ahead_pipeline_resumes_exactly() {
    let text = "pipeline main = range(200).prefetch(3).map(|x| x * 3, num_parallel_calls: 3)\n\
        .shuffle(7, seed: 5).filter(|x| x % 4 != 1).batch(4).prefetch(2).unbatch()\n\
        .map(|x| x + 1).repeat(2)\n";
    pipec_fuzzing::check_resume_at_cuts(text, &[0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 79]);
}

/// A `prefetch` whose thread runs a reshuffling `repeat` ahead: the epoch counters it
/// advanced ahead of the position must not leak into the state (whatever the timing).
#[test]
fn a_prefetch_running_epochs_ahead_resumes_exactly() {
    let text = "pipeline main = range(12).shuffle(6, seed: 3).repeat(6).prefetch(10)\n\
        .batch(2).prefetch(3).repeat(2)\n";
    let c = compiled(text, 2).expect("compiles");
    for round in 0..5 {
        for cut in [0, 1, 3, 6, 7, 12, 20, 33] {
            for sizes in [[1, 1, 1], [7, 3, 64], [64, 1, 5]] {
                pipec_fuzzing::check_resume(&c, cut + round, (1, 2), &sizes);
            }
        }
    }
}

/// Epochs of a finite `repeat` that give nothing do not end it (a reshuffled later epoch
/// may give elements): every cut of one whose second epoch is empty resumes exactly. Found
/// by the `resume` fuzz target: the cut run ended at the empty epoch, the whole run not.
#[test]
fn every_cut_of_a_repeat_with_an_empty_epoch_resumes_exactly() {
    let text = "pipeline main = from_tensor_slices([0, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4])\n\
        .shuffle(2, seed: 19).take_while(|x| x < 5).repeat(3)\n";
    pipec_fuzzing::check_resume_at_cuts(text, &[0, 1, 2, 3, 4]);
}

/// A completed `cache` below a `repeat`, over a reshuffling `global_shuffle`: a cut at the
/// end of an epoch leaves the cache out of the state, and the resumed run must rebuild it
/// with the first pass's epoch, not record a later one. Found by the `resume` fuzz target.
#[test]
fn every_cut_of_a_cache_over_a_global_shuffle_resumes_exactly() {
    let texts = [
        "pipeline main = range(5).global_shuffle(seed: 52).cache()\n\
            .shuffle(2, seed: 160, reshuffle_each_iteration: false).repeat(2)\n",
        "pipeline main = range(6).shuffle(4, seed: 8).cache().map(|x| x * 3)\n\
            .shuffle(3, seed: 1).repeat(3)\n",
    ];
    for text in texts {
        pipec_fuzzing::check_resume_at_cuts(text, &[0, 1, 4, 5, 6, 10, 11, 12, 17]);
    }
}

/// Cuts at many positions of pipelines through `global_shuffle`, `interleave` and
/// `flat_map`, with random ops whose draws depend on the epoch, in and around them.
#[test]
fn every_cut_of_an_order_pipeline_resumes_exactly() {
    let texts = [
        "pipeline main = range(30).map(|x| x * 8 + random_uniform([], 0, 8, i64, seed: 1))\n\
            .repeat(2).global_shuffle(seed: 3).batch(3, drop_remainder: true)\n\
            .map(|x| x + random_uniform([], 0, 8, i64, seed: 2)).unbatch().repeat(2)\n",
        "pipeline main = range(12).interleave(|x| range(x % 5).map(|y| y * 5\n\
            + random_uniform([], 0, 5, i64, seed: 1)).shuffle(3, seed: 2), cycle_length: 3,\n\
            block_length: 2).prefetch(2).map(|x| x * 2, num_parallel_calls: 3)\n\
            .flat_map(|x| from_tensors(x).repeat(maximum(x % 3, 0))).repeat(2)\n",
    ];
    for text in texts {
        pipec_fuzzing::check_resume_at_cuts(text, &[0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 79]);
    }
}

/// The generator reaches the transformations of SPEC §15 (so the property covers them).
#[test]
fn generated_programs_reach_the_order_transformations() {
    let mut seen = [0usize; 4];
    let mut x: u64 = 1;
    for _ in 0..400 {
        let bytes: Vec<u8> = (0..40)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as u8
            })
            .collect();
        let text = pipec_fuzzing::checkpoint_program(&bytes);
        for (k, what) in [
            ".global_shuffle(",
            ".interleave(",
            ".flat_map(",
            "random_uniform",
        ]
        .iter()
        .enumerate()
        {
            seen[k] += usize::from(text.contains(what));
        }
    }
    assert!(
        seen.iter().all(|&n| n >= 10),
        "programs with each: {seen:?}"
    );
}
