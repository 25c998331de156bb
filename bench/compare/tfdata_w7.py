"""W7 in tf.data: TFRecordDataset over the 8 files -> parse_single_example (parallel, at the
same thread count as pipec) -> batch(256). Runs only when TensorFlow is installed; reads the
files `pipec-bench` writes into bench/workloads/data/w7/.

    python3 bench/compare/tfdata_w7.py --reps 5 --threads 2 [--batched]

`--batched` parses after batching (batch(256) then parse_example), tf.data's faster form for
the same output, which the table shows too.
"""
import argparse
import os
import sys

from common import DATA, time_passes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batched", action="store_true")
    args = ap.parse_args()
    try:
        import tensorflow as tf
    except ImportError:
        print("skipped: tensorflow is not installed", file=sys.stderr)
        return
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    files = [os.path.join(DATA, "w7", f"part-{k}.tfrecord") for k in range(8)]
    if not all(os.path.exists(f) for f in files):
        sys.exit("bench/workloads/data/w7 is missing: run `cargo run --release -p pipec-bench -- --gen`")
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "vec": tf.io.FixedLenFeature([16], tf.float32),
    }
    opts = tf.data.Options()
    opts.threading.private_threadpool_size = args.threads

    def dataset():
        ds = tf.data.TFRecordDataset(files)
        if args.batched:
            ds = ds.batch(256).map(
                lambda r: tf.io.parse_example(r, spec), num_parallel_calls=args.threads
            )
        else:
            ds = ds.map(
                lambda r: tf.io.parse_single_example(r, spec), num_parallel_calls=args.threads
            ).batch(256)
        return ds.with_options(opts)

    # Built once and iterated each time (tracing the parse function is not the pipeline's
    # work, as pipec's compile is not); one untimed pass first, as pipec-bench does for pipec.
    ds = dataset()

    def one_pass():
        n = 0
        for _ in ds:
            n += 1
        return n

    time_passes(one_pass, args.reps)


main()
