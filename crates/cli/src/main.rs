//! The `pipec` command: compile and run `.pipe` pipelines. This is the only crate that
//! prints or exits; everything below it returns values and diagnostics.

use clap::Parser;
use pipec::{CompileOptions, Compiled, Compiler, Diagnostic, RunOptions, SourceFile};
use std::io::{IsTerminal, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

mod lines;
mod progress;
mod record_sink;

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
    #[arg(long, conflicts_with = "emit_ir")]
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
    /// Write the elements to a file instead of printing them: .npy (stacked), .npz (one array
    /// per tuple component), .jsonl (one JSON line per element), .tfrecord / .tfrecord.gz
    /// (one tf.train.Example per element) or .parquet (one row per element); written
    /// atomically.
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Run to the end and drop the elements (for timing).
    #[arg(long, conflicts_with = "output")]
    discard: bool,
    /// Threads for parallel maps, for maps and filters on lanes, and for large kernels (at
    /// most 64 lanes, and kernel threads at most one per core: more would only take turns).
    #[arg(long, value_name = "N", default_value_t = default_threads())]
    threads: usize,
    /// Allow `exec` workers to start processes.
    #[arg(long)]
    allow_exec: bool,
    /// Seconds an `exec` worker may take to answer one call.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    worker_timeout: f64,
    /// Print elements, bytes, time and each node's time on stderr (docs/performance.md).
    #[arg(long)]
    stats: bool,
    /// The most memory one tensor, file, batch, shuffle buffer or cache may take, e.g. 512M
    /// or 2G (bytes without a suffix); going past it is error E0701.
    #[arg(long, value_name = "SIZE", value_parser = pipec::limits::parse_size)]
    max_memory: Option<u64>,
    /// Replace the literal of a top-level `let NAME = LITERAL` before compiling (repeatable):
    /// VALUE is a literal as the file writes it (`7`, `0.5`, `[1, 2]`, `"text"`); other text
    /// is taken as a string.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    set: Vec<(String, pipec::ParamValue)>,
    /// Run shard I of N (0-based): `shard(N, I)` right after the pipeline's sources, so the
    /// N shards together deliver every record exactly once.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Work units compiling may spend: one per expression evaluated, plus the values copied
    /// and the IR built as loops unroll and calls inline; going past it is error E0704.
    #[arg(long, value_name = "N", default_value_t = pipec::CompileBudget::DEFAULT_WORK)]
    compile_budget: u64,
    /// The estimated memory compiling may build (IR and values), e.g. 256M or 1G; going
    /// past it is error E0704 (default 256M).
    #[arg(long, value_name = "SIZE", value_parser = pipec::limits::parse_size)]
    compile_memory: Option<u64>,
    /// Write the iterator's state to FILE (atomically) when the run ends or stops: at the end,
    /// after `--take`, on SIGINT/SIGTERM (a second signal exits at once), and with
    /// `--state-every`; `--resume FILE` continues after the last element delivered.
    #[arg(long, value_name = "FILE")]
    save_state: Option<PathBuf>,
    /// Continue the run whose state FILE holds (written by `--save-state`), exactly after
    /// the last element it delivered; the program, pipeline, `--set`, `--shard` and `-O`
    /// must be those that saved it (`--threads` may differ).
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,
    /// With `--save-state`, also write the state every N elements.
    #[arg(long, value_name = "N", requires = "save_state", value_parser = clap::value_parser!(u64).range(1..))]
    state_every: Option<u64>,
    /// Show a progress bar on stderr from the start (without it, the bar appears on its own
    /// when stderr is a terminal, after a second, unless elements print to that terminal).
    #[arg(long)]
    progress: bool,
}

/// `--set NAME=VALUE`.
fn parse_set(text: &str) -> Result<(String, pipec::ParamValue), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got `{text}`"))?;
    let name = name.trim();
    let ident = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return Err(format!("`{name}` is not a name; expected NAME=VALUE"));
    }
    Ok((name.to_string(), pipec::ParamValue::parse(value)))
}

/// `--shard I/N`: shard I (0-based) of N.
fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("expected I/N (shard I of N, counting from 0), got `{text}`");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(format!(
            "shard {i} of {n} does not exist: shards count from 0 to N - 1"
        ));
    }
    Ok((i, n))
}

/// The most lanes a run uses, whatever `--threads` asks (the helper team's limit, 63, plus
/// the consumer's thread).
const MAX_THREADS: usize = 64;

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// When the process started, for `--stats`' compile time.
static PROCESS_START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

