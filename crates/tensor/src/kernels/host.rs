//! Host-only ops whose result shape depends on values, and `sort`.

use super::KernelError;
use super::elementwise::Arr;
use super::scalar::{CastElem, CastValue};
use super::shape::standard;
use crate::{AnyElem, Tensor, TensorElem, dispatch, plain_map_same};
use ndarray::{ArcArray, Axis, Dimension, IxDyn};
use std::cmp::Ordering;

/// Ascending order with NaN after everything (numpy's sort order).
#[allow(clippy::eq_op)]
fn nan_last<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    match a.partial_cmp(b) {
        Some(o) => o,
        None => (a != a).cmp(&(b != b)),
    }
}

/// Row sorts of at least this many values are split over the thread pool.
const PARALLEL_SORT_MIN: usize = 1 << 18;

/// Rows up to this long are sorted by [`insertion_sort`]: for them the general sort's
/// set-up and its comparator returning an `Ordering` cost more than the sorting.
const SHORT_ROW: usize = 16;

/// Stable insertion sort in [`nan_last`] order: an element moves before another only when
/// strictly smaller, so the result is the same as `sort_by(nan_last)`, bit for bit.
fn insertion_sort<T: PartialOrd + Copy>(row: &mut [T]) {
    #[allow(clippy::eq_op)]
    fn before<T: PartialOrd>(a: &T, b: &T) -> bool {
        a < b || (a == a && b != b)
    }
    for i in 1..row.len() {
        let key = row[i];
        let mut j = i;
        while j > 0 && before(&key, &row[j - 1]) {
            row[j] = row[j - 1];
            j -= 1;
        }
        row[j] = key;
    }
}

/// Rows sorted together by [`network_sort_group`]: one vector lane per row.
const NETWORK_LANES: usize = 8;

