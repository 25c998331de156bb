//! Fuzz target `example`: see `pipec_fuzzing::example` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::example(data));