fn main() -> ExitCode {
    pipec::limits::tune_allocator();
    PROCESS_START.get_or_init(std::time::Instant::now);
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            // Every diagnostic carries a code, usage errors too (SPEC §10: exit 2).
            let text = e.render().to_string();
            let text = match text.strip_prefix("error:") {
                Some(rest) => format!("[E0800] Error:{rest}"),
                None => text,
            };
            eprint!("{text}");
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(0);
        }
    };
    SAVE_ON_SIGNAL.store(cli.save_state.is_some(), Ordering::Relaxed);
    if let Err(e) = on_signals() {
        eprintln!("error[E0800]: cannot install the signal handler: {e}");
        return ExitCode::from(2);
    }
    on_bus_errors();
    // Compile and run on a thread with a large stack: deeply nested (but accepted) programs
    // recurse in the tracer, and a stack overflow would abort instead of reporting.
    let worker = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || real_main(cli));
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => ExitCode::from(code),
        _ => {
            eprintln!(
                "error: internal compiler error (a panic); please report it with the input that causes it"
            );
            ExitCode::from(101)
        }
    }
}

/// Whether the first signal asks the run to stop after the block it is delivering and save
/// its state (`--save-state`), instead of exiting at once.
static SAVE_ON_SIGNAL: AtomicBool = AtomicBool::new(false);
/// The signal that asked the run to stop (0: none yet).
static STOPPED_BY: AtomicI32 = AtomicI32::new(0);

/// On SIGINT, SIGTERM or SIGHUP: kill the `exec` workers' process groups (they are not in
/// the terminal's group, so the signal did not reach them), remove temporary output files,
/// and exit with 128 + the signal's number, as a process killed by it would report. With
/// `--save-state` the first signal only asks the run to stop: it finishes delivering the
/// block in hand, writes its output and state, and exits with that same status; a second
/// signal exits at once.
fn on_signals() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("pipec-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if BUS_ERROR.load(Ordering::SeqCst) {
                    pipec::kill_all_workers();
                    TempFile::remove_all();
                    std::process::exit(1);
                }
                if SAVE_ON_SIGNAL.load(Ordering::Relaxed)
                    && STOPPED_BY
                        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                {
                    continue;
                }
                pipec::kill_all_workers();
                TempFile::remove_all();
                std::process::exit(128 + sig);
            }
        })?;
    Ok(())
}

/// Set when a memory-mapped input faulted (`SIGBUS`): the signal thread then ends the run
/// with exit status 1.
static BUS_ERROR: AtomicBool = AtomicBool::new(false);

/// Reports a `SIGBUS` and ends the run with status 1, cleaning up as for SIGTERM. Input
/// arrays are memory-mapped and read in place (crates/tensor's io/rows.rs): a file truncated
/// by another process during the run faults on its missing pages, which would otherwise kill
/// the process without a word.
#[allow(unsafe_code)]
fn on_bus_errors() {
    extern "C" fn on_sigbus(_: libc::c_int) {
        const MESSAGE: &[u8] = b"[E0602] Error: an input file shrank while pipec was reading it \
in place (another process truncated or rewrote it); the run stops\n";
        BUS_ERROR.store(true, Ordering::SeqCst);
        // SAFETY: `write`, `kill`, `getpid` and `pause` are async-signal-safe. The faulting
        // thread must not return (it would fault again): it waits for the signal thread,
        // woken by SIGTERM, to clean up and exit.
        unsafe {
            libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
            libc::kill(libc::getpid(), libc::SIGTERM);
            loop {
                libc::pause();
            }
        }
    }
    // SAFETY: a zeroed `sigaction` is a valid empty one; the handler only makes the calls
    // above.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

fn real_main(cli: Cli) -> u8 {
    let color = std::io::stderr().is_terminal();
    if let Some(code) = &cli.explain {
        return match pipec::Code::parse(code) {
            Some(c) => print_text(&format!("{}\n", c.explanation_text()), color),
            None => usage_error(
                format!("unknown error code `{code}`"),
                Some("codes look like E0101 (or 101); every diagnostic shows its code in brackets"),
                color,
            ),
        };
    }
    if cli.list_passes {
        let text: String = pipec::list_passes()
            .into_iter()
            .map(|(name, desc)| format!("{name:<20} {desc}\n"))
            .collect();
        return print_text(&text, color);
    }
    let Some(path) = cli.file.clone() else {
        return usage_error(
            "no input file".into(),
            Some("run `pipec FILE.pipe`, or `pipec --help`"),
            color,
        );
    };
    let source = match SourceFile::from_path(&path) {
        Ok(s) => s,
        Err(e) => {
            return usage_error(
                format!("cannot read `{}`: {e}", path.display()),
                None,
                color,
            );
        }
    };
    pipec::limits::set_max_memory(cli.max_memory.or_else(pipec::physical_memory));
    let mut compiler = Compiler::new();
    if !(cli.worker_timeout > 0.0 && cli.worker_timeout.is_finite()) {
        return usage_error(
            "--worker-timeout must be a positive number of seconds".into(),
            None,
            color,
        );
    }
    // A timeout past what a `Duration` holds (`1e20`) means no limit in practice.
    let timeout = std::time::Duration::try_from_secs_f64(cli.worker_timeout)
        .unwrap_or(std::time::Duration::MAX);
    compiler.set_worker_timeout(timeout);
    compiler.set_print_sink(Arc::new(|line: &str| {
        progress::suspend(|| {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        })
    }));
    let opts = CompileOptions {
        pipeline: cli.pipeline.clone(),
        opt_level: cli.opt_level,
        passes: cli.passes.clone(),
        allow_exec: cli.allow_exec,
        params: cli.set.clone(),
        shard: cli.shard,
        budget: pipec::CompileBudget {
            work: cli.compile_budget,
            memory: cli
                .compile_memory
                .unwrap_or(pipec::CompileBudget::DEFAULT_MEMORY),
        },
        // Copies of the program after each pass are only needed to print them.
        keep_stages: matches!(&cli.emit_ir, Some(s) if s == "all" || s.starts_with("after=")),
        // Checking or printing the program must not run anything.
        start_workers: !(cli.check || cli.emit_ir.is_some() || cli.emit_dot),
    };
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
        // The optimized program (the `-O` level's, or `--passes`'s), so the fusion shows.
        return print_text(&pipec::to_dot(&compiled.optimized), color);
    }
    run(&cli, &compiled, &source, color)
}

