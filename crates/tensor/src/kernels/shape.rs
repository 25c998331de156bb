//! Shape ops, slicing and creation.

use super::elementwise::{Arr, broadcast_shapes};
use super::{KernelError, checked_len, scalar_from_f64, scalar_from_i128};
use crate::{DType, Scalar, Tensor, TensorElem, dispatch, map_same};
use ndarray::{ArcArray, Axis, IxDyn, Slice};
use std::sync::atomic::{AtomicU8, Ordering};

/// One item of an index expression (Python/numpy semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceItem {
    /// `x[i]`: picks one index (negative counts from the end) and drops the axis.
    Index(i64),
    /// `x[start:stop:step]`, clamped as Python does; `step` must not be 0.
    Range {
        /// First index (default: the start for positive steps, the end for negative).
        start: Option<i64>,
        /// One past the last index.
        stop: Option<i64>,
        /// Stride; negative walks backwards.
        step: i64,
    },
    /// `x[None]` / `np.newaxis`: inserts an axis of length 1.
    NewAxis,
}

fn invalid(msg: String) -> KernelError {
    KernelError::InvalidArgument(msg)
}

fn check_axis(axis: usize, rank: usize, what: &str) -> Result<(), KernelError> {
    if axis >= rank {
        Err(invalid(format!(
            "{what} axis {axis} is out of bounds for rank {rank}"
        )))
    } else {
        Ok(())
    }
}

/// A row-major copy when `a` is not already in standard layout.
pub(crate) fn standard<T: Clone>(a: &Arr<T>) -> Arr<T> {
    if a.is_standard_layout() {
        a.clone()
    } else {
        a.as_standard_layout().into_owned().into_shared()
    }
}

/// Same elements in a new shape (row-major order; `-1` is resolved by the caller).
pub fn reshape(x: &Tensor, shape: &[usize]) -> Result<Tensor, KernelError> {
    let n = checked_len(shape, x.dtype().size_bytes())?;
    if n != x.len() {
        return Err(invalid(format!(
            "cannot reshape {} elements of shape {:?} into shape {:?}",
            x.len(),
            x.shape(),
            shape
        )));
    }
    Ok(map_same!(x, a => standard(a).into_shape_with_order(IxDyn(shape)).expect("length checked")))
}

/// Permutes the axes; an empty `perm` on a tensor of rank > 0 reverses them (numpy's default).
pub fn transpose(x: &Tensor, perm: &[usize]) -> Result<Tensor, KernelError> {
    let rank = x.rank();
    let perm: Vec<usize> = if perm.is_empty() {
        (0..rank).rev().collect()
    } else {
        perm.to_vec()
    };
    let mut seen = vec![false; rank];
    if perm.len() != rank
        || perm
            .iter()
            .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
    {
        return Err(invalid(format!(
            "{perm:?} is not a permutation of the {rank} axes"
        )));
    }
    Ok(map_same!(x, a => a.clone().permuted_axes(IxDyn(&perm))))
}

/// Inserts an axis of length 1 at `axis` (`0..=rank`).
pub fn expand_dims(x: &Tensor, axis: usize) -> Result<Tensor, KernelError> {
    check_axis(axis, x.rank() + 1, "expand_dims")?;
    Ok(map_same!(x, a => a.clone().insert_axis(Axis(axis))))
}

/// Removes the given axes, which must have length 1 (all length-1 axes if `axes` is empty).
pub fn squeeze(x: &Tensor, axes: &[usize]) -> Result<Tensor, KernelError> {
    let shape = x.shape();
    let mut axes: Vec<usize> = if axes.is_empty() {
        (0..shape.len()).filter(|&i| shape[i] == 1).collect()
    } else {
        axes.to_vec()
    };
    for &ax in &axes {
        check_axis(ax, shape.len(), "squeeze")?;
        if shape[ax] != 1 {
            return Err(invalid(format!(
                "cannot squeeze axis {ax} of length {}",
                shape[ax]
            )));
        }
    }
    axes.sort_unstable();
    axes.dedup();
    Ok(map_same!(x, a => {
        let mut a = a.clone();
        for &ax in axes.iter().rev() {
            a = a.index_axis_move(Axis(ax), 0);
        }
        a
    }))
}

/// The arrays of `xs`, all of `first`'s dtype.
fn same_dtype<'a, T: TensorElem>(
    _first: &Arr<T>,
    xs: &'a [Tensor],
    op: &str,
) -> Result<Vec<ndarray::ArrayViewD<'a, T>>, KernelError> {
    xs.iter()
        .map(|t| {
            T::view(t).map(|a| a.view()).ok_or_else(|| {
                KernelError::DType(format!(
                    "operands of `{op}` have different dtypes {} and {}",
                    T::DTYPE,
                    t.dtype()
                ))
            })
        })
        .collect()
}

