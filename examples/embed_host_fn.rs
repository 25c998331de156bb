//! Embedding pipec in a Rust program and serving an `extern eager fn` with a Rust closure.
//!
//! Run: `cargo run -p pipec --example embed_host_fn`
//!
//! "How do I get a NumPy array inside map?" — from Rust, the answer is a host function:
//! it receives each element as host arrays (`pipec::Tensor`, an ndarray) and returns arrays
//! of the declared type. Here the host function computes a running maximum, which needs
//! the values and a loop, so it cannot be traced.

use pipec::{CompileOptions, Compiler, RunOptions, SourceFile, Tensor};

const PROGRAM: &str = r#"
# cummax is served by the Rust program that embeds pipec.
extern eager fn cummax(x: f32[?]) -> f32[?]

pipeline main = from_tensor_slices([[1.0, 3.0, 2.0, 5.0], [4.0, 1.0, 6.0, 0.0]])
    .map(cummax)
    .map(|m| m * 10.0)
"#;

fn cummax(args: &[Tensor]) -> Result<Vec<Tensor>, String> {
    let x = args[0].as_array::<f32>().ok_or("cummax expects f32")?;
    let mut best = f32::NEG_INFINITY;
    let out: Vec<f32> = x
        .iter()
        .map(|&v| {
            best = best.max(v);
            best
        })
        .collect();
    Tensor::from_vec(x.shape(), out)
        .map(|t| vec![t])
        .ok_or_else(|| "shape mismatch".to_string())
}

fn main() {
    let mut compiler = Compiler::new();
    compiler.register_host_fn("cummax", cummax);
    let source = SourceFile::from_text("embedded.pipe", PROGRAM);
    let compiled = match compiler.compile(&source, &CompileOptions::default()) {
        Ok(c) => c,
        Err(diags) => {
            eprint!(
                "{}",
                pipec::render(&diags, &source.name, &source.text, false)
            );
            std::process::exit(1);
        }
    };
    let elem = compiled.element_type();
    let stream = compiled
        .run(&RunOptions::default())
        .unwrap_or_else(|d| panic!("{d}"));
    for element in stream {
        match element {
            Ok(e) => println!("{}", pipec::format_element(&elem, &e)),
            Err(d) => {
                eprint!("{}", pipec::render(&[d], &source.name, &source.text, false));
                std::process::exit(1);
            }
        }
    }
}
