//! `format_tensor` against numpy's own `str(arr)`, case by case.
//!
//! The cases come from `tests/numpy/gen_print.py`, which records numpy's exact output in
//! `tests/numpy/print_cases.json`. Every mismatch is reported (with its case name), not just
//! the first, so one run shows the whole picture.

use pipec_tensor::format::{format_tensor, format_tuple};
use pipec_tensor::{DType, Tensor, TensorElem, bf16, f16};
use serde_json::Value;
use std::path::PathBuf;

fn cases() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/numpy/print_cases.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    match serde_json::from_str(&text).expect("print_cases.json is valid JSON") {
        Value::Array(cases) => cases,
        _ => panic!("print_cases.json must hold a list"),
    }
}

fn parse_int<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse()
        .unwrap_or_else(|e| panic!("bad integer {s:?}: {e:?}"))
}

fn parse_bits(s: &str) -> u64 {
    let hex = s
        .strip_prefix("0x")
        .unwrap_or_else(|| panic!("float bits must be hex: {s:?}"));
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

fn build<T: TensorElem>(shape: &[usize], data: &[&str], f: impl Fn(&str) -> T) -> Tensor {
    Tensor::from_vec(shape, data.iter().map(|s| f(s)).collect()).expect("data length matches shape")
}

fn tensor_of(case: &Value) -> Tensor {
    let dtype = DType::from_name(case["dtype"].as_str().expect("dtype")).expect("known dtype");
    let shape: Vec<usize> = case["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    let data: Vec<&str> = case["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v.as_str().expect("string"))
        .collect();
    let s = &shape;
    match dtype {
        DType::Bool => build(s, &data, |v| v == "1"),
        DType::I8 => build(s, &data, parse_int::<i8>),
        DType::U8 => build(s, &data, parse_int::<u8>),
        DType::I16 => build(s, &data, parse_int::<i16>),
        DType::U16 => build(s, &data, parse_int::<u16>),
        DType::I32 => build(s, &data, parse_int::<i32>),
        DType::U32 => build(s, &data, parse_int::<u32>),
        DType::I64 => build(s, &data, parse_int::<i64>),
        DType::U64 => build(s, &data, parse_int::<u64>),
        DType::F16 => build(s, &data, |v| f16::from_bits(parse_bits(v) as u16)),
        DType::BF16 => build(s, &data, |v| bf16::from_bits(parse_bits(v) as u16)),
        DType::F32 => build(s, &data, |v| f32::from_bits(parse_bits(v) as u32)),
        DType::F64 => build(s, &data, |v| f64::from_bits(parse_bits(v))),
        DType::Str => build(s, &data, |v| {
            let bytes: Vec<u8> = (0..v.len() / 2)
                .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).expect("hex"))
                .collect();
            pipec_tensor::Bytes::from(bytes)
        }),
    }
}

#[test]
fn matches_numpy_byte_for_byte() {
    let cases = cases();
    assert!(
        cases.len() >= 150,
        "expected a broad catalogue, found {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let expected = case["expected"].as_str().expect("expected");
        let got = format_tensor(&tensor_of(case));
        if got != expected {
            failures.push(format!("--- {name}\nnumpy:\n{expected}\npipec:\n{got}\n"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from numpy:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_dtype_is_covered() {
    let cases = cases();
    for dtype in DType::NUMERIC_AND_BOOL {
        let n = cases
            .iter()
            .filter(|c| c["dtype"].as_str() == Some(dtype.name()))
            .count();
        assert!(n >= 5, "only {n} cases for {dtype}");
    }
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_vec(shape, v.to_vec()).expect("shape matches data")
}

#[test]
fn spec_parity_cases() {
    assert_eq!(format_tensor(&f32s(&[3], &[1.0, 2.0, 3.0])), "[1. 2. 3.]");
    // numpy's f32 `log(1 + [1, 2, 3])` and `log(1 + [4, 5, 6])`, bit for bit.
    let a = [0x3f317218, 0x3f8c9f54, 0x3fb17218].map(f32::from_bits);
    assert_eq!(
        format_tensor(&f32s(&[3], &a)),
        "[0.6931472 1.0986123 1.3862944]"
    );
    let b = [0x3fce0210, 0x3fe55860, 0x3ff91396].map(f32::from_bits);
    assert_eq!(
        format_tensor(&f32s(&[3], &b)),
        "[1.609438  1.7917595 1.9459102]"
    );
    let cube = [
        1.0, 4.0, 9.0, 4.0, 10.0, 18.0, 7.0, 16.0, 27.0, 10.0, 22.0, 36.0,
    ];
    assert_eq!(
        format_tensor(&f32s(&[2, 2, 3], &cube)),
        "[[[ 1.  4.  9.]\n  [ 4. 10. 18.]]\n\n [[ 7. 16. 27.]\n  [10. 22. 36.]]]"
    );
}

#[test]
fn tuples_print_each_part_numpy_style() {
    let a = f32s(&[3], &[1.0, 2.0, 3.0]);
    let label = Tensor::scalar(7i64);
    assert_eq!(format_tuple(&[a.clone(), label.clone()]), "([1. 2. 3.], 7)");
    assert_eq!(
        format_tuple(&[label.clone(), Tensor::scalar(true), Tensor::scalar(1.5f32)]),
        "(7, True, 1.5)"
    );
    let grid = Tensor::from_vec(&[2, 2], vec![1i32, 2, 3, 40]).expect("2x2");
    assert_eq!(
        format_tuple(&[grid, a]),
        "([[ 1  2]\n [ 3 40]], [1. 2. 3.])"
    );
    assert_eq!(format_tuple(&[label]), "(7,)");
    assert_eq!(format_tuple(&[]), "()");
}

#[test]
fn strided_views_print_in_logical_order() {
    let grid = Tensor::from_vec(&[2, 3], vec![1.5f32, 2.0, 3.0, 4.0, 5.0, 6.25]).expect("2x3");
    let transposed = Tensor::F32(grid.as_array::<f32>().expect("f32").clone().reversed_axes());
    let copy = Tensor::from_vec(&[3, 2], vec![1.5f32, 4.0, 2.0, 5.0, 3.0, 6.25]).expect("3x2");
    assert_eq!(format_tensor(&transposed), format_tensor(&copy));
    assert_eq!(
        format_tensor(&copy),
        "[[1.5  4.  ]\n [2.   5.  ]\n [3.   6.25]]"
    );
}
