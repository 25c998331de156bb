//! Property: random well-typed functions of elementwise ops, reductions, casts and
//! constants over random dtypes and shapes give bit-identical results (NaN payloads
//! aside) — or the same error — before and after every function pass. Shapes up to 2500
//! elements make the fused kernel run several blocks.

use pipec_diag::Span;
use pipec_ir::{Function, OpKind, Program, Shape, TensorType};
use pipec_tensor::kernels::{broadcast_shapes, cast};
use pipec_tensor::ops::{BinaryOp, ReduceOp, UnaryOp};
use pipec_tensor::{DType, Scalar, Tensor};
use proptest::prelude::*;

const PASSES: [&str; 6] = [
    "fold-casts",
    "const-fold",
    "simplify",
    "cse",
    "dce",
    "fuse-elementwise",
];
const DTYPES: [DType; 7] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::I32,
    DType::U8,
    DType::I64,
    DType::Bool,
];
const SHAPES: [&[usize]; 5] = [&[], &[3], &[2, 3], &[2500], &[4, 1]];

/// SplitMix64: the whole case derives from one seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Values that find bugs: zeros of both signs, ones, NaN, infinities, extremes.
fn special(rng: &mut Rng) -> f64 {
    const S: [f64; 14] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        2.0,
        0.5,
        -2.5,
        3.0,
        255.0,
        1e10,
        -1e10,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    if rng.below(3) == 0 {
        S[rng.below(S.len())]
    } else {
        (rng.next() % 2001) as f64 / 10.0 - 100.0
    }
}

fn tensor(rng: &mut Rng, dtype: DType, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let data: Vec<f64> = (0..n).map(|_| special(rng)).collect();
    cast(&Tensor::from_vec(shape, data).expect("shape"), dtype)
}

fn scalar(rng: &mut Rng, dtype: DType) -> Tensor {
    tensor(rng, dtype, &[])
}

/// A random function and arguments for it.
fn generate(seed: u64) -> (Function, Vec<Tensor>) {
    let mut rng = Rng(seed);
    let dtype = DTYPES[rng.below(DTYPES.len())];
    let shape = SHAPES[rng.below(SHAPES.len())].to_vec();
    let ty = |d: DType, s: &[usize]| TensorType::new(d, Shape::known(s));
    let mut f = Function::new(
        "f",
        Span::default(),
        vec![ty(dtype, &shape), ty(dtype, &shape)],
    );
    let args = vec![
        tensor(&mut rng, dtype, &shape),
        tensor(&mut rng, dtype, &shape),
    ];
    let mut pool: Vec<(pipec_ir::ValueId, DType, Vec<usize>)> = f
        .params
        .iter()
        .map(|&p| (p, dtype, shape.clone()))
        .collect();
    let steps = 1 + rng.below(14);
    for step in 0..steps {
        let span = Span::new(step, step + 1);
        let (v, d, s) = pool[rng.below(pool.len())].clone();
        let made = match rng.below(9) {
            0 => {
                let t = if rng.below(2) == 0 {
                    scalar(&mut rng, d)
                } else {
                    tensor(&mut rng, d, &s)
                };
                let s2 = t.shape().to_vec();
                Some((f.push(OpKind::Const(t), vec![], ty(d, &s2), span), d, s2))
            }
            1 | 2 => {
                let op = UnaryOp::ALL[rng.below(UnaryOp::ALL.len())];
                op.result_dtype(d).ok().map(|rd| {
                    (
                        f.push(OpKind::Unary(op), vec![v], ty(rd, &s), span),
                        rd,
                        s.clone(),
                    )
                })
            }
            3 | 4 => {
                let op = BinaryOp::ALL[rng.below(BinaryOp::ALL.len())];
                let same: Vec<_> = pool.iter().filter(|(_, d2, _)| *d2 == d).cloned().collect();
                let (w, _, s2) = same[rng.below(same.len())].clone();
                let (a, b, sa, sb) = if rng.below(2) == 0 {
                    (v, w, &s, &s2)
                } else {
                    (w, v, &s2, &s)
                };
                match (op.result_dtype(d), broadcast_shapes(sa, sb)) {
                    (Ok(rd), Some(out)) => Some((
                        f.push(OpKind::Binary(op), vec![a, b], ty(rd, &out), span),
                        rd,
                        out,
                    )),
                    _ => None,
                }
            }
            5 => {
                let to = DTYPES[rng.below(DTYPES.len())];
                Some((
                    f.push(OpKind::Cast(to), vec![v], ty(to, &s), span),
                    to,
                    s.clone(),
                ))
            }
            6 if !s.is_empty() && d != DType::Bool => {
                let op = [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min][rng.below(3)];
                let out = s[1..].to_vec();
                op.result_dtype(d).ok().map(|rd| {
                    (
                        f.push(
                            OpKind::Reduce {
                                op,
                                axes: vec![0],
                                keepdims: false,
                            },
                            vec![v],
                            ty(rd, &out),
                            span,
                        ),
                        rd,
                        out,
                    )
                })
            }
            7 => {
                let conds: Vec<_> = pool
                    .iter()
                    .filter(|(_, d2, _)| *d2 == DType::Bool)
                    .cloned()
                    .collect();
                if conds.is_empty() {
                    None
                } else {
                    let (c, _, sc) = conds[rng.below(conds.len())].clone();
                    let (w, _, s2) = pool
                        .iter()
                        .find(|(_, d2, _)| *d2 == d)
                        .cloned()
                        .expect("v itself");
                    broadcast_shapes(&sc, &s)
                        .and_then(|x| broadcast_shapes(&x, &s2))
                        .map(|out| {
                            (
                                f.push(OpKind::Select, vec![c, v, w], ty(d, &out), span),
                                d,
                                out,
                            )
                        })
                }
            }
            _ if d != DType::Bool => {
                let lo = f.push(OpKind::Const(scalar(&mut rng, d)), vec![], ty(d, &[]), span);
                let hi = f.push(OpKind::Const(scalar(&mut rng, d)), vec![], ty(d, &[]), span);
                Some((
                    f.push(OpKind::Clip, vec![v, lo, hi], ty(d, &s), span),
                    d,
                    s.clone(),
                ))
            }
            _ => None,
        };
        if let Some(m) = made {
            pool.push(m);
        }
    }
    // Return the last few values (several results exercise multi-result fusion).
    let k = 1 + rng.below(3).min(pool.len() - 1);
    f.results = pool[pool.len() - k..].iter().map(|(v, _, _)| *v).collect();
    (f, args)
}

