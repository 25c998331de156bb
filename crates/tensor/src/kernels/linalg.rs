//! `matmul` and `one_hot`.

use super::elementwise::{Arr, broadcast_shapes};
use super::scalar::NumElem;
use super::shape::standard;
use super::{KernelError, checked_len, num_dispatch};
use crate::{DType, Tensor, TensorElem};
use ndarray::{ArcArray, IxDyn};

/// numpy `matmul`: batch dims broadcast, a 1-D left operand is a row vector and a 1-D right
/// operand a column vector (their added axis is removed from the result).
///
/// Integers wrap. Each output element sums its products in order of `k`; half types
/// accumulate in `f32` and round once. numpy's BLAS may sum `f32`/`f64` in another order.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor, KernelError> {
    if a.dtype() != b.dtype() {
        return Err(KernelError::DType(format!(
            "operands of `matmul` have different dtypes {} and {}",
            a.dtype(),
            b.dtype()
        )));
    }
    if a.rank() == 0 || b.rank() == 0 {
        return Err(KernelError::InvalidArgument(
            "`matmul` operands must have rank 1 or more".into(),
        ));
    }
    if matches!(a.dtype(), DType::F16 | DType::BF16) {
        let r = matmul(&super::cast(a, DType::F32), &super::cast(b, DType::F32))?;
        return Ok(super::cast(&r, a.dtype()));
    }
    let bad = || KernelError::DType("`matmul` does not accept bool".into());
    num_dispatch!(a, x => matmul_arr(x, T_view(x, b)), bool => Err(bad()))
}

#[allow(non_snake_case)]
fn T_view<'a, T: TensorElem>(_x: &Arr<T>, b: &'a Tensor) -> &'a Arr<T> {
    T::view(b).expect("dtypes checked equal")
}

fn matmul_arr<T: NumElem>(a: &Arr<T>, b: &Arr<T>) -> Result<Tensor, KernelError> {
    let (a1, b1) = (a.ndim() == 1, b.ndim() == 1);
    let a = if a1 {
        a.clone().insert_axis(ndarray::Axis(0))
    } else {
        a.clone()
    };
    let b = if b1 {
        b.clone().insert_axis(ndarray::Axis(1))
    } else {
        b.clone()
    };
    let (ra, rb) = (a.ndim(), b.ndim());
    let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
    let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
    if k != k2 {
        return Err(KernelError::InvalidArgument(format!(
            "`matmul` inner dimensions differ: {:?} @ {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let batch = broadcast_shapes(&a.shape()[..ra - 2], &b.shape()[..rb - 2]).ok_or_else(|| {
        KernelError::Broadcast {
            lhs: a.shape().to_vec(),
            rhs: b.shape().to_vec(),
        }
    })?;
    let nb: usize = batch.iter().product();
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    checked_len(&out_shape, std::mem::size_of::<T>())?;
    let ashape: Vec<usize> = batch.iter().copied().chain([m, k]).collect();
    let bshape: Vec<usize> = batch.iter().copied().chain([k, n]).collect();
    let a = standard(&a.broadcast(IxDyn(&ashape)).expect("checked").to_shared());
    let b = standard(&b.broadcast(IxDyn(&bshape)).expect("checked").to_shared());
    let (ad, bd) = (
        a.as_slice().expect("standard"),
        b.as_slice().expect("standard"),
    );
    let mut out = vec![T::ZERO; nb * m * n];
    for p in 0..nb {
        let (ab, bb) = (
            &ad[p * m * k..(p + 1) * m * k],
            &bd[p * k * n..(p + 1) * k * n],
        );
        for i in 0..m {
            let row = &mut out[(p * m + i) * n..(p * m + i + 1) * n];
            // i-k-j order: the inner loop runs over contiguous rows of `b` and the output.
            for kk in 0..k {
                let av = ab[i * k + kk];
                for (o, &bv) in row.iter_mut().zip(&bb[kk * n..(kk + 1) * n]) {
                    *o = T::add(*o, T::mul(av, bv));
                }
            }
        }
    }
    let mut shape = batch;
    if !a1 {
        shape.push(m);
    }
    if !b1 {
        shape.push(n);
    }
    Ok(T::wrap(
        ArcArray::from_shape_vec(IxDyn(&shape), out).expect("length matches shape"),
    ))
}

/// TF `one_hot`: a new last axis of length `depth` with 1 at each index and 0 elsewhere;
/// an index outside `0..depth` gives a row of zeros.
pub fn one_hot(indices: &Tensor, depth: usize, dtype: DType) -> Result<Tensor, KernelError> {
    if !indices.dtype().is_int() {
        return Err(KernelError::DType(format!(
            "`one_hot` needs integer indices, not {}",
            indices.dtype()
        )));
    }
    let mut shape = indices.shape().to_vec();
    shape.push(depth);
    let len = checked_len(&shape, dtype.size_bytes())?;
    let Tensor::I64(idx) = super::cast(indices, DType::I64) else {
        unreachable!("cast to i64")
    };
    let mut out = vec![false; len];
    // u64 indices above i64::MAX wrap to negatives: out of range either way.
    for (row, &i) in idx.iter().enumerate() {
        if i >= 0 && (i as u64) < depth as u64 {
            out[row * depth + i as usize] = true;
        }
    }
    let t = Tensor::from_vec(&shape, out).expect("length matches shape");
    Ok(super::cast(&t, dtype))
}
