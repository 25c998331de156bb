//! Fuzz target `jpeg`: see `pipec_fuzzing::jpeg` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::jpeg(data));
