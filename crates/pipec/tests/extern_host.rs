//! The embedding API: host functions registered from Rust serve `extern eager fn`.

use pipec::{Code, CompileOptions, Compiler, RunOptions, SourceFile, Tensor};

const PROGRAM: &str = "extern eager fn twice(x: i32[3]) -> i32[3]\n\
                       pipeline main = from_tensor_slices([[1, 2, 3], [4, 5, 6]]).map(twice)\n";

fn run(compiler: &Compiler, text: &str) -> Result<Vec<String>, Vec<pipec::Diagnostic>> {
    let source = SourceFile::from_text("t.pipe", text);
    let compiled = compiler.compile(&source, &CompileOptions::default())?;
    let elem = compiled.element_type();
    let stream = compiled.run(&RunOptions::default()).map_err(|d| vec![d])?;
    stream
        .map(|e| {
            e.map(|e| pipec::format_element(&elem, &e))
                .map_err(|d| vec![d])
        })
        .collect()
}

#[test]
fn registered_closure_runs_per_element() {
    let mut compiler = Compiler::new();
    compiler.register_host_fn("twice", |args: &[Tensor]| {
        let x = args[0].as_array::<i32>().ok_or("i32 expected")?;
        Ok(vec![
            Tensor::from_vec(x.shape(), x.iter().map(|v| v * 2).collect()).ok_or("shape")?,
        ])
    });
    assert_eq!(
        run(&compiler, PROGRAM).expect("runs"),
        ["[2 4 6]", "[ 8 10 12]"]
    );
}

#[test]
fn missing_registration_is_a_compile_error() {
    let err = run(&Compiler::new(), PROGRAM).expect_err("must not compile");
    assert_eq!(err[0].code, Code::MissingHostFunction);
    assert!(err[0].primary_span().is_some());
}

#[test]
fn host_results_are_checked_against_the_declared_type() {
    let mut compiler = Compiler::new();
    compiler.register_host_fn("twice", |_args: &[Tensor]| {
        Ok(vec![
            Tensor::from_vec::<f32>(&[2], vec![0.0, 1.0]).expect("fits"),
        ])
    });
    let err = run(&compiler, PROGRAM).expect_err("wrong type");
    assert_eq!(err[0].code, Code::EagerResultMismatch);
    assert!(
        err[0].message.contains("f32[2]")
            && err[0].message.contains("i32[3]")
            && err[0].message.contains("element 0"),
        "{}",
        err[0].message
    );
}

#[test]
fn host_errors_name_the_function() {
    let mut compiler = Compiler::new();
    compiler.register_host_fn("twice", |_args: &[Tensor]| {
        Err("decoder exploded".to_string())
    });
    let err = run(&compiler, PROGRAM).expect_err("fails");
    assert_eq!(err[0].code, Code::HostFunctionFailed);
    assert!(err[0].message.contains("twice") && err[0].message.contains("decoder exploded"));
}
