//! A JPEG decoder check and timer, run by hand when the decoder changes.
//!
//! `jpeg_check hash FILE...` prints one line per file, damaged variant and channel count:
//! an FNV-1a hash of the decoded bytes, or the error. Run it with the old and the new
//! decoder and `diff` the outputs: a faster decoder must print the same lines (damaged
//! variants included, so corrupt input takes the same paths to the same errors).
//! `jpeg_check time REPS FILE...` decodes every file REPS times and prints the CPU time.

use pipec_tensor::kernels::image::decode::{ImageFormat, decode_image};
use std::time::Instant;

#[path = "../tests/support/damage.rs"]
mod support_damage;

fn fnv(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The damage of the `damaged_jpegs_decode_or_fail_cleanly` test, seeded per variant.
fn damage(clean: &[u8], seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    support_damage::damage(clean, &mut next)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("hash") => {
            let variants: u64 = std::env::var("VARIANTS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(40);
            for file in &args[1..] {
                let clean = std::fs::read(file).expect("readable file");
                for v in 0..=variants {
                    let bytes = if v == 0 {
                        clean.clone()
                    } else {
                        damage(&clean, v)
                    };
                    for ch in [0, 1, 3] {
                        let line = match decode_image(&bytes, ImageFormat::Jpeg, ch) {
                            Ok(t) => {
                                let data = t.as_array::<u8>().expect("u8");
                                let flat: Vec<u8> = data.iter().copied().collect();
                                format!("{:?} {:016x}", t.shape(), fnv(&flat))
                            }
                            Err(e) => format!("error {e}"),
                        };
                        println!("{file} {v} {ch} {line}");
                    }
                }
            }
        }
        Some("time") => {
            let reps: usize = args[1].parse().expect("REPS");
            let data: Vec<Vec<u8>> = args[2..]
                .iter()
                .map(|f| std::fs::read(f).expect("readable file"))
                .collect();
            let start = Instant::now();
            let mut sum = 0u64;
            for _ in 0..reps {
                for bytes in &data {
                    let t = decode_image(bytes, ImageFormat::Jpeg, 3).expect("decodes");
                    sum += u64::from(*t.as_array::<u8>().expect("u8").iter().next().unwrap());
                }
            }
            let secs = start.elapsed().as_secs_f64();
            let n = reps * data.len();
            println!(
                "{n} decodes in {secs:.3} s: {:.3} ms each (checksum {sum})",
                1e3 * secs / n as f64
            );
        }
        _ => eprintln!("usage: jpeg_check hash FILE... | jpeg_check time REPS FILE..."),
    }
}
