//! The chunked fused elementwise kernel (numexpr's approach): a scalar program runs over
//! blocks of [`BLOCK`] elements, so every intermediate lives in a small cache-resident
//! buffer instead of a full-size array.
//!
//! Each instruction calls the same per-element functions as the array kernels
//! (`*_slice`, [`cast_slice`](super::cast_slice), the [`scalar`](super::scalar) traits), so
//! results are bit-identical to evaluating the ops one by one.
//!
//! The kernel handles the common layouts only: every input either has the output's shape,
//! a trailing part of it, or one element, and is repeated cyclically. For any other
//! layout [`run_fused`] returns `Ok(None)`, and the caller evaluates op by op instead.

use super::elementwise::{binary_fn, unary_fn};
use super::scalar::{CastElem, FloatElem, NumElem};
use super::{
    KernelError, binary_slice, cast_slice, float_binary_slice, float_unary_slice, num_unary_slice,
};
use crate::ops::{BinaryDomain, BinaryOp, UnaryDomain, UnaryOp};
use crate::{DType, FromBytes, Scalar, Tensor, TensorElem, TensorRef};
use half::{bf16, f16};
use ndarray::{ArcArray, IxDyn};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Elements per block: small enough that a program's registers stay in L1/L2.
pub const BLOCK: usize = 1024;

/// One instruction of a lowered fused program; operands are earlier instruction indices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FusedOp {
    /// The n-th input.
    Input(usize),
    /// A scalar constant.
    Const(Scalar),
    /// A unary op.
    Unary(UnaryOp, u32),
    /// A binary op (both operands of one dtype).
    Binary(BinaryOp, u32, u32),
    /// A cast to the dtype of the instruction's register.
    Cast(u32),
    /// `where(c, a, b)`.
    Select(u32, u32, u32),
    /// `clip(x, lo, hi)`.
    Clip(u32, u32, u32),
}

/// A scalar program: instruction `i` defines register `i` of dtype `dtypes[i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedProgram<'a> {
    /// The instructions, in order.
    pub ops: &'a [FusedOp],
    /// The dtype of each register.
    pub dtypes: &'a [DType],
    /// The registers returned, in order.
    pub results: &'a [u32],
}

