"""Shared helpers for the comparison scripts: input loading, timing and the output line.

Each script prints `seconds=MEDIAN` on stdout, which `pipec-bench` reads; run it from the
repository root after `cargo run --release -p pipec-bench -- --gen` has written the inputs.
"""
import argparse
import os
import statistics
import sys
import time

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "workloads", "data")


# The inputs `load` read, for `run --with-load` to time reading them again.
_LOADED = []


def load(stem):
    """The same .npy input pipec reads (bench/workloads/data/STEM.npy)."""
    import numpy as np

    path = os.path.join(DATA, stem + ".npy")
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: run `cargo run --release -p pipec-bench -- --gen` first")
    _LOADED.append(path)
    return np.load(path)


def run(fn, setup=None):
    """Times `fn(setup())` --reps times (setup not timed) and prints the median. With
    `--with-load`, each repetition also times `np.load` of the inputs (from the page cache):
    the whole-program cost pipec's process is compared with."""
    import numpy as np

    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--with-load", action="store_true")
    args = ap.parse_args()
    times = []
    for _ in range(args.reps):
        arg = setup() if setup else None
        t = time.perf_counter()
        if args.with_load:
            for path in _LOADED:
                np.load(path)
        fn(arg)
        times.append(time.perf_counter() - t)
    print(f"seconds={statistics.median(times):.6f}")


def time_passes(one_pass, reps):
    """Runs `one_pass()` (which returns how many elements it delivered) reps + 1 times, the
    first untimed as pipec-bench does for pipec (page cache, imports, pools), and prints the
    element count and the medians of wall time and of the process's CPU time (every thread:
    what the work costs on a machine shared with other jobs, where wall time mostly measures
    waiting for a core)."""
    times, cpu, n = [], [], 0
    for rep in range(reps + 1):
        t = time.perf_counter()
        c = time.process_time()
        n = one_pass()
        if rep > 0:
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    print(f"elements={n}")
    print(f"seconds={statistics.median(times):.6f}")
    print(f"cpu_seconds={statistics.median(cpu):.6f}")


def require_tensorflow():
    """Exits quietly (status 0, no `seconds=` line) when TensorFlow is not installed."""
    try:
        import tensorflow as tf  # noqa: F401
    except ImportError:
        print("skipped: tensorflow is not installed", file=sys.stderr)
        sys.exit(0)
    return tf


def drain(ds):
    """Iterates a tf.data dataset to the end without keeping elements (like --discard)."""
    for _ in ds:
        pass
