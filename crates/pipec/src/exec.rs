//! `exec` workers: an eager function served by a long-lived external process.
//!
//! The protocol (documented in `docs/exec-protocol.md`) is framed and binary: the worker
//! first writes the line `PIPEC-WORKER 1\n`; then, per call, pipec writes a request and
//! the worker answers with a response.
//!
//! ```text
//! request:  b"CALL" u32 n_args  { u64 len, len bytes of .npy }*
//! response: b"OK  " u32 n_results { u64 len, len bytes of .npy }*
//!         | b"ERR " u64 len, len bytes of UTF-8 message
//! ```
//! All integers are little-endian. One worker per lane; it is killed and reaped when the
//! lane ends. A worker that exits, hangs past the timeout (reading its request or
//! answering), answers garbage or floods stderr gives an error naming it, and pipec never
//! blocks on it forever. Each worker runs in its own process group, and ending a worker
//! ends the group, so that what it started (a shell script's children, forked helpers)
//! ends with it; [`kill_all_workers`] ends every live group (the CLI calls it on SIGINT,
//! SIGTERM and SIGHUP, since a worker in its own group no longer gets the terminal's
//! signals).

use pipec_diag::{Code, Diagnostic};
use pipec_ir::{HostFunction, HostInstance};
use pipec_tensor::Tensor;
use std::collections::VecDeque;
use std::io::{BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The process groups of the workers alive now, and whether the process is ending (then
/// no worker starts any more). Workers are spawned with the lock held, so a worker is
/// either registered before [`kill_all_workers`] looks, or never started.
static GROUPS: Mutex<(Vec<u32>, bool)> = Mutex::new((Vec::new(), false));

/// Kills every live worker's process group, and lets no new worker start (for a signal
/// handler about to exit: workers run in their own groups, so nothing else would end them).
pub fn kill_all_workers() {
    let mut g = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    g.1 = true;
    for &pgid in &g.0 {
        kill_group(pgid);
    }
}

/// Sends SIGKILL to the process group `pgid` (a worker and whatever it started).
fn kill_group(pgid: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Ok(raw) = i32::try_from(pgid) {
        let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

fn unregister_group(pgid: u32) {
    let mut g = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = g.0.iter().position(|x| *x == pgid) {
        g.0.swap_remove(i);
    }
}

/// The greeting a worker must send first.
const HELLO: &[u8] = b"PIPEC-WORKER 1\n";
/// Largest frame accepted from a worker (guards against garbage lengths).
const MAX_FRAME: u64 = 1 << 34;
/// How much of a worker's stderr is kept for error messages.
const STDERR_TAIL: usize = 4096;

/// How to start a worker.
#[derive(Clone, Debug)]
pub struct ExecWorker {
    name: String,
    argv: Vec<String>,
    dir: PathBuf,
    timeout: Duration,
}

impl ExecWorker {
    /// A worker running `argv` in `dir`, answering each call within `timeout`.
    pub fn new(name: &str, argv: Vec<String>, dir: PathBuf, timeout: Duration) -> ExecWorker {
        ExecWorker {
            name: name.to_string(),
            argv,
            dir,
            timeout,
        }
    }

    fn error(&self, code: Code, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(
            code,
            format!(
                "worker `{}` ({}): {}",
                self.name,
                self.argv.join(" "),
                msg.into()
            ),
        )
    }
}

impl HostFunction for ExecWorker {
    fn name(&self) -> &str {
        &self.name
    }

    fn flavor(&self) -> &'static str {
        "exec"
    }

    fn instantiate(&self) -> Result<Box<dyn HostInstance>, Diagnostic> {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group (id = its pid): killing the group ends its children too.
            .process_group(0);
        let mut child = {
            let mut groups = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
            if groups.1 {
                return Err(self.error(Code::WorkerFailed, "cannot start: pipec is exiting"));
            }
            let child = cmd.spawn().map_err(|e| {
                self.error(Code::WorkerFailed, format!("cannot start: {e}"))
                    .with_help("check the command exists and is on PATH (paths are relative to the .pipe file)")
            })?;
            groups.0.push(child.id());
            child
        };
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        // Drain stderr continuously so a chatty worker never blocks on a full pipe; keep the tail.
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let tail_w = tail.clone();
        let stderr_closed = Arc::new(AtomicBool::new(false));
        let closed_w = stderr_closed.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut t) = tail_w.lock() {
                    for &b in &buf[..n] {
                        if t.len() == STDERR_TAIL {
                            t.pop_front();
                        }
                        t.push_back(b);
                    }
                }
            }
            closed_w.store(true, Ordering::Release);
        });
        // Requests are written on a thread so that a worker that stops reading meets the
        // timeout too (a large request fills the pipe and the write blocks until the group
        // is killed, which closes the pipe).
        let (frames, frames_rx) = mpsc::channel::<Vec<u8>>();
        let (written_tx, written) = mpsc::channel::<std::io::Result<()>>();
        std::thread::spawn(move || {
            let mut stdin = stdin;
            for frame in frames_rx {
                let r = stdin.write_all(&frame).and_then(|_| stdin.flush());
                let failed = r.is_err();
                if written_tx.send(r).is_err() || failed {
                    return;
                }
            }
        });
        // Responses are read on a thread so that a hung worker meets the timeout.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut hello = vec![0u8; HELLO.len()];
            if r.read_exact(&mut hello).is_err() || hello != HELLO {
                let _ = tx.send(Err(
                    "did not greet with `PIPEC-WORKER 1` (is it a pipec worker?)".to_string(),
                ));
                return;
            }
            loop {
                let msg = read_response(&mut r);
                let stop = msg.is_err();
                if tx.send(msg).is_err() || stop {
                    return;
                }
            }
        });
        Ok(Box::new(Running {
            spec: self.clone(),
            child,
            frames: Some(frames),
            written,
            rx,
            stderr: tail,
            stderr_closed,
        }))
    }
}

