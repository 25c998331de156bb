//! Fuzz target `run`: see `pipec_fuzzing::run` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::run(data));