/// Joins tensors along an existing axis.
pub fn concat(xs: &[Tensor], axis: usize) -> Result<Tensor, KernelError> {
    let first = xs
        .first()
        .ok_or_else(|| invalid("`concat` needs at least one tensor".into()))?;
    let rank = first.rank();
    check_axis(axis, rank, "concat")?;
    for t in xs {
        let ok = t.rank() == rank
            && t.shape()
                .iter()
                .zip(first.shape())
                .enumerate()
                .all(|(i, (p, q))| i == axis || p == q);
        if !ok {
            return Err(invalid(format!(
                "`concat` along axis {axis}: shapes {:?} and {:?} differ off that axis",
                first.shape(),
                t.shape()
            )));
        }
    }
    let total: usize = xs.iter().map(|t| t.shape()[axis]).sum();
    let mut shape = first.shape().to_vec();
    shape[axis] = total;
    checked_len(&shape, first.dtype().size_bytes())?;
    dispatch!(first, a => {
        let views = same_dtype(a, xs, "concat")?;
        // Along axis 0, contiguous parts are one after the other in the result: one copy
        // each (how blocks of rows are joined), instead of ndarray's strided assignment.
        if axis == 0 && views.iter().all(|v| v.is_standard_layout()) {
            let mut data = Vec::with_capacity(shape.iter().product());
            for v in &views {
                data.extend_from_slice(v.as_slice().expect("standard layout is contiguous"));
            }
            return Ok(Tensor::from(
                ndarray::ArcArray::from_shape_vec(IxDyn(&shape), data).expect("shapes checked"),
            ));
        }
        Ok(Tensor::from(ndarray::concatenate(Axis(axis), &views).expect("shapes checked").into_shared()))
    })
}

/// Joins tensors of one shape along a new axis.
pub fn stack(xs: &[Tensor], axis: usize) -> Result<Tensor, KernelError> {
    let first = xs
        .first()
        .ok_or_else(|| invalid("`stack` needs at least one tensor".into()))?;
    check_axis(axis, first.rank() + 1, "stack")?;
    if let Some(t) = xs.iter().find(|t| t.shape() != first.shape()) {
        return Err(invalid(format!(
            "`stack` needs equal shapes, got {:?} and {:?}",
            first.shape(),
            t.shape()
        )));
    }
    checked_len(&[first.len(), xs.len()], first.dtype().size_bytes())?;
    dispatch!(first, a => {
        let views = same_dtype(a, xs, "stack")?;
        if axis == 0 {
            let parallel = first.nbytes().saturating_mul(xs.len()) >= PARALLEL_STACK_BYTES;
            if let Some(t) = stack_rows_contiguous(&views, first.shape(), parallel) {
                return Ok(t);
            }
        }
        Ok(Tensor::from(ndarray::stack(Axis(axis), &views).expect("shapes checked").into_shared()))
    })
}

/// Stacks of at least this many bytes copy their rows on the kernel threads: `batch(32)` of
/// decoded images is 19 MB, copied on the consumer's thread while the lanes wait.
const PARALLEL_STACK_BYTES: usize = 4 << 20;

