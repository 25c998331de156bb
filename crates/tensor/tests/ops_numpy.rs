//! Replays numpy-computed cases (`tests/numpy/ops_cases.json`, made by
//! `tests/numpy/gen_ops.py`) against the kernels.
//!
//! Comparison: "exact" is bit-exact (any NaN matches any NaN, since NaN payloads and signs
//! are not specified), also for the transcendental functions, which follow numpy's own
//! kernels bit for bit; "ulp" allows [`MAX_ULP`] units in the last place for float `pow`
//! (libm's, not checked bit for bit); "close" is a relative
//! tolerance for float matmul (numpy's BLAS sums in another order).

use pipec_tensor::kernels::{self, KernelError, SliceItem};
use pipec_tensor::ops::{BinaryOp, ReduceOp, UnaryOp};
use pipec_tensor::{DType, Tensor, bf16, f16};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Largest ulp error accepted for "ulp" cases (float `pow`).
const MAX_ULP: u64 = 2;

struct Cases {
    tensors: Vec<Value>,
    cases: Vec<Value>,
}

fn cases() -> &'static Cases {
    static CASES: OnceLock<Cases> = OnceLock::new();
    CASES.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/numpy/ops_cases.json"
        );
        let text =
            std::fs::read_to_string(path).expect("tests/numpy/ops_cases.json (run gen_ops.py)");
        let v: Value = serde_json::from_str(&text).expect("valid json");
        Cases {
            tensors: v["tensors"].as_array().expect("tensors").clone(),
            cases: v["cases"].as_array().expect("cases").clone(),
        }
    })
}

fn dtype(name: &str) -> DType {
    DType::from_name(name).unwrap_or_else(|| panic!("unknown dtype {name}"))
}