/// A block-sized register of one dtype.
#[derive(Clone, Debug)]
enum Buf {
    Bool(Vec<bool>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Element types a register can hold.
trait BufElem: CastElem + TensorElem + FromBytes {
    fn new_buf(n: usize) -> Buf;
    fn empty_buf(capacity: usize) -> Buf;
    fn full_buf(len: usize) -> Buf;
    fn get(b: &Buf) -> &[Self];
    fn get_mut(b: &mut Buf) -> &mut [Self];
    fn vec_mut(b: &mut Buf) -> &mut Vec<Self>;
}

macro_rules! buf_elem {
    ($($t:ty => $v:ident),*) => {$(
        impl BufElem for $t {
            fn new_buf(n: usize) -> Buf { Buf::$v(vec![<$t>::default(); n]) }
            fn empty_buf(capacity: usize) -> Buf { Buf::$v(recycled_vec(capacity)) }
            fn full_buf(len: usize) -> Buf { Buf::$v(full_vec(len)) }
            fn vec_mut(b: &mut Buf) -> &mut Vec<Self> {
                match b { Buf::$v(v) => v, _ => unreachable!("register dtypes are checked before the run") }
            }
            fn get(b: &Buf) -> &[Self] {
                match b { Buf::$v(v) => v, _ => unreachable!("register dtypes are checked before the run") }
            }
            fn get_mut(b: &mut Buf) -> &mut [Self] {
                match b { Buf::$v(v) => v, _ => unreachable!("register dtypes are checked before the run") }
            }
        }
    )*};
}
buf_elem!(bool => Bool, i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32,
          i64 => I64, u64 => U64, f16 => F16, bf16 => BF16, f32 => F32, f64 => F64);

/// Binds type `$t` to the Rust type of dtype `$d` (every dtype).
macro_rules! with_type {
    ($d:expr, $t:ident => $body:expr) => {
        $crate::for_each_dtype!($crate::dtype_match; plain, $d, $t, $body, unreachable!("fused registers are never str: fuse-elementwise takes numeric ops only"))
    };
}

/// Binds `$t` for numeric dtypes; `bool` runs `$other`.
macro_rules! with_num_type {
    ($d:expr, $t:ident => $body:expr, bool => $other:expr) => {
        $crate::for_each_dtype!($crate::dtype_match; num, $d, $t, $body, $other)
    };
}

/// Binds `$t` for float dtypes; others run `$other`.
macro_rules! with_float_type {
    ($d:expr, $t:ident => $body:expr, _ => $other:expr) => {
        $crate::for_each_dtype!($crate::dtype_match; float, $d, $t, $body, $other)
    };
}

/// How an input maps onto the output: its flat element `i % len` feeds output element `i`.
struct Feed<'a> {
    tensor: TensorRef<'a>,
    /// The input's elements in row-major order, when not contiguous already.
    owned: Option<Tensor>,
    len: usize,
    /// For an input shorter than the output (a trailing part of its shape): the input
    /// repeated to a block plus one period, so every block is one slice of it instead of
    /// a modulo per element.
    pattern: Option<Tensor>,
}

impl<'a> Feed<'a> {
    /// The input's elements for output elements from `start` on, read where they are.
    /// Only for inputs of more than one element (a one-element input is a filled register).
    fn at(&'a self, start: usize) -> Operand<'a> {
        match &self.pattern {
            Some(p) => Operand::Feed(TensorRef::Owned(p), start % self.len),
            None => Operand::Feed(self.data(), start),
        }
    }

    /// The input's elements, contiguous.
    fn data(&'a self) -> TensorRef<'a> {
        self.owned.as_ref().map_or(self.tensor, TensorRef::Owned)
    }
}

/// The elements of a contiguous input of type `T`.
fn contiguous<'a, T: BufElem>(t: TensorRef<'a>) -> &'a [T] {
    match t {
        TensorRef::Owned(t) => T::view(t).and_then(|a| a.as_slice()),
        TensorRef::Borrowed(b) => b.values::<T>(),
    }
    .expect("feeds are contiguous and of the register's dtype")
}

/// Where an instruction reads an operand's block: a register, or, for an input, the input's
/// contiguous elements from an offset (no copy into a register first).
#[derive(Clone, Copy)]
enum Operand<'a> {
    Reg(&'a Buf),
    Feed(TensorRef<'a>, usize),
}

impl<'a> Operand<'a> {
    /// The block's first `n` elements.
    fn get<T: BufElem>(self, n: usize) -> &'a [T] {
        match self {
            Operand::Reg(b) => &T::get(b)[..n],
            Operand::Feed(t, at) => &contiguous::<T>(t)[at..at + n],
        }
    }
}

/// Runs `prog` over `inputs` in blocks. `Ok(None)` means the layout is not one the chunked
/// kernel handles (see the module doc); an `Err` carries the first failing instruction's
/// index and error, found in block order (callers wanting the op-by-op error order
/// re-evaluate op by op).
pub fn run_fused(
    prog: &FusedProgram<'_>,
    inputs: &[Tensor],
) -> Result<Option<Vec<Tensor>>, (usize, KernelError)> {
    let refs: Vec<TensorRef<'_>> = inputs.iter().map(TensorRef::Owned).collect();
    run_fused_on(prog, &refs)
}

/// [`run_fused`] over inputs that may be borrowed (rows of a mapped file, read in place).
pub fn run_fused_on(
    prog: &FusedProgram<'_>,
    inputs: &[TensorRef<'_>],
) -> Result<Option<Vec<Tensor>>, (usize, KernelError)> {
    let Some(shape) = output_shape(inputs) else {
        return Ok(None);
    };
    if !types_ok(prog, inputs) || !results_are_full(prog, inputs, &shape) {
        return Ok(None);
    }
    let total: usize = shape.iter().product();
    let mut feeds: Vec<Feed<'_>> = inputs
        .iter()
        .map(|&t| {
            let owned = match t {
                TensorRef::Owned(t) if crate::dispatch!(t, a => a.as_slice().is_none()) => Some(
                    crate::map_same!(t, a => a.as_standard_layout().into_owned().into_shared()),
                ),
                _ => None,
            };
            Feed {
                tensor: t,
                owned,
                len: t.len(),
                pattern: None,
            }
        })
        .collect();
    let block = BLOCK.min(total.max(1));
    for f in &mut feeds {
        if f.len > 1 && f.len < total {
            let t = f.data().to_tensor();
            f.pattern = Some(pattern(&t, block + f.len));
        }
    }
    let plan = Plan::new(prog, &feeds, total);
    let mut regs: Vec<Buf> = (0..prog.ops.len())
        .map(|i| {
            let len = if plan.unused(i) { 0 } else { block };
            with_type!(prog.dtypes[i], T => T::new_buf(len))
        })
        .collect();
    for (i, op) in prog.ops.iter().enumerate() {
        match op {
            FusedOp::Const(s) => fill_scalar(&mut regs[i], *s),
            FusedOp::Input(n) if plan.uniform[i] => {
                copy_cyclic(&mut regs[i], 0, &feeds[*n], 0, block)
            }
            _ => {}
        }
    }
    let dim = IxDyn(&shape);
    if let ([r], true) = (prog.results, plan.parallel) {
        let t = with_type!(prog.dtypes[*r as usize], T => {
            T::wrap(ArcArray::from_shape_vec(dim, run_parallel::<T>(prog, &feeds, &plan, &regs, *r, total, block)?)
                .expect("length matches shape"))
        });
        lend(&t);
        return Ok(Some(vec![t]));
    }
    let mut outs: Vec<Buf>;
    if let (true, [last]) = (plan.direct_out, prog.results) {
        outs = vec![with_type!(prog.dtypes[*last as usize], T => T::full_buf(total))];
        run_blocks(
            prog,
            &feeds,
            &plan,
            &mut regs,
            Some(&mut outs[0]),
            0,
            total,
            block,
            &mut |_, _, _| {},
        )?;
    } else {
        outs = prog
            .results
            .iter()
            // Filled by appending each block: no zeroing pass over a large fresh buffer.
            .map(|&r| with_type!(prog.dtypes[r as usize], T => T::empty_buf(total)))
            .collect();
        run_blocks(
            prog,
            &feeds,
            &plan,
            &mut regs,
            None,
            0,
            total,
            block,
            &mut |regs, _, n| {
                for (o, &r) in outs.iter_mut().zip(prog.results) {
                    with_type!(prog.dtypes[r as usize], T => {
                        T::vec_mut(o).extend_from_slice(&T::get(&regs[r as usize])[..n]);
                    });
                }
            },
        )?;
    }
    let tensors = outs
        .into_iter()
        .map(|b| {
            macro_rules! wrap {
                ($($v:ident),*) => {
                    match b { $(Buf::$v(v) => Tensor::$v(ArcArray::from_shape_vec(dim.clone(), v).expect("length matches shape")),)* }
                };
            }
            wrap!(Bool, I8, U8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64)
        })
        .collect::<Vec<Tensor>>();
    for t in &tensors {
        lend(t);
    }
    Ok(Some(tensors))
}

/// Sets how many threads large fused kernels use (the process-wide pool; the first call
/// wins, later calls change nothing). Without a call, one per CPU.
pub fn set_kernel_threads(n: usize) {
    if !pool_usable() {
        return;
    }
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .build_global();
}

/// Whether this process may use the pool of kernel threads: `false` in a child forked
/// (Python's `multiprocessing`, a DataLoader worker) from the process that started the pool,
/// whose threads the child does not have; the child then computes every kernel itself
/// instead of waiting for them forever. The pid is recorded before the pool's first use.
pub fn pool_usable() -> bool {
    static OWNER: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *OWNER.get_or_init(std::process::id) == std::process::id()
}

/// Whether work split over the pool of kernel threads runs in parallel here: the pool is
/// this process's (see [`pool_usable`]), has two threads or more, and no other thread of the
/// run is at work on a lane ([`LaneWork`]).
pub fn pool_parallel() -> bool {
    pool_usable() && rayon::current_num_threads() > 1 && LANE_WORK.load(Ordering::Relaxed) == 0
}

/// How many threads are inside a [`LaneWork`] section now.
static LANE_WORK: AtomicUsize = AtomicUsize::new(0);

/// Marks the calling thread as computing a lane's share of a run (a lane helper's job, a
/// `prefetch` producer's element) until dropped. While any thread is, kernels do not split
/// over the pool: the lanes already keep the cores busy, and pool threads on top of them
/// only contend for the same cores. W6 at two threads split each image's normalize and
/// each batch's stacking over the pool beside two decoding lanes: 26-33% of the run was
/// serial and it took 1.43-1.79 s; without, 3.9% and 1.16-1.17 s.
#[must_use]
pub struct LaneWork(());

impl LaneWork {
    /// Enters a lane's section.
    pub fn begin() -> LaneWork {
        LANE_WORK.fetch_add(1, Ordering::Relaxed);
        LaneWork(())
    }
}

impl Drop for LaneWork {
    fn drop(&mut self) {
        LANE_WORK.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Outputs of at least this many elements may be computed by several pool threads.
const PARALLEL_MIN: usize = 32 * BLOCK;
/// ... and only when the work (elements times [`work_per_element`]) reaches this: waking a
/// pool thread costs tens of microseconds here, as much as a cheap program spends on a
/// quarter of a million elements, so splitting less work than this loses time.
const PARALLEL_WORK_MIN: usize = 1 << 20;

/// A rough cost of one output element of `prog`, in units of one simple vector op: what
/// decides whether splitting a run over threads pays for the hand-off.
fn work_per_element(prog: &FusedProgram<'_>, uniform: &[bool]) -> usize {
    prog.ops
        .iter()
        .zip(uniform)
        .filter(|(_, u)| !**u)
        .map(|(op, _)| match op {
            FusedOp::Unary(op, _) => op.cost(),
            FusedOp::Binary(op, ..) => op.cost(),
            _ => 1,
        })
        .sum()
}

/// Elements per parallel task (a multiple of the block, so tasks see whole blocks).
const TASK: usize = 16 * BLOCK;

/// How a run treats each instruction (vectors indexed by register), decided before the
/// block loop from the program and its inputs.
struct Plan {
    /// Filled once before the loop (constants, one-element inputs).
    uniform: Vec<bool>,
    /// An input read in place, by input number: no work, no register. Inputs returned as
    /// they are stay registers (results are copied out of registers).
    direct: Vec<Option<usize>>,
    /// For a cast run together with its one user (see [`cast_pairs`]), that user.
    paired: Vec<Option<usize>>,
    /// An instruction already run with the cast before it.
    done_early: Vec<bool>,
    /// The one result is computed by tasks on the thread pool, each filling a part of it.
    parallel: bool,
    /// The one result is the last instruction, which writes straight into the output.
    direct_out: bool,
}

impl Plan {
    fn new(prog: &FusedProgram<'_>, feeds: &[Feed<'_>], total: usize) -> Plan {
        let n = prog.ops.len();
        let uniform: Vec<bool> = prog
            .ops
            .iter()
            .map(|op| match op {
                FusedOp::Const(_) => true,
                FusedOp::Input(k) => feeds[*k].len == 1,
                _ => false,
            })
            .collect();
        let direct: Vec<Option<usize>> = prog
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| match op {
                FusedOp::Input(k) if !uniform[i] && !prog.results.contains(&(i as u32)) => Some(*k),
                _ => None,
            })
            .collect();
        let free: Vec<bool> = (0..n).map(|i| uniform[i] || direct[i].is_some()).collect();
        let paired = cast_pairs(prog, &free);
        let mut done_early = vec![false; n];
        for j in paired.iter().flatten() {
            done_early[*j] = true;
        }
        let parallel = prog.results.len() == 1
            && total >= PARALLEL_MIN
            && total.saturating_mul(work_per_element(prog, &uniform)) >= PARALLEL_WORK_MIN
            && pool_parallel();
        let direct_out = match (prog.results, n.checked_sub(1)) {
            ([r], Some(last)) => {
                !parallel && *r as usize == last && direct[last].is_none() && !uniform[last]
            }
            _ => false,
        };
        Plan {
            uniform,
            direct,
            paired,
            done_early,
            parallel,
            direct_out,
        }
    }

    /// Whether register `i` is never read or written (it is then left empty).
    fn unused(&self, i: usize) -> bool {
        self.direct[i].is_some()
            || self.paired[i].is_some()
            || (self.direct_out && i + 1 == self.uniform.len())
    }
}

/// For each instruction that is a cast to f32 whose only use is an f32 `+ - * /` with
/// another operand, with nothing but inputs and constants (no work in the block loop)
/// between them: that user. The two then run as one pass ([`cast_then_binary`]), the cast's
/// values never stored. Both ways compute each element with the same two operations, so
/// the bits are the same.
fn cast_pairs(prog: &FusedProgram<'_>, free: &[bool]) -> Vec<Option<usize>> {
    let mut uses = vec![0usize; prog.ops.len()];
    for op in prog.ops {
        match op {
            FusedOp::Input(_) | FusedOp::Const(_) => {}
            FusedOp::Unary(_, a) | FusedOp::Cast(a) => uses[*a as usize] += 1,
            FusedOp::Binary(_, a, b) => {
                uses[*a as usize] += 1;
                uses[*b as usize] += 1;
            }
            FusedOp::Select(a, b, c) | FusedOp::Clip(a, b, c) => {
                for r in [a, b, c] {
                    uses[*r as usize] += 1;
                }
            }
        }
    }
    for r in prog.results {
        uses[*r as usize] += 1;
    }
    (0..prog.ops.len())
        .map(|i| {
            let FusedOp::Cast(a) = &prog.ops[i] else {
                return None;
            };
            let j = (i + 1..prog.ops.len()).find(|&j| !free[j])?;
            let FusedOp::Binary(bop, l, r) = &prog.ops[j] else {
                return None;
            };
            let me = i as u32;
            let pairs = uses[i] == 1
                && prog.dtypes[i] == DType::F32
                && prog.dtypes[j] == DType::F32
                && matches!(
                    bop,
                    BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div
                )
                && (*l == me) != (*r == me)
                && castable_to_f32(prog.dtypes[*a as usize]);
            pairs.then_some(j)
        })
        .collect()
}

/// The source dtypes [`cast_then_binary`] takes.
fn castable_to_f32(d: DType) -> bool {
    matches!(
        d,
        DType::I8 | DType::U8 | DType::I16 | DType::U16 | DType::I32 | DType::I64
    )
}

/// `op(cast(x, f32), y)` (or `op(y, cast(x, f32))` when `!cast_left`) over `n` elements
/// into `dst` at `off`, with the same scalar operations the separate instructions use.
/// Returns false (doing nothing) for pairs [`cast_pairs`] does not make.
#[allow(clippy::too_many_arguments)]
fn cast_then_binary(
    op: BinaryOp,
    from: DType,
    x: Operand<'_>,
    y: Operand<'_>,
    cast_left: bool,
    dst: &mut Buf,
    off: usize,
    n: usize,
) -> bool {
    let ys = y.get::<f32>(n);
    let out = &mut f32::get_mut(dst)[off..off + n];
    macro_rules! run {
        ($s:ty) => {{
            let xs = x.get::<$s>(n);
            match (op, cast_left) {
                (BinaryOp::Add, true) => {
                    super::simd::map_binary(xs, ys, out, |a: $s, b: f32| NumElem::add(a as f32, b))
                }
                (BinaryOp::Add, false) => {
                    super::simd::map_binary(xs, ys, out, |a: $s, b: f32| NumElem::add(b, a as f32))
                }
                (BinaryOp::Sub, true) => {
                    super::simd::map_binary(xs, ys, out, |a: $s, b: f32| NumElem::sub(a as f32, b))
                }
                (BinaryOp::Sub, false) => {
                    super::simd::map_binary(xs, ys, out, |a: $s, b: f32| NumElem::sub(b, a as f32))
                }
                (BinaryOp::Mul, true) => {
                    super::simd::map_binary(xs, ys, out, |a: $s, b: f32| NumElem::mul(a as f32, b))
                }
                (BinaryOp::Mul, false) => {
                    super::simd::map_binary(xs, ys, out, |a: $s, b: f32| NumElem::mul(b, a as f32))
                }
                (BinaryOp::Div, true) => super::simd::map_binary(xs, ys, out, |a: $s, b: f32| {
                    FloatElem::div(a as f32, b)
                }),
                (BinaryOp::Div, false) => super::simd::map_binary(xs, ys, out, |a: $s, b: f32| {
                    FloatElem::div(b, a as f32)
                }),
                _ => return false,
            }
            true
        }};
    }
    match from {
        DType::I8 => run!(i8),
        DType::U8 => run!(u8),
        DType::I16 => run!(i16),
        DType::U16 => run!(u16),
        DType::I32 => run!(i32),
        DType::I64 => run!(i64),
        _ => false,
    }
}

/// Runs the program over output elements `from..to`, block by block, handing each block's
/// registers to `emit` with the block's start and length. With `out`, the last instruction
/// writes its block into `out` (at the block's start) instead of its register.
#[allow(clippy::too_many_arguments)]
fn run_blocks(
    prog: &FusedProgram<'_>,
    feeds: &[Feed<'_>],
    plan: &Plan,
    regs: &mut [Buf],
    mut out: Option<&mut Buf>,
    from: usize,
    to: usize,
    block: usize,
    emit: &mut dyn FnMut(&[Buf], usize, usize),
) -> Result<(), (usize, KernelError)> {
    let Plan {
        uniform,
        direct,
        paired,
        done_early,
        ..
    } = plan;
    let mut start = from;
    let last = prog.ops.len().wrapping_sub(1);
    while start < to {
        let n = block.min(to - start);
        for (i, op) in prog.ops.iter().enumerate() {
            if uniform[i] || direct[i].is_some() || done_early[i] {
                continue;
            }
            if let Some(j) = paired[i] {
                // The cast and its user, in one pass into the user's register.
                let (done, rest) = regs.split_at_mut(j);
                let (dst, off) = match out.as_deref_mut() {
                    Some(o) if j == last => (o, start),
                    _ => (&mut rest[0], 0),
                };
                let operand = |r: u32| match direct[r as usize] {
                    Some(k) => feeds[k].at(start),
                    None => Operand::Reg(&done[r as usize]),
                };
                if let (FusedOp::Cast(a), FusedOp::Binary(bop, l, r)) = (op, &prog.ops[j]) {
                    let (other, cast_left) = if *l as usize == i {
                        (*r, true)
                    } else {
                        (*l, false)
                    };
                    let from_dt = prog.dtypes[*a as usize];
                    if cast_then_binary(
                        *bop,
                        from_dt,
                        operand(*a),
                        operand(other),
                        cast_left,
                        dst,
                        off,
                        n,
                    ) {
                        continue;
                    }
                }
                unreachable!("cast_pairs pairs only casts and ops cast_then_binary runs");
            }
            let (done, rest) = regs.split_at_mut(i);
            let (dst, off) = match out.as_deref_mut() {
                Some(o) if i == last => (o, start),
                _ => (&mut rest[0], 0),
            };
            step(
                op,
                prog.dtypes,
                i,
                done,
                dst,
                off,
                feeds,
                uniform,
                direct,
                start,
                n,
            )
            .map_err(|e| match e {
                // The slice kernels count from the block's start; report the output index.
                KernelError::DivisionByZero { index } => (
                    i,
                    KernelError::DivisionByZero {
                        index: start + index,
                    },
                ),
                KernelError::NegativePower { index } => (
                    i,
                    KernelError::NegativePower {
                        index: start + index,
                    },
                ),
                e => (i, e),
            })?;
        }
        emit(regs, start, n);
        start += n;
    }
    Ok(())
}

/// The single result `r` computed by parallel tasks, each over whole blocks of its own part
/// of the output with its own registers. Every element is computed as in the sequential
/// loop, so the bits are the same; the error reported is the first in output order.
#[allow(clippy::too_many_arguments)]
#[allow(unsafe_code)]
fn run_parallel<T: BufElem>(
    prog: &FusedProgram<'_>,
    feeds: &[Feed<'_>],
    plan: &Plan,
    regs: &[Buf],
    r: u32,
    total: usize,
    block: usize,
) -> Result<Vec<T>, (usize, KernelError)> {
    use rayon::prelude::*;
    // Written straight into spare capacity: zeroing a fresh buffer first (W2's 19 MB per
    // batch) was a pass on the calling thread while the pool's threads waited.
    let mut out: Vec<T> = match take_recycled(total) {
        Some(mut v) => {
            v.clear();
            v
        }
        None => Vec::with_capacity(total),
    };
    // The calling thread only waits for the pool's threads (it is never one of them).
    let waiting = crate::busy::Waiting::begin();
    let results: Vec<Result<(), (usize, KernelError)>> = out.spare_capacity_mut()[..total]
        .par_chunks_mut(TASK)
        .enumerate()
        .map(|(k, part)| {
            let _working = crate::busy::Working::begin();
            let mut regs = regs.to_vec();
            let from = k * TASK;
            let mut written = 0;
            let done = run_blocks(
                prog,
                feeds,
                plan,
                &mut regs,
                None,
                from,
                from + part.len(),
                block,
                &mut |regs, start, n| {
                    let dst = &mut part[start - from..start - from + n];
                    for (d, &v) in dst.iter_mut().zip(&T::get(&regs[r as usize])[..n]) {
                        d.write(v);
                    }
                    written += n;
                },
            );
            match done {
                Ok(()) if written == part.len() => Ok(()),
                Ok(()) => unreachable!("run_blocks writes every element of its range"),
                Err(e) => Err(e),
            }
        })
        .collect();
    drop(waiting);
    match results.into_iter().find_map(Result::err) {
        Some(e) => Err(e),
        None => {
            // SAFETY: the chunks cover the first `total` slots, and each task checked that
            // `run_blocks` wrote all of its chunk (`written == part.len()`, the blocks it
            // hands out being disjoint and in order); on any error `out` stays empty.
            unsafe { out.set_len(total) };
            Ok(out)
        }
    }
}

/// Large outputs of earlier calls on this thread, kept (shared) so that their buffers can
/// be written again once every consumer has dropped them: a fresh multi-megabyte buffer
/// costs a page fault per 4 KiB on first write, more than the kernel's own work.
#[derive(Default)]
struct Recycler {
    lent: Vec<Tensor>,
    bytes: usize,
}

thread_local! {
    static RECYCLER: std::cell::RefCell<Recycler> = std::cell::RefCell::default();
    static PATTERNS: std::cell::RefCell<Vec<(Tensor, Tensor)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many patterns a thread keeps (the short inputs of the programs it runs: a mean, a
/// scale; a program called once per block meets the same ones every call).
const PATTERNS_KEPT: usize = 8;
/// Only inputs up to this many elements have their patterns kept (bounding what the
/// cache holds to a few hundred KiB per thread).
const PATTERN_SOURCE_MAX: usize = 4096;

/// `t` (contiguous) repeated to `reps` elements, flat. Kept per thread with a handle on `t`:
/// while the handle lives, `t`'s buffer can be neither freed nor written in place (it is
/// shared), so the same buffer address means the same values, and the next call with this
/// input reuses the pattern.
fn pattern(t: &Tensor, reps: usize) -> Tensor {
    let same = |(src, pat): &(Tensor, Tensor)| {
        src.dtype() == t.dtype()
            && src.shape() == t.shape()
            && pat.len() == reps
            && crate::dispatch!(src, a => a.as_ptr() as usize)
                == crate::dispatch!(t, a => a.as_ptr() as usize)
    };
    if let Some(p) = PATTERNS.with(|c| c.borrow().iter().find(|e| same(e)).map(|(_, p)| p.clone()))
    {
        return p;
    }
    let p = with_type!(t.dtype(), T => {
        let src = T::view(t).and_then(|a| a.as_slice()).expect("contiguous by construction");
        // Doubling copies keep the data a whole number of periods until the last.
        let mut data: Vec<T> = Vec::with_capacity(reps);
        data.extend_from_slice(src);
        while data.len() < reps {
            let k = (reps - data.len()).min(data.len());
            data.extend_from_within(..k);
        }
        Tensor::from_vec(&[reps], data).expect("length matches shape")
    });
    if t.len() > PATTERN_SOURCE_MAX {
        return p;
    }
    PATTERNS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= PATTERNS_KEPT {
            c.remove(0);
        }
        c.push((t.clone(), p.clone()));
    });
    p
}

/// Outputs smaller than this come from the allocator (which reuses small blocks anyway).
const RECYCLE_MIN_BYTES: usize = 16 << 10;
/// The most memory kept for reuse per thread.
const RECYCLE_MAX_BYTES: usize = 64 << 20;

/// Remembers a large output for reuse.
fn lend(t: &Tensor) {
    let bytes = t.nbytes();
    if !(RECYCLE_MIN_BYTES..=RECYCLE_MAX_BYTES).contains(&bytes) {
        return;
    }
    RECYCLER.with(|r| {
        let mut r = r.borrow_mut();
        while r.bytes + bytes > RECYCLE_MAX_BYTES && !r.lent.is_empty() {
            let old = r.lent.remove(0);
            r.bytes -= old.nbytes();
        }
        r.bytes += bytes;
        r.lent.push(t.clone());
    });
}

/// An empty vector with room for `capacity` elements: a recycled buffer no one else holds
/// any more, if there is one that fits.
fn recycled_vec<T: TensorElem>(capacity: usize) -> Vec<T> {
    match take_recycled(capacity) {
        Some(mut v) => {
            v.clear();
            v
        }
        None => Vec::with_capacity(capacity),
    }
}

/// A buffer of `len` elements to be overwritten: a recycled one with its old contents, else
/// a zeroed one (a pass of its own: below the allocator's mapping threshold, set by
/// `limits::tune_allocator`, it comes from the heap, not as untouched pages).
fn full_vec<T: TensorElem>(len: usize) -> Vec<T> {
    match take_recycled(len) {
        Some(mut v) => {
            v.truncate(len);
            v
        }
        None => vec![T::default(); len],
    }
}

/// A recycled buffer of at least `len` elements (with its old contents), if one is free.
fn take_recycled<T: TensorElem>(len: usize) -> Option<Vec<T>> {
    let capacity = len;
    if capacity * std::mem::size_of::<T>() >= RECYCLE_MIN_BYTES {
        let found = RECYCLER.with(|r| {
            let mut r = r.borrow_mut();
            // Newest first: the buffer freed last is the one most likely still in cache
            // (oldest first handed out, behind a batch of 32 decoded images, buffers
            // written 30 images ago: W6's normalize wrote into cold memory).
            for i in (0..r.lent.len()).rev() {
                let fits = r.lent[i].dtype() == T::DTYPE && r.lent[i].len() >= capacity;
                if fits {
                    let t = r.lent.remove(i);
                    let bytes = t.nbytes();
                    match T::unwrap(t).map(|a| a.try_into_owned_nocopy()) {
                        Ok(Ok(owned)) => {
                            r.bytes -= bytes;
                            let (v, _) = owned.into_raw_vec_and_offset();
                            return Some(v);
                        }
                        Ok(Err(shared)) => r.lent.insert(i, T::wrap(shared)),
                        Err(t) => r.lent.insert(i, t),
                    }
                }
            }
            None
        });
        return found;
    }
    None
}

/// The output shape when every input is the full shape, a trailing part of it, or a
/// single element.
fn output_shape(inputs: &[TensorRef<'_>]) -> Option<Vec<usize>> {
    // The usual case, without building intermediate shapes: one input of the highest rank
    // whose shape every other input either ends (a trailing part) or has one element.
    if let Some(big) = inputs.iter().max_by_key(|t| t.rank())
        && inputs
            .iter()
            .all(|t| t.len() == 1 || big.shape().ends_with(t.shape()))
    {
        return Some(big.shape().to_vec());
    }
    let mut full: Vec<usize> = Vec::new();
    for t in inputs {
        full = super::broadcast_shapes(&full, t.shape())?;
    }
    let ok = inputs.iter().all(|t| {
        let s = t.shape();
        t.len() == 1 || full[full.len() - s.len()..] == *s
    });
    ok.then_some(full)
}

/// Whether every result of `prog` depends on input `k`.
fn depends_on_input(prog: &FusedProgram<'_>, k: usize) -> bool {
    let mut dep = vec![false; prog.ops.len()];
    for (i, op) in prog.ops.iter().enumerate() {
        let on = |r: &u32| dep.get(*r as usize).copied().unwrap_or(false);
        dep[i] = match op {
            FusedOp::Input(n) => *n == k,
            FusedOp::Const(_) => false,
            FusedOp::Unary(_, a) | FusedOp::Cast(a) => on(a),
            FusedOp::Binary(_, a, b) => on(a) || on(b),
            FusedOp::Select(a, b, c) | FusedOp::Clip(a, b, c) => on(a) || on(b) || on(c),
        };
    }
    prog.results
        .iter()
        .all(|r| dep.get(*r as usize).copied().unwrap_or(false))
}

/// Whether every result has the full shape when evaluated op by op (a result computed
/// only from constants and small inputs would be smaller there).
fn results_are_full(prog: &FusedProgram<'_>, inputs: &[TensorRef<'_>], full: &[usize]) -> bool {
    // The common case without allocating: each result depends on an input that has the
    // full shape (a result's shape is the broadcast of the inputs it depends on).
    if let Some(big) = inputs.iter().position(|t| t.shape() == full)
        && depends_on_input(prog, big)
    {
        return true;
    }
    let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(prog.ops.len());
    for op in prog.ops {
        let of = |regs: &[u32], shapes: &[Vec<usize>]| {
            regs.iter().try_fold(Vec::new(), |acc, r| {
                super::broadcast_shapes(&acc, &shapes[*r as usize])
            })
        };
        let s = match op {
            FusedOp::Input(n) => Some(inputs[*n].shape().to_vec()),
            FusedOp::Const(_) => Some(Vec::new()),
            FusedOp::Unary(_, a) | FusedOp::Cast(a) => of(&[*a], &shapes),
            FusedOp::Binary(_, a, b) => of(&[*a, *b], &shapes),
            FusedOp::Select(a, b, c) | FusedOp::Clip(a, b, c) => of(&[*a, *b, *c], &shapes),
        };
        let Some(s) = s else { return false };
        shapes.push(s);
    }
    prog.results.iter().all(|r| shapes[*r as usize] == full)
}

/// Whether the inputs and every instruction's operands have the dtypes the program says.
fn types_ok(prog: &FusedProgram<'_>, inputs: &[TensorRef<'_>]) -> bool {
    let d = |r: &u32| prog.dtypes.get(*r as usize).copied();
    prog.dtypes.len() == prog.ops.len()
        && prog.results.iter().all(|r| (*r as usize) < prog.ops.len())
        && prog.ops.iter().enumerate().all(|(i, op)| {
            let me = prog.dtypes[i];
            let before = |r: &u32| (*r as usize) < i;
            match op {
                FusedOp::Input(n) => inputs.get(*n).is_some_and(|t| t.dtype() == me),
                FusedOp::Const(s) => s.dtype() == me,
                FusedOp::Unary(op, a) => before(a) && op.result_dtype(d(a).unwrap_or(me)) == Ok(me),
                FusedOp::Binary(op, a, b) => {
                    before(a)
                        && before(b)
                        && d(a) == d(b)
                        && d(a).is_some_and(|x| op.result_dtype(x) == Ok(me))
                }
                FusedOp::Cast(a) => before(a),
                FusedOp::Select(c, a, b) => {
                    before(c)
                        && before(a)
                        && before(b)
                        && d(c) == Some(DType::Bool)
                        && d(a) == Some(me)
                        && d(b) == Some(me)
                }
                FusedOp::Clip(x, lo, hi) => {
                    before(x)
                        && before(lo)
                        && before(hi)
                        && me != DType::Bool
                        && [x, lo, hi].iter().all(|r| d(r) == Some(me))
                }
            }
        })
}

fn fill_scalar(buf: &mut Buf, s: Scalar) {
    macro_rules! fill {
        ($($v:ident),*) => {
            match (buf, s) {
                $((Buf::$v(b), Scalar::$v(x)) => b.fill(x),)*
                _ => unreachable!("register dtypes are checked before the run"),
            }
        };
    }
    fill!(
        Bool, I8, U8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64
    )
}

/// Copies output elements `start..start + n` of a cyclically repeated input into `buf`.
fn copy_cyclic(buf: &mut Buf, off: usize, feed: &Feed<'_>, start: usize, n: usize) {
    if let Some(p) = &feed.pattern {
        with_type!(p.dtype(), T => {
            let src = T::view(p).and_then(|a| a.as_slice()).expect("built contiguous");
            let s = start % feed.len;
            T::get_mut(buf)[off..off + n].copy_from_slice(&src[s..s + n]);
        });
        return;
    }
    let t = feed.data();
    with_type!(t.dtype(), T => {
        let src = contiguous::<T>(t);
        let dst = &mut T::get_mut(buf)[off..off + n];
        let s = start % src.len();
        if src.len() == 1 {
            dst.fill(src[0]);
        } else if s + n <= src.len() {
            dst.copy_from_slice(&src[s..s + n]);
        } else {
            for (k, d) in dst.iter_mut().enumerate() {
                *d = src[(start + k) % src.len()];
            }
        }
    })
}

/// Runs one instruction on one block of `n` elements.
#[allow(clippy::too_many_arguments)]
fn step(
    op: &FusedOp,
    dtypes: &[DType],
    i: usize,
    regs: &[Buf],
    dst: &mut Buf,
    off: usize,
    feeds: &[Feed<'_>],
    uniform: &[bool],
    direct: &[Option<usize>],
    start: usize,
    n: usize,
) -> Result<(), KernelError> {
    let dt = |r: &u32| dtypes[*r as usize];
    let reg = |r: &u32| match direct[*r as usize] {
        Some(k) => feeds[k].at(start),
        None => Operand::Reg(&regs[*r as usize]),
    };
    let bad = |what: &str| {
        KernelError::InvalidArgument(format!("`{what}` is not defined on {}", dtypes[i]))
    };
    match op {
        FusedOp::Input(k) => copy_cyclic(dst, off, &feeds[*k], start, n),
        FusedOp::Const(_) => {}
        FusedOp::Unary(op, a) => {
            let src = reg(a);
            match op.domain() {
                UnaryDomain::Logic => {
                    unary_fn!(logic, *op, bool, f => map1::<bool, bool>(src, dst, off, n, f), _ => return Err(bad(op.name())))
                }
                UnaryDomain::FloatTest => with_float_type!(dt(a), T => {
                    unary_fn!(test, *op, T, f => map1::<T, bool>(src, dst, off, n, f), _ => return Err(bad(op.name())))
                }, _ => return Err(bad(op.name()))),
                UnaryDomain::Float => with_float_type!(dt(a), T => {
                    float_unary_slice::<T>(*op, src.get::<T>(n), &mut T::get_mut(dst)[off..off + n])?
                }, _ => return Err(bad(op.name()))),
                UnaryDomain::Num => with_num_type!(dt(a), T => {
                    num_unary_slice::<T>(*op, src.get::<T>(n), &mut T::get_mut(dst)[off..off + n])?
                }, bool => return Err(bad(op.name()))),
            }
        }
        FusedOp::Binary(op, a, b) => {
            let (x, y) = (reg(a), reg(b));
            match op.domain() {
                BinaryDomain::Logic => {
                    binary_fn!(logic, *op, bool, f => map2::<bool, bool, bool>(x, y, dst, off, n, f), _ => return Err(bad(op.name())))
                }
                BinaryDomain::Equality => with_type!(dt(a), T => {
                    binary_fn!(cmp, *op, T, f => map2::<T, T, bool>(x, y, dst, off, n, f), _ => return Err(bad(op.name())))
                }),
                BinaryDomain::Order => with_num_type!(dt(a), T => {
                    binary_fn!(cmp, *op, T, f => map2::<T, T, bool>(x, y, dst, off, n, f), _ => return Err(bad(op.name())))
                }, bool => return Err(bad(op.name()))),
                BinaryDomain::FloatArith => with_float_type!(dt(a), T => {
                    float_binary_slice::<T>(*op, x.get::<T>(n), y.get::<T>(n), &mut T::get_mut(dst)[off..off + n])?
                }, _ => return Err(bad(op.name()))),
                BinaryDomain::Arith
                    if matches!(op, BinaryOp::FloorDiv | BinaryOp::Mod)
                        && uniform[*b as usize]
                        && by_constant(*op, dt(a), x, y, dst, off, n) => {}
                BinaryDomain::Arith => with_num_type!(dt(a), T => {
                    binary_slice::<T>(*op, x.get::<T>(n), y.get::<T>(n), &mut T::get_mut(dst)[off..off + n])?
                }, bool => return Err(bad(op.name()))),
            }
        }
        FusedOp::Cast(a) if primitive_cast(dt(a), dtypes[i], reg(a), dst, off, n) => {}
        FusedOp::Cast(a) => {
            with_type!(dt(a), S => with_type!(dtypes[i], D => {
                cast_slice::<S, D>(reg(a).get::<S>(n), &mut D::get_mut(dst)[off..off + n])
            }))
        }
        FusedOp::Select(c, a, b) => with_type!(dtypes[i], T => {
            let (c, x, y) = (reg(c).get::<bool>(n), reg(a).get::<T>(n), reg(b).get::<T>(n));
            for (k, o) in T::get_mut(dst)[off..off + n].iter_mut().enumerate() {
                *o = if c[k] { x[k] } else { y[k] };
            }
        }),
        FusedOp::Clip(x, lo, hi) => with_num_type!(dtypes[i], T => {
            let (x, l, h) = (reg(x).get::<T>(n), reg(lo).get::<T>(n), reg(hi).get::<T>(n));
            for (k, o) in T::get_mut(dst)[off..off + n].iter_mut().enumerate() {
                *o = NumElem::minimum(NumElem::maximum(x[k], l[k]), h[k]);
            }
        }, bool => return Err(bad("clip"))),
    }
    Ok(())
}

/// A cast between primitive numeric dtypes into a float or a wide integer, as Rust's `as`:
/// one vector instruction per lane instead of [`cast_slice`]'s route through 128-bit
/// integers (whose conversion to a float is a library call). The same bits: `as` rounds
/// integers to the nearest float, truncates and saturates floats into integers (NaN to 0)
/// and wraps integers, which is the cast rule. Returns false (doing nothing) for other
/// pairs, which take [`cast_slice`].
fn primitive_cast(
    from: DType,
    to: DType,
    src: Operand<'_>,
    dst: &mut Buf,
    off: usize,
    n: usize,
) -> bool {
    macro_rules! to {
        ($s:ty, $($dv:ident => $d:ty),*) => {
            match to {
                $(DType::$dv => {
                    super::simd::map_unary(
                        src.get::<$s>(n),
                        &mut <$d>::get_mut(dst)[off..off + n],
                        |v: $s| v as $d,
                    );
                    true
                })*
                _ => false,
            }
        };
    }
    macro_rules! from {
        ($($sv:ident => $s:ty),*) => {
            match from {
                $(DType::$sv => to!($s, F32 => f32, F64 => f64, I32 => i32, I64 => i64),)*
                _ => false,
            }
        };
    }
    from!(I8 => i8, U8 => u8, I16 => i16, U16 => u16, I32 => i32, U32 => u32, I64 => i64, U64 => u64, F32 => f32, F64 => f64)
}

/// Python's `//` or `%` of signed integers by one divisor `>= 2` (a constant): one multiply
/// per element instead of a hardware division. Returns false (and does nothing) for other
/// dtypes or divisors, which take the general path.
#[allow(clippy::too_many_arguments)]
fn by_constant(
    op: BinaryOp,
    dtype: DType,
    x: Operand<'_>,
    y: Operand<'_>,
    dst: &mut Buf,
    off: usize,
    n: usize,
) -> bool {
    macro_rules! run {
        ($t:ty) => {{
            let Some(div) = y
                .get::<$t>(1)
                .first()
                .and_then(|&d| FixedDivisor::new(d as i64))
            else {
                return false;
            };
            let out = &mut <$t>::get_mut(dst)[off..off + n];
            let x = x.get::<$t>(n);
            if super::simd::vectorized()
                && div.d < SMALL
                // -SMALL <= v < SMALL for all v, as one OR over the shifted values (no early
                // exit, so it vectorizes).
                && x.iter().fold(0u64, |m, &v| m | (v as i64 as u64).wrapping_add(SMALL)) < 2 * SMALL
            {
                // Small values: the same quotient in f64, 4 lanes at a time.
                let d = div.d as f64;
                if op == BinaryOp::Mod {
                    super::simd::map_unary(x, out, |v: $t| {
                        let v = small_to_f64(v as i64);
                        f64_to_small(v - (v / d).floor() * d) as $t
                    });
                } else {
                    super::simd::map_unary(x, out, |v: $t| {
                        f64_to_small((small_to_f64(v as i64) / d).floor()) as $t
                    });
                }
            } else if op == BinaryOp::Mod {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = div.floor_rem(v as i64) as $t;
                }
            } else {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = div.floor_div(v as i64) as $t;
                }
            }
            true
        }};
    }
    match dtype {
        DType::I64 => run!(i64),
        DType::I32 => run!(i32),
        DType::I16 => run!(i16),
        DType::I8 => run!(i8),
        _ => false,
    }
}

/// Integers from `-SMALL` up to `SMALL` (excluded) are exact in f64 with room to spare,
/// and for them
/// `floor(x / d)` computed in f64 is the exact floor quotient: `x / d` is either an integer
/// (exact) or at least `1/d` away from the next one, while rounding moves it by at most
/// `|x / d| * 2^-53 < 1 / (4d)`. The remainder `x - q * d` is then exact too.
const SMALL: u64 = 1 << 51;

/// 1.5 * 2^52: added to an integer below 2^51 in magnitude, the sum's mantissa is the
/// integer (two's complement, offset), so conversion both ways is an integer add on the
/// bits, which vectorizes where a 64-bit integer conversion does not.
const MAGIC: f64 = 6_755_399_441_055_744.0;

/// `v as f64` for `-2^51 <= v < 2^51`.
#[inline(always)]
fn small_to_f64(v: i64) -> f64 {
    f64::from_bits((v as u64).wrapping_add(MAGIC.to_bits())) - MAGIC
}

/// `f as i64` for an integral `f` with `-2^51 <= f < 2^51`.
#[inline(always)]
fn f64_to_small(f: f64) -> i64 {
    ((f + MAGIC).to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64)
}

/// A divisor `d >= 2` with its reciprocal `m = floor(2^64 / d)`: for any `n`, the quotient
/// `floor(n * m / 2^64)` is `floor(n / d)` or one less (`m * d > 2^64 - d`), so one
/// comparison corrects it.
#[derive(Clone, Copy, Debug)]
struct FixedDivisor {
    d: u64,
    m: u64,
}

impl FixedDivisor {
    fn new(d: i64) -> Option<FixedDivisor> {
        (d >= 2).then(|| FixedDivisor {
            d: d as u64,
            m: ((1u128 << 64) / d as u128) as u64,
        })
    }

    #[inline(always)]
    fn div_rem(self, n: u64) -> (u64, u64) {
        let mut q = ((n as u128 * self.m as u128) >> 64) as u64;
        let mut r = n - q * self.d;
        if r >= self.d {
            q += 1;
            r -= self.d;
        }
        (q, r)
    }

    /// Python `n % d` (the sign of the positive divisor).
    #[inline(always)]
    fn floor_rem(self, n: i64) -> i64 {
        let (_, r) = self.div_rem(n.unsigned_abs());
        if n < 0 && r != 0 {
            (self.d - r) as i64
        } else {
            r as i64
        }
    }

    /// Python `n // d` (rounded towards negative infinity; wraps like `wrapping_div`).
    #[inline(always)]
    fn floor_div(self, n: i64) -> i64 {
        let (q, r) = self.div_rem(n.unsigned_abs());
        if n < 0 {
            (q as i64).wrapping_neg().wrapping_sub((r != 0) as i64)
        } else {
            q as i64
        }
    }
}

fn map1<A: BufElem, U: BufElem>(
    src: Operand<'_>,
    dst: &mut Buf,
    off: usize,
    n: usize,
    f: impl Fn(A) -> U,
) {
    super::simd::map_unary(src.get::<A>(n), &mut U::get_mut(dst)[off..off + n], f);
}

fn map2<A: BufElem, B: BufElem, U: BufElem>(
    x: Operand<'_>,
    y: Operand<'_>,
    dst: &mut Buf,
    off: usize,
    n: usize,
    f: impl Fn(A, B) -> U,
) {
    super::simd::map_binary(
        x.get::<A>(n),
        y.get::<B>(n),
        &mut U::get_mut(dst)[off..off + n],
        f,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels;

    #[test]
    fn kernels_stay_off_the_pool_while_a_lane_works() {
        let before = pool_parallel();
        {
            let _outer = LaneWork::begin();
            let _inner = LaneWork::begin();
            assert!(!pool_parallel());
        }
        assert_eq!(pool_parallel(), before);
    }

    fn program<'a>(
        ops: &'a [FusedOp],
        dtypes: &'a [DType],
        results: &'a [u32],
    ) -> FusedProgram<'a> {
        FusedProgram {
            ops,
            dtypes,
            results,
        }
    }

    /// What `prog` computes on `inputs` (which the kernel must take).
    fn computed(prog: &FusedProgram<'_>, inputs: &[Tensor]) -> Vec<Tensor> {
        run_fused(prog, inputs)
            .expect("runs")
            .expect("layout handled")
    }

    #[test]
    fn chunked_matches_op_by_op_across_blocks() {
        let n = 3 * BLOCK + 17;
        let x: Vec<f32> = (0..n).map(|i| i as f32 * 0.37 - 100.0).collect();
        let x = Tensor::from_vec(&[n], x).expect("shape");
        let c = Tensor::from_vec(&[n / n], vec![2.5f32]).expect("shape");
        // ^0 = x; ^1 = 2.5; ^2 = x * 2.5; ^3 = tanh ^2; ^4 = cast ^3 : f16; ^5 = ^2 > ^1
        let ops = [
            FusedOp::Input(0),
            FusedOp::Input(1),
            FusedOp::Binary(BinaryOp::Mul, 0, 1),
            FusedOp::Unary(UnaryOp::Tanh, 2),
            FusedOp::Cast(3),
            FusedOp::Binary(BinaryOp::Gt, 2, 1),
        ];
        let dtypes = [
            DType::F32,
            DType::F32,
            DType::F32,
            DType::F32,
            DType::F16,
            DType::Bool,
        ];
        let prog = program(&ops, &dtypes, &[4, 5]);
        let got = computed(&prog, &[x.clone(), c.clone()]);
        let m = kernels::binary(BinaryOp::Mul, &x, &c).expect("mul");
        let want = kernels::cast(
            &kernels::unary(UnaryOp::Tanh, &m).expect("tanh"),
            DType::F16,
        );
        assert_eq!(got[0], want);
        assert_eq!(got[1], kernels::binary(BinaryOp::Gt, &m, &c).expect("gt"));
    }

    /// Inputs are read in place, whatever their layout (a transposed input is made
    /// contiguous first), and an input that is also a result is copied out whole.
    #[test]
    fn inputs_read_in_place_and_returned_as_is() {
        let (r, c) = (BLOCK + 3, 5);
        let a: Vec<i32> = (0..r * c).map(|i| (i as i32 * 37) % 101 - 50).collect();
        let a = Tensor::from_vec(&[r, c], a).expect("shape");
        let b: Vec<i32> = (0..r * c).map(|i| (i as i32 * 11) % 7 - 3).collect();
        // Transposed: not contiguous in row-major order.
        let b = kernels::transpose(&Tensor::from_vec(&[c, r], b).expect("shape"), &[1, 0])
            .expect("transpose");
        let ops = [
            FusedOp::Input(0),
            FusedOp::Input(1),
            FusedOp::Binary(BinaryOp::Sub, 0, 1),
        ];
        let dtypes = [DType::I32; 3];
        for results in [&[2u32][..], &[2, 0], &[1, 2]] {
            let prog = program(&ops, &dtypes, results);
            let got = computed(&prog, &[a.clone(), b.clone()]);
            let diff = kernels::binary(BinaryOp::Sub, &a, &b).expect("sub");
            let want: Vec<Tensor> = results
                .iter()
                .map(|&k| [a.clone(), b.clone(), diff.clone()][k as usize].clone())
                .collect();
            assert_eq!(got, want, "results {results:?}");
        }
    }

    /// The `as` fast path gives `cast_slice`'s bits for every pair it takes, on values at
    /// every edge: NaN, infinities, out-of-range floats, halves, extreme integers.
    #[test]
    fn primitive_casts_match_the_cast_rule() {
        let floats = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.5,
            1.5,
            2.5,
            -2.5,
            1e10,
            -1e10,
            3e38,
            1e300,
            16777217.0,
            9007199254740993.0,
            -9.3e18,
            1.8e19,
            255.5,
            -128.5,
        ];
        let ints: [i128; 10] = [
            0,
            1,
            -1,
            127,
            -128,
            255,
            16777217,
            i32::MIN as i128,
            i64::MAX as i128,
            u64::MAX as i128,
        ];
        // Every primitive numeric dtype (not bool, not the half floats).
        let sources = DType::NUMERIC_AND_BOOL
            .into_iter()
            .filter(|d| !matches!(d, DType::Bool | DType::F16 | DType::BF16));
        for from in sources {
            let x = if from.is_float() {
                let v = Tensor::from_vec(&[floats.len()], floats.to_vec()).expect("shape");
                kernels::cast(&v, from)
            } else {
                // Wrapped into the source dtype by the (generic) cast itself.
                let v: Vec<i64> = ints.iter().map(|&i| i as i64).collect();
                let mut v = Tensor::from_vec(&[ints.len()], v).expect("shape");
                if from == DType::U64 {
                    v = Tensor::from_vec(
                        &[ints.len()],
                        ints.iter().map(|&i| i as u64).collect::<Vec<_>>(),
                    )
                    .expect("shape");
                }
                kernels::cast(&v, from)
            };
            for to in [DType::F32, DType::F64, DType::I32, DType::I64] {
                let ops = [FusedOp::Input(0), FusedOp::Cast(0)];
                let dtypes = [from, to];
                let prog = program(&ops, &dtypes, &[1]);
                let got = computed(&prog, std::slice::from_ref(&x));
                let want = kernels::cast(&x, to);
                assert_eq!(
                    format!("{:?}", got[0]),
                    format!("{want:?}"),
                    "{from} -> {to}"
                );
            }
        }
    }

