//! `fold-casts` legality: for every (source, middle, target) dtype triple, the pass merges
//! `cast(cast(x, mid), dst)` exactly when that is valid — the round trip through `mid` is
//! exact and the merged cast equals the chain — as found by evaluating the kernels on
//! every value of 8/16-bit sources and on edge values of the wider ones.

use half::{bf16, f16};
use pipec_diag::Span;
use pipec_ir::{Function, OpKind, Program, Shape, TensorType, ValueDef};
use pipec_tensor::kernels::cast;
use pipec_tensor::{DType, Scalar, Tensor};

/// Every value of a narrow dtype, or edge values of a wide one.
fn samples(dt: DType) -> Tensor {
    fn t<T: pipec_tensor::TensorElem>(v: Vec<T>) -> Tensor {
        Tensor::from_vec(&[v.len()], v).expect("1-d")
    }
    let ints: Vec<i128> = {
        let mut v = vec![
            0, 1, -1, 2, -2, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769, 65535,
            65536,
        ];
        for b in [24, 31, 32, 53, 63, 64] {
            let p = 1i128 << b;
            v.extend([p - 1, p, p + 1, -p - 1, -p, -p + 1]);
        }
        v.extend([
            i64::MIN as i128,
            i64::MAX as i128,
            u64::MAX as i128,
            i32::MIN as i128,
            u32::MAX as i128,
        ]);
        v
    };
    let floats: Vec<f64> = {
        let mut v = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -0.5,
            1.5,
            2.5,
            -2.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
        ];
        v.extend([
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
            f32::MAX as f64,
            f32::MIN_POSITIVE as f64,
        ]);
        v.extend([
            1e-45,
            1.4e-45,
            1e-40,
            65504.0,
            65520.0,
            6e-8,
            1e-5,
            3.0e38,
            3.5e38,
            1e300,
            0.1,
            1.0 / 3.0,
        ]);
        v.extend(ints.iter().map(|&i| i as f64));
        v.extend(ints.iter().map(|&i| i as f64 + 0.5));
        v.extend([
            f64::from_bits(0x7ff8_0000_0000_0001),
            f64::from_bits(0x7ff0_0000_0000_0001),
        ]);
        v
    };
    match dt {
        DType::Bool => t(vec![false, true]),
        DType::I8 => t((i8::MIN..=i8::MAX).collect()),
        DType::U8 => t((0..=u8::MAX).collect()),
        DType::I16 => t((i16::MIN..=i16::MAX).collect()),
        DType::U16 => t((0..=u16::MAX).collect()),
        DType::F16 => t((0..=u16::MAX).map(f16::from_bits).collect()),
        DType::BF16 => t((0..=u16::MAX).map(bf16::from_bits).collect()),
        DType::I32 => t(ints.iter().map(|&i| i as i32).collect()),
        DType::U32 => t(ints.iter().map(|&i| i as u32).collect()),
        DType::I64 => t(ints.iter().map(|&i| i as i64).collect()),
        DType::U64 => t(ints.iter().map(|&i| i as u64).collect()),
        DType::F32 => t(floats
            .iter()
            .map(|&f| f as f32)
            .chain([f32::from_bits(1), f32::from_bits(0x7f_ffff)])
            .collect()),
        DType::F64 => t(floats),
        DType::Str => unreachable!("no cast converts strings"),
    }
}

/// Element values for comparison: bit patterns, with every NaN alike (payloads aside).
fn values(t: &Tensor) -> Vec<u64> {
    fn bits(s: Scalar) -> u64 {
        match s {
            Scalar::F16(v) if v.is_nan() => u64::MAX,
            Scalar::BF16(v) if v.is_nan() => u64::MAX,
            Scalar::F32(v) if v.is_nan() => u64::MAX,
            Scalar::F64(v) if v.is_nan() => u64::MAX,
            Scalar::Bool(v) => v as u64,
            Scalar::I8(v) => v as u64,
            Scalar::U8(v) => v as u64,
            Scalar::I16(v) => v as u64,
            Scalar::U16(v) => v as u64,
            Scalar::I32(v) => v as u64,
            Scalar::U32(v) => v as u64,
            Scalar::I64(v) => v as u64,
            Scalar::U64(v) => v,
            Scalar::F16(v) => v.to_bits() as u64,
            Scalar::BF16(v) => v.to_bits() as u64,
            Scalar::F32(v) => v.to_bits() as u64,
            Scalar::F64(v) => v.to_bits(),
        }
    }
    pipec_tensor::plain_dispatch!(t, a => a.iter().map(|v| bits(Scalar::from_elem(*v))).collect(), str => unreachable!("no cast converts strings"))
}

/// Whether `fold-casts` merges the chain `src → mid → dst`: the result is computed by at
/// most one cast, straight from the parameter.
fn folded(src: DType, mid: DType, dst: DType) -> bool {
    let ty = |d| TensorType::new(d, Shape::known(&[4]));
    let mut f = Function::new("f", Span::default(), vec![ty(src)]);
    let a = f.push(
        OpKind::Cast(mid),
        vec![f.params[0]],
        ty(mid),
        Span::default(),
    );
    let b = f.push(OpKind::Cast(dst), vec![a], ty(dst), Span::default());
    f.results = vec![b];
    let mut prog = Program::default();
    prog.add_function(f);
    let out = pipec_opt::optimize(prog, &["fold-casts", "dce"]).expect("passes run");
    let f = &out.program.functions[0];
    let r = f.results[0];
    match f.values[r.index()].def {
        ValueDef::Param(_) => true,
        ValueDef::Op(op, _) => f.ops[op.index()].inputs == f.params,
    }
}

#[test]
fn folds_exactly_the_valid_cast_chains() {
    let mut wrong = Vec::new();
    for src in DType::NUMERIC_AND_BOOL {
        let x = samples(src);
        let xv = values(&x);
        let direct: Vec<Vec<u64>> = DType::NUMERIC_AND_BOOL
            .iter()
            .map(|&d| values(&cast(&x, d)))
            .collect();
        for mid in DType::NUMERIC_AND_BOOL {
            let m = cast(&x, mid);
            let roundtrip = values(&cast(&m, src)) == xv;
            for (k, dst) in DType::NUMERIC_AND_BOOL.into_iter().enumerate() {
                let chain = values(&cast(&m, dst)) == direct[k];
                // A float round trip through another float quiets a signalling NaN (the
                // samples hold none), which the no-op cast it would merge into does not: it
                // stays when its input may be one, as a parameter may.
                let quiets = src.is_float() && mid != src && dst == src;
                // A cast to `mid` followed by a no-op cast is one cast whatever `mid` is.
                let valid = (roundtrip && chain && !quiets) || mid == dst;
                let got = folded(src, mid, dst);
                if got != valid {
                    wrong.push(format!(
                        "{src} → {mid} → {dst}: folded={got}, but round trip exact={roundtrip}, chain equals direct={chain}"
                    ));
                }
                assert_eq!(
                    pipec_opt::cast_chain_is_exact(src, mid, dst),
                    roundtrip && chain,
                    "{src} → {mid} → {dst}"
                );
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
