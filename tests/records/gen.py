"""Writes the record-format fixtures with real TensorFlow and pyarrow, and checks that the
files pipec writes read back in both.

    python3 tests/records/gen.py            # (re)write tests/records/data/ and expect/
    python3 tests/records/gen.py --check    # read pipec's files in tests/records/written/

Needs tensorflow-cpu, pyarrow and numpy (not needed by CI: the outputs are committed).
"""

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
EXPECT = os.path.join(HERE, "expect")
WRITTEN = os.path.join(HERE, "written")


def jsonable(a):
    """A numpy value as {dtype, shape, values}; bytes as lists of byte values."""
    a = np.asarray(a)
    if a.dtype.kind in "SO":
        vals = [list(bytes(x)) for x in a.reshape(-1)]
        return {"dtype": "str", "shape": list(a.shape), "values": vals}
    if a.dtype == np.float16:
        vals = [float(x) for x in a.reshape(-1)]
    else:
        vals = a.reshape(-1).tolist()
    return {"dtype": str(a.dtype), "shape": list(a.shape), "values": vals}


def examples():
    """Five Examples with every feature kind; `tokens` and `weight` are missing in some."""
    import tensorflow as tf

    rng = np.random.default_rng(18)
    out = []
    for i in range(5):
        f = {
            "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[rng.bytes(6 + i)])),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i * 10 - 15])),
            "bbox": tf.train.Feature(
                float_list=tf.train.FloatList(value=rng.random(4, dtype=np.float32).tolist())
            ),
            "words": tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[b"w%d" % k for k in range(i % 3)])
            ),
        }
        if i != 2:
            f["tokens"] = tf.train.Feature(
                int64_list=tf.train.Int64List(value=list(range(i, 2 * i + 1)))
            )
        if i % 2 == 0:
            f["weight"] = tf.train.Feature(float_list=tf.train.FloatList(value=[1.5 + i]))
        out.append(tf.train.Example(features=tf.train.Features(feature=f)))
    return out


def spec():
    import tensorflow as tf

    return {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "bbox": tf.io.FixedLenFeature([2, 2], tf.float32),
        "tokens": tf.io.VarLenFeature(tf.int64),
        "words": tf.io.VarLenFeature(tf.string),
        "weight": tf.io.FixedLenFeature([], tf.float32, default_value=0.5),
    }


def dense(t):
    import tensorflow as tf

    if isinstance(t, tf.SparseTensor):
        default = b"" if t.dtype == tf.string else 0
        t = tf.sparse.to_dense(t, default_value=default)
    return t.numpy()


def gen_tfrecord():
    import tensorflow as tf

    exs = examples()
    for name, comp in [("plain.tfrecord", ""), ("gzip.tfrecord.gz", "GZIP"), ("zlib.tfrecord", "ZLIB")]:
        with tf.io.TFRecordWriter(os.path.join(DATA, name), options=comp) as w:
            for e in exs:
                w.write(e.SerializeToString())
    raw = [e.SerializeToString() for e in exs]
    # What TF's reader gives back, and what TF's parser makes of each record and the batch.
    back = [r.numpy() for r in tf.data.TFRecordDataset(os.path.join(DATA, "zlib.tfrecord"), "ZLIB")]
    assert back == raw
    single = []
    for r in raw:
        p = tf.io.parse_single_example(r, spec())
        single.append({k: jsonable(dense(v)) for k, v in p.items()})
    batched = tf.io.parse_example(tf.constant(raw), spec())
    expect = {
        "records": [list(r) for r in raw],
        "single": single,
        "batched": {k: jsonable(dense(v)) for k, v in batched.items()},
    }
    # Without a default, a missing fixed feature is an error in TF too.
    s = spec()
    s["weight"] = tf.io.FixedLenFeature([], tf.float32)
    try:
        tf.io.parse_single_example(raw[1], s)
        raise SystemExit("TF parsed a missing feature without a default")
    except tf.errors.InvalidArgumentError as e:
        expect["missing_without_default"] = str(e).splitlines()[0]
    with open(os.path.join(EXPECT, "tfrecord.json"), "w") as f:
        json.dump(expect, f)
        f.write("\n")
    # Damaged files: a flipped data byte in record 2, and a file cut inside record 3.
    data = open(os.path.join(DATA, "plain.tfrecord"), "rb").read()
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        n = int.from_bytes(data[pos : pos + 8], "little")
        pos += 12 + n + 4
    bad = bytearray(data)
    bad[offsets[2] + 14] ^= 0x20
    open(os.path.join(DATA, "bad_crc.tfrecord"), "wb").write(bytes(bad))
    open(os.path.join(DATA, "truncated.tfrecord"), "wb").write(data[: offsets[3] + 20])
    for name in ["bad_crc.tfrecord", "truncated.tfrecord"]:
        try:
            list(tf.data.TFRecordDataset(os.path.join(DATA, name)))
            raise SystemExit(f"TF read {name}")
        except tf.errors.DataLossError:
            pass


