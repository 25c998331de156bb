//! Fuzz target `png`: see `pipec_fuzzing::png` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::png(data));
