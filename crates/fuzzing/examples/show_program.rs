//! Prints the program an `interp` fuzz input generates:
//! `cargo run -p pipec-fuzzing --example show_program -- fuzz/artifacts/interp/crash-…`.

fn main() {
    for path in std::env::args().skip(1) {
        let data = std::fs::read(&path).expect("input reads");
        println!("# {path}\n{}", pipec_fuzzing::program_from_bytes(&data));
    }
}
