//! The progress bar on stderr (`--progress`, and on its own for long runs on a terminal).
//!
//! It counts delivered elements and their bytes. It never touches stdout, and nothing the
//! run prints changes: whatever else writes to stderr (diagnostics, eager `print`) goes
//! through [`suspend`], which takes the bar off the screen while the text is written.

use indicatif::{HumanBytes, HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a run must take before the bar appears on its own: short runs stay quiet.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// How often the bar redraws while no element arrives (a slow first element, a worker).
const TICK: Duration = Duration::from_millis(120);

/// The bar of this run, once one exists; global because eager `print`s reach stderr from a
/// callback installed before the run starts.
static BAR: OnceLock<ProgressBar> = OnceLock::new();

/// Runs `f` (which writes to stderr or to a terminal stdout) with the bar hidden.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    match BAR.get() {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// Whether a bar exists (so a terminal stdout must be written around it).
pub fn active() -> bool {
    BAR.get().is_some()
}

/// A running progress bar; [`Progress::finish`] removes it from the screen.
pub struct Progress {
    bar: ProgressBar,
    /// Dropping the sender tells the delayed-show thread the run is over.
    stop: Option<mpsc::Sender<()>>,
    shower: Option<JoinHandle<()>>,
    /// When the bytes-and-rate message was last formatted.
    described: Instant,
}

impl Progress {
    /// Starts a bar, drawn at once (`immediately`, for `--progress`) or after [`SHOW_AFTER`].
    /// `total` is the `--take` count when there is one. indicatif draws nothing when stderr
    /// is not a terminal.
    pub fn start(total: Option<u64>, immediately: bool) -> Option<Progress> {
        let template = match total {
            Some(_) => {
                "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} elements, {msg}"
            }
            None => "{spinner} [{elapsed_precise}] {human_pos} elements, {msg}",
        };
        let style = ProgressStyle::with_template(template).ok()?;
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
        bar.set_style(style);
        bar.set_message(HumanBytes(0).to_string());
        // A second run in one process cannot happen (the CLI runs one pipeline), but if it
        // did, its bar would simply not be the one `suspend` sees.
        let _ = BAR.set(bar.clone());
        let (stop, stopped) = mpsc::channel::<()>();
        let delay = if immediately {
            Duration::ZERO
        } else {
            SHOW_AFTER
        };
        let shown = bar.clone();
        let shower = std::thread::Builder::new()
            .name("pipec-progress".into())
            .spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(delay) {
                    shown.set_draw_target(ProgressDrawTarget::stderr());
                    shown.enable_steady_tick(TICK);
                }
            })
            .ok();
        Some(Progress {
            bar,
            stop: Some(stop),
            shower,
            described: Instant::now(),
        })
    }

    /// Counts `n` more delivered elements; `count` elements of `total_bytes` bytes so far.
    pub fn advance(&mut self, n: u64, count: u64, total_bytes: u64) {
        self.bar.inc(n);
        // Formatting per element would cost more than small elements do; the screen
        // changes at most every `TICK` anyway.
        let now = Instant::now();
        if now.duration_since(self.described) >= TICK || count == n {
            self.described = now;
            let rate = count as f64 / self.bar.elapsed().as_secs_f64().max(1e-3);
            self.bar.set_message(format!(
                "{} ({} elements/s)",
                HumanBytes(total_bytes),
                HumanCount(rate as u64)
            ));
        }
    }

    /// Takes the bar off the screen (before the final diagnostics and `--stats`).
    pub fn finish(mut self) {
        self.stop_shower();
        self.bar.finish_and_clear();
    }

    fn stop_shower(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.shower.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Early returns (stdout closed, an error) must not leave a bar or its thread behind.
        self.stop_shower();
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}
