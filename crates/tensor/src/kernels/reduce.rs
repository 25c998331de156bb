//! Reductions over axes.
//!
//! The loop structure mirrors numpy's reduction iterator on a C-contiguous input, so float
//! sums round the same way: when the innermost axes are reduced, each contiguous block of
//! them is summed pairwise (numpy's `pairwise_sum`) and added to its output element; when
//! the innermost axis is kept, whole rows are accumulated elementwise in row-major order.

use super::elementwise::Arr;
use super::scalar::{FloatElem, NumElem};
use super::shape::standard;
use super::{KernelError, float_dispatch, num_dispatch, rule_error};
use crate::ops::ReduceOp;
use crate::{Tensor, TensorElem};
use ndarray::{ArcArray, Axis, IxDyn};

/// Reduces `x` over `axes` (SPEC §6); `argmax`/`argmin` take exactly one axis.
///
/// `axes` lists the reduced axes: pass `0..rank` to reduce everything. An empty list
/// reduces nothing (numpy's and TF's `axis=()`), returning `x` (`mean`: `x / 1`).
/// `sum`/`prod` keep the dtype and wrap for integers; `max`/`min` propagate NaN and fail
/// on an empty reduction; `mean` of nothing is NaN (numpy). Half-type `mean` sums in `f32`
/// as numpy does; numpy's 8192-element buffering is reproduced per contiguous block only,
/// so half-type means over more than 8192 elements that do not form one trailing block
/// may differ from numpy in the last bit.
pub fn reduce(
    op: ReduceOp,
    x: &Tensor,
    axes: &[usize],
    keepdims: bool,
) -> Result<Tensor, KernelError> {
    let dt = x.dtype();
    op.result_dtype(dt)
        .map_err(|e| rule_error(op.name(), &[dt], e))?;
    let rank = x.rank();
    let mut red = vec![false; rank];
    for &ax in axes {
        if ax >= rank {
            return Err(KernelError::InvalidArgument(format!(
                "`{}` axis {ax} is out of bounds for rank {rank}",
                op.name()
            )));
        }
        if std::mem::replace(&mut red[ax], true) {
            return Err(KernelError::InvalidArgument(format!(
                "`{}` axis {ax} is repeated",
                op.name()
            )));
        }
    }
    let keep_shape: Vec<usize> = x
        .shape()
        .iter()
        .zip(&red)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let out_shape: Vec<usize> = x
        .shape()
        .iter()
        .zip(&red)
        .filter(|(_, r)| !**r)
        .map(|(&d, _)| d)
        .collect();
    let shape = if keepdims { keep_shape } else { out_shape };
    let bad = || rule_error(op.name(), &[dt], crate::ops::DTypeRuleError::Unsupported);
    match op {
        ReduceOp::ArgMax | ReduceOp::ArgMin => {
            if axes.len() != 1 {
                return Err(KernelError::InvalidArgument(format!(
                    "`{}` needs exactly one axis, got {}",
                    op.name(),
                    axes.len()
                )));
            }
            let axis = axes[0];
            if x.shape()[axis] == 0 {
                return Err(KernelError::InvalidArgument(format!(
                    "`{}` of an empty axis",
                    op.name()
                )));
            }
            let max = op == ReduceOp::ArgMax;
            let out =
                crate::plain_dispatch!(x, a => arg_reduce(a, axis, max), str => return Err(bad()));
            Ok(Tensor::I64(reshaped(out, &shape)))
        }
        ReduceOp::Any | ReduceOp::All => {
            let Tensor::Bool(a) = x else {
                return Err(bad());
            };
            if axes.is_empty() {
                return Ok(x.clone());
            }
            let out = if op == ReduceOp::Any {
                reduce_loop(
                    a,
                    &red,
                    false,
                    |acc, b| acc || b.iter().any(|&v| v),
                    |acc, v| acc || v,
                )
            } else {
                reduce_loop(
                    a,
                    &red,
                    true,
                    |acc, b| acc && b.iter().all(|&v| v),
                    |acc, v| acc && v,
                )
            };
            Ok(Tensor::Bool(from_vec(out, &shape)))
        }
        ReduceOp::Sum | ReduceOp::Prod | ReduceOp::Max | ReduceOp::Min => {
            if axes.is_empty() {
                return Ok(x.clone());
            }
            num_dispatch!(x, a => num_reduce(op, a, &red, &shape), bool => Err(bad()))
        }
        ReduceOp::Mean => {
            if axes.is_empty() {
                return Ok(x.clone());
            }
            let count: usize = axes.iter().map(|&ax| x.shape()[ax]).product();
            match x {
                Tensor::F16(_) | Tensor::BF16(_) => {
                    let Tensor::F32(a) = super::cast(x, crate::DType::F32) else {
                        unreachable!("cast to f32")
                    };
                    // numpy sums half types in f32 through 8192-element buffers.
                    let sums = reduce_loop(
                        &a,
                        &red,
                        0.0f32,
                        |acc, b| b.chunks(8192).fold(acc, f32::sum_block),
                        f32::add,
                    );
                    let mean: Vec<f32> = sums.into_iter().map(|s| s / count as f32).collect();
                    let t = Tensor::F32(from_vec(mean, &shape));
                    Ok(super::cast(&t, dt))
                }
                _ => {
                    float_dispatch!(x, a => Ok(mean_reduce(a, &red, count, &shape)), _ => Err(bad()))
                }
            }
        }
    }
}

