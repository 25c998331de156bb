//! Fuzz target `resume`: see `pipec_fuzzing::resume` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::resume(data));