/// Runs `f` op by op through `OpKind::eval`, as the interpreter does.
fn run(f: &Function, args: &[Tensor]) -> Result<Vec<Tensor>, String> {
    let mut vals: Vec<Option<Tensor>> = vec![None; f.values.len()];
    for (p, a) in f.params.iter().zip(args) {
        vals[p.index()] = Some(a.clone());
    }
    for op in &f.ops {
        let ins: Vec<Tensor> = op
            .inputs
            .iter()
            .map(|v| vals[v.index()].clone().expect("defined"))
            .collect();
        let outs = op.kind.eval(&ins).map_err(|e| e.to_string())?;
        for (o, t) in op.outputs.iter().zip(outs) {
            vals[o.index()] = Some(t);
        }
    }
    Ok(f.results
        .iter()
        .map(|r| vals[r.index()].clone().expect("defined"))
        .collect())
}

/// A tensor as comparable data: dtype, shape and element bits with every NaN alike.
fn fingerprint(t: &Tensor) -> (DType, Vec<usize>, Vec<u64>) {
    fn bits(s: Scalar) -> u64 {
        match s {
            Scalar::F16(v) if v.is_nan() => u64::MAX,
            Scalar::BF16(v) if v.is_nan() => u64::MAX,
            Scalar::F32(v) if v.is_nan() => u64::MAX,
            Scalar::F64(v) if v.is_nan() => u64::MAX,
            Scalar::F16(v) => v.to_bits() as u64,
            Scalar::BF16(v) => v.to_bits() as u64,
            Scalar::F32(v) => v.to_bits() as u64,
            Scalar::F64(v) => v.to_bits(),
            Scalar::Bool(v) => v as u64,
            Scalar::I8(v) => v as u64,
            Scalar::U8(v) => v as u64,
            Scalar::I16(v) => v as u64,
            Scalar::U16(v) => v as u64,
            Scalar::I32(v) => v as u64,
            Scalar::U32(v) => v as u64,
            Scalar::I64(v) => v as u64,
            Scalar::U64(v) => v,
        }
    }
    let data = pipec_tensor::plain_dispatch!(t, a => a.iter().map(|v| bits(Scalar::from_elem(*v))).collect(), str => format!("{t:?}").into_bytes().into_iter().map(u64::from).collect());
    (t.dtype(), t.shape().to_vec(), data)
}

fn check(seed: u64) -> Result<(), TestCaseError> {
    let (f, args) = generate(seed);
    let mut prog = Program::default();
    prog.add_function(f.clone());
    let opt = pipec_opt::optimize(prog, &PASSES)
        .map_err(|e| TestCaseError::fail(format!("{e:?}\n{f}")))?;
    let g = &opt.program.functions[0];
    let want = run(&f, &args).map(|ts| ts.iter().map(fingerprint).collect::<Vec<_>>());
    let got = run(g, &args).map(|ts| ts.iter().map(fingerprint).collect::<Vec<_>>());
    prop_assert!(
        want == got,
        "seed {seed}\nbefore:\n{f}\nafter:\n{g}\nbefore gives {want:?}\nafter gives {got:?}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    #[test]
    fn passes_preserve_results_bit_for_bit(seed in any::<u64>()) {
        check(seed)?;
    }
}
