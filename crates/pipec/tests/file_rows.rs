//! `from_tensor_slices` over array files reads rows a block at a time, on the lanes: the
//! elements are those of the array in memory, whatever the level, the thread count, the
//! layout (stored or deflated `.npz`, column-major `.npy`) or the access order.

use pipec::{CompileOptions, Compiler, RunOptions, SourceFile, Tensor};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// A scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pipec-file-rows-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Every element of `program` (in `dir`) at `-O<level>` on `threads` threads, each leaf's
/// values as f64, every block handed to another lane.
fn run(dir: &Path, program: &str, level: u8, threads: usize) -> Vec<Vec<f64>> {
    let mut source = SourceFile::from_text("t.pipe", program);
    source.dir = dir.to_path_buf();
    let opts = CompileOptions {
        opt_level: level,
        ..Default::default()
    };
    let compiled = Compiler::new().compile(&source, &opts).expect("compiles");
    let run = RunOptions {
        threads,
        lane_min_bytes: 0,
        ..Default::default()
    };
    compiled
        .run(&run)
        .expect("opens")
        .map(|e| {
            e.expect("runs")
                .iter()
                .flat_map(|t| {
                    let t = pipec::kernels::cast(t, pipec::DType::F64);
                    t.as_array::<f64>()
                        .expect("f64")
                        .iter()
                        .copied()
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .collect()
}

/// The rows of `a` (i32 `[rows, 3]`, value `i * 3 + j`) through `x * 2 + 1`, batched by 7.
fn expected(rows: usize) -> Vec<Vec<f64>> {
    let values: Vec<f64> = (0..rows * 3).map(|v| (v * 2 + 1) as f64).collect();
    values.chunks(21).map(<[f64]>::to_vec).collect()
}

fn matrix(rows: usize) -> Tensor {
    Tensor::from_vec::<i32>(&[rows, 3], (0..(rows * 3) as i32).collect()).expect("fits")
}

#[test]
fn rows_read_from_files_are_the_arrays_rows_at_every_level_and_thread_count() {
    let dir = scratch("levels");
    let rows = 5003;
    std::fs::write(dir.join("a.npy"), pipec::io::encode_npy(&matrix(rows))).expect("write");
    let stored = pipec::io::write_npz(
        Cursor::new(Vec::new()),
        vec![(
            "a".to_string(),
            Cursor::new(pipec::io::encode_npy(&matrix(rows))),
        )],
    )
    .expect("npz");
    std::fs::write(dir.join("a.npz"), stored.into_inner()).expect("write");
    let want = expected(rows);
    for program in [
        "pipeline main = from_tensor_slices(read_npy(\"a.npy\")).map(|x| x * 2 + 1).batch(7)",
        "pipeline main = from_tensor_slices(read_npy(\"a.npy\")).batch(7).map(|b| b * 2 + 1)",
        "pipeline main = from_tensor_slices(read_npz(\"a.npz\", \"a\")).map(|x| x * 2 + 1).batch(7)",
    ] {
        for (level, threads) in [(0, 1), (2, 1), (2, 2), (2, 3)] {
            assert_eq!(
                run(&dir, program, level, threads),
                want,
                "{program} at -O{level}, {threads} threads"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One file sliced twice (two components of one node, and a second node) reads the same rows
/// for both; a `global_shuffle` over it reads the array whole, and its elements are a
/// permutation of the rows.
#[test]
fn a_file_sliced_twice_and_shuffled_whole_gives_its_rows() {
    let dir = scratch("twice");
    let rows = 3001;
    std::fs::write(dir.join("a.npy"), pipec::io::encode_npy(&matrix(rows))).expect("write");
    let pairs = run(
        &dir,
        "pipeline main = from_tensor_slices((read_npy(\"a.npy\"), read_npy(\"a.npy\")))\n    .zip(from_tensor_slices(read_npy(\"a.npy\")))",
        2,
        2,
    );
    assert_eq!(pairs.len(), rows);
    for (i, e) in pairs.iter().enumerate() {
        let row: Vec<f64> = (0..3).map(|j| (i * 3 + j) as f64).collect();
        assert_eq!(e, &[row.clone(), row.clone(), row].concat(), "row {i}");
    }
    let mut shuffled = run(
        &dir,
        "pipeline main = from_tensor_slices(read_npy(\"a.npy\")).global_shuffle(seed: 3)",
        2,
        2,
    );
    assert_ne!(
        shuffled[..10],
        pairs.iter().map(|e| e[..3].to_vec()).collect::<Vec<_>>()[..10]
    );
    shuffled.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let in_order: Vec<Vec<f64>> = pairs.iter().map(|e| e[..3].to_vec()).collect();
    assert_eq!(shuffled, in_order);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Layouts that are not rows on disk (column-major, big-endian, deflated) are read whole and
/// give the same elements.
#[test]
fn layouts_read_whole_give_the_same_rows() {
    let dir = scratch("layouts");
    let rows = 1000;
    // Column-major: the data on disk is the transpose.
    let t = pipec::kernels::transpose(&matrix(rows), &[1, 0]).expect("transposes");
    let mut fortran = pipec::io::npy_header(pipec::DType::I32, &[rows, 3]);
    let at = fortran
        .windows(5)
        .position(|w| w == b"False")
        .expect("the header names the order");
    fortran[at..at + 5].copy_from_slice(b"True ");
    let t = pipec::kernels::reshape(&t, &[3 * rows]).expect("flat");
    for v in t.as_array::<i32>().expect("i32").iter() {
        fortran.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(dir.join("f.npy"), fortran).expect("write");
    let want: Vec<Vec<f64>> = (0..rows)
        .map(|i| (0..3).map(|j| (i * 3 + j) as f64).collect())
        .collect();
    for threads in [1, 2] {
        assert_eq!(
            run(
                &dir,
                "pipeline main = from_tensor_slices(read_npy(\"f.npy\"))",
                2,
                threads
            ),
            want
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
