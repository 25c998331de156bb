//! Fuzz target `state`: see `pipec_fuzzing::state` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::state(data));