/// `rows` (each of `shape`, contiguous) stacked along a new first axis by whole-row copies
/// (`ndarray::stack` goes element by element, about half memcpy's speed on a batch of
/// images), on the kernel threads when `parallel` and the pool can help; `None` when a row
/// is not contiguous.
#[allow(unsafe_code)]
fn stack_rows_contiguous<T: TensorElem>(
    rows: &[ndarray::ArrayViewD<'_, T>],
    shape: &[usize],
    parallel: bool,
) -> Option<Tensor> {
    use rayon::prelude::*;
    let parts: Vec<&[T]> = rows.iter().map(|r| r.as_slice()).collect::<Option<_>>()?;
    let row = parts.first()?.len();
    let mut full = Vec::with_capacity(shape.len() + 1);
    full.push(parts.len());
    full.extend_from_slice(shape);
    if row == 0 || !parallel || !super::pool_parallel() {
        let mut out = Vec::with_capacity(row * parts.len());
        for part in &parts {
            out.extend_from_slice(part);
        }
        return Tensor::from_vec(&full, out);
    }
    // Written straight into the spare capacity: zeroing 19 MB first (a `vec![0; n]`) was a
    // third pass over the batch, on the consumer's thread.
    let total = row * parts.len();
    let mut out: Vec<T> = Vec::with_capacity(total);
    {
        // This thread only waits for the pool's threads (for `--stats`' serial share).
        let _waiting = crate::busy::Waiting::begin();
        out.spare_capacity_mut()[..total]
            .par_chunks_mut(row)
            .zip(parts.par_iter())
            .for_each(|(dst, src)| {
                let _working = crate::busy::Working::begin();
                for (d, s) in dst.iter_mut().zip(src.iter()) {
                    d.write(s.clone());
                }
            });
    }
    // SAFETY: the chunks of `row` cover the first `total` slots (`parts.len()` chunks, one
    // per part of `row` elements each), and every slot of each was written above; a panic
    // there unwinds before this line and leaves `out` empty (leaking, never reading, rows).
    unsafe { out.set_len(total) };
    Tensor::from_vec(&full, out)
}

/// Rows of one shape stacked along a new first axis as they arrive, each copied while it
/// is still in cache and then free to be dropped. A `batch` of large rows (decoded images)
/// stacked only once all of them exist keeps every row's buffer alive until then: 32 rows
/// of 600 KB outgrow the cache, and the rows are read back cold (measured on W6: 0.33 s of
/// stacking for 32 rows at a time, 0.1 s for 4). The result and its errors are
/// [`stack`]'s on the same rows.
pub struct RowStacker {
    rows: Box<dyn StackRows>,
    shape: Vec<usize>,
    dtype: DType,
    /// Rows pushed (appended, or counted past the size limit).
    count: usize,
    /// Whether the rows outgrew the limits on a tensor (then nothing more is appended).
    over: bool,
}

/// A [`RowStacker`]'s rows, of one element type.
trait StackRows: Send {
    /// Appends `row` if it has this element type.
    fn push(&mut self, row: &Tensor) -> bool;
    /// The rows so far as one tensor of `shape`.
    fn finish(self: Box<Self>, shape: &[usize]) -> Option<Tensor>;
}

struct TypedRows<T>(Vec<T>);

impl<T: TensorElem> StackRows for TypedRows<T> {
    fn push(&mut self, row: &Tensor) -> bool {
        let Some(a) = row.as_array::<T>() else {
            return false;
        };
        match a.as_slice() {
            Some(s) if T::DTYPE != DType::Str => append_streaming(&mut self.0, s),
            Some(s) => self.0.extend_from_slice(s),
            None => self.0.extend(a.iter().cloned()),
        }
        true
    }

    fn finish(self: Box<Self>, shape: &[usize]) -> Option<Tensor> {
        Tensor::from_vec(shape, self.0)
    }
}

/// Appends `src` to `dst` with stores that bypass the cache: a batch being stacked is
/// written once and read later, by the consumer, so caching it would only evict the rows
/// still being computed (glibc's `memcpy` streams only past about three quarters of the
/// last-level cache, far more than a batch). Plain (`Copy`) element types only.
#[allow(unsafe_code)]
fn append_streaming<T: Clone>(dst: &mut Vec<T>, src: &[T]) {
    dst.reserve(src.len());
    let start = dst.len();
    // SAFETY: `reserve` made room for `src.len()` more elements after `start`, which
    // `copy_streaming` writes byte for byte before `set_len` exposes them; `T` is a plain
    // element type (the caller excludes `str`), so a bytewise copy is a copy.
    unsafe {
        copy_streaming(dst.as_mut_ptr().add(start).cast::<u8>(), src);
        dst.set_len(start + src.len());
    }
}

/// Copies `src` byte for byte to `to`, large copies with stores that bypass the cache (see
/// [`append_streaming`]).
///
/// # Safety
/// `to` must be valid for writes of `size_of_val(src)` bytes and not overlap `src`.
#[allow(unsafe_code)]
unsafe fn copy_streaming<T>(to: *mut u8, src: &[T]) {
    let bytes = std::mem::size_of_val(src);
    let from = src.as_ptr().cast::<u8>();
    #[cfg(target_arch = "x86_64")]
    if bytes >= 64 << 10 {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
        // SAFETY: the caller's: `to` holds `bytes` bytes; every one is written once (a head
        // and tail by plain copies, the 16-byte aligned middle by streaming stores).
        unsafe {
            let head = to.align_offset(16).min(bytes);
            std::ptr::copy_nonoverlapping(from, to, head);
            let body = (bytes - head) / 16;
            for k in 0..body {
                let at = head + 16 * k;
                let v = _mm_loadu_si128(from.add(at).cast::<__m128i>());
                _mm_stream_si128(to.add(at).cast::<__m128i>(), v);
            }
            let tail = head + 16 * body;
            std::ptr::copy_nonoverlapping(from.add(tail), to.add(tail), bytes - tail);
            _mm_sfence();
        }
        return;
    }
    // SAFETY: as above.
    unsafe { std::ptr::copy_nonoverlapping(from, to, bytes) };
}

/// Rows of one layout stacked by several threads at once, each row written by the thread
/// that computed it, while the row is in that thread's cache. A parallel `map` under a
/// `batch` hands out its batches this way: stacked on the consumer's thread, every row a
/// helper computed was read from the other core's cache, and the helper's next result
/// written over memory the consumer had read (W6 at two threads: the copy took 6.7% of the
/// samples, 3.3% at one).
///
/// Each row is claimed before it is written ([`SharedRows::put`]), so no two threads ever
/// write the same row, and the stacked tensor is only built once the rows are all written
/// and no thread holds the stack any more ([`SharedRows::finish`] takes it by value).
pub struct SharedRows {
    leaves: Vec<Box<dyn SharedLeaf>>,
    /// Each leaf's dtype and row shape.
    layout: Vec<(DType, Vec<usize>)>,
    /// Per row: [`FREE`], [`WRITING`] or [`WRITTEN`].
    rows: Vec<AtomicU8>,
}

const FREE: u8 = 0;
const WRITING: u8 = 1;
const WRITTEN: u8 = 2;

/// One leaf's buffer of a [`SharedRows`], of one element type.
#[allow(unsafe_code)]
trait SharedLeaf: Send + Sync {
    /// Writes `row` as row `at`; `false`, writing nothing, unless it has this leaf's dtype
    /// and exactly a row's elements.
    ///
    /// # Safety
    /// The caller holds the claim on row `at` (no other thread reads or writes it), and
    /// `at` is below the stack's row count.
    unsafe fn write(&self, at: usize, row: &Tensor) -> bool;
    /// Row `at` copied out, as a tensor of `shape`.
    ///
    /// # Safety
    /// Row `at` was written and no thread writes it any more.
    unsafe fn read(&self, at: usize, shape: &[usize]) -> Option<Tensor>;
    /// The first `rows` rows (all written) as one tensor of `shape`.
    ///
    /// # Safety
    /// Rows `..rows` were all written.
    unsafe fn finish(self: Box<Self>, rows: usize, shape: &[usize]) -> Option<Tensor>;
}

/// A buffer of `capacity` elements, `row` per row, written through a raw pointer: rows are
/// claimed one by one ([`SharedRows::put`]), so threads write disjoint parts of it.
struct Leaf<T> {
    ptr: *mut T,
    capacity: usize,
    row: usize,
}

// SAFETY: a `Leaf` owns its buffer (as a `Vec` would); threads share it only to write rows
// each claimed by one of them (see `SharedRows::put`), and `T` is a plain element type.
#[allow(unsafe_code)]
unsafe impl<T: Send> Send for Leaf<T> {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for Leaf<T> {}

impl<T: TensorElem + Copy> Leaf<T> {
    fn new(row: usize, rows: usize) -> Leaf<T> {
        let mut buf = std::mem::ManuallyDrop::new(Vec::<T>::with_capacity(row * rows));
        Leaf {
            ptr: buf.as_mut_ptr(),
            capacity: buf.capacity(),
            row,
        }
    }
}

#[allow(unsafe_code)]
impl<T: TensorElem + Copy> SharedLeaf for Leaf<T> {
    unsafe fn write(&self, at: usize, row: &Tensor) -> bool {
        let Some(a) = row.as_array::<T>().filter(|a| a.len() == self.row) else {
            return false;
        };
        // SAFETY: row `at` of `self.row` elements lies inside the buffer (`at` is below the
        // row count the buffer holds), the caller's claim makes this thread its only user,
        // and `a` has exactly `self.row` elements (checked above), each written once.
        unsafe {
            let to = self.ptr.add(at * self.row);
            match a.as_slice() {
                Some(s) => copy_streaming(to.cast::<u8>(), s),
                None => {
                    for (k, v) in a.iter().enumerate() {
                        to.add(k).write(*v);
                    }
                }
            }
        }
        true
    }

    unsafe fn read(&self, at: usize, shape: &[usize]) -> Option<Tensor> {
        // SAFETY: the caller's: row `at` is written and no longer changes.
        let row = unsafe { std::slice::from_raw_parts(self.ptr.add(at * self.row), self.row) };
        Tensor::from_vec(shape, row.to_vec())
    }

    unsafe fn finish(mut self: Box<Self>, rows: usize, shape: &[usize]) -> Option<Tensor> {
        let ptr = std::mem::replace(&mut self.ptr, std::ptr::null_mut());
        // SAFETY: `ptr` and `capacity` are the `Vec`'s made in `new` (taken out of `self`,
        // whose `Drop` then frees nothing); its first `rows * row` elements are written (the
        // caller's), within the capacity of `rows_total * row`.
        let data = unsafe { Vec::from_raw_parts(ptr, rows * self.row, self.capacity) };
        Tensor::from_vec(shape, data)
    }
}

impl<T> Drop for Leaf<T> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: the `Vec`'s allocation from `new`, not yet handed on by `finish`; a
            // length of 0 reads no element (plain ones need no drop anyway).
            drop(unsafe { Vec::from_raw_parts(self.ptr, 0, self.capacity) });
        }
    }
}

