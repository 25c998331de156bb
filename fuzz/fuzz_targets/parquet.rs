//! Fuzz target `parquet`: see `pipec_fuzzing::parquet` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::parquet(data));
