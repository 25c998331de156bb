//! `fold-casts`: removes casts to the value's own dtype and merges `cast(cast(x, A), B)`
//! into `cast(x, B)` only where that is exact for every value of `x`'s dtype (XLA's rule):
//! the round trip through `A` must be exact (`A` holds every value of the source dtype),
//! and casting from `A` must then give what the direct cast gives. A chain it keeps gets a
//! remark saying why ("f32 cannot hold every i32").

use crate::Pass;
use crate::util::{def_op, remark, replace_uses, use_counts};
use pipec_diag::Diagnostic;
use pipec_ir::{OpKind, Program};
use pipec_tensor::DType;

/// Cast folding.
pub struct FoldCasts;

/// Whether every value of the integer (or bool) dtype `src` is a value of `dst`.
fn int_range_within(src: DType, dst: DType) -> bool {
    match (src.is_signed_int(), dst.is_signed_int()) {
        (true, false) => false,
        _ => src.significand_bits() <= dst.significand_bits(),
    }
}

/// Whether `src → mid → src` gives back every value of `src` bit for bit (NaN payloads
/// aside).
pub fn roundtrip_is_exact(src: DType, mid: DType) -> bool {
    if src == mid || src == DType::Bool {
        return true;
    }
    if mid == DType::Bool || src.is_float() && mid.is_int() {
        return false;
    }
    if src.is_int() && mid.is_int() {
        // Wrapping into a type at least as wide is injective, and wrapping back undoes it
        // (i8 → u8 → i8), even where the middle value differs.
        return mid.size_bytes() >= src.size_bytes();
    }
    if src.is_int() {
        // Every integer of the source fits the significand (and then the exponent range:
        // f16's 65504 only matters for 16-bit integers, which need 16 bits and get 11).
        return src.significand_bits() <= mid.significand_bits();
    }
    // float → float: the middle type's exponent range and significand cover the source.
    matches!(
        (src, mid),
        (DType::F16 | DType::BF16, DType::F32 | DType::F64) | (DType::F32, DType::F64)
    )
}

/// Whether `cast(cast(x: src, mid), dst)` may become `cast(x, dst)`: the round trip
/// through `mid` is exact for every `x` and casting from `mid` gives what the direct cast
/// gives for every `x`. The second part fails when `mid` changes an integer's value (i8 →
/// u8 maps -1 to 255), unless `dst` is `bool` or an integer no wider than `mid` (which
/// wraps both alike), and when an integer held exactly by a float `mid` would saturate
/// in an integer `dst` too narrow for it, where the direct cast wraps.
pub fn cast_chain_is_exact(src: DType, mid: DType, dst: DType) -> bool {
    if !roundtrip_is_exact(src, mid) {
        return false;
    }
    if src.is_int() && mid.is_int() {
        return int_range_within(src, mid)
            || dst == DType::Bool
            || dst.is_int() && dst.size_bytes() <= mid.size_bytes();
    }
    !(src.is_int() && mid.is_float() && dst.is_int() && !int_range_within(src, dst))
}

/// Why `cast(cast(x: src, mid), dst)` must stay as it is (assumes it must).
pub fn why_kept(src: DType, mid: DType, dst: DType) -> String {
    if roundtrip_is_exact(src, mid) {
        return if mid.is_float() {
            format!(
                "{src} values cast to {mid} saturate when cast to {dst}, where a direct cast wraps"
            )
        } else {
            format!("{mid} changes the value of negative {src}s, which a cast to {dst} would see")
        };
    }
    let detail = if src.is_float() && mid.is_int() {
        " (fractions, infinities and NaN)"
    } else if mid == DType::Bool {
        " (only 0 and 1)"
    } else {
        ""
    };
    format!("{mid} cannot hold every {src}{detail}")
}

impl Pass for FoldCasts {
    fn name(&self) -> &'static str {
        "fold-casts"
    }

    fn description(&self) -> &'static str {
        "remove casts to the same dtype; merge cast chains exact for every value"
    }

    fn run(&self, prog: &mut Program, remarks: &mut Vec<Diagnostic>) -> bool {
        let mut changed = false;
        for f in &mut prog.functions {
            let mut uses = use_counts(f);
            for i in 0..f.ops.len() {
                let OpKind::Cast(dst) = f.ops[i].kind else {
                    continue;
                };
                let (span, out) = (f.ops[i].span, f.ops[i].outputs[0]);
                if uses[out.index()] == 0 {
                    continue;
                }
                let input = f.ops[i].inputs[0];
                // Merge with the cast that produced the operand, if exact.
                if let Some(j) = def_op(f, input)
                    && let OpKind::Cast(mid) = f.ops[j].kind
                {
                    let x = f.ops[j].inputs[0];
                    let src = f.ty(x).dtype;
                    // `f32 → f64 → f32` quiets a signalling NaN; the single cast it would
                    // merge into, `f32 → f32`, is then removed and would not.
                    let quiets = src.is_float()
                        && mid != src
                        && dst == src
                        && crate::simplify::may_be_signaling_nan(f, x);
                    if quiets && cast_chain_is_exact(src, mid, dst) {
                        let msg = format!(
                            "kept the cast chain {src} → {mid} → {dst}: it turns a signalling NaN into a quiet one, as numpy does"
                        );
                        remark(remarks, self.name(), span, msg, "not folded");
                    } else if cast_chain_is_exact(src, mid, dst) {
                        f.ops[i].inputs[0] = x;
                        uses[input.index()] -= 1;
                        uses[x.index()] += 1;
                        let msg = format!(
                            "merged casts {src} → {mid} → {dst} into one (exact for every {src})"
                        );
                        remark(remarks, self.name(), span, msg, "cast chain folded");
                        changed = true;
                    } else {
                        let msg = format!(
                            "kept the cast chain {src} → {mid} → {dst}: {}",
                            why_kept(src, mid, dst)
                        );
                        remark(remarks, self.name(), span, msg, "not folded");
                    }
                }
                let input = f.ops[i].inputs[0];
                if f.ty(input) == f.ty(out) {
                    replace_uses(f, out, input);
                    uses[input.index()] += uses[out.index()];
                    uses[out.index()] = 0;
                    remark(
                        remarks,
                        self.name(),
                        span,
                        format!("removed a cast of {dst} to {dst}"),
                        "no-op cast",
                    );
                    changed = true;
                }
            }
        }
        changed
    }
}