impl SharedRows {
    /// Room for `rows` rows laid out like `first` (not written yet); `None` for a `str`
    /// leaf or a stack past the limits on a tensor.
    pub fn new(first: &[Tensor], rows: usize) -> Option<SharedRows> {
        fn typed<T: TensorElem + Copy>(
            _: &ArcArray<T, IxDyn>,
            row: usize,
            rows: usize,
        ) -> Box<dyn SharedLeaf> {
            Box::new(Leaf::<T>::new(row, rows))
        }
        let mut leaves = Vec::with_capacity(first.len());
        let mut layout = Vec::with_capacity(first.len());
        for t in first {
            let mut full = vec![rows];
            full.extend_from_slice(t.shape());
            checked_len(&full, t.dtype().size_bytes()).ok()?;
            leaves
                .push(crate::plain_dispatch!(t, a => typed(a, t.len(), rows), str => return None));
            layout.push((t.dtype(), t.shape().to_vec()));
        }
        Some(SharedRows {
            leaves,
            layout,
            rows: (0..rows).map(|_| AtomicU8::new(FREE)).collect(),
        })
    }

    /// Writes `element` as row `at`; `false`, writing nothing, when its layout differs or
    /// the row is out of range or already taken.
    #[allow(unsafe_code)]
    pub fn put(&self, at: usize, element: &[Tensor]) -> bool {
        let fits = element.len() == self.layout.len()
            && element
                .iter()
                .zip(&self.layout)
                .all(|(t, (dtype, shape))| t.dtype() == *dtype && t.shape() == shape.as_slice());
        let Some(state) = self.rows.get(at) else {
            return false;
        };
        if !fits
            || state
                .compare_exchange(FREE, WRITING, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        // SAFETY: this thread claimed row `at` (below the row count) just above.
        let written = self
            .leaves
            .iter()
            .zip(element)
            .all(|(leaf, t)| unsafe { leaf.write(at, t) });
        // A row a leaf refused (never, after the layout check) stays claimed and unwritten:
        // `finish` and `row` then refuse it too, so no unwritten byte is ever read.
        if written {
            state.store(WRITTEN, Ordering::Release);
        }
        written
    }

    /// Row `at` copied out, if it was written.
    #[allow(unsafe_code)]
    pub fn row(&self, at: usize) -> Option<Vec<Tensor>> {
        if self.rows.get(at)?.load(Ordering::Acquire) != WRITTEN {
            return None;
        }
        self.leaves
            .iter()
            .zip(&self.layout)
            // SAFETY: row `at` is written (the acquire load sees its writer's stores), and a
            // written row is never claimed again.
            .map(|(leaf, (_, shape))| unsafe { leaf.read(at, shape) })
            .collect()
    }

    /// The first `rows` rows stacked, one tensor per leaf (`[rows, ..row shape]`); `None`
    /// unless each of them was written.
    #[allow(unsafe_code)]
    pub fn finish(self, rows: usize) -> Option<Vec<Tensor>> {
        let written = rows <= self.rows.len()
            && self.rows[..rows]
                .iter()
                .all(|s| s.load(Ordering::Acquire) == WRITTEN);
        if !written {
            return None;
        }
        self.leaves
            .into_iter()
            .zip(&self.layout)
            .map(|(leaf, (_, shape))| {
                let mut full = Vec::with_capacity(shape.len() + 1);
                full.push(rows);
                full.extend_from_slice(shape);
                // SAFETY: rows `..rows` are written (checked above), and `self` is owned
                // here: no thread can write any more.
                unsafe { leaf.finish(rows, &full) }
            })
            .collect()
    }
}

impl RowStacker {
    /// A stack for rows like `first` (not pushed yet), with room for `capacity` rows.
    pub fn new(first: &Tensor, capacity: usize) -> RowStacker {
        fn typed<T: TensorElem>(_: &ArcArray<T, IxDyn>, n: usize) -> Box<dyn StackRows> {
            Box::new(TypedRows::<T>(Vec::with_capacity(n)))
        }
        let room = first.len().saturating_mul(capacity);
        let room = if checked_len(&[room], first.dtype().size_bytes()).is_ok() {
            room
        } else {
            0
        };
        RowStacker {
            rows: dispatch!(first, a => typed(a, room)),
            shape: first.shape().to_vec(),
            dtype: first.dtype(),
            count: 0,
            over: false,
        }
    }

