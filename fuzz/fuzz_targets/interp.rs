//! Fuzz target `interp`: see `pipec_fuzzing::interp` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::interp(data));
