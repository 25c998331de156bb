//! Fuzz target `compile`: see `pipec_fuzzing::compile` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::compile(data));
