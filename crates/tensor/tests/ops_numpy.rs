//! Replays numpy-computed cases (`tests/numpy/ops_cases.json`) against the kernels.

use pipec_tensor::kernels::{self, KernelError};
use pipec_tensor::ops::{BinaryOp, UnaryOp};
use pipec_tensor::{DType, Tensor};

#[test]
fn smoke_first_slice() {
    let a = Tensor::from_vec(&[2, 1], vec![1.0f32, 2.0]).unwrap();
    let b = Tensor::from_vec(&[3], vec![10.0f32, 20.0, 30.0]).unwrap();
    let c = kernels::binary(BinaryOp::Add, &a, &b).unwrap();
    assert_eq!(c, Tensor::from_vec(&[2, 3], vec![11.0f32, 21.0, 31.0, 12.0, 22.0, 32.0]).unwrap());
    let l = kernels::unary(UnaryOp::Log, &c).unwrap();
    assert_eq!(l.shape(), &[2, 3]);
    let i = Tensor::from_vec(&[3], vec![7i32, -7, 1]).unwrap();
    let z = Tensor::from_vec(&[2, 1], vec![2i32, 0]).unwrap();
    assert_eq!(kernels::binary(BinaryOp::FloorDiv, &i, &z), Err(KernelError::DivisionByZero { index: 3 }));
    let f = kernels::cast(&Tensor::from_vec(&[3], vec![f32::NAN, 1e20, -3.7]).unwrap(), DType::I32);
    assert_eq!(f, Tensor::from_vec(&[3], vec![0i32, i32::MAX, -3]).unwrap());
}
