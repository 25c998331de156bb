//! Source files are typed at compile time and read at run time; a file that changed in
//! between is a diagnostic, never a kernel fed the wrong dtype.

use pipec::{Code, CompileOptions, Compiler, RunOptions, SourceFile, Tensor};

#[test]
fn a_file_changed_after_compiling_is_reported() {
    let dir = std::env::temp_dir().join(format!("pipec-file-changed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let data = dir.join("data.npy");
    let ints = Tensor::from_vec::<i32>(&[2, 3], vec![1, 2, 3, 4, 5, 6]).expect("fits");
    std::fs::write(&data, pipec::io::encode_npy(&ints)).expect("write");
    let mut source = SourceFile::from_text(
        "t.pipe",
        "pipeline main = from_tensor_slices(read_npy(\"data.npy\")).map(|x| x * 2)\n",
    );
    source.dir = dir.clone();
    let compiled = Compiler::new()
        .compile(&source, &CompileOptions::default())
        .expect("compiles");
    let floats = Tensor::from_vec::<f32>(&[2, 3], vec![1.0; 6]).expect("fits");
    std::fs::write(&data, pipec::io::encode_npy(&floats)).expect("rewrite");
    let err = compiled
        .run(&RunOptions::default())
        .err()
        .expect("the changed file is an error");
    assert_eq!(err.code, Code::BadArrayFile);
    assert!(
        err.message.contains("f32") && err.message.contains("i32[3]"),
        "{}",
        err.message
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Files replaced between compiling and running by a scalar array (no rows to slice), or so
/// that two sliced arrays no longer have the same number of rows: the run-time check of
/// `from_tensor_slices` reports it before anything slices them (no panic).
#[test]
fn a_file_changed_to_a_scalar_or_another_row_count_is_reported() {
    let dir = std::env::temp_dir().join(format!("pipec-file-rows-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (a, b) = (dir.join("a.npy"), dir.join("b.npy"));
    let rows = |n: usize| Tensor::from_vec::<i32>(&[n], (0..n as i32).collect()).expect("fits");
    let compile = |text: &str| {
        std::fs::write(&a, pipec::io::encode_npy(&rows(4))).expect("write");
        std::fs::write(&b, pipec::io::encode_npy(&rows(4))).expect("write");
        let mut source = SourceFile::from_text("t.pipe", text);
        source.dir = dir.clone();
        Compiler::new()
            .compile(&source, &CompileOptions::default())
            .expect("compiles")
    };
    let scalar = compile("pipeline main = from_tensor_slices(read_npy(\"a.npy\"))\n");
    let zero_d = Tensor::from_vec::<i32>(&[], vec![7]).expect("fits");
    std::fs::write(&a, pipec::io::encode_npy(&zero_d)).expect("rewrite");
    let err = scalar.run(&RunOptions::default()).err().expect("an error");
    assert_eq!(err.code, Code::RuntimeShapeMismatch, "{}", err.message);
    assert!(err.message.contains("rank >= 1"), "{}", err.message);

    let pair =
        compile("pipeline main = from_tensor_slices((read_npy(\"a.npy\"), read_npy(\"b.npy\")))\n");
    std::fs::write(&b, pipec::io::encode_npy(&rows(2))).expect("rewrite");
    let err = pair.run(&RunOptions::default()).err().expect("an error");
    assert_eq!(err.code, Code::RuntimeShapeMismatch, "{}", err.message);
    assert!(
        err.message.contains("one length along axis 0"),
        "{}",
        err.message
    );
    let _ = std::fs::remove_dir_all(&dir);
}