fn decode(t: &Value) -> Tensor {
    let dt = dtype(t["dtype"].as_str().unwrap());
    let shape: Vec<usize> = t["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data = t["data"].as_array().unwrap();
    let s = |v: &Value| v.as_str().unwrap().to_string();
    macro_rules! ints {
        ($t:ty) => {
            Tensor::from_vec(
                &shape,
                data.iter()
                    .map(|v| s(v).parse::<$t>().unwrap())
                    .collect::<Vec<$t>>(),
            )
        };
    }
    let hex = |v: &Value| u64::from_str_radix(&s(v), 16).unwrap();
    let t = match dt {
        DType::Bool => Tensor::from_vec(
            &shape,
            data.iter()
                .map(|v| v.as_bool().unwrap())
                .collect::<Vec<_>>(),
        ),
        DType::I8 => ints!(i8),
        DType::U8 => ints!(u8),
        DType::I16 => ints!(i16),
        DType::U16 => ints!(u16),
        DType::I32 => ints!(i32),
        DType::U32 => ints!(u32),
        DType::I64 => ints!(i64),
        DType::U64 => ints!(u64),
        DType::F16 => Tensor::from_vec(
            &shape,
            data.iter()
                .map(|v| f16::from_bits(hex(v) as u16))
                .collect::<Vec<_>>(),
        ),
        DType::BF16 => Tensor::from_vec(
            &shape,
            data.iter()
                .map(|v| bf16::from_bits(hex(v) as u16))
                .collect::<Vec<_>>(),
        ),
        DType::F32 => Tensor::from_vec(
            &shape,
            data.iter()
                .map(|v| f32::from_bits(hex(v) as u32))
                .collect::<Vec<_>>(),
        ),
        DType::F64 => Tensor::from_vec(
            &shape,
            data.iter()
                .map(|v| f64::from_bits(hex(v)))
                .collect::<Vec<_>>(),
        ),
        DType::Str => unreachable!("the op cases are numeric"),
    };
    t.expect("data length matches shape")
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn run(case: &Value, inputs: &[Tensor]) -> Result<Tensor, KernelError> {
    let args = &case["args"];
    let arg_str = |k: &str| args[k].as_str().unwrap();
    let arg_usize = |k: &str| args[k].as_u64().unwrap() as usize;
    match case["kind"].as_str().unwrap() {
        "binary" => kernels::binary(
            BinaryOp::from_name(arg_str("op")).unwrap(),
            &inputs[0],
            &inputs[1],
        ),
        "unary" => kernels::unary(UnaryOp::from_name(arg_str("op")).unwrap(), &inputs[0]),
        "cast" => Ok(kernels::cast(&inputs[0], dtype(arg_str("to")))),
        "where" => kernels::select(&inputs[0], &inputs[1], &inputs[2]),
        "clip" => kernels::clip(&inputs[0], &inputs[1], &inputs[2]),
        "reshape" => kernels::reshape(&inputs[0], &usizes(&args["shape"])),
        "transpose" => kernels::transpose(&inputs[0], &usizes(&args["perm"])),
        "expand_dims" => kernels::expand_dims(&inputs[0], arg_usize("axis")),
        "squeeze" => kernels::squeeze(&inputs[0], &usizes(&args["axes"])),
        "concat" => kernels::concat(inputs, arg_usize("axis")),
        "stack" => kernels::stack(inputs, arg_usize("axis")),
        "broadcast_to" => kernels::broadcast_to(&inputs[0], &usizes(&args["shape"])),
        "tile" => kernels::tile(&inputs[0], &usizes(&args["reps"])),
        "reverse" => kernels::reverse(&inputs[0], &usizes(&args["axes"])),
        "slice" => {
            let opt = |v: &Value| v.as_i64();
            let items: Vec<SliceItem> = args["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|it| match it[0].as_str().unwrap() {
                    "i" => SliceItem::Index(it[1].as_i64().unwrap()),
                    "n" => SliceItem::NewAxis,
                    _ => SliceItem::Range {
                        start: opt(&it[1]),
                        stop: opt(&it[2]),
                        step: it[3].as_i64().unwrap(),
                    },
                })
                .collect();
            kernels::slice(&inputs[0], &items)
        }
        "matmul" => kernels::matmul(&inputs[0], &inputs[1]),
        "reduce" => kernels::reduce(
            ReduceOp::from_name(arg_str("op")).unwrap(),
            &inputs[0],
            &usizes(&args["axes"]),
            args["keepdims"].as_bool().unwrap(),
        ),
        "sort" => kernels::sort(&inputs[0], arg_usize("axis")),
        "unique" => kernels::unique(&inputs[0]),
        "nonzero" => kernels::nonzero(&inputs[0]),
        "boolean_mask" => kernels::boolean_mask(&inputs[0], &inputs[1]),
        "one_hot" => kernels::one_hot(&inputs[0], arg_usize("depth"), dtype(arg_str("dtype"))),
        "arange" => kernels::arange(arg_usize("n"), dtype(arg_str("dtype"))),
        "zeros" => kernels::zeros(&usizes(&args["shape"]), dtype(arg_str("dtype"))),
        "ones" => kernels::ones(&usizes(&args["shape"]), dtype(arg_str("dtype"))),
        k => panic!("unknown case kind {k}"),
    }
}

/// A float element as (ordered bits, is NaN, value as f64).
fn float_elems(t: &Tensor) -> Option<Vec<(i64, bool, f64)>> {
    fn ord(bits: u64, sign: u64) -> i64 {
        if bits & sign != 0 {
            -((bits & !sign) as i64)
        } else {
            bits as i64
        }
    }
    Some(match t {
        Tensor::F16(a) => a
            .iter()
            .map(|v| (ord(v.to_bits() as u64, 0x8000), v.is_nan(), v.to_f64()))
            .collect(),
        Tensor::BF16(a) => a
            .iter()
            .map(|v| (ord(v.to_bits() as u64, 0x8000), v.is_nan(), v.to_f64()))
            .collect(),
        Tensor::F32(a) => a
            .iter()
            .map(|v| (ord(v.to_bits() as u64, 1 << 31), v.is_nan(), *v as f64))
            .collect(),
        Tensor::F64(a) => a
            .iter()
            .map(|v| (ord(v.to_bits(), 1 << 63), v.is_nan(), *v))
            .collect(),
        _ => return None,
    })
}

fn error_kind(e: &KernelError) -> &'static str {
    match e {
        KernelError::DivisionByZero { .. } => "DivisionByZero",
        KernelError::NegativePower { .. } => "NegativePower",
        KernelError::Broadcast { .. } => "Broadcast",
        KernelError::DType(_) => "DType",
        KernelError::InvalidArgument(_) => "InvalidArgument",
        KernelError::TooLarge { .. } => "TooLarge",
        KernelError::OverMemoryLimit { .. } => "OverMemoryLimit",
    }
}

