//! The exact-resume check shared by the CLI checkpoint suites.

/// Asserts that a run stopped by `--take CUT --save-state s` at each of `cuts` and resumed by
/// `--resume s`, at the first then the second thread count of each pair in `threads`,
/// prints together what one uninterrupted run prints (`whole`). `run(args)` runs pipec with
/// `args` on the test's program in the folder that holds `s`, and returns the stdout of a
/// successful run.
pub fn assert_cuts_resume(
    run: impl Fn(&[&str]) -> String,
    whole: &str,
    level: &str,
    cuts: &[usize],
    threads: &[(&str, &str)],
    what: &str,
) {
    for &cut in cuts {
        for &(a, b) in threads {
            let c = cut.to_string();
            let first = run(&[level, "--threads", a, "--take", &c, "--save-state", "s"]);
            let rest = run(&[level, "--threads", b, "--resume", "s"]);
            assert_eq!(
                format!("{first}{rest}"),
                whole,
                "{what} at {level}, cut at {cut}, threads {a} then {b}"
            );
        }
    }
}
