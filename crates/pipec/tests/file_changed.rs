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