fn report(diags: &[Diagnostic], source: &SourceFile, color: bool) {
    if diags.is_empty() {
        return;
    }
    let text = pipec::render(diags, &source.name, &source.text, color);
    progress::suspend(|| {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    });
}

/// Reports bad usage (E0800, exit 2) as every diagnostic is rendered: `[E0800] Error: ...`.
/// Writes `text` to stdout: 0 on success or when the reader closed the pipe
/// (`pipec --emit-dot f.pipe | head`), 1 with E0605 when the write fails otherwise.
fn print_text(text: &str, color: bool) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            let d = Diagnostic::error(
                pipec::Code::OutputFailed,
                format!("cannot write to stdout: {e}"),
            );
            eprint!("{}", pipec::render(&[d], "", "", color));
            1
        }
    }
}

fn usage_error(message: String, help: Option<&str>, color: bool) -> u8 {
    let mut d = Diagnostic::error(pipec::Code::BadUsage, message);
    if let Some(help) = help {
        d = d.with_help(help);
    }
    eprint!("{}", pipec::render(&[d], "", "", color));
    2
}

fn emit_ir(compiled: &Compiled, stage: &str) -> u8 {
    match compiled.ir_text(stage) {
        Ok(text) => print_text(&text, false),
        Err(d) => {
            eprint!("{}", pipec::render(&[d], "", "", false));
            2
        }
    }
}