/// Compares one case; returns the max ulp error seen for "ulp" cases.
fn check(case: &Value, tensors: &[Value]) -> Result<u64, String> {
    let inputs: Vec<Tensor> = case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| decode(&tensors[i.as_u64().unwrap() as usize]))
        .collect();
    let got = run(case, &inputs);
    let expect = &case["expect"];
    if let Some(kind) = expect["error"].as_str() {
        return match got {
            Err(e) if error_kind(&e) == kind => match (&e, expect["index"].as_u64()) {
                (KernelError::DivisionByZero { index }, Some(want)) if *index as u64 != want => {
                    Err(format!("division by zero at {index}, numpy says {want}"))
                }
                _ => Ok(0),
            },
            other => Err(format!("expected error {kind}, got {other:?}")),
        };
    }
    let got = got.map_err(|e| format!("unexpected error: {e}"))?;
    let want = decode(expect);
    if got.dtype() != want.dtype() || got.shape() != want.shape() {
        return Err(format!(
            "got {} {:?}, want {} {:?}",
            got.dtype(),
            got.shape(),
            want.dtype(),
            want.shape()
        ));
    }
    let cmp = case["cmp"].as_str().unwrap();
    let (Some(g), Some(w)) = (float_elems(&got), float_elems(&want)) else {
        return if got == want {
            Ok(0)
        } else {
            Err(format!("got {got:?}\nwant {want:?}"))
        };
    };
    let mut max_ulp = 0;
    for (i, (&(gb, gn, gv), &(wb, wn, wv))) in g.iter().zip(&w).enumerate() {
        if gn && wn {
            continue;
        }
        let ulp = if gn != wn { u64::MAX } else { gb.abs_diff(wb) };
        let ok = match cmp {
            "exact" => ulp == 0,
            "ulp" => {
                max_ulp = max_ulp.max(ulp);
                ulp <= MAX_ULP
            }
            _ => {
                let eps = match got.dtype() {
                    DType::F16 => 1e-3,
                    DType::F32 => 1e-6,
                    _ => 1e-14,
                };
                (gv - wv).abs() <= 8.0 * eps * (1.0 + wv.abs())
            }
        };
        if !ok {
            let input0 = inputs.first().and_then(|t| t.get_flat(i));
            return Err(format!(
                "element {i}: got {gv:e} want {wv:e} ({ulp} ulp; first input there {input0:?})"
            ));
        }
    }
    Ok(max_ulp)
}

