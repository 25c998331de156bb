//! float transcendentals against numpy, bit for bit.
//!
//! `tests/numpy/gen_transcendental.py` records numpy's outputs (see its docstring) in
//! `.npy` files; every sample must match exactly. NaNs match any NaN: numpy and glibc
//! differ in NaN payloads and Rust does not specify them.
//!
//! `exhaustive_stream` is the long check: with `PIPEC_NUMPY_STREAM=<file or fifo>` it
//! compares numpy's output stream from `gen_transcendental.py --stream STEP FUNC...`
//! (`PIPEC_NUMPY_STEP`, `PIPEC_NUMPY_FUNCS` must repeat STEP and FUNCs) and prints the
//! mismatch counts. It is ignored unless asked for (`cargo test --test transcendental_numpy
//! -- --ignored exhaustive_stream`), so the test summary says it did not run.

use pipec_tensor::io::read_npy;
use pipec_tensor::kernels::float_unary_slice;
use pipec_tensor::ops::UnaryOp;
use pipec_tensor::{Tensor, f16};
use std::io::Read;
use std::path::PathBuf;

/// Columns after the input column, as written by gen_transcendental.py (`FUNCS`).
const FUNCS: [&str; 8] = ["log", "exp", "sin", "cos", "tanh", "expm1", "log1p", "tan"];
/// Columns of the f16 file (`F16_FUNCS`).
const F16_FUNCS: [&str; 5] = ["log", "exp", "sin", "cos", "tanh"];

fn op(name: &str) -> UnaryOp {
    match name {
        "log" => UnaryOp::Log,
        "exp" => UnaryOp::Exp,
        "sin" => UnaryOp::Sin,
        "cos" => UnaryOp::Cos,
        "tanh" => UnaryOp::Tanh,
        "expm1" => UnaryOp::Expm1,
        "log1p" => UnaryOp::Log1p,
        "tan" => UnaryOp::Tan,
        _ => panic!("unknown function {name}"),
    }
}

fn load(name: &str) -> Tensor {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/numpy")
        .join(name);
    read_npy(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run tests/numpy/gen_transcendental.py)",
            path.display()
        )
    })
}

/// Columns of a 2-d table as vectors.
fn columns<T: pipec_tensor::TensorElem + Copy>(t: &Tensor) -> Vec<Vec<T>> {
    let a = t.as_array::<T>().expect("table dtype");
    let (rows, cols) = (a.shape()[0], a.shape()[1]);
    (0..cols)
        .map(|c| (0..rows).map(|r| a[[r, c]]).collect())
        .collect()
}

/// Runs `op` over `x` through the array kernel and lists the mismatches against `want`.
fn mismatches<T: pipec_tensor::kernels::FloatElem>(
    name: &str,
    x: &[T],
    want: &[T],
    same: impl Fn(T, T) -> bool,
) -> Vec<String> {
    let mut got = vec![T::ZERO; x.len()];
    float_unary_slice(op(name), x, &mut got).expect("float unary op");
    let mut bad = Vec::new();
    for i in 0..x.len() {
        if !same(got[i], want[i]) {
            bad.push(format!(
                "{name}({:?}) = {:?}, numpy {:?}",
                x[i], got[i], want[i]
            ));
        }
    }
    bad
}

fn report(dtype: &str, all: Vec<(&str, usize, Vec<String>)>) {
    let mut failed = false;
    for (name, n, bad) in &all {
        if !bad.is_empty() {
            failed = true;
            eprintln!(
                "{dtype} {name}: {} of {n} differ, e.g. {:?}",
                bad.len(),
                &bad[..bad.len().min(5)]
            );
        }
    }
    assert!(!failed, "results differ from numpy");
}

