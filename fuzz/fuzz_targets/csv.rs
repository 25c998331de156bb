//! Fuzz target `csv`: see `pipec_fuzzing::csv` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::csv(data));
