//! Fuzz target `npy`: see `pipec_fuzzing::npy` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::npy(data));