    /// The shape every row must have.
    pub fn row_shape(&self) -> &[usize] {
        &self.shape
    }

    /// Appends a row; `false`, appending nothing, when its shape or dtype differs.
    pub fn push(&mut self, row: &Tensor) -> bool {
        if row.shape() != self.shape.as_slice() || row.dtype() != self.dtype {
            return false;
        }
        let len = row.len();
        self.over =
            self.over || checked_len(&[len, self.count + 1], self.dtype.size_bytes()).is_err();
        if !self.over && !self.rows.push(row) {
            return false;
        }
        self.count += 1;
        true
    }

    /// The rows pushed, stacked (`[count, ..row shape]`), or the error of a tensor that
    /// large.
    pub fn finish(self) -> Result<Tensor, KernelError> {
        let len = self.shape.iter().product::<usize>();
        checked_len(&[len, self.count], self.dtype.size_bytes())?;
        let mut shape = Vec::with_capacity(self.shape.len() + 1);
        shape.push(self.count);
        shape.extend_from_slice(&self.shape);
        self.rows
            .finish(&shape)
            .ok_or_else(|| invalid("the stacked rows do not fill their shape".into()))
    }
}

/// Broadcasts to `shape` (numpy `broadcast_to`); the result owns its elements.
pub fn broadcast_to(x: &Tensor, shape: &[usize]) -> Result<Tensor, KernelError> {
    if broadcast_shapes(x.shape(), shape).as_deref() != Some(shape) {
        return Err(KernelError::Broadcast {
            lhs: x.shape().to_vec(),
            rhs: shape.to_vec(),
        });
    }
    checked_len(shape, x.dtype().size_bytes())?;
    Ok(map_same!(x, a => a.broadcast(IxDyn(shape)).expect("checked").to_owned().into_shared()))
}

/// Repeats the tensor `reps[i]` times along axis `i` (numpy `tile`: the shorter of the
/// shape and `reps` is padded with leading 1s).
pub fn tile(x: &Tensor, reps: &[usize]) -> Result<Tensor, KernelError> {
    let n = reps.len().max(x.rank());
    let mut shape = vec![1; n - x.rank()];
    shape.extend_from_slice(x.shape());
    let mut reps_full = vec![1; n - reps.len()];
    reps_full.extend_from_slice(reps);
    // Saturating: a product past `usize` must become `TooLarge`, not an overflow panic.
    let out: Vec<usize> = shape
        .iter()
        .zip(&reps_full)
        .map(|(d, r)| d.saturating_mul(*r))
        .collect();
    checked_len(&out, x.dtype().size_bytes())?;
    let mut t = reshape(x, &shape)?;
    for (ax, &r) in reps_full.iter().enumerate() {
        if r != 1 {
            t = concat(&vec![t; r.max(1)], ax)?;
            if r == 0 {
                t = slice(
                    &t,
                    &std::iter::repeat_n(
                        SliceItem::Range {
                            start: None,
                            stop: None,
                            step: 1,
                        },
                        ax,
                    )
                    .chain([SliceItem::Range {
                        start: Some(0),
                        stop: Some(0),
                        step: 1,
                    }])
                    .collect::<Vec<_>>(),
                )?;
            }
        }
    }
    Ok(t)
}

/// Reverses the order of elements along each of `axes`.
pub fn reverse(x: &Tensor, axes: &[usize]) -> Result<Tensor, KernelError> {
    for &ax in axes {
        check_axis(ax, x.rank(), "reverse")?;
    }
    Ok(map_same!(x, a => {
        let mut a = a.clone();
        for &ax in axes {
            a.invert_axis(Axis(ax));
        }
        a
    }))
}

/// How many indices `start:stop:step` picks along an axis of `len` (Python's rule): the one
/// rule that typing and the slicing kernel share.
pub fn slice_len(start: Option<i64>, stop: Option<i64>, step: i64, len: usize) -> usize {
    slice_indices(start, stop, step, len).2
}

/// Python's `slice.indices`: the first index, step and element count along an axis of `len`.
fn slice_indices(
    start: Option<i64>,
    stop: Option<i64>,
    step: i64,
    len: usize,
) -> (i64, i64, usize) {
    let len = len as i64;
    let clamp = |v: i64, lo: i64, hi: i64| if v < 0 { (v + len).max(lo) } else { v.min(hi) };
    let (start, stop) = if step > 0 {
        (
            start.map_or(0, |v| clamp(v, 0, len)),
            stop.map_or(len, |v| clamp(v, 0, len)),
        )
    } else {
        (
            start.map_or(len - 1, |v| clamp(v, -1, len - 1)),
            stop.map_or(-1, |v| clamp(v, -1, len - 1)),
        )
    };
    // In i128: a step near i64::MIN or i64::MAX must not overflow.
    let (lo, hi, st) = (i128::from(start), i128::from(stop), i128::from(step));
    let count = if st > 0 && hi > lo {
        (hi - lo + st - 1) / st
    } else if st < 0 && lo > hi {
        (lo - hi - st - 1) / -st
    } else {
        0
    };
    (start, step, count as usize)
}

/// `tf.shape(x)`: the run-time shape of `x` as an `i64[rank]` tensor.
pub fn shape_of(x: &Tensor) -> Tensor {
    let dims: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    Tensor::from_vec(&[dims.len()], dims).expect("a vector of rank-many dims")
}

/// Basic indexing with Python/numpy semantics; `items` cover leading axes and the
/// ellipsis is already expanded by the caller. The result shares `x`'s buffer.
pub fn slice(x: &Tensor, items: &[SliceItem]) -> Result<Tensor, KernelError> {
    let consumed = items
        .iter()
        .filter(|i| !matches!(i, SliceItem::NewAxis))
        .count();
    if consumed > x.rank() {
        return Err(invalid(format!(
            "too many indices ({consumed}) for a tensor of rank {}",
            x.rank()
        )));
    }
    let mut t = x.clone();
    let mut ax = 0;
    for item in items {
        match *item {
            SliceItem::Index(i) => {
                let len = t.shape()[ax] as i64;
                let j = if i < 0 { i + len } else { i };
                if j < 0 || j >= len {
                    return Err(invalid(format!(
                        "index {i} is out of bounds for axis {ax} with size {len}"
                    )));
                }
                t = map_same!(&t, a => a.clone().index_axis_move(Axis(ax), j as usize));
            }
            SliceItem::Range { start, stop, step } => {
                if step == 0 {
                    return Err(invalid("slice step cannot be zero".into()));
                }
                let (first, step, count) = slice_indices(start, stop, step, t.shape()[ax]);
                let s = if count == 0 {
                    Slice::new(0, Some(0), 1)
                } else if step > 0 {
                    Slice::new(
                        first as isize,
                        Some((first + (count as i64 - 1) * step + 1) as isize),
                        step as isize,
                    )
                } else {
                    // ndarray walks a negative step from the end of the range.
                    let last = first + (count as i64 - 1) * step;
                    Slice::new(last as isize, Some(first as isize + 1), step as isize)
                };
                t = map_same!(&t, a => {
                    let mut a = a.clone();
                    a.slice_axis_inplace(Axis(ax), s);
                    a
                });
                ax += 1;
            }
            SliceItem::NewAxis => {
                t = map_same!(&t, a => a.clone().insert_axis(Axis(ax)));
                ax += 1;
            }
        }
    }
    Ok(t)
}

/// A tensor of zeros.
/// For `str`, empty strings (as `tf.zeros` gives).
pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor, KernelError> {
    if dtype.is_str() {
        let n = checked_len(shape, std::mem::size_of::<crate::Bytes>())?;
        return Ok(Tensor::from_vec(shape, vec![crate::Bytes::new(); n]).expect("length matches"));
    }
    fill(shape, scalar_from_f64(0.0, dtype))
}

/// A tensor of ones.
pub fn ones(shape: &[usize], dtype: DType) -> Result<Tensor, KernelError> {
    if dtype.is_str() {
        return Err(KernelError::DType("`ones` has no str form".into()));
    }
    fill(shape, scalar_from_f64(1.0, dtype))
}

/// A tensor with every element `value`.
pub fn fill(shape: &[usize], value: Scalar) -> Result<Tensor, KernelError> {
    checked_len(shape, value.dtype().size_bytes())?;
    fn f<T: TensorElem>(shape: &[usize], v: T) -> Tensor {
        T::wrap(ArcArray::from_elem(IxDyn(shape), v))
    }
    Ok(match value {
        Scalar::Bool(v) => f(shape, v),
        Scalar::I8(v) => f(shape, v),
        Scalar::U8(v) => f(shape, v),
        Scalar::I16(v) => f(shape, v),
        Scalar::U16(v) => f(shape, v),
        Scalar::I32(v) => f(shape, v),
        Scalar::U32(v) => f(shape, v),
        Scalar::I64(v) => f(shape, v),
        Scalar::U64(v) => f(shape, v),
        Scalar::F16(v) => f(shape, v),
        Scalar::BF16(v) => f(shape, v),
        Scalar::F32(v) => f(shape, v),
        Scalar::F64(v) => f(shape, v),
    })
}

/// `0, 1, ..., n-1` as `dtype` (values beyond the dtype's range are an error).
pub fn arange(n: usize, dtype: DType) -> Result<Tensor, KernelError> {
    checked_len(&[n], dtype.size_bytes())?;
    if n > 0 && scalar_from_i128(n as i128 - 1, dtype).is_none() {
        return Err(invalid(format!("arange({n}) does not fit in {dtype}")));
    }
    let idx = Tensor::from_vec(&[n], (0..n as u64).collect::<Vec<u64>>()).expect("length matches");
    Ok(super::cast(&idx, dtype))
}

#[cfg(test)]
mod tests {

