"""W8 with pyarrow: ParquetFile.iter_batches(batch_size=1024) over the file `pipec-bench`
writes (bench/workloads/data/w8.parquet), each batch's columns turned into numpy arrays (the
dict of 8 arrays pipec hands out). pyarrow's thread pool is set to the same thread count.

    python3 bench/compare/pyarrow_w8.py --reps 5 --threads 2
"""
import argparse
import os
import sys

from common import DATA, time_passes


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

    def one_pass():
        n = 0
        f = pq.ParquetFile(path)
        for batch in f.iter_batches(batch_size=1024, use_threads=True):
            # The dict of numpy arrays pipec hands out per batch (built, then dropped).
            cols = {name: col.to_numpy() for name, col in zip(batch.schema.names, batch.columns)}
            n += 1
        return n

    time_passes(one_pass, args.reps)


main()