fn run(cli: &Cli, compiled: &Compiled, source: &SourceFile, color: bool) -> u8 {
    let start = std::time::Instant::now();
    let elem = compiled.element_type();
    // The sink is chosen before anything runs: a bad `--output` is bad usage (exit 2) and costs
    // no computation.
    let mut sink: Box<dyn Sink> = match &cli.output {
        Some(path) => match open_output(path, &elem, short_batch_fix(compiled, source)) {
            Ok(s) => s,
            Err(OutputError::Usage(d)) => {
                report(&[d], source, color);
                return 2;
            }
            Err(OutputError::Failed(d)) => {
                report(&[d], source, color);
                return 1;
            }
        },
        None if cli.discard => Box::new(Discard),
        None => Box::new(Print {
            out: std::io::BufWriter::new(std::io::stdout().lock()),
            elem: elem.clone(),
            around_bar: false,
        }),
    };
    // A bar between elements printed to the same terminal would garble both, so on its own
    // it appears only when the elements go elsewhere; `--progress` asks for it regardless,
    // and then each printed element takes the bar off the screen while it is written.
    let prints_to_tty = cli.output.is_none() && !cli.discard && std::io::stdout().is_terminal();
    let auto = std::io::stderr().is_terminal() && !prints_to_tty;
    let mut bar = if cli.progress || auto {
        progress::Progress::start(cli.take, cli.progress)
    } else {
        None
    };
    if prints_to_tty && bar.is_some() {
        sink.set_around_bar();
    }
    // Lanes past 64 only take turns (a parallel map spawns one thread per lane per chunk),
    // and kernel threads past the cores only wait: neither is started beyond that.
    let threads = cli.threads.clamp(1, MAX_THREADS);
    if cli.threads > MAX_THREADS {
        eprintln!(
            "warning[E0800]: --threads {} is more than can help; using {MAX_THREADS} lanes",
            cli.threads
        );
    }
    pipec::set_kernel_threads(threads.min(default_threads()));
    let mut clock = RunClock::new(cli.stats);
    let opts = RunOptions {
        threads,
        base_dir: source.dir.clone(),
        stats: cli.stats,
        checkpoints: cli.save_state.is_some(),
        ..RunOptions::default()
    };
    let opened = match &cli.resume {
        Some(path) => pipec::checkpoint::read_state_file(path)
            .and_then(|bytes| compiled.resume(&opts, &bytes)),
        None => compiled.run(&opts),
    };
    let mut stream = match opened {
        Ok(s) => s,
        Err(d) => {
            report(&[d], source, color);
            return 1;
        }
    };
    clock.open = clock.lap();
    let save = |stream: &mut pipec::ElementStream| -> Result<(), Diagnostic> {
        match &cli.save_state {
            Some(path) => pipec::checkpoint::write_state_file(path, &compiled.save_state(stream)?),
            None => Ok(()),
        }
    };
    let (mut count, mut bytes) = (0u64, 0u64);
    let block_rows = stream.block_rows() as u64;
    loop {
        if STOPPED_BY.load(Ordering::SeqCst) != 0 {
            break;
        }
        // Every element is consumed, so elements are pulled a block at a time; `--take N`
        // asks for exactly what is left, so N elements are computed (a parallel `map` may
        // still work ahead within its chunk, but never reports errors from there).
        let mut max = match cli.take {
            Some(t) if count >= t => break,
            Some(t) => (t - count).min(block_rows),
            None => block_rows,
        };
        // A state is due every N elements: blocks end there.
        if let Some(n) = cli.state_every {
            max = max.min(n - count % n);
        }
        let pulled = RunClock::timed(clock.on, &mut clock.pipeline, || {
            stream.next_block(max as usize)
        });
        let Some(chunk) = pulled else {
            break;
        };
        count += chunk.block.len() as u64;
        bytes += block_bytes(&chunk.block);
        if let Some(b) = &mut bar {
            b.advance(chunk.block.len() as u64, count, bytes);
        }
        match RunClock::timed(clock.on, &mut clock.sink, || sink.push_block(&chunk.block)) {
            Ok(()) => {}
            // stdout closed (`pipec f.pipe | head`): not an error.
            Err(SinkError::Closed) => return 0,
            Err(SinkError::Failed(d)) => {
                report(&[d], source, color);
                return 1;
            }
        }
        if let Some(d) = chunk.error {
            // Dropping the sink removes any temporary output: a failed run leaves nothing.
            drop(sink);
            report(&[d], source, color);
            return 1;
        }
        if let Some(n) = cli.state_every
            && count % n == 0
            && let Err(d) = sink.flush().and_then(|()| save(&mut stream))
        {
            report(&[d], source, color);
            return 1;
        }
    }
    match RunClock::timed(clock.on, &mut clock.sink, || sink.finish()) {
        Ok(()) | Err(SinkError::Closed) => {}
        Err(SinkError::Failed(d)) => {
            report(&[d], source, color);
            return 1;
        }
    }
    // The elements are out (or the output file is in place): the state now says so.
    if let Err(d) = save(&mut stream) {
        report(&[d], source, color);
        return 1;
    }
    if let Some(b) = bar.take() {
        b.finish();
    }
    if cli.stats {
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "elements: {count}\nbytes: {bytes}\nwall: {secs:.6} s\nrate: {:.0} elements/s",
            count as f64 / secs.max(1e-9)
        );
        eprint!("{}", clock.report());
        if let Some(stats) = stream.stats() {
            eprint!("{}", node_table(&stats.report(), secs));
        }
    }
    match STOPPED_BY.load(Ordering::SeqCst) {
        0 => 0,
        sig => (128 + sig) as u8,
    }
}

/// Where a run's wall time went, for `--stats`: each phase timed on the consumer's thread, so
/// the phases (and compiling before them) add up to the process's wall time; and the serial
/// share (see [`pipec::busy`]). Off, it reads no clock.
struct RunClock {
    on: bool,
    lap_start: std::time::Instant,
    open: std::time::Duration,
    pipeline: std::time::Duration,
    sink: std::time::Duration,
}

impl RunClock {
    fn new(on: bool) -> RunClock {
        if on {
            pipec::busy::start();
        }
        RunClock {
            on,
            lap_start: std::time::Instant::now(),
            open: Default::default(),
            pipeline: Default::default(),
            sink: Default::default(),
        }
    }

    /// The time since the last lap (or the start).
    fn lap(&mut self) -> std::time::Duration {
        let now = std::time::Instant::now();
        now - std::mem::replace(&mut self.lap_start, now)
    }

    /// Runs `f`, adding its time to `phase` when `on`.
    fn timed<T>(on: bool, phase: &mut std::time::Duration, f: impl FnOnce() -> T) -> T {
        if !on {
            return f();
        }
        let start = std::time::Instant::now();
        let out = f();
        *phase += start.elapsed();
        out
    }

    /// The `time:` table and the `serial share:` line.
    fn report(&mut self) -> String {
        let share = pipec::busy::finish();
        let Some(process_start) = PROCESS_START.get() else {
            return String::new();
        };
        let total = process_start.elapsed();
        let run = share.map_or(total, |s| s.wall);
        let compile = total.saturating_sub(run);
        let other = run.saturating_sub(self.open + self.pipeline + self.sink);
        let mut out = String::from("time:\n");
        for (name, d, what) in [
            ("compile", compile, "start-up, parse, trace, optimize"),
            (
                "open",
                self.open,
                "open the pipeline: read files, start threads",
            ),
            ("pipeline", self.pipeline, "pull elements: the nodes below"),
            ("sink", self.sink, "print or write the elements"),
            ("other", other, "the rest: progress, state files"),
        ] {
            out.push_str(&format!(
                "  {name:<9}{:10.6} s {:6.1}%  {what}\n",
                d.as_secs_f64(),
                100.0 * d.as_secs_f64() / total.as_secs_f64().max(1e-9)
            ));
        }
        if let Some(s) = share {
            out.push_str(&format!(
                "serial share: {:.1}% of the run (at most one thread working)\n",
                100.0 * s.fraction()
            ));
        }
        out
    }
}

