//! Fuzz target `tfrecord`: see `pipec_fuzzing::tfrecord` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipec_fuzzing::tfrecord(data));
