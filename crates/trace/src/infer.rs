//! Static shape rules for symbolic tensors. Dims may be unknown (`?`); a rule fails only
//! when known dims prove the op impossible, and otherwise leaves the check to run time.

/// Normalizes a possibly negative axis against `rank`; `None` when out of range.
pub fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}