/// Batcher's odd-even merge sort network for rows of `n` values (`n <= SHORT_ROW`), as
/// compare-exchanges `(i, j)`, `i < j`, and their count: the network for the next power of
/// two with the exchanges that touch a position `>= n` left out, which is that network on
/// a row padded with values above all others (they never move, so those exchanges never
/// swap). 63 exchanges at most (`n = 16`).
const fn batcher_network(n: usize) -> ([(u8, u8); 64], usize) {
    let mut net = [(0u8, 0u8); 64];
    let mut count = 0;
    let size = n.next_power_of_two();
    let mut p = 1;
    while p < size {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < size {
                let mut i = 0;
                while i < k && i < size - j - k {
                    let (a, b) = (i + j, i + j + k);
                    if a / (2 * p) == b / (2 * p) && b < n {
                        net[count] = (a as u8, b as u8);
                        count += 1;
                    }
                    i += 1;
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    (net, count)
}

/// The network for rows of `N` values, computed at compile time (with `N` a constant, the
/// transposition in and out of [`network_sort_group`] is unrolled).
struct Network<const N: usize>;

impl<const N: usize> Network<N> {
    const PAIRS: ([(u8, u8); 64], usize) = batcher_network(N);
}

/// Whether every value that compares equal to `x` has `x`'s bits: then the order among
/// equal values cannot show, and any correct sort gives the stable sort's bits. Not so for
/// NaN (unordered) and a float zero (`-0.0 == 0.0`).
#[inline(always)]
fn interchangeable<T: AnyElem + PartialOrd>(x: &T) -> bool {
    #[allow(clippy::eq_op)]
    let ordered = x == x;
    ordered & (!T::DTYPE.is_float() | (*x != T::default()))
}

/// Sorts consecutive rows of `len` values (`2 <= len <= SHORT_ROW`), as [`insertion_sort`]
/// does each, bit for bit: [`NETWORK_LANES`] rows at a time through a sorting network
/// with one vector lane per row (W4's rows of 8: about 2x the insertion sort), where
/// every value of those rows is [`interchangeable`]; other rows by insertion.
#[inline(always)]
fn sort_short_rows<T: AnyElem + PartialOrd + Copy>(v: &mut [T], len: usize) {
    macro_rules! by_len {
        ($($n:literal)*) => {
            match len {
                $($n => sort_rows_by_network::<T, $n>(v),)*
                _ => v.chunks_exact_mut(len).for_each(insertion_sort),
            }
        };
    }
    by_len!(2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// [`sort_short_rows`] for rows of `N` values.
#[inline(always)]
fn sort_rows_by_network<T: AnyElem + PartialOrd + Copy, const N: usize>(v: &mut [T]) {
    let mut groups = v.chunks_exact_mut(NETWORK_LANES * N);
    for group in &mut groups {
        // No early exit, so that the test vectorizes.
        if group.iter().fold(true, |all, x| all & interchangeable(x)) {
            network_sort_group::<T, N>(group);
        } else {
            group.chunks_exact_mut(N).for_each(insertion_sort);
        }
    }
    groups
        .into_remainder()
        .chunks_exact_mut(N)
        .for_each(insertion_sort);
}

/// [`NETWORK_LANES`] rows of `N` values through [`Network`]: transposed so that each
/// position of the rows is one vector, and each compare-exchange a compare and two blends.
#[inline(always)]
fn network_sort_group<T: PartialOrd + Copy + Default, const N: usize>(group: &mut [T]) {
    let mut cols = [[T::default(); NETWORK_LANES]; N];
    for (r, row) in group.chunks_exact(N).enumerate() {
        for (col, &x) in cols.iter_mut().zip(row) {
            col[r] = x;
        }
    }
    let (pairs, count) = Network::<N>::PAIRS;
    for &(i, j) in &pairs[..count] {
        let (i, j) = (usize::from(i), usize::from(j));
        let (a, b) = (cols[i], cols[j]);
        cols[i] = std::array::from_fn(|r| if b[r] < a[r] { b[r] } else { a[r] });
        cols[j] = std::array::from_fn(|r| if b[r] < a[r] { a[r] } else { b[r] });
    }
    for (r, row) in group.chunks_exact_mut(N).enumerate() {
        for (x, col) in row.iter_mut().zip(&cols) {
            *x = col[r];
        }
    }
}

/// Sorts along `axis`, ascending, NaN last (numpy). The sort is stable, so equal values
/// such as `-0.0` and `0.0` keep their order (numpy's default sort is not stable).
pub fn sort(x: &Tensor, axis: usize) -> Result<Tensor, KernelError> {
    if axis >= x.rank() {
        return Err(KernelError::InvalidArgument(format!(
            "`sort` axis {axis} is out of bounds for rank {}",
            x.rank()
        )));
    }
    let no_str = || str_unsupported("sort");
    Ok(plain_map_same!(x, a => {
        // Rows along the last axis of contiguous data: sort each row in place in one copy.
        let len = a.shape()[axis];
        match a.as_slice() {
            Some(flat) if axis + 1 == a.ndim() && len > 0 => {
                let mut v = flat.to_vec();
                let sort_rows = |part: &mut [_]| {
                    if (2..=SHORT_ROW).contains(&len) {
                        super::simd::with_avx2(
                            #[inline(always)]
                            || sort_short_rows(part, len),
                        );
                    } else {
                        part.chunks_exact_mut(len).for_each(|row| row.sort_by(nan_last));
                    }
                };
                if v.len() >= PARALLEL_SORT_MIN && super::fused::pool_parallel() {
                    use rayon::prelude::*;
                    // Whole rows per task.
                    let per_task = len * (PARALLEL_SORT_MIN / 4 / len).max(1);
                    let _waiting = crate::busy::Waiting::begin();
                    v.par_chunks_mut(per_task).for_each(|row| {
                        let _working = crate::busy::Working::begin();
                        sort_rows(row)
                    });
                } else {
                    sort_rows(&mut v);
                }
                ArcArray::from_shape_vec(a.raw_dim(), v).expect("same length as the input")
            }
            _ => {
                let mut out = a.to_owned();
                let mut buf = Vec::with_capacity(len);
                for mut lane in out.lanes_mut(Axis(axis)) {
                    buf.clear();
                    buf.extend(lane.iter().copied());
                    buf.sort_by(nan_last);
                    for (d, s) in lane.iter_mut().zip(&buf) {
                        *d = *s;
                    }
                }
                out.into_shared()
            }
        }
    }, str => return Err(no_str())))
}

fn str_unsupported(op: &str) -> KernelError {
    KernelError::DType(format!("`{op}` is not defined on str"))
}

/// Sorted distinct values, 1-D (`numpy.unique`: NaNs collapse into one, last).
pub fn unique(x: &Tensor) -> Result<Tensor, KernelError> {
    Ok(plain_map_same!(x, a => {
        let mut v: Vec<_> = a.iter().copied().collect();
        v.sort_by(nan_last);
        #[allow(clippy::eq_op)]
        v.dedup_by(|p, q| p == q || (p != p && q != q));
        let n = v.len();
        ArcArray::from_shape_vec(IxDyn(&[n]), v).expect("length matches")
    }, str => return Err(str_unsupported("unique"))))
}

fn truthy<T: CastElem>(v: T) -> bool {
    match v.to_cast_value() {
        CastValue::Bool(b) => b,
        CastValue::Int(i) => i != 0,
        CastValue::Float(f) => f != 0.0,
    }
}

/// Indices of the nonzero elements in row-major order: `i64[n, rank]` (`np.argwhere`,
/// `tf.where`), or `i64[n]` for a rank-1 input.
pub fn nonzero(x: &Tensor) -> Result<Tensor, KernelError> {
    let rank = x.rank();
    let mut out: Vec<i64> = Vec::new();
    let mut n = 0;
    crate::plain_dispatch!(x, a => {
        for (idx, &v) in a.indexed_iter() {
            if truthy(v) {
                n += 1;
                out.extend(idx.slice().iter().map(|&i| i as i64));
            }
        }
    }, str => return Err(str_unsupported("nonzero")));
    let shape: Vec<usize> = if rank == 1 { vec![n] } else { vec![n, rank] };
    Ok(Tensor::from_vec(&shape, out).expect("length matches shape"))
}

/// `x[mask]`: `mask` is `bool` with the shape of `x`'s leading axes; the result has one
/// leading axis with the selected positions in row-major order, then `x`'s other axes.
pub fn boolean_mask(x: &Tensor, mask: &Tensor) -> Result<Tensor, KernelError> {
    let Tensor::Bool(m) = mask else {
        return Err(KernelError::DType(format!(
            "`boolean_mask` needs a bool mask, not {}",
            mask.dtype()
        )));
    };
    let k = m.ndim();
    if k > x.rank() || m.shape() != &x.shape()[..k] {
        return Err(KernelError::InvalidArgument(format!(
            "mask of shape {:?} does not match the leading axes of shape {:?}",
            m.shape(),
            x.shape()
        )));
    }
    let sel: Vec<usize> = m
        .iter()
        .enumerate()
        .filter(|(_, b)| **b)
        .map(|(i, _)| i)
        .collect();
    let lead: usize = x.shape()[..k].iter().product();
    let mut flat = vec![lead];
    flat.extend_from_slice(&x.shape()[k..]);
    fn pick<T: TensorElem>(a: &Arr<T>, flat: &[usize], sel: &[usize]) -> Tensor {
        let a = standard(a)
            .into_shape_with_order(IxDyn(flat))
            .expect("length matches");
        T::wrap(a.select(Axis(0), sel).into_shared())
    }
    Ok(dispatch!(x, a => pick(a, &flat, &sel)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Values where order and stability show: NaNs of two payloads, both zeros, infinities.
    fn tricky() -> impl Strategy<Value = f32> {
        prop_oneof![
            Just(f32::NAN),
            Just(f32::from_bits(0x7fc0_0001)),
            Just(0.0f32),
            Just(-0.0f32),
            Just(f32::INFINITY),
            Just(f32::NEG_INFINITY),
            (-4i8..4).prop_map(f32::from),
        ]
    }

    /// Large enough for the thread pool: every row sorted as a row alone would be.
    #[test]
    fn parallel_row_sort_sorts_every_row() {
        for len in [8, 40] {
            let rows = PARALLEL_SORT_MIN / len + 3;
            let vals: Vec<f32> = (0..rows * len)
                .map(|i| ((i * 7919) % 1013) as f32 - 500.0)
                .collect();
            let x = Tensor::from_vec(&[rows, len], vals.clone()).expect("shape");
            let mut want = vals;
            for row in want.chunks_exact_mut(len) {
                row.sort_by(f32::total_cmp);
            }
            assert_eq!(
                sort(&x, 1).expect("sorts"),
                Tensor::from_vec(&[rows, len], want).expect("shape")
            );
        }
    }

    /// The 0-1 principle: a network that sorts every row of zeros and ones sorts every row.
    #[test]
    fn batcher_networks_sort_every_row_of_zeros_and_ones() {
        for len in 2..=SHORT_ROW {
            let (pairs, count) = batcher_network(len);
            for bits in 0u32..1 << len {
                let mut row: Vec<u32> = (0..len).map(|i| (bits >> i) & 1).collect();
                for &(i, j) in &pairs[..count] {
                    let (i, j) = (usize::from(i), usize::from(j));
                    if row[j] < row[i] {
                        row.swap(i, j);
                    }
                }
                assert!(row.is_sorted(), "len {len}, input {bits:b}: {row:?}");
            }
        }
        assert_eq!(Network::<8>::PAIRS.1, 19);
        assert_eq!(Network::<16>::PAIRS.1, 63);
    }

    proptest! {
        /// Rows sorted 8 at a time by the network, or by insertion where a group holds a
        /// NaN or a zero, have the bits each row sorted alone by the stable sort has.
        #[test]
        fn short_rows_sort_as_the_stable_sort(
            len in 2usize..=SHORT_ROW,
            rows in 0usize..30,
            vals in proptest::collection::vec(tricky(), 30 * SHORT_ROW),
            plain in any::<bool>(),
        ) {
            let mut got: Vec<f32> = vals[..rows * len]
                .iter()
                .map(|&x| if plain && (x.is_nan() || x == 0.0) { 5.0 } else { x })
                .collect();
            let mut want = got.clone();
            sort_short_rows(&mut got, len);
            for row in want.chunks_exact_mut(len) {
                row.sort_by(nan_last);
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got), bits(&want));
        }

        #[test]
        fn insertion_sort_is_the_stable_nan_last_sort(row in proptest::collection::vec(tricky(), 0..=SHORT_ROW)) {
            let mut a = row.clone();
            insertion_sort(&mut a);
            let mut b = row;
            b.sort_by(nan_last);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&a), bits(&b));
        }

        #[test]
        fn short_and_long_rows_sort_alike(rows in 1usize..40, len in 1usize..40, seed in any::<u64>()) {
            let vals: Vec<i32> = (0..rows * len)
                .map(|i| ((i as u64).wrapping_mul(seed | 1) >> 7) as i32 % 9)
                .collect();
            let x = Tensor::from_vec(&[rows, len], vals.clone()).expect("shape");
            let got = sort(&x, 1).expect("sorts");
            let mut want = vals;
            for row in want.chunks_exact_mut(len) {
                row.sort();
            }
            prop_assert_eq!(got, Tensor::from_vec(&[rows, len], want).expect("shape"));
        }
    }
}
