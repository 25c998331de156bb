//! Which threads are working, for `--stats`' *serial share*: the fraction of a run's wall time
//! during which at most one thread did work. By Amdahl's law that fraction `s` bounds the
//! speed-up on `N` cores at `1 / (s + (1 - s) / N)`, so it is the number to drive down.
//!
//! Threads say when they work: the thread that opens the run counts as working from
//! [`start`] on except inside a [`Waiting`] section (blocked on another thread's result);
//! lane helpers, a `prefetch` producer, parallel-map lanes and kernel tasks count inside a
//! [`Working`] section. A thread already counted is not counted twice (a kernel task that
//! runs on the thread that called the kernel). Spinning while waiting is waiting, not work.
//!
//! Off (one relaxed load per section) unless a run asked for it with [`start`].

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static ON: AtomicBool = AtomicBool::new(false);
static ACC: Mutex<Acc> = Mutex::new(Acc {
    working: 0,
    since: None,
    started: None,
    serial: Duration::ZERO,
});

thread_local! {
    /// Whether this thread is counted in [`Acc::working`] now.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

struct Acc {
    working: u32,
    since: Option<Instant>,
    started: Option<Instant>,
    serial: Duration,
}

/// The serial share of a finished run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SerialShare {
    /// Wall time from [`start`] to [`finish`].
    pub wall: Duration,
    /// The part of it during which at most one thread worked.
    pub serial: Duration,
}

impl SerialShare {
    /// `serial / wall`, in `[0, 1]`.
    pub fn fraction(&self) -> f64 {
        self.serial.as_secs_f64() / self.wall.as_secs_f64().max(1e-12)
    }
}

/// Starts measuring, with the calling thread counted as working.
pub fn start() {
    let now = Instant::now();
    if let Ok(mut acc) = ACC.lock() {
        *acc = Acc {
            working: 1,
            since: Some(now),
            started: Some(now),
            serial: Duration::ZERO,
        };
    }
    COUNTED.with(|c| c.set(true));
    ON.store(true, Ordering::SeqCst);
}

/// Stops measuring and reports; `None` when [`start`] was not called.
pub fn finish() -> Option<SerialShare> {
    ON.store(false, Ordering::SeqCst);
    COUNTED.with(|c| c.set(false));
    let mut acc = ACC.lock().ok()?;
    let now = Instant::now();
    let started = acc.started.take()?;
    let since = acc.since.take()?;
    if acc.working <= 1 {
        acc.serial += now - since;
    }
    Some(SerialShare {
        wall: now - started,
        serial: acc.serial,
    })
}

fn change(working: bool) {
    let Ok(mut acc) = ACC.lock() else {
        return;
    };
    let now = Instant::now();
    if let Some(since) = acc.since {
        if acc.working <= 1 {
            acc.serial += now - since;
        }
        acc.since = Some(now);
    }
    acc.working = if working {
        acc.working + 1
    } else {
        acc.working.saturating_sub(1)
    };
}

/// Sets the current thread's counted state (working or not) to `to` until dropped; nothing
/// when accounting is off or the thread is already in that state.
struct Switch {
    to: bool,
    changed: bool,
}

impl Switch {
    fn enter(to: bool) -> Switch {
        let changed = ON.load(Ordering::Relaxed) && COUNTED.with(Cell::get) != to;
        if changed {
            COUNTED.with(|c| c.set(to));
            change(to);
        }
        Switch { to, changed }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        if self.changed {
            COUNTED.with(|c| c.set(!self.to));
            if ON.load(Ordering::Relaxed) {
                change(!self.to);
            }
        }
    }
}

/// Counts the current thread as working until dropped (nothing if it already is).
#[must_use]
pub struct Working {
    _switch: Switch,
}

impl Working {
    /// Enters a working section.
    pub fn begin() -> Working {
        Working {
            _switch: Switch::enter(true),
        }
    }
}

/// Counts the current thread as not working (blocked on another thread) until dropped.
#[must_use]
pub struct Waiting {
    _switch: Switch,
}

impl Waiting {
    /// Enters a waiting section.
    pub fn begin() -> Waiting {
        Waiting {
            _switch: Switch::enter(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleep_ms(ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }

    /// One test only: the accounting is process-wide.
    #[test]
    fn serial_share_counts_time_with_at_most_one_thread_working() {
        start();
        sleep_ms(40); // the consumer alone: serial
        let helper = std::thread::spawn(|| {
            let _w = Working::begin();
            sleep_ms(60);
        });
        {
            // Work on a thread already counted is not counted twice.
            let _w = Working::begin();
            sleep_ms(60); // both working: parallel
        }
        {
            let _wait = Waiting::begin();
            helper.join().unwrap();
        }
        let s = finish().unwrap();
        // ~40 ms of ~100: the two-thread part is parallel, the rest serial (counting the
        // consumer twice, or the helper not at all, would make it ~0 or 1).
        let frac = s.fraction();
        assert!((0.2..0.75).contains(&frac), "serial share {frac}");
        assert!(s.serial <= s.wall);
        assert!(finish().is_none());
    }
}
