"""The per-call overhead of eager bodies that depend on values (issue 20).

Runs `range(N).map(f)` for eager bodies that branch, loop or read host numbers, each next
to a traced function computing the same thing, at -O0 (every eager call on the evaluator,
element at a time) and -O2 (planned bodies on blocks), and prints microseconds per element
and the eager overhead per call: the eager run's time per element minus the traced one's
at the same level, measured in the same run. Medians of REPS runs.

    python3 bench/eager_overhead.py [PIPEC] [--reps 5] [--threads 1] [--n 1000000]

Run it under `sh bench/quiet.sh` on a shared machine.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

# name -> (eager body over `x: i64[]`, the traced expression computing the same thing)
CASES = {
    "branch": (
        "    if x % 3 == 0 {\n        return x * 2\n    } else if x % 3 == 1 {\n"
        "        return -x\n    }\n    return x + 100\n",
        "where(x % 3 == 0, x * 2, where(x % 3 == 1, -x, x + 100))",
    ),
    "loop": (
        "    let y = x % 1000\n    let n = x * 0\n    while y > 1 {\n        y = y // 2\n"
        "        n = n + 1\n    }\n    return n\n",
        # the loop's trip count: floor(log2(y)) for y >= 2, 0 below
        " + ".join(f"cast(x % 1000 >= {1 << k}, i64)" for k in range(1, 10)),
    ),
    "item": (
        "    if item(x) > 0 {\n        return x\n    }\n    return -x\n",
        "where(x > 0, x, -x)",
    ),
    # host-number arithmetic (range-guarded in the plan)
    "item_arith": (
        "    let n = item(x) % 1000\n    if n * 3 + 1 > 1500 {\n        return x * 2\n    }\n"
        "    return x + 1\n",
        "where(x % 1000 * 3 + 1 > 1500, x * 2, x + 1)",
    ),
    # a host number meeting a tensor (cast to its dtype under a range guard)
    "item_tensor": (
        "    return x * (item(x) % 7)\n",
        "x * (x % 7)",
    ),
}


def run(pipec, path, opt, threads):
    start = time.perf_counter()
    subprocess.run(
        [pipec, opt, "--discard", "--threads", str(threads), path],
        check=True,
    )
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pipec", nargs="?", default="target/release/pipec")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=1_000_000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pipec_eager_")
    print(f"range({args.n}).map(f), --threads {args.threads}, medians of {args.reps}")
    print("| body | level | eager µs/el | traced µs/el | overhead µs/call |")
    print("|---|---|---:|---:|---:|")
    for name, (body, traced) in CASES.items():
        eager_path = os.path.join(tmp, f"{name}_eager.pipe")
        traced_path = os.path.join(tmp, f"{name}_traced.pipe")
        with open(eager_path, "w") as f:
            f.write(f"eager fn f(x) -> i64[] {{\n{body}}}\n")
            f.write(f"pipeline main = range({args.n}).map(f)\n")
        with open(traced_path, "w") as f:
            f.write(f"pipeline main = range({args.n}).map(|x| {traced})\n")
        # The two programs print the same elements (checked once, at -O2).
        outs = [
            subprocess.run([args.pipec, p], capture_output=True, check=True).stdout
            for p in (eager_path, traced_path)
        ]
        if outs[0] != outs[1]:
            sys.exit(f"{name}: the eager and traced programs print different elements")
        for opt in ("-O0", "-O2"):
            e, t = [], []
            for _ in range(args.reps):
                e.append(run(args.pipec, eager_path, opt, args.threads))
                t.append(run(args.pipec, traced_path, opt, args.threads))
            em = statistics.median(e) / args.n * 1e6
            tm = statistics.median(t) / args.n * 1e6
            print(f"| {name} | {opt} | {em:.3f} | {tm:.3f} | {em - tm:.3f} |")


if __name__ == "__main__":
    main()