def table():
    import pyarrow as pa

    n = 10
    rng = np.random.default_rng(7)
    cols = {
        "i8": pa.array(np.arange(n, dtype=np.int8) - 5),
        "i16": pa.array(np.arange(n, dtype=np.int16) * -300),
        "i32": pa.array(np.arange(n, dtype=np.int32) * 100000),
        "i64": pa.array(np.arange(n, dtype=np.int64) * 10**12),
        "u8": pa.array(np.arange(n, dtype=np.uint8) + 250 - n),
        "u16": pa.array(np.arange(n, dtype=np.uint16) * 6000),
        "u32": pa.array(np.arange(n, dtype=np.uint32) * 400000000),
        "u64": pa.array(np.arange(n, dtype=np.uint64) * 2**60),
        "f16": pa.array(rng.random(n).astype(np.float16)),
        "f32": pa.array(rng.random(n).astype(np.float32)),
        "f64": pa.array(rng.random(n)),
        "flag": pa.array([i % 3 == 0 for i in range(n)]),
        "text": pa.array(["row %d" % i if i % 4 else "" for i in range(n)]),
        "blob": pa.array([bytes([i, 255 - i, 0]) for i in range(n)], type=pa.binary()),
        "vec": pa.FixedSizeListArray.from_arrays(
            pa.array(rng.random(3 * n).astype(np.float32)), 3
        ),
        "mat": pa.FixedSizeListArray.from_arrays(
            pa.FixedSizeListArray.from_arrays(pa.array(np.arange(4 * n, dtype=np.int32)), 2), 2
        ),
    }
    return pa.table(cols)


def gen_parquet():
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = table()
    pq.write_table(t, os.path.join(DATA, "types.parquet"), row_group_size=3)
    assert pq.ParquetFile(os.path.join(DATA, "types.parquet")).num_row_groups == 4
    expect = {}
    for name, col in zip(t.column_names, t.columns):
        vals = col.to_pylist()
        if name in ("text", "blob"):
            expect[name] = {
                "dtype": "str",
                "shape": [len(vals)],
                "values": [list(v.encode() if isinstance(v, str) else v) for v in vals],
            }
            continue
        leaf = col.type
        while hasattr(leaf, "value_type"):
            leaf = leaf.value_type
        expect[name] = jsonable(np.array(vals, dtype=leaf.to_pandas_dtype()))
    with open(os.path.join(EXPECT, "types.json"), "w") as f:
        json.dump(expect, f)
        f.write("\n")
    nulls = pa.table({
        "a": pa.array([1, 2, 3, 4, None, 6], type=pa.int64()),
        "b": pa.array([0.5] * 6, type=pa.float32()),
        "v": pa.array([[1, 2], [3, 4], [5, None], [7, 8], [9, 10], [11, 12]],
                      type=pa.list_(pa.int32(), 2)),
    })
    pq.write_table(nulls, os.path.join(DATA, "nulls.parquet"), row_group_size=2)
    odd = pa.table({
        "ok": pa.array([1, 2], type=pa.int32()),
        "when": pa.array([0, 1], type=pa.timestamp("s")),
        "ragged": pa.array([[1], [2, 3]], type=pa.list_(pa.int64())),
    })
    pq.write_table(odd, os.path.join(DATA, "unsupported.parquet"))
    # Compressed with zstd, a codec this build of pipec does not read.
    pq.write_table(pa.table({"x": pa.array([1, 2, 3])}), os.path.join(DATA, "zstd.parquet"), compression="zstd")


def check_written():
    """Reads the files pipec wrote (tests/records/written/) with TF and pyarrow."""
    import tensorflow as tf
    import pyarrow.parquet as pq

    expect = json.load(open(os.path.join(WRITTEN, "expect.json")))
    for name, comp in [("rows.tfrecord", ""), ("rows.tfrecord.gz", "GZIP")]:
        got = []
        for r in tf.data.TFRecordDataset(os.path.join(WRITTEN, name), comp):
            ex = tf.train.Example.FromString(r.numpy())
            row = {}
            for k, f in ex.features.feature.items():
                kind = f.WhichOneof("kind")
                vals = list(getattr(f, kind).value)
                if kind == "bytes_list":
                    vals = [list(v) for v in vals]
                elif kind == "float_list":
                    vals = [float(v) for v in vals]
                row[k] = {"kind": kind, "values": vals}
            got.append(row)
        assert got == expect["tfrecord"], (name, got, expect["tfrecord"])
        print(f"{name}: TF reads {len(got)} Examples as pipec wrote them")
    t = pq.read_table(os.path.join(WRITTEN, "rows.parquet"))
    got = {name: col.to_pylist() for name, col in zip(t.column_names, t.columns)}
    for k, v in got.items():
        if v and isinstance(v[0], bytes):
            got[k] = [list(b) for b in v]
    assert got == expect["parquet"], (got, expect["parquet"])
    print(f"rows.parquet: pyarrow reads {t.num_rows} rows as pipec wrote them")


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        check_written()
    else:
        os.makedirs(DATA, exist_ok=True)
        os.makedirs(EXPECT, exist_ok=True)
        gen_tfrecord()
        gen_parquet()
        print("wrote", sorted(os.listdir(DATA)))
