//! Each reference loop computes what its pipeline computes: both run on a small version of
//! the workload and their elements are compared. No timing here: benchmarks are not tests.

use super::*;
use pipec::Tensor;
use std::path::{Path, PathBuf};

/// A scratch copy of `bench/workloads` with small inputs, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(id: Id) -> Scratch {
    let dir =
        std::env::temp_dir().join(format!("pipec-bench-{}-{}", std::process::id(), id.file()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let mut source = id.source().to_string();
    if id == Id::W3 {
        // W3's size is in the program text, not in a data file.
        let full = "range(10_000_000)";
        assert!(
            source.contains(full),
            "w3.pipe no longer says `{full}`: update this test"
        );
        source = source.replace(full, &format!("range({})", rows(id, true)));
    }
    std::fs::write(dir.join(id.file()), source).unwrap();
    if let (Some(stem), Some(t)) = (id.data(), make_input(id, rows(id, true))) {
        std::fs::write(
            dir.join("data").join(format!("{stem}.npy")),
            pipec::io::encode_npy(&t),
        )
        .unwrap();
    }
    Scratch(dir)
}

/// Output elements flattened to f64, so f32 and i64 results compare alike.
fn flat(t: &Tensor) -> Vec<f64> {
    if let Some(a) = t.as_array::<f32>() {
        a.iter().map(|&v| v as f64).collect()
    } else if let Some(a) = t.as_array::<i64>() {
        a.iter().map(|&v| v as f64).collect()
    } else {
        panic!("unexpected output dtype {:?}", t.dtype())
    }
}

/// Every output element of `id`'s pipeline, flattened: pulled one by one on one thread, or
/// (`lanes`) in blocks on three threads with every block handed over, as small as it is.
fn outputs(id: Id, compiled: &pipec::Compiled, dir: &Path, lanes: bool) -> Vec<Vec<f64>> {
    let opts = RunOptions {
        threads: if lanes { 3 } else { 1 },
        base_dir: dir.to_path_buf(),
        lane_min_bytes: if lanes { 0 } else { pipec::LANE_MIN_BYTES },
        ..RunOptions::default()
    };
    let mut stream = compiled
        .run(&opts)
        .unwrap_or_else(|d| panic!("{}", d.message));
    let mut elements = Vec::new();
    let mut push = |e: Vec<Tensor>| {
        assert_eq!(e.len(), 1, "{}: one tensor per element", id.name());
        elements.push(flat(&e[0]));
    };
    if lanes {
        let max = stream.block_rows();
        while let Some(chunk) = stream.next_block(max) {
            if let Some(d) = chunk.error {
                panic!("{}", d.message);
            }
            chunk.block.into_rows().into_iter().for_each(&mut push);
        }
    } else {
        for e in stream {
            push(e.unwrap_or_else(|d| panic!("{}", d.message)));
        }
    }
    elements
}

fn check(id: Id) {
    let dir = scratch(id);
    let compiled = compile(&dir.0.join(id.file())).unwrap_or_else(|e| panic!("{e}"));
    let got = outputs(id, &compiled, &dir.0, false);
    assert_eq!(
        got,
        outputs(id, &compiled, &dir.0, true),
        "{}: one thread element by element, and lanes over blocks, differ",
        id.name()
    );
    let input = make_input(id, rows(id, true));
    let mut want: Vec<Vec<f64>> = Vec::new();
    reference(id, input.as_ref(), rows(id, true) as i64, &mut |out| {
        want.push(match out {
            Out::F32(s) => s.iter().map(|&v| v as f64).collect(),
            Out::I64(s) => s.iter().map(|&v| v as f64).collect(),
        })
    });
    assert_eq!(got.len(), want.len(), "{}: element count", id.name());
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.len(), w.len(), "{}: size of element {k}", id.name());
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            // A few f32 ulps of slack: a vectorized log or a reordered fused kernel in the
            // runtime may round differently from the scalar loop without being wrong.
            let tol = 4.0 * f32::EPSILON as f64 * a.abs().max(b.abs()).max(1.0);
            assert!(
                (a - b).abs() <= tol,
                "{}: element {k}, value {i}: pipec {a} vs loop {b}",
                id.name()
            );
        }
    }
}

#[test]
fn w1_loop_matches_pipec() {
    check(Id::W1);
}

#[test]
fn w2_loop_matches_pipec() {
    check(Id::W2);
}

#[test]
fn w3_loop_matches_pipec() {
    check(Id::W3);
}

#[test]
fn w4_loop_matches_pipec() {
    check(Id::W4);
}

#[test]
fn w4_traced_loop_matches_pipec() {
    check(Id::W4Traced);
}

#[test]
fn w5_loop_matches_pipec() {
    check(Id::W5);
}

#[test]
fn inputs_follow_the_issue_formulas() {
    let w1 = make_input(Id::W1, 4).unwrap();
    let w1: Vec<i32> = w1.as_array::<i32>().unwrap().iter().copied().collect();
    assert_eq!(w1, [0, 1, 2, 7, 8, 9, 14, 15, 16, 21, 22, 23]);
    let w2 = make_input(Id::W2, 2).unwrap();
    assert_eq!(w2.shape(), [2, 224, 224, 3]);
    let w2 = w2.as_array::<u8>().unwrap();
    assert_eq!(w2[[1, 0, 0, 0]], 31);
    assert_eq!(w2[[1, 0, 1, 2]], 36);
}