    #[test]
    fn rows_stacked_as_they_arrive_equal_stack() {
        // Odd lengths and offsets: the streaming copy's unaligned head and tail.
        for (len, rows) in [(70_001usize, 5usize), (3, 4), (65_536, 3)] {
            let parts: Vec<Tensor> = (0..rows)
                .map(|r| {
                    let v: Vec<u8> = (0..len).map(|k| (k * 31 + r * 7) as u8).collect();
                    Tensor::from_vec(&[len], v).expect("shape fits")
                })
                .collect();
            let mut s = RowStacker::new(&parts[0], 2);
            for p in &parts {
                assert!(s.push(p));
            }
            let want = stack(&parts, 0).expect("stacks");
            assert_eq!(s.finish().expect("fits"), want);
        }
        let f = Tensor::from_vec(&[2, 3], vec![1.5f32; 6]).expect("shape fits");
        let mut s = RowStacker::new(&f, 1);
        assert!(s.push(&f));
        assert!(!s.push(&Tensor::from_vec(&[3, 2], vec![1.5f32; 6]).expect("fits")));
        assert!(!s.push(&Tensor::from_vec(&[2, 3], vec![1i32; 6]).expect("fits")));
        assert!(s.push(&f));
        assert_eq!(s.finish().expect("fits").shape(), &[2, 2, 3]);
    }
    use super::*;

