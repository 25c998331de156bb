"""Writes the record files of examples/tfrecord_parse.pipe and examples/parquet_rows.pipe
with TensorFlow and pyarrow (run from the repo root: python3 examples/data/gen_records.py;
needs tensorflow-cpu and pyarrow). Fixed seed: the files are committed."""
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf

HERE = pathlib.Path(__file__).resolve().parent


def main():
    rng = np.random.default_rng(20261204)
    # Five Examples: a 2x2 RGB image as PNG bytes, an int64 label, a float[4] box, a
    # variable number of tokens, and a weight that only some records carry.
    with tf.io.TFRecordWriter(str(HERE / "train.tfrecord.gz"), options="GZIP") as w:
        for i in range(5):
            img = rng.integers(0, 256, size=(2, 2, 3), dtype=np.uint8)
            f = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[tf.io.encode_png(img).numpy()])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3])),
                "bbox": tf.train.Feature(float_list=tf.train.FloatList(value=[0.125 * i, 0.25, 0.5, 0.75])),
                "tokens": tf.train.Feature(int64_list=tf.train.Int64List(value=list(range(1, i + 1)))),
            }
            if i % 2:
                f["weight"] = tf.train.Feature(float_list=tf.train.FloatList(value=[2.0]))
            w.write(tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString())
    # Ten rows in three row groups: an id, a float[2] vector, a name.
    n = 10
    table = pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "x": pa.FixedSizeListArray.from_arrays(pa.array(rng.random(2 * n).round(2).astype(np.float32)), 2),
        "name": pa.array([f"row{i}" for i in range(n)]),
    })
    pq.write_table(table, HERE / "table.parquet", row_group_size=4)


if __name__ == "__main__":
    main()