#[test]
fn f32_matches_numpy_bitwise() {
    let cols = columns::<u32>(&load("transcendental_f32.npy"));
    let x: Vec<f32> = cols[0].iter().map(|&b| f32::from_bits(b)).collect();
    let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    let all = FUNCS
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let want: Vec<f32> = cols[j + 1].iter().map(|&b| f32::from_bits(b)).collect();
            (*name, x.len(), mismatches(name, &x, &want, same))
        })
        .collect();
    report("f32", all);
}

#[test]
fn f16_matches_numpy_bitwise_everywhere() {
    let cols = columns::<u16>(&load("transcendental_f16.npy"));
    let x: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
    let same = |a: f16, b: f16| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    let all = F16_FUNCS
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let want: Vec<f16> = cols[j].iter().map(|&b| f16::from_bits(b)).collect();
            (*name, x.len(), mismatches(name, &x, &want, same))
        })
        .collect();
    report("f16", all);
}

#[test]
fn f64_matches_numpy_bitwise() {
    let cols = columns::<u64>(&load("transcendental_f64.npy"));
    let x: Vec<f64> = cols[0].iter().map(|&b| f64::from_bits(b)).collect();
    let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    let all = FUNCS
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let want: Vec<f64> = cols[j + 1].iter().map(|&b| f64::from_bits(b)).collect();
            (*name, x.len(), mismatches(name, &x, &want, same))
        })
        .collect();
    report("f64", all);
}

/// The acceptance case: `log(1.0 + cast([4, 5, 6], f32))` prints `[1.609438  1.7917595 1.9459102]`.
#[test]
fn log_of_seven_is_numpys() {
    assert_eq!(
        pipec_tensor::kernels::scalar::numpy_math::log_f32(7.0).to_bits(),
        1.9459102f32.to_bits()
    );
    assert_eq!(
        pipec_tensor::kernels::scalar::numpy_math::log_f32(5.0).to_bits(),
        1.609438f32.to_bits()
    );
    assert_eq!(
        pipec_tensor::kernels::scalar::numpy_math::log_f32(6.0).to_bits(),
        1.7917595f32.to_bits()
    );
}

#[test]
#[ignore = "the long check against a numpy stream: set PIPEC_NUMPY_STREAM and pass --ignored"]
fn exhaustive_stream() {
    let path = std::env::var("PIPEC_NUMPY_STREAM")
        .expect("PIPEC_NUMPY_STREAM names numpy's output stream (see the module doc)");
    let step: u64 = std::env::var("PIPEC_NUMPY_STEP")
        .expect("PIPEC_NUMPY_STEP")
        .parse()
        .expect("step");
    let funcs = std::env::var("PIPEC_NUMPY_FUNCS").expect("PIPEC_NUMPY_FUNCS");
    let total = (1u64 << 32).div_ceil(step) as usize;
    let mut input =
        std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&path).expect("stream"));
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; CHUNK * 4];
    let mut failed = false;
    for name in funcs.split(',') {
        let (mut done, mut bad, mut shown) = (0usize, 0usize, 0);
        while done < total {
            let n = CHUNK.min(total - done);
            input
                .read_exact(&mut buf[..n * 4])
                .expect("numpy stream ended early");
            let x: Vec<f32> = (done..done + n)
                .map(|k| f32::from_bits((k as u64 * step) as u32))
                .collect();
            let mut got = vec![0f32; n];
            float_unary_slice(op(name), &x, &mut got).expect("float unary op");
            for i in 0..n {
                let want = f32::from_le_bytes(buf[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
                if got[i].to_bits() != want.to_bits() && !(got[i].is_nan() && want.is_nan()) {
                    bad += 1;
                    if shown < 5 {
                        shown += 1;
                        eprintln!(
                            "{name}({:e} = {:#010x}) = {:e}, numpy {:e}",
                            x[i],
                            x[i].to_bits(),
                            got[i],
                            want
                        );
                    }
                }
            }
            done += n;
        }
        eprintln!("exhaustive {name}: {bad} of {total} inputs differ from numpy (step {step})");
        failed |= bad > 0;
    }
    assert!(!failed, "results differ from numpy");
}
