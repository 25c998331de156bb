//! Micro-benchmarks of the kernels the interpreter calls per element or per batch:
//! `cargo bench -p pipec-tensor --bench kernels`. Sizes are total elements (256, 4096, 65536),
//! so a row of the output reads as "this kernel on a tensor this big"; the counter gives
//! elements/s, comparable with the throughputs in docs/performance.md.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use pipec_tensor::kernels;
use pipec_tensor::ops::{BinaryOp, ReduceOp, UnaryOp};
use pipec_tensor::{DType, Tensor};

/// Total elements of each benchmarked tensor.
const SIZES: [usize; 3] = [256, 4096, 65536];

fn main() {
    divan::main();
}

/// `n` f32 values in [0.5, 1.5): positive, so `log` stays on its fast path.
fn f32s(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let data = (0..n).map(|i| 0.5 + (i % 997) as f32 / 997.0).collect();
    Tensor::from_vec(shape, data).expect("shape matches")
}

fn i32s(n: usize) -> Tensor {
    Tensor::from_vec(&[n], (0..n as i32).map(|i| i % 1000).collect()).expect("shape matches")
}

#[divan::bench(args = SIZES)]
fn cast_i32_to_f32(bencher: Bencher, n: usize) {
    let x = i32s(n);
    bencher
        .counter(ItemsCount::new(n))
        .bench(|| kernels::cast(black_box(&x), DType::F32));
}

/// Same-shape binary ops: `[n] op [n]`.
mod binary_same {
    use super::*;

    fn run(bencher: Bencher, n: usize, op: BinaryOp) {
        let (a, b) = (f32s(&[n]), f32s(&[n]));
        bencher
            .counter(ItemsCount::new(n))
            .bench(|| kernels::binary(op, black_box(&a), black_box(&b)).unwrap());
    }

    #[divan::bench(args = SIZES)]
    fn add_f32(bencher: Bencher, n: usize) {
        run(bencher, n, BinaryOp::Add);
    }

    #[divan::bench(args = SIZES)]
    fn mul_f32(bencher: Bencher, n: usize) {
        run(bencher, n, BinaryOp::Mul);
    }
}

/// Broadcasting binary ops: `[n/8, 8] op [8]`, the shape of "row * per-column constant".
mod binary_broadcast {
    use super::*;

    fn run(bencher: Bencher, n: usize, op: BinaryOp) {
        let (a, b) = (f32s(&[n / 8, 8]), f32s(&[8]));
        bencher
            .counter(ItemsCount::new(n))
            .bench(|| kernels::binary(op, black_box(&a), black_box(&b)).unwrap());
    }

    #[divan::bench(args = SIZES)]
    fn add_f32(bencher: Bencher, n: usize) {
        run(bencher, n, BinaryOp::Add);
    }

    #[divan::bench(args = SIZES)]
    fn mul_f32(bencher: Bencher, n: usize) {
        run(bencher, n, BinaryOp::Mul);
    }
}

/// Transcendental unary ops on `[n]` f32.
mod unary {
    use super::*;

    fn run(bencher: Bencher, n: usize, op: UnaryOp) {
        let x = f32s(&[n]);
        bencher
            .counter(ItemsCount::new(n))
            .bench(|| kernels::unary(op, black_box(&x)).unwrap());
    }

    #[divan::bench(args = SIZES)]
    fn log_f32(bencher: Bencher, n: usize) {
        run(bencher, n, UnaryOp::Log);
    }

    #[divan::bench(args = SIZES)]
    fn exp_f32(bencher: Bencher, n: usize) {
        run(bencher, n, UnaryOp::Exp);
    }
}

/// `sum` of `[n/64, 64]` f32 over one axis (axis 1: contiguous rows; axis 0: strided columns).
mod reduce_sum {
    use super::*;

    fn run(bencher: Bencher, n: usize, axis: usize) {
        let x = f32s(&[n / 64, 64]);
        bencher
            .counter(ItemsCount::new(n))
            .bench(|| kernels::reduce(ReduceOp::Sum, black_box(&x), &[axis], false).unwrap());
    }

    #[divan::bench(args = SIZES)]
    fn axis0_f32(bencher: Bencher, n: usize) {
        run(bencher, n, 0);
    }

    #[divan::bench(args = SIZES)]
    fn axis1_f32(bencher: Bencher, n: usize) {
        run(bencher, n, 1);
    }
}