/// The per-node part of `--stats`: each node's own time, its share of the wall time, the
/// elements it handed out, for a map or filter on lanes the share of its blocks helper threads
/// computed, and its IR line (format documented in docs/performance.md).
fn node_table(nodes: &[pipec::NodeReport], wall: f64) -> String {
    let mut out = String::from("nodes:\n     self s   share    elements  helped  node\n");
    for n in nodes {
        let helped = match n.lanes {
            Some(l) if l.blocks > 0 => {
                format!("{:.0}%", 100.0 * l.on_helpers as f64 / l.blocks as f64)
            }
            _ => "-".to_string(),
        };
        out.push_str(&format!(
            "  {:9.6} {:6.1}% {:>11} {:>7}  {}\n",
            n.self_secs,
            100.0 * n.self_secs / wall.max(1e-9),
            n.elements,
            helped,
            n.text
        ));
    }
    out
}

/// Why an element could not be delivered.
enum SinkError {
    /// The reader went away (closed stdout): stop quietly.
    Closed,
    /// A real failure (E0605).
    Failed(Diagnostic),
}

/// Why `--output` cannot be honoured.
enum OutputError {
    /// The path or the element type make it impossible (exit 2).
    Usage(Diagnostic),
    /// The file system refused (exit 1).
    Failed(Diagnostic),
}

/// The bytes of the tensors in a block.
fn block_bytes(block: &pipec::Block) -> u64 {
    match block {
        pipec::Block::Stacked { leaves, .. } => leaves.iter().map(|t| t.nbytes() as u64).sum(),
        pipec::Block::Rows(rows) => rows
            .iter()
            .flat_map(|e| e.iter().map(|t| t.nbytes() as u64))
            .sum(),
    }
}

/// Where elements go: stdout, nowhere, or an output file.
trait Sink {
    /// Delivers one element.
    fn push(&mut self, e: &pipec::Element) -> Result<(), SinkError>;
    /// Delivers a block of consecutive elements.
    fn push_block(&mut self, block: &pipec::Block) -> Result<(), SinkError> {
        for i in 0..block.len() {
            self.push(&block.row(i))?;
        }
        Ok(())
    }
    /// Completes the output (for files: the rename that makes them appear).
    fn finish(self: Box<Self>) -> Result<(), SinkError>;
    /// Makes what was delivered so far durable before a state says it was (`--state-every`):
    /// printed elements are flushed; an output file appears only at the end, so its state
    /// is the final one.
    fn flush(&mut self) -> Result<(), Diagnostic> {
        Ok(())
    }
    /// Makes writes to a terminal stdout step around the progress bar.
    fn set_around_bar(&mut self) {}
}

/// Prints elements numpy-style, one per line.
struct Print<W: Write> {
    out: W,
    elem: pipec::ElemType,
    /// Whether stdout is the terminal the progress bar is drawn on.
    around_bar: bool,
}

impl<W: Write> Print<W> {
    /// Writes formatted lines, stepping around the progress bar when it is drawn.
    fn write(&mut self, text: &str) -> Result<(), SinkError> {
        if self.around_bar && progress::active() {
            let out = &mut self.out;
            return progress::suspend(|| out.write_all(text.as_bytes()).and_then(|()| out.flush()))
                .map_err(stdout_error);
        }
        self.out.write_all(text.as_bytes()).map_err(stdout_error)
    }
}

impl<W: Write> Sink for Print<W> {
    fn push(&mut self, e: &pipec::Element) -> Result<(), SinkError> {
        let mut text = pipec::format_element(&self.elem, e);
        text.push('\n');
        self.write(&text)
    }

    fn push_block(&mut self, block: &pipec::Block) -> Result<(), SinkError> {
        let elem = &self.elem;
        let parts = lines::format_block(block, |e, text| {
            text.push_str(&pipec::format_element(elem, e));
            text.push('\n');
        });
        parts.iter().try_for_each(|part| self.write(part))
    }

    fn set_around_bar(&mut self) {
        self.around_bar = true;
    }

    fn flush(&mut self) -> Result<(), Diagnostic> {
        match self.out.flush().map_err(stdout_error) {
            Ok(()) | Err(SinkError::Closed) => Ok(()),
            Err(SinkError::Failed(d)) => Err(d),
        }
    }

    fn finish(mut self: Box<Self>) -> Result<(), SinkError> {
        self.out.flush().map_err(stdout_error)
    }
}

