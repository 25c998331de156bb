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

/// Whether `mid` holds every value of `src` exactly, so `src → mid → src` is the identity.
pub fn roundtrip_is_exact(src: DType, mid: DType) -> bool {
    if src == mid || src == DType::Bool {
        return true;
    }
    if mid == DType::Bool || src.is_float() && mid.is_int() {
        return false;
    }
    if src.is_int() && mid.is_int() {
        // Same signedness and no fewer value bits, or unsigned into a signed type with
        // more value bits (u8 → i16); signed into unsigned loses the negatives.
        let (s, m) = (src.significand_bits(), mid.significand_bits());
        return match (src.is_signed_int(), mid.is_signed_int()) {
            (true, false) => false,
            _ => s <= m,
        };
    }
    if src.is_int() {
        // Every integer of the source fits the significand (the exponent range of every
        // float dtype reaches far beyond 2^64, except f16's 65504 — covered, since a
        // 16-bit integer needs 16 significand bits and f16 has 11).
        return src.significand_bits() <= mid.significand_bits();
    }
    // float → float: the middle type's exponent range and significand cover the source.
    matches!((src, mid), (DType::F16 | DType::BF16, DType::F32 | DType::F64) | (DType::F32, DType::F64))
}

/// Whether `cast(cast(x: src, mid), dst)` equals `cast(x, dst)` for every `x`, by the rule
/// that the round trip through `mid` is exact and casting from `mid` agrees with casting
/// from `src`. (The second part fails in one case: an integer held exactly by a float
/// `mid` saturates when cast to an integer `dst` too narrow for it, where the direct cast
/// wraps.)
pub fn cast_chain_is_exact(src: DType, mid: DType, dst: DType) -> bool {
    roundtrip_is_exact(src, mid) && !(src.is_int() && mid.is_float() && dst.is_int() && !roundtrip_is_exact(src, dst))
}

/// Why `cast(cast(x: src, mid), dst)` must stay as it is (assumes it must).
pub fn why_kept(src: DType, mid: DType, dst: DType) -> String {
    if roundtrip_is_exact(src, mid) {
        return format!("{src} values cast to {mid} saturate when cast to {dst}, where a direct cast wraps");
    }
    let detail = if src.is_float() && mid.is_int() {
        " (fractions, infinities and NaN)"
    } else if mid == DType::Bool {
        " (only 0 and 1)"
    } else if src.is_signed_int() && mid.is_int() && !mid.is_signed_int() {
        " (negative values)"
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
                let OpKind::Cast(dst) = f.ops[i].kind else { continue };
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
                    if cast_chain_is_exact(src, mid, dst) {
                        f.ops[i].inputs[0] = x;
                        uses[input.index()] -= 1;
                        uses[x.index()] += 1;
                        let msg = format!("merged casts {src} → {mid} → {dst} into one (exact for every {src})");
                        remark(remarks, self.name(), span, msg, "cast chain folded");
                        changed = true;
                    } else {
                        let msg = format!("kept the cast chain {src} → {mid} → {dst}: {}", why_kept(src, mid, dst));
                        remark(remarks, self.name(), span, msg, "not folded");
                    }
                }
                let input = f.ops[i].inputs[0];
                if f.ty(input) == f.ty(out) {
                    replace_uses(f, out, input);
                    uses[input.index()] += uses[out.index()];
                    uses[out.index()] = 0;
                    remark(remarks, self.name(), span, format!("removed a cast of {dst} to {dst}"), "no-op cast");
                    changed = true;
                }
            }
        }
        changed
    }
}