fn from_vec<T>(v: Vec<T>, shape: &[usize]) -> ArcArray<T, IxDyn> {
    ArcArray::from_shape_vec(IxDyn(shape), v).expect("length matches shape")
}

fn reshaped<T: Clone>(a: ndarray::ArrayD<T>, shape: &[usize]) -> ArcArray<T, IxDyn> {
    let v: Vec<T> = if a.is_standard_layout() {
        a.into_raw_vec_and_offset().0
    } else {
        a.iter().cloned().collect()
    };
    from_vec(v, shape)
}

fn mean_reduce<T: FloatElem>(a: &Arr<T>, red: &[bool], count: usize, shape: &[usize]) -> Tensor {
    let sums = reduce_loop(a, red, T::ZERO, T::sum_block, T::add);
    let n = T::from_f64(count as f64);
    T::wrap(from_vec(
        sums.into_iter().map(|s| T::div(s, n)).collect(),
        shape,
    ))
}

fn num_reduce<T: NumElem>(
    op: ReduceOp,
    a: &Arr<T>,
    red: &[bool],
    shape: &[usize],
) -> Result<Tensor, KernelError> {
    let out = match op {
        ReduceOp::Sum => reduce_loop(a, red, T::ZERO, T::sum_block, T::add),
        ReduceOp::Prod => reduce_loop(a, red, T::ONE, T::prod_block, T::mul),
        _ => {
            if a.is_empty() && red.iter().zip(a.shape()).any(|(&r, &d)| r && d == 0) {
                return Err(KernelError::InvalidArgument(format!(
                    "zero-size reduction `{}` has no identity",
                    op.name()
                )));
            }
            let f = if op == ReduceOp::Max {
                T::maximum
            } else {
                T::minimum
            };
            let step = |acc: Option<T>, v: T| Some(acc.map_or(v, |m| f(m, v)));
            let res = reduce_loop(
                a,
                red,
                None,
                |acc, b| b.iter().fold(acc, |m, &v| step(m, v)),
                step,
            );
            res.into_iter()
                .map(|v| v.expect("non-empty reduction"))
                .collect()
        }
    };
    Ok(T::wrap(from_vec(out, shape)))
}

/// The reduction loop over a row-major copy of `a` (see the module docs): `block` folds a
/// contiguous run of reduced elements into an accumulator, `step` folds one element.
/// Returns the accumulators in row-major order of the kept axes.
fn reduce_loop<T: Copy, U: Copy>(
    a: &Arr<T>,
    red: &[bool],
    init: U,
    block: impl Fn(U, &[T]) -> U,
    step: impl Fn(U, T) -> U,
) -> Vec<U> {
    let a = standard(a);
    let data = a.as_slice().expect("standard layout");
    let shape = a.shape();
    let rank = shape.len();
    let out_len: usize = shape
        .iter()
        .zip(red)
        .filter(|(_, r)| !**r)
        .map(|(&d, _)| d)
        .product();
    let mut out = vec![init; out_len];
    if data.is_empty() {
        return out;
    }
    // The trailing run of axes that are all reduced or all kept is one contiguous block.
    let trailing_reduced = rank > 0 && red[rank - 1];
    let mut k = rank;
    while k > 0 && red[k - 1] == trailing_reduced {
        k -= 1;
    }
    let inner: usize = shape[k..].iter().product();
    // Output strides of the prefix axes (0 for reduced ones).
    let mut ostride = vec![0usize; k];
    let mut s = if trailing_reduced { 1 } else { inner };
    for ax in (0..k).rev() {
        if !red[ax] {
            ostride[ax] = s;
            s *= shape[ax];
        }
    }
    let mut idx = vec![0usize; k];
    let mut o = 0usize;
    for chunk in data.chunks_exact(inner) {
        if trailing_reduced {
            out[o] = block(out[o], chunk);
        } else {
            for (acc, &v) in out[o..o + inner].iter_mut().zip(chunk) {
                *acc = step(*acc, v);
            }
        }
        // Advance the prefix multi-index and the output offset.
        for ax in (0..k).rev() {
            idx[ax] += 1;
            o += ostride[ax];
            if idx[ax] < shape[ax] {
                break;
            }
            o -= ostride[ax] * shape[ax];
            idx[ax] = 0;
        }
    }
    out
}

/// Index of the first maximum (minimum) along `axis`; a NaN counts as the extreme, as numpy.
fn arg_reduce<T: TensorElem + crate::Elem + PartialOrd>(
    a: &Arr<T>,
    axis: usize,
    max: bool,
) -> ndarray::ArrayD<i64> {
    a.map_axis(Axis(axis), |lane| {
        let mut best = 0usize;
        let mut bv = lane[0];
        #[allow(clippy::eq_op)]
        if bv != bv {
            return 0;
        }
        for (i, &v) in lane.iter().enumerate().skip(1) {
            #[allow(clippy::eq_op)]
            if v != v {
                return i as i64;
            }
            if (max && v > bv) || (!max && v < bv) {
                best = i;
                bv = v;
            }
        }
        best as i64
    })
}