/// A failed write to stdout: a closed pipe (`pipec f.pipe | head`) ends the run quietly;
/// anything else (a full disk, `> /dev/full`) is E0605, since the output is cut short.
fn stdout_error(e: std::io::Error) -> SinkError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        SinkError::Closed
    } else {
        SinkError::Failed(Diagnostic::error(
            pipec::Code::OutputFailed,
            format!("cannot write the elements to stdout: {e}"),
        ))
    }
}

impl<W: Write> Drop for Print<W> {
    fn drop(&mut self) {
        // What was printed before a run-time error stays printed.
        let _ = self.out.flush();
    }
}

/// `--discard`: runs to the end, keeps nothing.
struct Discard;

impl Sink for Discard {
    fn push(&mut self, _: &pipec::Element) -> Result<(), SinkError> {
        Ok(())
    }

    fn push_block(&mut self, _: &pipec::Block) -> Result<(), SinkError> {
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        Ok(())
    }
}

fn output_failed(path: &Path, msg: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::error(
        pipec::Code::OutputFailed,
        format!("cannot write `{}`: {msg}", path.display()),
    )
}

/// A temporary file next to the output, removed on drop unless renamed into place. Being in
/// the same directory makes the final rename atomic (same file system).
struct TempFile {
    path: PathBuf,
    kept: bool,
}

/// The temporary files that exist now, for the signal handler to remove.
static TEMP_FILES: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

