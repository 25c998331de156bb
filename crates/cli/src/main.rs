//! The `pipec` command: compile and run `.pipe` pipelines. This is the only crate that
//! prints or exits; everything below it returns values and diagnostics.

use clap::Parser;
use pipec::{CompileOptions, Compiled, Compiler, Diagnostic, RunOptions, SourceFile};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Compile and run tf.data-style pipelines written in `.pipe` files.
#[derive(Parser, Debug)]
#[command(name = "pipec", version, about)]
struct Cli {
    /// The `.pipe` file to compile and run.
    file: Option<PathBuf>,
    /// Print the IR and stop: traced, optimized (default), all, or after=PASS.
    #[arg(long, value_name = "STAGE", num_args = 0..=1, require_equals = true, default_missing_value = "optimized")]
    emit_ir: Option<String>,
    /// Print the pipeline and its functions as a Graphviz graph and stop.
    #[arg(long)]
    emit_dot: bool,
    /// Compile only; print diagnostics.
    #[arg(long)]
    check: bool,
    /// Explain an error code, with an example and the fix.
    #[arg(long, value_name = "CODE")]
    explain: Option<String>,
    /// List the optimization passes.
    #[arg(long)]
    list_passes: bool,
    /// The pipeline to run (default: `main`, or the only one).
    #[arg(long, value_name = "NAME")]
    pipeline: Option<String>,
    /// Print what each optimization pass did and could not do.
    #[arg(long)]
    remarks: bool,
    /// Optimization level: -O0, -O1 or -O2.
    #[arg(short = 'O', value_name = "LEVEL", default_value = "2", value_parser = clap::value_parser!(u8).range(0..=2))]
    opt_level: u8,
    /// Run exactly these passes, comma-separated, instead of a level's.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    passes: Option<Vec<String>>,
    /// Stop after N elements.
    #[arg(long, value_name = "N")]
    take: Option<u64>,
    /// Write the elements to a file (.npy) instead of printing them.
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Run to the end and drop the elements (for timing).
    #[arg(long)]
    discard: bool,
    /// Worker threads for parallel maps.
    #[arg(long, value_name = "N", default_value_t = default_threads())]
    threads: usize,
    /// Allow `exec` workers to start processes.
    #[arg(long)]
    allow_exec: bool,
    /// Seconds an `exec` worker may take to answer one call.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    worker_timeout: f64,
    /// Print elements, bytes and time on stderr.
    #[arg(long)]
    stats: bool,
    /// Show a progress bar on stderr.
    #[arg(long)]
    progress: bool,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Compile and run on a thread with a large stack: deeply nested (but accepted) programs
    // recurse in the tracer, and a stack overflow would abort instead of reporting.
    let worker = std::thread::Builder::new().stack_size(256 << 20).spawn(move || real_main(cli));
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => ExitCode::from(code),
        _ => {
            eprintln!("error: internal compiler error (a panic); please report it with the input that causes it");
            ExitCode::from(101)
        }
    }
}

fn real_main(cli: Cli) -> u8 {
    let color = std::io::stderr().is_terminal();
    if let Some(code) = &cli.explain {
        return match pipec::Code::parse(code) {
            Some(c) => {
                println!("{}", c.explanation().trim_end());
                0
            }
            None => {
                eprintln!("error[E0800]: unknown error code `{code}`");
                eprintln!("help: codes look like E0101; every diagnostic shows its code in brackets");
                2
            }
        };
    }
    if cli.list_passes {
        for (name, desc) in pipec::list_passes() {
            println!("{name:<20} {desc}");
        }
        return 0;
    }
    let Some(path) = cli.file.clone() else {
        eprintln!("error[E0800]: no input file");
        eprintln!("help: run `pipec FILE.pipe`, or `pipec --help`");
        return 2;
    };
    let source = match SourceFile::from_path(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error[E0800]: cannot read `{}`: {e}", path.display());
            return 2;
        }
    };
    let mut compiler = Compiler::new();
    if !(cli.worker_timeout > 0.0 && cli.worker_timeout.is_finite()) {
        eprintln!("error[E0800]: --worker-timeout must be a positive number of seconds");
        return 2;
    }
    compiler.set_worker_timeout(std::time::Duration::from_secs_f64(cli.worker_timeout));
    compiler.set_print_sink(Arc::new(|line: &str| {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }));
    let opts = CompileOptions { pipeline: cli.pipeline.clone(), opt_level: cli.opt_level, passes: cli.passes.clone(), allow_exec: cli.allow_exec };
    let compiled = match compiler.compile(&source, &opts) {
        Ok(c) => c,
        Err(diags) => {
            report(&diags, &source, color);
            return 1;
        }
    };
    report(&compiled.warnings, &source, color);
    if cli.remarks {
        report(&compiled.remarks, &source, color);
    }
    if cli.check {
        return 0;
    }
    if let Some(stage) = &cli.emit_ir {
        return emit_ir(&compiled, stage);
    }
    if cli.emit_dot {
        eprintln!("error[E0800]: --emit-dot is not implemented yet");
        return 2;
    }
    run(&cli, &compiled, &source, color)
}