    /// Rows written by several threads in any order, each once, stack to what `stack` gives
    /// on the same rows (two leaves: a large contiguous one through the streaming copy and a
    /// transposed one copied element by element); what does not fit is refused.
    #[test]
    fn rows_several_threads_write_stack_as_stack_does() {
        let n = 24;
        let element = |r: usize| -> Vec<Tensor> {
            let big: Vec<f32> = (0..70_001).map(|k| (k * 3 + r * 1000) as f32).collect();
            let small = Tensor::from_vec(&[3, 2], (0..6).map(|k| (k + 10 * r) as i16).collect())
                .expect("fits");
            vec![
                Tensor::from_vec(&[70_001], big).expect("fits"),
                super::super::transpose(&small, &[1, 0]).expect("transposes"),
            ]
        };
        let rows = SharedRows::new(&element(0), n).expect("plain leaves fit");
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    loop {
                        // Rows taken from the end first: the order they are written in is
                        // not the order they are stacked in.
                        let k = next.fetch_add(1, Ordering::SeqCst);
                        if k >= n {
                            break;
                        }
                        assert!(rows.put(n - 1 - k, &element(n - 1 - k)));
                    }
                });
            }
        });
        assert!(
            !rows.put(3, &element(3)),
            "a written row is never taken again"
        );
        assert!(!rows.put(n, &element(0)), "no row past the end");
        let other = vec![element(0)[0].clone()];
        assert!(!rows.put(0, &other), "a different layout is refused");
        assert_eq!(rows.row(5), Some(element(5)));
        let got = rows.finish(n).expect("every row written");
        for (leaf, got) in got.iter().enumerate() {
            let parts: Vec<Tensor> = (0..n).map(|r| element(r)[leaf].clone()).collect();
            assert_eq!(got, &stack(&parts, 0).expect("stacks"));
        }

        let strings = vec![Tensor::from_vec(&[1], vec![crate::Bytes::from("a")]).expect("fits")];
        assert!(
            SharedRows::new(&strings, 4).is_none(),
            "str rows are not plain"
        );
        let some = SharedRows::new(&element(0), 4).expect("fits");
        assert!(some.put(0, &element(0)) && some.put(2, &element(2)));
        assert_eq!(some.row(1), None);
        assert!(some.finish(2).is_none(), "row 1 was never written");
        let prefix = SharedRows::new(&element(0), 4).expect("fits");
        assert!(prefix.put(1, &element(1)) && prefix.put(0, &element(0)));
        let two = prefix.finish(2).expect("the first two rows are written");
        assert_eq!(two[1].shape(), &[2, 2, 3]);
    }

    /// A stack large enough to be copied on the kernel threads holds the rows in order, the
    /// same tensor the one-thread copy gives (a non-contiguous row falls back to it).
    #[test]
    fn a_large_stack_copied_in_parallel_equals_the_plain_one() {
        let rows: Vec<Tensor> = (0..40)
            .map(|r| {
                Tensor::from_vec::<f32>(
                    &[200, 150],
                    (0..30_000).map(|v| (r * 30_000 + v) as f32).collect(),
                )
                .expect("fits")
            })
            .collect();
        let stacked = stack(&rows, 0).expect("stacks");
        assert_eq!(stacked.shape(), &[40, 200, 150]);
        let a = stacked.as_array::<f32>().expect("f32");
        assert!(a.iter().enumerate().all(|(i, &v)| v == i as f32));
        let views: Vec<_> = rows
            .iter()
            .map(|t| t.as_array::<f32>().expect("f32").view())
            .collect();
        let plain = ndarray::stack(Axis(0), &views)
            .expect("stacks")
            .into_shared();
        assert_eq!(stacked, Tensor::from(plain));
        let transposed: Vec<Tensor> = rows
            .iter()
            .map(|t| super::super::transpose(t, &[1, 0]).expect("transposes"))
            .collect();
        assert_eq!(
            stack(&transposed, 0).expect("stacks").shape(),
            &[40, 150, 200]
        );
    }

    /// Rows of strings (cloned, not copied as bytes) and of scalars stack to what
    /// `ndarray::stack` gives, below and above the size copied on the kernel threads.
    #[test]
    fn strings_and_scalars_stack_like_ndarray() {
        for (rows, len) in [(3usize, 4usize), (40, 2_000)] {
            let parts: Vec<Tensor> = (0..rows)
                .map(|r| {
                    let texts = (0..len)
                        .map(|i| bytes::Bytes::from(format!("{r}-{i}-{}", "x".repeat(i % 97))));
                    Tensor::from_vec(&[len], texts.collect()).expect("fits")
                })
                .collect();
            let views: Vec<_> = parts
                .iter()
                .map(|t| t.as_array::<bytes::Bytes>().expect("str").view())
                .collect();
            let plain = ndarray::stack(Axis(0), &views)
                .expect("stacks")
                .into_shared();
            assert_eq!(stack(&parts, 0).expect("stacks"), Tensor::from(plain));
        }
        let scalars: Vec<Tensor> = (0..5).map(|v| Tensor::scalar(v as i64 * 3)).collect();
        let stacked = stack(&scalars, 0).expect("stacks");
        assert_eq!(stacked.shape(), &[5]);
        assert_eq!(
            stacked
                .as_array::<i64>()
                .expect("i64")
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![0, 3, 6, 9, 12]
        );
    }
}
