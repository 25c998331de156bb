//! Padding: copying a tensor into the leading corner of a larger one (`padded_batch`).

use crate::{Tensor, map_same};
use ndarray::{ArcArray, IxDyn, Slice};

/// `base` with `part` written into its leading corner; `part` must fit in every axis
/// and share `base`'s dtype and rank (the caller checks both).
pub fn paste(base: &Tensor, part: &Tensor) -> Tensor {
    fn go<T: Clone>(
        base: &ArcArray<T, IxDyn>,
        part: &Tensor,
        view: impl Fn(&Tensor) -> Option<&ArcArray<T, IxDyn>>,
    ) -> ArcArray<T, IxDyn> {
        let mut out = base.to_owned();
        if let Some(p) = view(part) {
            let mut region = out.view_mut();
            for (ax, &n) in p.shape().iter().enumerate() {
                region.slice_axis_inplace(ndarray::Axis(ax), Slice::from(0..n));
            }
            region.assign(p);
        }
        out.into_shared()
    }
    map_same!(base, a => go(a, part, crate::TensorElem::view))
}