fn report(diags: &[Diagnostic], source: &SourceFile, color: bool) {
    if diags.is_empty() {
        return;
    }
    let text = pipec::render(diags, &source.name, &source.text, color);
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn emit_ir(compiled: &Compiled, stage: &str) -> u8 {
    let mut out = String::new();
    match stage {
        "traced" => out = compiled.traced.to_string(),
        "optimized" => out = compiled.optimized.to_string(),
        "all" => {
            out.push_str("// ----- traced -----\n");
            out.push_str(&compiled.traced.to_string());
            for (pass, prog) in &compiled.stages {
                out.push_str(&format!("\n// ----- after {pass} -----\n"));
                out.push_str(&prog.to_string());
            }
        }
        other => match other.strip_prefix("after=") {
            Some(pass) => {
                let valid: Vec<&str> = pipec::list_passes().into_iter().map(|(n, _)| n).collect();
                if !valid.contains(&pass) {
                    eprintln!("error[E0800]: unknown pass `{pass}`");
                    eprintln!("help: the passes are: {}", valid.join(", "));
                    return 2;
                }
                match compiled.stages.iter().rev().find(|(p, _)| p == pass) {
                    Some((_, prog)) => out = prog.to_string(),
                    None => {
                        out.push_str(&format!("// pass `{pass}` changed nothing (or did not run)\n"));
                        out.push_str(&compiled.traced.to_string());
                    }
                }
            }
            None => {
                eprintln!("error[E0800]: unknown IR stage `{other}`");
                eprintln!("help: the stages are: traced, optimized, all, after=PASS");
                return 2;
            }
        },
    }
    print!("{out}");
    0
}

fn run(cli: &Cli, compiled: &Compiled, source: &SourceFile, color: bool) -> u8 {
    let start = std::time::Instant::now();
    let opts = RunOptions { threads: cli.threads.max(1), base_dir: source.dir.clone() };
    let stream = match compiled.run(&opts) {
        Ok(s) => s,
        Err(d) => {
            report(&[d], source, color);
            return 1;
        }
    };
    let elem = compiled.element_type();
    let mut collected = Vec::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut count, mut bytes) = (0u64, 0u64);
    for item in stream {
        if cli.take.is_some_and(|t| count >= t) {
            break;
        }
        match item {
            Ok(e) => {
                count += 1;
                bytes += e.iter().map(|t| t.nbytes() as u64).sum::<u64>();
                if cli.output.is_some() {
                    collected.push(e);
                } else if !cli.discard {
                    let text = pipec::format_element(&elem, &e);
                    if writeln!(out, "{text}").is_err() {
                        return 0;
                    }
                }
            }
            Err(d) => {
                let _ = out.flush();
                report(&[d], source, color);
                return 1;
            }
        }
    }
    let _ = out.flush();
    if let Some(path) = &cli.output {
        if let Err(msg) = write_output(path, &collected) {
            eprintln!("error[E0605]: cannot write `{}`: {msg}", path.display());
            return 1;
        }
    }
    if cli.stats {
        let secs = start.elapsed().as_secs_f64();
        eprintln!("elements: {count}\nbytes: {bytes}\nwall: {secs:.6} s\nrate: {:.0} elements/s", count as f64 / secs.max(1e-9));
    }
    0
}

/// Writes elements stacked into one `.npy`, atomically (temporary file, then rename).
fn write_output(path: &Path, elems: &[pipec::Element]) -> Result<(), String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext != "npy" {
        return Err(format!("unsupported output format `.{ext}` (supported: .npy)"));
    }
    let Some(first) = elems.first() else { return Err("the pipeline produced no elements".into()) };
    if first.len() != 1 {
        return Err("tuple elements need .npz output, which is not supported yet".into());
    }
    let parts: Vec<pipec::Tensor> = elems.iter().map(|e| e[0].clone()).collect();
    let stacked = pipec::kernels::stack(&parts, 0).map_err(|e| e.to_string())?;
    let bytes = pipec::io::encode_npy(&stacked);
    let tmp = path.with_extension("npy.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}