/// One started worker process.
struct Running {
    spec: ExecWorker,
    child: Child,
    /// Requests for the writer thread; dropping it closes the worker's stdin.
    frames: Option<Sender<Vec<u8>>>,
    /// The writer thread's result for each request.
    written: Receiver<std::io::Result<()>>,
    rx: Receiver<Result<Vec<Tensor>, String>>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    /// Set once the stderr reader met the end of the pipe.
    stderr_closed: Arc<AtomicBool>,
}

impl Running {
    fn stderr_note(&mut self, d: Diagnostic) -> Diagnostic {
        // A worker that exited may have written its last words just before: let the reader
        // take them in (on a busy machine it can lag behind the exit).
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            let deadline = std::time::Instant::now() + Duration::from_millis(500);
            while !self.stderr_closed.load(Ordering::Acquire)
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let tail: Vec<u8> = self
            .stderr
            .lock()
            .map(|t| t.iter().copied().collect())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&tail);
        // The last few lines, each cut short: enough to see a traceback's end.
        let lines: Vec<String> = text
            .trim()
            .lines()
            .rev()
            .take(8)
            .map(|l| {
                if l.chars().count() > 160 {
                    format!("{}…", l.chars().take(160).collect::<String>())
                } else {
                    l.to_string()
                }
            })
            .collect();
        if lines.is_empty() {
            return d;
        }
        let tail: Vec<String> = lines.into_iter().rev().collect();
        d.with_note(format!(
            "the worker's stderr ends with:\n{}",
            tail.join("\n")
        ))
    }

    /// Why the worker stopped talking: its exit status if it exits soon after.
    fn exit_status(&mut self) -> String {
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => return format!("the worker exited ({s})"),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => return "the worker is still running".to_string(),
            }
        }
    }
}

