//! Image decoding obeys `--max-memory` (a test binary of its own: the ceiling is
//! process-wide and would fail other tests running beside it).

use pipec_tensor::kernels::KernelError;
use pipec_tensor::kernels::image::decode::{ImageFormat, decode_image};

#[test]
fn bombs_are_refused_under_the_memory_ceiling_too() {
    // 48 x 64 x 3 fits the element limit but not a 4 KiB ceiling.
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/images/src/rgb_48x64.jpg"
    ))
    .unwrap();
    pipec_tensor::limits::set_max_memory(Some(4096));
    let r = decode_image(&bytes, ImageFormat::Jpeg, 3);
    pipec_tensor::limits::set_max_memory(None);
    assert!(
        matches!(r, Err(KernelError::OverMemoryLimit { .. })),
        "{r:?}"
    );
}
