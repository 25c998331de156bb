"""`ds.save(path)` (SPEC §14): a dataset written from Python as `.tfrecord`, `.tfrecord.gz` or
`.parquet` reads back through pipec's own readers (`read_tfrecord` + `parse_example`,
`read_parquet`) as exactly the elements the dataset yields, dtypes and shapes included.
"""

import numpy as np
import pytest

import pipec

# Every kind of leaf the formats hold: a float scalar, an integer vector, a string and a
# float matrix; 23 elements (not a round number, so no block size hides a missing tail).
DICTS = """
pipeline main = range(23).map(|i| {"x": cast(i, f32) * 0.5, "v": i * cast([1, 2, 3], i64),
    "s": as_string(i * 7), "m": cast(i, f32) * [[1.0, 2.0], [3.0, 4.0]]})
pipeline pairs = range(5).map(|i| (cast(i, f32) - 2.5, i * cast([10, 20], i64)))
"""

FEATURES = '{"x": f32, "v": "i64[3]", "s": str, "m": "f32[2, 2]"}'


def elements(ds):
    return list(ds)


def assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, dict):
            assert list(g) == list(w)
            pairs = [(g[k], w[k]) for k in w]
        else:
            assert isinstance(g, tuple) and len(g) == len(w)
            pairs = list(zip(g, w))
        for a, b in pairs:
            a, b = np.asarray(a), np.asarray(b)
            assert a.dtype == b.dtype and a.shape == b.shape, (a, b)
            assert a.tolist() == b.tolist()


def read_back(source):
    return elements(pipec.compile(source=source).pipeline())


@pytest.mark.parametrize(
    "name, compression", [("out.tfrecord", ""), ("out.tfrecord.gz", "GZIP")]
)
def test_save_tfrecord_round_trips_through_parse_example(tmp_path, name, compression):
    ds = pipec.compile(source=DICTS).pipeline("main")
    want = elements(ds)
    path = tmp_path / name
    assert ds.save(path) == 23
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left
    if compression:
        assert path.read_bytes()[:2] == b"\x1f\x8b"  # a gzip stream
    got = read_back(
        f'pipeline main = read_tfrecord("{path}", compression: "{compression}")\n'
        f"    .map(|r| parse_example(r, {FEATURES}))\n"
    )
    assert_same(got, want)


def test_save_parquet_round_trips_through_read_parquet(tmp_path):
    ds = pipec.compile(source=DICTS).pipeline("main")
    want = elements(ds)
    path = tmp_path / "out.parquet"
    assert ds.save(str(path)) == 23
    got = read_back(f'pipeline main = read_parquet("{path}")\n')
    assert_same(got, want)
    # Columns asked for by name come back in the order asked.
    some = read_back(f'pipeline main = read_parquet("{path}", columns: ["s", "x"])\n')
    assert_same(some, [{"s": w["s"], "x": w["x"]} for w in want])


def test_save_of_tuples_names_components_arr_i(tmp_path):
    ds = pipec.compile(source=DICTS).pipeline("pairs")
    want = elements(ds)
    tf_path, pq_path = tmp_path / "t.tfrecord", tmp_path / "t.parquet"
    assert ds.save(tf_path) == 5 and ds.save(pq_path) == 5
    got = read_back(
        f'pipeline main = read_tfrecord("{tf_path}")\n'
        '    .map(|r| parse_example(r, {"arr_0": f32, "arr_1": "i64[2]"}))\n'
        '    .map(|e| (e["arr_0"], e["arr_1"]))\n'
    )
    assert_same(got, want)
    got = read_back(
        f'pipeline main = read_parquet("{pq_path}").map(|e| (e["arr_0"], e["arr_1"]))\n'
    )
    assert_same(got, want)


def test_save_honours_take_and_rewrites_the_file(tmp_path):
    ds = pipec.compile(source=DICTS).pipeline("main")
    path = tmp_path / "few.parquet"
    assert ds.save(path) == 23
    assert ds.take(4).save(path) == 4  # replaced atomically, not appended to
    got = read_back(f'pipeline main = read_parquet("{path}")\n')
    assert_same(got, elements(ds)[:4])


def test_save_to_an_unknown_extension_is_a_value_error(tmp_path):
    ds = pipec.compile(source=DICTS).pipeline("main")
    with pytest.raises(ValueError, match=r"\.tfrecord, \.tfrecord\.gz or \.parquet"):
        ds.save(tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_saved_parquet_is_what_pyarrow_reads(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
    ds = pipec.compile(source=DICTS).pipeline("main")
    want = elements(ds)
    path = tmp_path / "out.parquet"
    ds.save(path)
    table = pq.read_table(path).to_pydict()
    assert table["x"] == [float(w["x"]) for w in want]
    assert table["v"] == [w["v"].tolist() for w in want]
    assert table["s"] == [bytes(w["s"]) for w in want]
    assert table["m"] == [w["m"].tolist() for w in want]


@pytest.mark.parametrize("name", ["r.tfrecord", "r.tfrecord.gz", "r.parquet"])
@pytest.mark.parametrize("cut", [0, 1, 9, 22, 23])
def test_record_sources_resume_from_it_state(tmp_path, name, cut):
    # Two files per source, so a cut also lands in the second file and at the boundary.
    ds = pipec.compile(source=DICTS).pipeline("main")
    first, second = tmp_path / ("a_" + name), tmp_path / ("b_" + name)
    ds.take(9).save(first)
    ds.save(second)
    if name.endswith(".parquet"):
        reader = f'read_parquet(["{first}", "{second}"])'
    else:
        compression = "GZIP" if name.endswith(".gz") else ""
        reader = (
            f'read_tfrecord(["{first}", "{second}"], compression: "{compression}")'
            f".map(|r| parse_example(r, {FEATURES}))"
        )
    prog = pipec.compile(source=f"pipeline main = {reader}" + '.map(|e| (e["v"], e["s"]))\n')
    whole = elements(prog.pipeline())
    assert len(whole) == 32
    it = prog.pipeline(threads=2).iterator()
    head = [next(it) for _ in range(cut)]
    rest = elements(prog.pipeline(threads=1).iterator(resume=it.state()))
    assert_same(head + rest, whole)