/// Runs every case whose kind is in `kinds`; fails listing every mismatch.
fn replay(kinds: &[&str]) {
    let all = cases();
    let mut failures = Vec::new();
    let mut ulps: BTreeMap<String, u64> = BTreeMap::new();
    let mut n = 0;
    for case in all
        .cases
        .iter()
        .filter(|c| kinds.contains(&c["kind"].as_str().unwrap()))
    {
        n += 1;
        match check(case, &all.tensors) {
            Ok(u) => {
                if case["cmp"] == "ulp" {
                    let dt = all.tensors[case["inputs"][0].as_u64().unwrap() as usize]["dtype"]
                        .as_str()
                        .unwrap();
                    let key = format!("{} {}", case["args"]["op"].as_str().unwrap_or("?"), dt);
                    let e = ulps.entry(key).or_default();
                    *e = (*e).max(u);
                }
            }
            Err(msg) => failures.push(format!("{} {}: {msg}", case["kind"], case["args"])),
        }
    }
    assert!(n > 0, "no cases of kinds {kinds:?}");
    if !ulps.is_empty() {
        eprintln!("max ulp error by op and dtype: {ulps:?}");
    }
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn binary_ops() {
    replay(&["binary"]);
}

#[test]
fn unary_ops() {
    replay(&["unary"]);
}

#[test]
fn casts() {
    replay(&["cast"]);
}

#[test]
fn where_and_clip() {
    replay(&["where", "clip"]);
}

#[test]
fn shape_ops() {
    replay(&[
        "reshape",
        "transpose",
        "expand_dims",
        "squeeze",
        "concat",
        "stack",
        "broadcast_to",
        "tile",
        "reverse",
    ]);
}

#[test]
fn slicing() {
    replay(&["slice"]);
}

#[test]
fn matmul() {
    replay(&["matmul"]);
}

#[test]
fn reductions() {
    replay(&["reduce"]);
}

#[test]
fn sort_one_hot_and_host_ops() {
    replay(&["sort", "one_hot", "unique", "nonzero", "boolean_mask"]);
}

#[test]
fn creation() {
    replay(&["arange", "zeros", "ones"]);
}

#[test]
fn smoke_first_slice() {
    let a = Tensor::from_vec(&[2, 1], vec![1.0f32, 2.0]).unwrap();
    let b = Tensor::from_vec(&[3], vec![10.0f32, 20.0, 30.0]).unwrap();
    let c = kernels::binary(BinaryOp::Add, &a, &b).unwrap();
    assert_eq!(
        c,
        Tensor::from_vec(&[2, 3], vec![11.0f32, 21.0, 31.0, 12.0, 22.0, 32.0]).unwrap()
    );
    let i = Tensor::from_vec(&[3], vec![7i32, -7, 1]).unwrap();
    let z = Tensor::from_vec(&[2, 1], vec![2i32, 0]).unwrap();
    assert_eq!(
        kernels::binary(BinaryOp::FloorDiv, &i, &z),
        Err(KernelError::DivisionByZero { index: 3 })
    );
}

#[test]
fn weak_literals() {
    use pipec_tensor::Scalar;
    assert_eq!(kernels::scalar_from_i128(300, DType::U8), None);
    assert_eq!(kernels::scalar_from_i128(-1, DType::U64), None);
    assert_eq!(
        kernels::scalar_from_i128(255, DType::U8),
        Some(Scalar::U8(255))
    );
    assert_eq!(kernels::scalar_from_i128(70000, DType::F16), None);
    assert_eq!(
        kernels::scalar_from_i128(2049, DType::F16),
        Some(Scalar::F16(f16::from_f32(2048.0)))
    );
    assert_eq!(kernels::scalar_from_f64(0.1, DType::F32), Scalar::F32(0.1));
    assert_eq!(
        kernels::scalar_from_f64(1e10, DType::I32),
        Scalar::I32(i32::MAX)
    );
    assert_eq!(
        kernels::fill(&[2], Scalar::I8(-3)).unwrap(),
        Tensor::from_vec(&[2], vec![-3i8, -3]).unwrap()
    );
    assert!(matches!(
        kernels::zeros(&[1 << 30, 1 << 30, 1 << 30], DType::F32),
        Err(KernelError::TooLarge { .. })
    ));
}

#[test]
fn slice_kernels_match_array_kernels() {
    let x: Vec<f32> = (0..37).map(|i| i as f32 * 0.37 - 5.0).collect();
    let y: Vec<f32> = (0..37).map(|i| 3.0 - i as f32 * 0.11).collect();
    let tx = Tensor::from_vec(&[37], x.clone()).unwrap();
    let ty = Tensor::from_vec(&[37], y.clone()).unwrap();
    let mut out = vec![0.0f32; 37];
    for op in [
        BinaryOp::Add,
        BinaryOp::Div,
        BinaryOp::FloorDiv,
        BinaryOp::Mod,
        BinaryOp::Maximum,
    ] {
        kernels::float_binary_slice(op, &x, &y, &mut out).unwrap();
        assert_eq!(
            kernels::binary(op, &tx, &ty).unwrap(),
            Tensor::from_vec(&[37], out.clone()).unwrap()
        );
    }
    for op in [UnaryOp::Exp, UnaryOp::Sigmoid, UnaryOp::Abs] {
        kernels::float_unary_slice(op, &x, &mut out).unwrap();
        assert_eq!(
            kernels::unary(op, &tx).unwrap(),
            Tensor::from_vec(&[37], out.clone()).unwrap()
        );
    }
    let xi = [5i32, -5, 7];
    let yi = [2i32, 3, 0];
    let mut oi = [0i32; 3];
    assert_eq!(
        kernels::binary_slice(BinaryOp::Mod, &xi, &yi, &mut oi),
        Err(KernelError::DivisionByZero { index: 2 })
    );
    let mut oc = [0u8; 3];
    kernels::cast_slice(&[1.5f32, -1.0, 300.0], &mut oc);
    assert_eq!(oc, [1, 0, 255]);
}
