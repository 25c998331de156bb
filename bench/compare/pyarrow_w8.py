"""W8 with pyarrow: ParquetFile.iter_batches(batch_size=1024) over the file `pipec-bench`
writes (bench/workloads/data/w8.parquet), each batch's columns turned into numpy arrays (the
dict of 8 arrays pipec hands out). pyarrow's thread pool is set to the same thread count.

    python3 bench/compare/pyarrow_w8.py --reps 5 --threads 2
"""
import argparse
import os
import statistics
import sys
import time

from common import DATA


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        print("skipped: pyarrow is not installed", file=sys.stderr)
        return
    pa.set_cpu_count(args.threads)
    path = os.path.join(DATA, "w8.parquet")
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: run `cargo run --release -p pipec-bench -- --gen`")
    times = []
    cpu = []
    n = 0
    # One untimed pass first, as pipec-bench does for pipec (page cache, imports, pools).
    for rep in range(args.reps + 1):
        t = time.perf_counter()
        c = time.process_time()
        n = 0
        f = pq.ParquetFile(path)
        for batch in f.iter_batches(batch_size=1024, use_threads=True):
            cols = {name: col.to_numpy() for name, col in zip(batch.schema.names, batch.columns)}
            n += 1
        del cols
        if rep > 0:
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    print(f"elements={n}")
    print(f"seconds={statistics.median(times):.6f}")
    # CPU time of every thread of the process: what the work costs on a machine shared with
    # other jobs, where wall time mostly measures waiting for a core.
    print(f"cpu_seconds={statistics.median(cpu):.6f}")


main()
