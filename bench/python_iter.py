"""Python iteration against the CLI's --discard, on the same pipelines (docs/performance.md).

    cargo run --release -p pipec-bench -- --gen        # the inputs, once
    cargo build --release -p pipec-cli                 # the CLI measured against
    pip install ./python                               # the package, release build
    python bench/python_iter.py [--reps 7] [--threads N] [--only w1,w5]

For each workload: the CLI's own `--stats` wall time of the run (opening the input and
draining every element, what `--discard` does; process start-up and compiling excluded),
and the same pipeline iterated from Python with an empty loop body (`for _ in ds: pass`,
`iter()` included), with `threads` = the number of cores in both. Prints medians, the
throughput ratio Python / CLI, and the Python-side cost per delivered element (batch):
(Python time - CLI time) / elements.
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
    print(f"threads={args.threads} reps={args.reps} (medians after one untimed warm-up run)")
    print("| workload | elements | CLI run (s) | Python iteration (s) | Python / CLI throughput | Python cost per element |")
    print("|---|---:|---:|---:|---:|---:|")
    for wid in args.only.split(","):
        path = WORKLOADS / f"{wid}.pipe"
        ds = pipec.compile(path).pipeline(threads=args.threads)
        cli_run(args.cli, path, args.threads)
        py_run(ds)
        cli, py = [], []
        # Alternate, so a busy spell on the shared machine hits both alike.
        for _ in range(args.reps):
            t, count = cli_run(args.cli, path, args.threads)
            cli.append(t)
            t, n = py_run(ds)
            py.append(t)
            assert n == count, (n, count)
        c, p = statistics.median(cli), statistics.median(py)
        per = (p - c) / count * 1e6
        print(f"| {wid.upper()} | {count} | {c:.4f} | {p:.4f} | {c / p:.2f}x | {per:.2f} µs |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