    /// A cast to f32 feeding `+ - * /` runs as one pass: the bits equal the cast and the
    /// op run one after the other, for every source dtype, op and operand order, with a
    /// short (pattern) operand and a full one, and with the pair's result read again.
    #[test]
    fn cast_pairs_match_the_ops_one_by_one() {
        let n = 2 * BLOCK + 9;
        let vals: Vec<i64> = (0..n as i64).map(|i| (i * 7919) % 70001 - 35000).collect();
        let base = Tensor::from_vec(&[n / 3, 3], vals[..n / 3 * 3].to_vec()).expect("shape");
        let short = Tensor::from_vec(&[3], vec![0.5f32, -3.0, 1e-3]).expect("shape");
        let full = kernels::cast(&base, DType::F32);
        for from in [
            DType::I8,
            DType::U8,
            DType::I16,
            DType::U16,
            DType::I32,
            DType::I64,
        ] {
            let x = kernels::cast(&base, from);
            for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
                for y in [&short, &full] {
                    for cast_left in [true, false] {
                        let (l, r) = if cast_left { (1, 2) } else { (2, 1) };
                        // ^3 = op(...); ^4 = ^3 * ^3 reads the pair's result again.
                        let ops = [
                            FusedOp::Input(0),
                            FusedOp::Cast(0),
                            FusedOp::Input(1),
                            FusedOp::Binary(op, l, r),
                            FusedOp::Binary(BinaryOp::Mul, 3, 3),
                        ];
                        let dtypes = [from, DType::F32, DType::F32, DType::F32, DType::F32];
                        let prog = program(&ops, &dtypes, &[4, 3]);
                        // The input between the cast and its user does no work.
                        let free = [true, false, true, false, false];
                        assert_eq!(cast_pairs(&prog, &free), [None, Some(3), None, None, None]);
                        let got = computed(&prog, &[x.clone(), y.clone()]);
                        let c = kernels::cast(&x, DType::F32);
                        let (a, b) = if cast_left { (&c, y) } else { (y, &c) };
                        let want = kernels::binary(op, a, b).expect("op");
                        let sq = kernels::binary(BinaryOp::Mul, &want, &want).expect("mul");
                        assert_eq!(
                            format!("{:?}", got),
                            format!("{:?}", vec![sq, want]),
                            "{from} {op:?} cast_left={cast_left} y={:?}",
                            y.shape()
                        );
                    }
                }
            }
        }
    }

    /// Kept patterns are found again only for the same input: a short input with other
    /// values (the first one dropped, so its buffer could be reused) gets its own pattern.
    #[test]
    fn kept_patterns_follow_their_input() {
        let n = 2 * BLOCK + 1;
        let x = Tensor::from_vec(&[n / 3 + 1, 3], vec![1.0f32; (n / 3 + 1) * 3]).expect("shape");
        let ops = [
            FusedOp::Input(0),
            FusedOp::Input(1),
            FusedOp::Binary(BinaryOp::Mul, 0, 1),
        ];
        let dtypes = [DType::F32; 3];
        let prog = program(&ops, &dtypes, &[2]);
        for k in 0..20 {
            let scale =
                Tensor::from_vec(&[3], vec![k as f32, k as f32 + 0.5, -(k as f32)]).expect("shape");
            for _ in 0..2 {
                let got = computed(&prog, &[x.clone(), scale.clone()]);
                assert_eq!(
                    got[0],
                    kernels::binary(BinaryOp::Mul, &x, &scale).expect("mul")
                );
            }
        }
    }

    /// A trailing-shape input repeats across block boundaries that are not multiples of
    /// its length (1024 % 3 != 0).
    #[test]
    fn short_inputs_repeat_across_blocks() {
        let rows = 2 * BLOCK + 5;
        let x: Vec<i32> = (0..rows as i32 * 3).collect();
        let x = Tensor::from_vec(&[rows, 3], x).expect("shape");
        let c = Tensor::from_vec(&[3], vec![1.0f32, 2.0, 3.0]).expect("shape");
        let ops = [
            FusedOp::Input(0),
            FusedOp::Cast(0),
            FusedOp::Input(1),
            FusedOp::Binary(BinaryOp::Mul, 1, 2),
        ];
        let dtypes = [DType::I32, DType::F32, DType::F32, DType::F32];
        let prog = program(&ops, &dtypes, &[3]);
        let got = computed(&prog, &[x.clone(), c.clone()]);
        let want = kernels::binary(BinaryOp::Mul, &kernels::cast(&x, DType::F32), &c).expect("mul");
        assert_eq!(got[0], want);
    }

    /// Outputs large enough for parallel tasks give the sequential bits, and the error
    /// reported is the first in output order even when a later task also fails.
    #[test]
    fn parallel_tasks_match_sequential_results_and_errors() {
        let n = PARALLEL_WORK_MIN + 77;
        let x: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.01).collect();
        let x = Tensor::from_vec(&[n], x).expect("shape");
        let ops = [FusedOp::Input(0), FusedOp::Unary(UnaryOp::Log, 0)];
        let dtypes = [DType::F32, DType::F32];
        let prog = program(&ops, &dtypes, &[1]);
        let got = computed(&prog, std::slice::from_ref(&x));
        assert_eq!(got[0], kernels::unary(UnaryOp::Log, &x).expect("log"));
        let mut d: Vec<i64> = vec![1; n];
        d[TASK + 5] = 0;
        d[n - 3] = 0;
        let d = Tensor::from_vec(&[n], d).expect("shape");
        let ones = Tensor::from_vec(&[n], vec![7i64; n]).expect("shape");
        let ops = [
            FusedOp::Input(0),
            FusedOp::Input(1),
            FusedOp::Binary(BinaryOp::FloorDiv, 0, 1),
        ];
        let dtypes = [DType::I64; 3];
        let prog = program(&ops, &dtypes, &[2]);
        assert_eq!(
            run_fused(&prog, &[ones, d]),
            Err((2, KernelError::DivisionByZero { index: TASK + 5 }))
        );
    }

    /// Division by a constant gives the bits of the general scalar functions.
    #[test]
    fn fixed_divisors_match_python_division() {
        let mut xs: Vec<i64> = (-3000..3000).collect();
        xs.extend([
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
            i64::MAX - 1,
            -1,
            1 << 62,
            -(1 << 62),
        ]);
        xs.extend((0..2000u64).map(|k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15) as i64));
        let mut ds: Vec<i64> = (2..70).collect();
        ds.extend([
            1000,
            1 << 31,
            (1 << 32) + 1,
            i64::MAX,
            i64::MAX - 1,
            1 << 62,
        ]);
        for d in ds {
            let f = FixedDivisor::new(d).expect("d >= 2");
            for &x in &xs {
                assert_eq!(f.floor_rem(x), NumElem::rem(x, d), "{x} % {d}");
                assert_eq!(f.floor_div(x), NumElem::floor_div(x, d), "{x} // {d}");
            }
        }
        // The f64 route for small values, at its edges.
        let small = SMALL as i64;
        let mut xs: Vec<i64> = (-3000..3000).collect();
        xs.extend([
            small - 1,
            -small,
            -(small - 1),
            small - 2,
            -(small - 2),
            small / 7 * 7,
            0,
        ]);
        xs.extend(
            (0..2000u64).map(|k| (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 14) as i64 - small / 2),
        );
        for d in [2i64, 3, 7, 10, 1000, 999_983, (1 << 31) + 11, small - 1] {
            for &x in &xs {
                let v = small_to_f64(x);
                assert_eq!(v, x as f64);
                assert_eq!(f64_to_small(v), x);
                let q = f64_to_small((v / d as f64).floor());
                assert_eq!(q, NumElem::floor_div(x, d), "{x} // {d}");
                let r = f64_to_small(v - (v / d as f64).floor() * d as f64);
                assert_eq!(r, NumElem::rem(x, d), "{x} % {d}");
            }
        }
        for (x, d) in [(-7i32, 3i32), (i32::MIN, 2), (i32::MAX, 7)] {
            let f = FixedDivisor::new(d as i64).expect("d >= 2");
            assert_eq!(f.floor_rem(x as i64) as i32, NumElem::rem(x, d));
            assert_eq!(f.floor_div(x as i64) as i32, NumElem::floor_div(x, d));
        }
    }

    /// `//` and `%` by a constant take the f64 route on blocks of small values and the
    /// multiply route on blocks with a large one; both give Python's results.
    #[test]
    fn division_by_constants_across_routes() {
        let n = 3 * BLOCK;
        let mut x: Vec<i64> = (0..n as i64)
            .map(|i| (i * 7919) % 100_003 - 50_000)
            .collect();
        x[BLOCK + 5] = i64::MIN;
        x[2 * BLOCK + 1] = 1 << 51;
        x[2 * BLOCK + 2] = -(1 << 51);
        let x = Tensor::from_vec(&[n], x).expect("shape");
        for d in [7i64, 2, 1000] {
            let c = Tensor::from_vec(&[1], vec![d]).expect("shape");
            for op in [BinaryOp::Mod, BinaryOp::FloorDiv] {
                let ops = [
                    FusedOp::Input(0),
                    FusedOp::Input(1),
                    FusedOp::Binary(op, 0, 1),
                ];
                let dtypes = [DType::I64; 3];
                let prog = program(&ops, &dtypes, &[2]);
                let got = computed(&prog, &[x.clone(), c.clone()]);
                assert_eq!(
                    got[0],
                    kernels::binary(op, &x, &c).expect("op"),
                    "{op:?} {d}"
                );
            }
        }
    }

    #[test]
    fn integer_division_by_zero_is_an_error() {
        let x = Tensor::from_vec(&[4], vec![1i32, 2, 3, 4]).expect("shape");
        let d = Tensor::from_vec(&[4], vec![1i32, 1, 0, 1]).expect("shape");
        let ops = [
            FusedOp::Input(0),
            FusedOp::Input(1),
            FusedOp::Binary(BinaryOp::FloorDiv, 0, 1),
        ];
        let dtypes = [DType::I32; 3];
        let prog = program(&ops, &dtypes, &[2]);
        assert_eq!(
            run_fused(&prog, &[x, d]),
            Err((2, KernelError::DivisionByZero { index: 2 }))
        );
    }

    #[test]
    fn other_layouts_are_declined() {
        let x = Tensor::from_vec(&[2, 3], vec![0f32; 6]).expect("shape");
        let y = Tensor::from_vec(&[2, 1], vec![0f32; 2]).expect("shape");
        let ops = [
            FusedOp::Input(0),
            FusedOp::Input(1),
            FusedOp::Binary(BinaryOp::Add, 0, 1),
        ];
        let dtypes = [DType::F32; 3];
        let prog = program(&ops, &dtypes, &[2]);
        assert_eq!(run_fused(&prog, &[x, y]), Ok(None));
    }
}
