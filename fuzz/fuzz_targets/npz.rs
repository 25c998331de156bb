//! Fuzz target `npz`: see `pipec_fuzzing::npz` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::npz(data));