impl TempFile {
    /// Creates `.NAME.RANDOM[.PART].tmp` next to `dest`. The name is unpredictable and the
    /// file must not exist (`O_CREAT | O_EXCL`, which also never follows a symlink): a
    /// file or symlink planted under the name cannot redirect the writes.
    fn create(dest: &Path, part: Option<&str>) -> std::io::Result<(TempFile, std::fs::File)> {
        use std::hash::BuildHasher;
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let part = part.map(|p| format!(".{p}")).unwrap_or_default();
        let mut attempt = 0u32;
        loop {
            // Randomly keyed SipHash of the process, time and attempt: 64 random bits.
            let random = std::hash::RandomState::new().hash_one((
                std::process::id(),
                std::time::SystemTime::now(),
                attempt,
            ));
            let path = dir.join(format!(".{name}.{random:016x}{part}.tmp"));
            // Readable too: `.npz` parts are read back into the archive.
            let opened = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path);
            match opened {
                Ok(file) => {
                    if let Ok(mut t) = TEMP_FILES.lock() {
                        t.push(path.clone());
                    }
                    return Ok((TempFile { path, kept: false }, file));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves the file to `dest` (atomically replacing a regular file there; see
    /// [`pipec::replace_file`] for devices and pipes).
    fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        pipec::replace_file(&self.path, dest)?;
        self.kept = true;
        Ok(())
    }

    /// Removes every temporary file (the process is about to exit on a signal).
    fn remove_all() {
        let paths = match TEMP_FILES.lock() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for p in paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Ok(mut t) = TEMP_FILES.lock()
            && let Some(i) = t.iter().position(|p| *p == self.path)
        {
            t.swap_remove(i);
        }
    }
}

/// The `batch(n)` the output's elements come from, when it keeps a partial last batch: a
/// `.npy` cannot stack that short batch with the full ones, and `drop_remainder: true` is
/// usually the fix (tf.data users batch for training with it).
#[derive(Clone)]
struct ShortBatchFix {
    /// The batch size.
    size: usize,
    /// The `batch(...)` call.
    span: pipec::Span,
    /// The call as it should be written, e.g. `batch(32, drop_remainder: true)`.
    fixed: String,
}

fn short_batch_fix(compiled: &Compiled, source: &SourceFile) -> Option<ShortBatchFix> {
    let (size, span) = compiled.remainder_batch()?;
    let call = source.text.get(span.range())?;
    let fixed = if call.contains("drop_remainder: false") {
        call.replacen("drop_remainder: false", "drop_remainder: true", 1)
    } else {
        let open = call.strip_suffix(')')?.trim_end();
        let open = open.strip_suffix(',').unwrap_or(open);
        format!("{open}, drop_remainder: true)")
    };
    // A call spread over lines, or long, is named, not quoted.
    let fixed = if fixed.contains('\n') || fixed.len() > 80 {
        "drop_remainder: true".to_string()
    } else {
        fixed
    };
    Some(ShortBatchFix { size, span, fixed })
}

/// Opens the sink for `--output PATH`, chosen by the extension.
fn open_output(
    path: &Path,
    elem: &pipec::ElemType,
    short_batch: Option<ShortBatchFix>,
) -> Result<Box<dyn Sink>, OutputError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let leaves = elem.leaves();
    let usage = |msg: String, help: &str| {
        OutputError::Usage(
            Diagnostic::error(pipec::Code::BadUsage, msg).with_help(help.to_string()),
        )
    };
    let failed = |e: std::io::Error| OutputError::Failed(output_failed(path, e));
    // The array for one leaf: its dtype, and its element shape should nothing be produced.
    let writer = |k: usize, part: Option<&str>| -> Result<(TempFile, NpyOut), OutputError> {
        let (tmp, file) = TempFile::create(path, part).map_err(failed)?;
        let fallback = leaves[k]
            .shape
            .0
            .iter()
            .map(|d| d.known().unwrap_or(0))
            .collect();
        Ok((
            tmp,
            pipec::io::NpyWriter::new(std::io::BufWriter::new(file), leaves[k].dtype, fallback),
        ))
    };
    if let Some(format) = pipec::RecordFormat::of_path(path) {
        return record_sink::open(path, format, elem);
    }
    match ext {
        "npy" => {
            if leaves.len() != 1 {
                return Err(usage(
                    format!("the elements are tuples `{elem}`; a .npy file holds one array"),
                    "write `--output FILE.npz` (one array per component: arr_0, arr_1, ...) or `--output FILE.jsonl`",
                ));
            }
            let (tmp, w) = writer(0, None)?;
            Ok(Box::new(NpyFile {
                path: path.to_path_buf(),
                tmp,
                w,
                first: None,
                short_batch,
            }))
        }
        "npz" => {
            // numpy.savez's names for positional arrays, or each leaf's key path for dicts.
            let names: Vec<String> = if elem.has_dict() {
                elem.leaf_paths()
            } else {
                (0..leaves.len()).map(|k| format!("arr_{k}")).collect()
            };
            if let Some(bad) = names
                .iter()
                .enumerate()
                .find(|(i, n)| n.is_empty() || names[..*i].contains(n))
                .map(|(_, n)| n)
            {
                return Err(usage(
                    format!("the elements `{elem}` give two .npz members the name \"{bad}\""),
                    "rename the dict keys (a key may not be empty, and `/` joins nested keys), or write `--output FILE.jsonl`",
                ));
            }
            let (tmp, file) = TempFile::create(path, None).map_err(failed)?;
            let mut parts = Vec::new();
            // Temporary files are named by position: a key may hold any character.
            for k in 0..names.len() {
                parts.push(writer(k, Some(&format!("arr_{k}")))?);
            }
            Ok(Box::new(NpzFile {
                path: path.to_path_buf(),
                tmp,
                file,
                first: vec![None; parts.len()],
                parts,
                names,
                short_batch,
            }))
        }
        "jsonl" => {
            let (tmp, file) = TempFile::create(path, None).map_err(failed)?;
            Ok(Box::new(JsonlFile {
                path: path.to_path_buf(),
                tmp,
                out: std::io::BufWriter::new(file),
                elem: elem.clone(),
                line: String::new(),
            }))
        }
        other => Err(usage(
            format!("unsupported output format `.{other}`"),
            "write to a .npy, .npz, .jsonl, .tfrecord, .tfrecord.gz or .parquet file",
        )),
    }
}

type NpyOut = pipec::io::NpyWriter<std::io::BufWriter<std::fs::File>>;

/// Finishes a `.npy` stream and syncs it to disk.
fn finish_npy(w: NpyOut) -> Result<std::fs::File, pipec::io::IoError> {
    let file = w.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(file)
}

/// `.npy`: elements streamed into the temporary file, the header patched with the count at
/// the end (no element is held in memory).
struct NpyFile {
    path: PathBuf,
    tmp: TempFile,
    w: NpyOut,
    /// The first element's shape, which every other must have.
    first: Option<Vec<usize>>,
    short_batch: Option<ShortBatchFix>,
}

impl Sink for NpyFile {
    fn push(&mut self, e: &pipec::Element) -> Result<(), SinkError> {
        let t = &e[0];
        self.w.push(t).map_err(|err| {
            let first = self.first.as_deref();
            SinkError::Failed(npy_push_failed(
                &self.path,
                err,
                first.map(|f| (f, t.shape())),
                self.short_batch.as_ref(),
            ))
        })?;
        self.first.get_or_insert_with(|| t.shape().to_vec());
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        let NpyFile { path, tmp, w, .. } = *self;
        finish_npy(w).map_err(|e| SinkError::Failed(output_failed(&path, e)))?;
        tmp.persist(&path)
            .map_err(|e| SinkError::Failed(output_failed(&path, e)))
    }
}

/// E0605 for an element the `.npy` stream refused; `shapes` is the first element's shape
/// and this one's.
fn npy_push_failed(
    path: &Path,
    err: pipec::io::IoError,
    shapes: Option<(&[usize], &[usize])>,
    short_batch: Option<&ShortBatchFix>,
) -> Diagnostic {
    let d = output_failed(path, &err);
    if !matches!(err, pipec::io::IoError::Output(_)) {
        return d;
    }
    // A batch shorter than the batch size, the rest of its shape as the full ones': the
    // partial last batch of `batch(n)`.
    if let (Some((first, got)), Some(fix)) = (shapes, short_batch)
        && let ([n, rest_first @ ..], [m, rest_got @ ..]) = (first, got)
        && *n == fix.size
        && m < n
        && rest_first == rest_got
    {
        let what = if *m == 1 { "element" } else { "elements" };
        return d
            .with_label(
                fix.span,
                format!("batches of {n}; the partial last batch has {m} {what}"),
            )
            .with_help(format!(
                "drop the partial batch with `{}` (or write `.jsonl`, which allows any shapes)",
                fix.fixed
            ));
    }
    d.with_help(
        "pad the elements to one shape (`padded_batch`), or write `.jsonl`, which allows any shapes",
    )
}

/// `.npz`: like `numpy.savez(path, *components)`: one array per tuple component (leaves of
/// nested tuples in order), named `arr_0`, `arr_1`, ..., each stacked over the elements; with
/// dicts, like `numpy.savez(path, **fields)`: each leaf named by its key path
/// (`ElemType::leaf_paths`: `image`, `meta/id`, `1/label`). Each
/// component streams into its own temporary `.npy`; at the end they are copied into the
/// archive (stored, as numpy does), so memory stays at one element.
struct NpzFile {
    path: PathBuf,
    tmp: TempFile,
    file: std::fs::File,
    parts: Vec<(TempFile, NpyOut)>,
    /// The member name of each part, without `.npy`.
    names: Vec<String>,
    /// Each component's first shape.
    first: Vec<Option<Vec<usize>>>,
    short_batch: Option<ShortBatchFix>,
}

impl Sink for NpzFile {
    fn push(&mut self, e: &pipec::Element) -> Result<(), SinkError> {
        for (k, (((_, w), t), first)) in self
            .parts
            .iter_mut()
            .zip(e)
            .zip(&mut self.first)
            .enumerate()
        {
            w.push(t).map_err(|err| {
                let shapes = first.as_deref().map(|f| (f, t.shape()));
                let d = npy_push_failed(&self.path, err, shapes, self.short_batch.as_ref());
                SinkError::Failed(d.with_note(format!("in component {k} (`{}`)", self.names[k])))
            })?;
            first.get_or_insert_with(|| t.shape().to_vec());
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        let NpzFile {
            path,
            tmp,
            file,
            parts,
            names,
            ..
        } = *self;
        let fail = |e: &dyn std::fmt::Display| SinkError::Failed(output_failed(&path, e));
        let mut members = Vec::new();
        let mut temps = Vec::new();
        for (k, (part_tmp, w)) in parts.into_iter().enumerate() {
            let mut f = finish_npy(w).map_err(|e| fail(&e))?;
            f.seek(std::io::SeekFrom::Start(0)).map_err(|e| fail(&e))?;
            members.push((names[k].clone(), std::io::BufReader::new(f)));
            temps.push(part_tmp);
        }
        let file =
            pipec::io::write_npz(std::io::BufWriter::new(file), members).map_err(|e| fail(&e))?;
        let file = file.into_inner().map_err(|e| fail(&e.into_error()))?;
        file.sync_all().map_err(|e| fail(&e))?;
        drop(temps);
        tmp.persist(&path).map_err(|e| fail(&e))
    }
}

/// `.jsonl`: one JSON value per element and line, streamed. A tensor is nested lists (a
/// scalar is a bare number), a tuple a JSON array of its components; see
/// `pipec::io::append_json` for numbers (`"nan"`, `"inf"`, `"-inf"` for non-finite floats).
struct JsonlFile {
    path: PathBuf,
    tmp: TempFile,
    out: std::io::BufWriter<std::fs::File>,
    elem: pipec::ElemType,
    line: String,
}

fn json_element(
    elem: &pipec::ElemType,
    leaves: &mut std::slice::Iter<'_, pipec::Tensor>,
    out: &mut String,
) {
    match elem {
        pipec::ElemType::Tensor(_) => {
            if let Some(t) = leaves.next() {
                pipec::io::append_json(t, out);
            }
        }
        pipec::ElemType::Tuple(parts) => {
            out.push('[');
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_element(p, leaves, out);
            }
            out.push(']');
        }
        pipec::ElemType::Dict(fields) => {
            out.push('{');
            for (i, (k, p)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_string(k, out);
                out.push_str(": ");
                json_element(p, leaves, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Sink for JsonlFile {
    fn push(&mut self, e: &pipec::Element) -> Result<(), SinkError> {
        self.line.clear();
        json_element(&self.elem, &mut e.iter(), &mut self.line);
        self.line.push('\n');
        self.out
            .write_all(self.line.as_bytes())
            .map_err(|err| SinkError::Failed(output_failed(&self.path, err)))
    }

    fn push_block(&mut self, block: &pipec::Block) -> Result<(), SinkError> {
        let elem = &self.elem;
        let parts = lines::format_block(block, |e, text| {
            json_element(elem, &mut e.iter(), text);
            text.push('\n');
        });
        parts.iter().try_for_each(|part| {
            self.out
                .write_all(part.as_bytes())
                .map_err(|err| SinkError::Failed(output_failed(&self.path, err)))
        })
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        let JsonlFile { path, tmp, out, .. } = *self;
        let fail = |e: std::io::Error| SinkError::Failed(output_failed(&path, e));
        let file = out.into_inner().map_err(|e| fail(e.into_error()))?;
        file.sync_all().map_err(fail)?;
        tmp.persist(&path).map_err(fail)
    }
}
