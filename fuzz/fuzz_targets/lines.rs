//! Fuzz target `lines`: see `pipec_fuzzing::lines` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::lines(data));