impl HostInstance for Running {
    fn call(&mut self, args: &[Tensor]) -> Result<Vec<Tensor>, Diagnostic> {
        let mut frame = Vec::new();
        frame.extend_from_slice(b"CALL");
        frame.extend_from_slice(&(args.len() as u32).to_le_bytes());
        for a in args {
            let npy = pipec_tensor::io::encode_npy(a);
            frame.extend_from_slice(&(npy.len() as u64).to_le_bytes());
            frame.extend_from_slice(&npy);
        }
        // One deadline for the whole call: taking the request and answering it. A timeout
        // too large for the clock means none.
        let deadline = Instant::now().checked_add(self.spec.timeout);
        let sent = self.frames.as_ref().is_some_and(|f| f.send(frame).is_ok());
        let written = match (sent, deadline) {
            (false, _) => Err(RecvTimeoutError::Disconnected),
            (true, Some(d)) => self
                .written
                .recv_timeout(d.saturating_duration_since(Instant::now())),
            (true, None) => self
                .written
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        if let Err(RecvTimeoutError::Timeout) = written {
            self.kill();
            let d = self
                .spec
                .error(
                    Code::WorkerTimeout,
                    format!(
                        "it did not read its request within {:.1} s; the worker was killed",
                        self.spec.timeout.as_secs_f64()
                    ),
                )
                .with_help("a worker must read each request whole before answering; raise the limit with `--worker-timeout SECONDS` if it is just slow");
            return Err(self.stderr_note(d));
        }
        if !matches!(written, Ok(Ok(()))) {
            // Give the reader a moment to collect the exit status and stderr.
            std::thread::sleep(Duration::from_millis(50));
            let status = self.exit_status();
            let d = self.spec.error(
                Code::WorkerFailed,
                format!("cannot send it a request: {status}"),
            );
            return Err(self.stderr_note(d));
        }
        let answer = match deadline {
            Some(d) => self
                .rx
                .recv_timeout(d.saturating_duration_since(Instant::now())),
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match answer {
            Ok(Ok(results)) => Ok(results),
            Ok(Err(msg)) => {
                let code = if msg.starts_with("worker error:") {
                    Code::HostFunctionFailed
                } else if msg.starts_with("closed its output") {
                    Code::WorkerFailed
                } else {
                    Code::WorkerProtocol
                };
                let status = if msg.contains("closed") {
                    format!(" ({})", self.exit_status())
                } else {
                    String::new()
                };
                let d = self.spec.error(code, format!("{msg}{status}"));
                Err(self.stderr_note(d))
            }
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                let d = self
                    .spec
                    .error(
                        Code::WorkerTimeout,
                        format!(
                            "no answer within {:.1} s; the worker was killed",
                            self.spec.timeout.as_secs_f64()
                        ),
                    )
                    .with_help(
                        "raise the limit with `--worker-timeout SECONDS` if it is just slow",
                    );
                Err(self.stderr_note(d))
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.exit_status();
                Err(self.stderr_note(self.spec.error(Code::WorkerFailed, status)))
            }
        }
    }
}

impl Running {
    /// Kills the worker's process group (the worker and anything it started).
    fn kill(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.kill();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Closing stdin asks the worker to finish; then its group is killed in any case (a
        // worker that exited may have left children behind), and the worker reaped. The
        // group id stays ours while any member lives, so killing it cannot hit another
        // process.
        drop(self.frames.take());
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                _ => break,
            }
        }
        self.kill();
        let _ = self.child.wait();
        unregister_group(self.child.id());
    }
}

fn read_u32(r: &mut impl Read) -> Result<u32, String> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)
        .map_err(|_| "closed its output mid-answer".to_string())?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> Result<u64, String> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)
        .map_err(|_| "closed its output mid-answer".to_string())?;
    Ok(u64::from_le_bytes(b))
}

fn read_bytes(r: &mut impl Read, len: u64) -> Result<Vec<u8>, String> {
    if len > MAX_FRAME {
        return Err(format!(
            "answered a frame of {len} bytes, more than the protocol allows"
        ));
    }
    let mut buf = Vec::new();
    r.take(len)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 != len {
        return Err("closed its output mid-answer".into());
    }
    Ok(buf)
}

fn read_response(r: &mut impl Read) -> Result<Vec<Tensor>, String> {
    let mut tag = [0u8; 4];
    r.read_exact(&mut tag)
        .map_err(|_| "closed its output".to_string())?;
    match &tag {
        b"OK  " => {
            let n = read_u32(r)?;
            if n > 1024 {
                return Err(format!(
                    "answered {n} results, which is not a plausible count"
                ));
            }
            let mut out = Vec::new();
            for _ in 0..n {
                let len = read_u64(r)?;
                let bytes = read_bytes(r, len)?;
                out.push(
                    pipec_tensor::io::parse_npy(&bytes)
                        .map_err(|e| format!("answered an invalid array: {e}"))?,
                );
            }
            Ok(out)
        }
        b"ERR " => {
            let len = read_u64(r)?;
            let bytes = read_bytes(r, len.min(1 << 20))?;
            Err(format!("worker error: {}", String::from_utf8_lossy(&bytes)))
        }
        other => Err(format!(
            "answered garbage (frame tag {:?}); a worker must only write protocol frames to stdout",
            String::from_utf8_lossy(other)
        )),
    }
}
