//! Prints the program a `resume` fuzz input generates (its first four bytes choose the
//! optimization level, block sizes, cut and thread counts):
//! `cargo run -p pipec-fuzzing --example show_checkpoint_program -- fuzz/artifacts/resume/crash-…`.

fn main() {
    for path in std::env::args().skip(1) {
        let data = std::fs::read(&path).expect("input reads");
        let rest = data.get(4..).unwrap_or(&[]);
        println!(
            "# {path} (head {:?})\n{}",
            data.get(..4),
            pipec_fuzzing::checkpoint_program(rest)
        );
    }
}
