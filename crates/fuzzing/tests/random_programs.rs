//! A small deterministic fuzz run of the `interp` target over programs that draw random
//! numbers: `-O0` and `-O2` (element by element, in blocks, on lanes) must agree bit for bit,
//! so no pass, block or lane may change a draw.

/// SplitMix64: the bytes of the generated programs, from a fixed seed.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

#[test]
fn generated_programs_with_random_ops_agree_across_levels() {
    let mut drawing = 0;
    for seed in 0..1500u64 {
        let data = bytes(seed, 96);
        let text = pipec_fuzzing::program_from_bytes(&data);
        if !text.contains("random_") {
            continue;
        }
        drawing += 1;
        let ok = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || pipec_fuzzing::interp(&data))
            .expect("spawn")
            .join()
            .is_ok();
        assert!(ok, "-O0 and -O2 disagree on:\n{text}");
    }
    assert!(drawing >= 80, "only {drawing} programs drew random numbers");
}
