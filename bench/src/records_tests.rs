//! W7's and W8's generated inputs are what the workloads say: the pipelines run on a small
//! version of them, and the values that come out (PNG pixels decoded by pipec, labels,
//! vectors, Parquet columns) are the generator's. No timing here.

use super::records::*;
use pipec::Tensor;

fn compile_text(dir: &std::path::Path, name: &str, text: &str) -> pipec::Compiled {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    crate::compile(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn values<T: pipec_tensor::TensorElem + Copy>(t: &Tensor) -> Vec<T> {
    t.as_array::<T>().unwrap().iter().copied().collect()
}

#[test]
fn w7_and_w8_inputs_hold_the_generated_values() {
    let dir = std::env::temp_dir().join(format!("pipec-bench-records-{}", std::process::id()));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // 37 Examples over 8 files (5 each, 2 in the last), 3000 rows.
    generate_records(&data, 37, 3000).unwrap();
    assert!(
        generate_records(&data, 37, 3000).unwrap().is_empty(),
        "regenerated"
    );

    let w7 = include_str!("../workloads/w7.pipe");
    let c = compile_text(&dir, "w7.pipe", w7);
    let batches: Vec<_> = crate::open(&c, 2).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(batches.iter().map(|b| b[1].shape()[0]).sum::<usize>(), 37);
    let labels: Vec<i64> = values(&batches[0][1]);
    assert_eq!(labels, (0..37).map(|i| (i % 10) as i64).collect::<Vec<_>>());
    let vecs: Vec<f32> = values(&batches[0][2]);
    assert_eq!(vecs[16 * 3 + 5], (3 * 16 + 5) as f32 * 1e-3);

    // The PNGs decode (with pipec's own decoder) to the pixels they were made from.
    let decode = w7.replace(
        ".batch(256)",
        ".map(|e| decode_png(e[\"image\"], channels: 3)).take(3)",
    );
    let c = compile_text(&dir, "w7_decode.pipe", &decode);
    for (i, img) in crate::open(&c, 1).unwrap().enumerate() {
        let img = img.unwrap();
        assert_eq!(img[0].shape(), &[32, 32, 3]);
        assert_eq!(values::<u8>(&img[0]), w7_pixels(i), "image {i}");
    }

    let c = compile_text(&dir, "w8.pipe", include_str!("../workloads/w8.pipe"));
    let batches: Vec<_> = crate::open(&c, 2).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[2][0].shape(), &[3000 - 2048]);
    let want = w8_rows(1024, 2048);
    for (got, want) in batches[1].iter().zip(&want) {
        assert_eq!(got, want);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
