//! Static shape rules for symbolic tensors. Dims may be unknown (`?`); a rule fails only
//! when known dims prove the op impossible, and otherwise leaves the check to run time.

use pipec_ir::{Dim, Shape};

/// The numpy broadcast of two static shapes, or `None` when known dims clash.
pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
    let rank = a.rank().max(b.rank());
    let mut dims = Vec::with_capacity(rank);
    for i in 0..rank {
        let da = if i + a.rank() >= rank {
            a.0[i + a.rank() - rank]
        } else {
            Dim::Known(1)
        };
        let db = if i + b.rank() >= rank {
            b.0[i + b.rank() - rank]
        } else {
            Dim::Known(1)
        };
        dims.push(match (da, db) {
            (Dim::Known(1), d) | (d, Dim::Known(1)) => d,
            (Dim::Known(x), Dim::Known(y)) if x == y => Dim::Known(x),
            (Dim::Known(_), Dim::Known(_)) => return None,
            // An unknown dim meeting n > 1 must be n or 1 at run time; either way the result is n.
            (Dim::Unknown, Dim::Known(n)) | (Dim::Known(n), Dim::Unknown) => Dim::Known(n),
            (Dim::Unknown, Dim::Unknown) => Dim::Unknown,
        });
    }
    Some(Shape(dims))
}

/// Normalizes a possibly negative axis against `rank`; `None` when out of range.
pub fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// The shape after reducing `axes` (sorted, distinct).
pub fn reduce(shape: &Shape, axes: &[usize], keepdims: bool) -> Shape {
    let mut dims = Vec::new();
    for (i, d) in shape.0.iter().enumerate() {
        if axes.contains(&i) {
            if keepdims {
                dims.push(Dim::Known(1));
            }
        } else {
            dims.push(*d);
        }
    }
    Shape(dims)
}
