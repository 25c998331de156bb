"""Python iteration against the CLI's --discard, on the same pipelines (docs/performance.md).

    cargo run --release -p pipec-bench -- --gen        # the inputs (or this script writes
                                                       # W1's and W5's with numpy, the same values)
    cargo build --release -p pipec-cli                 # the CLI measured against
    pip install ./python                               # the package, release build
    python bench/python_iter.py [--reps 7] [--threads N] [--only w1,w5]

For each workload, with `threads` = the number of cores everywhere, medians of:

- CLI: the `pipec --discard --stats` process's own wall time of the run (opening the input
  and draining every element; start-up and compiling excluded). A fresh process each time:
  it also pays for starting its threads and first-touching its memory.
- discard: the same run in this process, `ds._discard()`: `--discard`'s loop (a block at a
  time, nothing converted), warm like the Python loop.
- Python: `for _ in ds: pass` (an empty loop body; `iter()` included).

Prints the throughput ratios Python / CLI and Python / discard, and the Python-side cost per
delivered element (batch): (Python time - discard time) / elements.
"""

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

import pipec

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "bench" / "workloads"


def ensure_inputs():
    """W1's and W5's inputs as `pipec-bench --gen` writes them (bench/src/lib.rs, make_input)."""
    import numpy as np

    data = WORKLOADS / "data"
    data.mkdir(exist_ok=True)
    rows = np.arange(1_000_000, dtype=np.int64)
    if not (data / "w1.npy").exists():
        w1 = (rows[:, None] * 7 + np.arange(3)) % 1000
        np.save(data / "w1.npy", w1.astype(np.int32))
    if not (data / "w5.npy").exists():
        w5 = (rows[:, None] * 7 + np.arange(6)) % 1000
        np.save(data / "w5.npy", w5.astype(np.int32).reshape(-1, 2, 3))


def cli_run(binary, path, threads):
    out = subprocess.run(
        [binary, "--discard", "--stats", "--threads", str(threads), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = float(re.search(r"^wall: ([0-9.]+) s$", out.stderr, re.M).group(1))
    count = int(re.search(r"^elements: (\d+)$", out.stderr, re.M).group(1))
    return wall, count


def py_run(ds):
    start = time.perf_counter()
    n = 0
    for _ in ds:
        n += 1
    return time.perf_counter() - start, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--only", default="w1,w5")
    ap.add_argument("--cli", default=str(ROOT / "target" / "release" / "pipec"))
    args = ap.parse_args()
    ensure_inputs()
    print(f"threads={args.threads} reps={args.reps} (medians after one untimed warm-up run)")
    print("| workload | elements | CLI --discard run (s) | in-process discard (s) | Python loop (s) | Python / CLI | Python / discard | Python cost per element |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for wid in args.only.split(","):
        path = WORKLOADS / f"{wid}.pipe"
        ds = pipec.compile(path).pipeline(threads=args.threads)
        cli_run(args.cli, path, args.threads)
        py_run(ds)
        ds._discard()
        cli, disc, py = [], [], []
        # Alternate, so a busy spell on the shared machine hits all three alike.
        for _ in range(args.reps):
            t, count = cli_run(args.cli, path, args.threads)
            cli.append(t)
            start = time.perf_counter()
            n = ds._discard()
            disc.append(time.perf_counter() - start)
            assert n == count, (n, count)
            t, n = py_run(ds)
            py.append(t)
            assert n == count, (n, count)
        c, d, p = (statistics.median(x) for x in (cli, disc, py))
        per = (p - d) / count * 1e6
        print(
            f"| {wid.upper()} | {count} | {c:.4f} | {d:.4f} | {p:.4f} | {c / p:.2f}x | {d / p:.2f}x | {per:.2f} µs |"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