/// `stack` of 256 tensors of `n/256` f32 each: what `batch(256)` does per batch.
#[divan::bench(args = SIZES)]
fn stack_256(bencher: Bencher, n: usize) {
    let parts: Vec<Tensor> = (0..256).map(|_| f32s(&[n / 256])).collect();
    bencher
        .counter(ItemsCount::new(n))
        .bench(|| kernels::stack(black_box(&parts), 0).unwrap());
}

/// `sort` of `[n/8, 8]` f32 along the rows (W4's kernel, here on a whole block at once).
#[divan::bench(args = SIZES)]
fn sort_rows_of_8(bencher: Bencher, n: usize) {
    let data = (0..n as u64)
        .map(|f| ((f * 2_654_435_761) % 1000) as f32)
        .collect();
    let x = Tensor::from_vec(&[n / 8, 8], data).expect("shape matches");
    bencher
        .counter(ItemsCount::new(n))
        .bench(|| kernels::sort(black_box(&x), 1).unwrap());
}

/// The chunked fused kernel on the programs of the benchmark workloads, whole blocks at once.
mod fused {
    use super::*;
    use kernels::{FusedOp, FusedProgram};

    /// Runs the program `ops` (with `dtypes`; its last instruction is the result) on `inputs`.
    fn run(bencher: Bencher, n: usize, ops: &[FusedOp], dtypes: &[DType], inputs: &[Tensor]) {
        let last = [ops.len() as u32 - 1];
        let prog = FusedProgram {
            ops,
            dtypes,
            results: &last,
        };
        bencher
            .counter(ItemsCount::new(n))
            .bench(|| kernels::run_fused(&prog, black_box(inputs)).unwrap());
    }

    /// W5: `cast(x, f32) * [1, 2, 3]` over `[n/3, 3]` i32 (a cast pair, a pattern input).
    #[divan::bench(args = SIZES)]
    fn cast_times_pattern(bencher: Bencher, n: usize) {
        let x = Tensor::from_vec(&[n / 3, 3], (0..(n / 3 * 3) as i32).collect()).unwrap();
        let scale = Tensor::from_vec(&[3], vec![1.0f32, 2.0, 3.0]).unwrap();
        let ops = [
            FusedOp::Input(0),
            FusedOp::Cast(0),
            FusedOp::Input(1),
            FusedOp::Binary(BinaryOp::Mul, 1, 2),
        ];
        let dtypes = [DType::I32, DType::F32, DType::F32, DType::F32];
        run(bencher, n / 3 * 3, &ops, &dtypes, &[x, scale]);
    }

    /// W3: `x * x % 7` over i64 (the f64 route for values within 2^51).
    #[divan::bench(args = SIZES)]
    fn square_mod_7(bencher: Bencher, n: usize) {
        let x = Tensor::from_vec(&[n], (0..n as i64).collect()).unwrap();
        let seven = Tensor::from_vec(&[1], vec![7i64]).unwrap();
        let ops = [
            FusedOp::Input(0),
            FusedOp::Binary(BinaryOp::Mul, 0, 0),
            FusedOp::Input(1),
            FusedOp::Binary(BinaryOp::Mod, 1, 2),
        ];
        let dtypes = [DType::I64; 4];
        run(bencher, n, &ops, &dtypes, &[x, seven]);
    }

    /// W2: `(cast(x, f32) / 255 - mean) / std` over `[n/3, 3]` u8.
    #[divan::bench(args = SIZES)]
    fn normalize_u8(bencher: Bencher, n: usize) {
        let x = Tensor::from_vec(&[n / 3, 3], (0..n / 3 * 3).map(|i| i as u8).collect()).unwrap();
        let c255 = Tensor::from_vec(&[1], vec![255.0f32]).unwrap();
        let mean = Tensor::from_vec(&[3], vec![0.485f32, 0.456, 0.406]).unwrap();
        let std = Tensor::from_vec(&[3], vec![0.229f32, 0.224, 0.225]).unwrap();
        let ops = [
            FusedOp::Input(0),
            FusedOp::Cast(0),
            FusedOp::Input(1),
            FusedOp::Binary(BinaryOp::Div, 1, 2),
            FusedOp::Input(2),
            FusedOp::Binary(BinaryOp::Sub, 3, 4),
            FusedOp::Input(3),
            FusedOp::Binary(BinaryOp::Div, 5, 6),
        ];
        let dtypes = [
            DType::U8,
            DType::F32,
            DType::F32,
            DType::F32,
            DType::F32,
            DType::F32,
            DType::F32,
            DType::F32,
        ];
        run(bencher, n / 3 * 3, &ops, &dtypes, &[x, c255, mean, std]);
    }
}
