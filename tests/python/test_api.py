"""The Python surface of SPEC §12: compile, programs, datasets, errors, params, shards."""

import gc
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import pipec
from conftest import write

LOG1P = """
fn f(x) { return log(1.0 + cast(x, f32)) }
pipeline main = from_tensor_slices([[1, 2, 3], [4, 5, 6]]).map(f)
pipeline other = range(5).batch(2)
"""


def test_compile_source_and_iterate():
    prog = pipec.compile(source=LOG1P)
    assert prog.pipelines == ["main", "other"]
    rows = list(prog.pipeline("main"))
    want = np.log(np.float32(1.0) + np.array([[1, 2, 3], [4, 5, 6]], np.float32))
    assert len(rows) == 2
    for got, w in zip(rows, want):
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        np.testing.assert_array_equal(got, w)
    batches = list(prog.pipeline("other"))
    assert [b.tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert batches[0].dtype == np.int64


def test_compile_path_and_relative_files(root):
    prog = pipec.compile(root / "examples" / "image_normalize.pipe")
    images, labels = next(iter(prog.pipeline()))
    assert images.dtype == np.float32 and images.shape == (4, 2, 2, 3)
    assert labels.dtype == np.int64 and labels.shape == (4,)


def test_scalars_are_numpy_scalars_and_tuples_are_tuples():
    prog = pipec.compile(source="pipeline main = range(3).enumerate(10)")
    elems = list(prog.pipeline())
    assert elems == [(10, 0), (11, 1), (12, 2)]
    assert all(isinstance(e, tuple) for e in elems)
    assert isinstance(elems[0][0], np.int64)


def test_nested_tuples():
    src = "pipeline main = range(2).zip(range(2).zip(range(2).map(|x| cast(x, f32))))"
    ds = pipec.compile(source=src).pipeline()
    first = next(iter(ds))
    assert first == (0, (0, 0.0))
    assert isinstance(first[1][1], np.float32)
    spec = ds.element_spec
    assert repr(spec) == "(i64[], (i64[], f32[]))"


def test_dict_elements():
    src = 'pipeline main = range(3).map(|x| {"x": x, "pair": (x * 2, cast(x, f32))}).batch(2)'
    ds = pipec.compile(source=src).pipeline()
    elems = list(ds)
    assert [list(e) for e in elems] == [["x", "pair"], ["x", "pair"]]
    assert elems[0]["x"].tolist() == [0, 1]
    assert elems[0]["pair"][0].tolist() == [0, 2]
    assert elems[1]["pair"][1].dtype == np.float32 and elems[1]["pair"][1].tolist() == [2.0]
    spec = ds.element_spec
    assert list(spec) == ["x", "pair"] and repr(spec["x"]) == "i64[?]"


def test_element_spec():
    ds = pipec.compile(source=LOG1P).pipeline("other")
    spec = ds.element_spec
    assert isinstance(spec, pipec.TensorSpec)
    assert repr(spec) == "i64[?]"
    assert spec.dtype == "i64" and spec.shape == [None]
    assert spec.numpy_dtype == np.dtype("int64")
    batched = pipec.compile(source="pipeline main = range(8).batch(4, drop_remainder: true)")
    assert batched.pipeline().element_spec.shape == [4]


def test_ir_matches_cli(pipec_bin, root):
    path = root / "examples" / "batch_scale.pipe"
    prog = pipec.compile(path)
    for stage in ["traced", "optimized", "all", "after=fuse-elementwise", "after=dce"]:
        cli = subprocess.run(
            [pipec_bin, f"--emit-ir={stage}", str(path)], capture_output=True, text=True, check=True
        )
        assert prog.ir(stage) == cli.stdout, stage
    assert prog.ir() == prog.ir("optimized")
    with pytest.raises(ValueError, match="unknown IR stage `nope`"):
        prog.ir("nope")
    with pytest.raises(ValueError, match="unknown pass `dcee`"):
        prog.ir("after=dcee")
    dot = subprocess.run(
        [pipec_bin, "--emit-dot", str(path)], capture_output=True, text=True, check=True
    )
    assert prog.dot() == dot.stdout


def test_opt_level_changes_ir_not_output():
    src = "pipeline main = range(6).map(|x| cast(x, f32) * 2.0 + 1.0).batch(4)"
    prog0 = pipec.compile(source=src, opt_level=0)
    prog2 = pipec.compile(source=src)
    assert "fused_elementwise" not in prog0.ir()
    assert "fused_elementwise" in prog2.ir()
    a = [b.tolist() for b in prog2.pipeline(opt_level=0)]
    b = [b.tolist() for b in prog2.pipeline()]
    assert a == b == [[1.0, 3.0, 5.0, 7.0], [9.0, 11.0]]


def test_remarks():
    prog = pipec.compile(source="pipeline main = range(6).map(|x| x * 2).batch(2)")
    remarks = prog.remarks()
    assert remarks and all(r.code == "R0001" for r in remarks)
    assert any("runs once per batch of 2" in r.message for r in remarks)
    assert all(r.line == 1 for r in remarks if r.line is not None)


def test_compile_error_diagnostics(pipec_bin, tmp_path):
    text = "fn f(x) {\n    return x.numpy()\n}\npipeline main = range(3).map(f)\n"
    path = write(tmp_path, text)
    with pytest.raises(pipec.CompileError) as info:
        pipec.compile(path)
    err = info.value
    [d] = [d for d in err.diagnostics if d.severity == "error"]
    assert d.code == "E0300"
    assert (d.path, d.line, d.column) == (str(path), 2, 12)
    assert d.help and "eager fn" in d.help
    cli = subprocess.run([pipec_bin, "--check", str(path)], capture_output=True, text=True)
    assert cli.returncode == 1
    assert str(err) == cli.stderr.rstrip()
    assert str(d).rstrip() in str(err)


def test_several_errors_reported_together():
    src = "let a = [1, 2] + [1.5]\nlet b = undefined_name\npipeline main = range(3)\n"
    with pytest.raises(pipec.CompileError) as info:
        pipec.compile(source=src)
    codes = [d.code for d in info.value.diagnostics]
    assert len(codes) >= 2 and all(c.startswith("E") for c in codes)


def test_unknown_pipeline_and_bad_arguments():
    prog = pipec.compile(source=LOG1P)
    with pytest.raises(pipec.CompileError) as info:
        prog.pipeline("mian")
    assert info.value.diagnostics[0].code == "E0111"
    with pytest.raises(TypeError):
        pipec.compile()
    with pytest.raises(TypeError):
        pipec.compile("x.pipe", source="pipeline main = range(1)")
    with pytest.raises(FileNotFoundError):
        pipec.compile("/nonexistent/file.pipe")
    with pytest.raises(ValueError):
        prog.pipeline("main", threads=0)
    with pytest.raises(ValueError):
        prog.pipeline("main", shard=(2, 2))
    with pytest.raises(ValueError):
        prog.pipeline("main", opt_level=3)


def test_run_error():
    src = "pipeline main = from_tensor_slices([4, 2, 0, 1]).map(|x| 8 // x)"
    it = iter(pipec.compile(source=src).pipeline())
    assert next(it) == 2 and next(it) == 4
    with pytest.raises(pipec.RunError) as info:
        next(it)
    err = info.value
    assert err.code == "E0600"
    assert err.element_index == 2
    assert "integer division by zero in element 2" in str(err)
    assert str(err).startswith("[E0600] Error: integer division by zero")
    with pytest.raises(StopIteration):
        next(it)


def test_run_error_same_as_cli(pipec_bin, tmp_path):
    path = write(tmp_path, "pipeline main = from_tensor_slices([[1, 2], [3, 4]]).batch(1).map(|b| b // (b - 3))\n")
    with pytest.raises(pipec.RunError) as info:
        list(pipec.compile(path).pipeline())
    cli = subprocess.run([pipec_bin, "--discard", str(path)], capture_output=True, text=True)
    assert cli.returncode == 1
    assert str(info.value) == cli.stderr.rstrip()


def test_iterating_twice_is_two_runs():
    ds = pipec.compile(source="pipeline main = range(10).shuffle(4).batch(5)").pipeline()
    a = np.concatenate(list(ds))
    b = np.concatenate(list(ds))
    assert sorted(a.tolist()) == sorted(b.tolist()) == list(range(10))
    seeded = pipec.compile(source="pipeline main = range(10).shuffle(4, seed: 3)").pipeline()
    assert list(seeded) == list(seeded)


def test_take():
    ds = pipec.compile(source="pipeline main = range(1000000000)").pipeline()
    assert list(ds.take(3)) == [0, 1, 2]
    assert list(ds.take(3).take(5)) == [0, 1, 2]
    assert ds.take(2).limit == 2
    it = iter(ds.take(0))
    with pytest.raises(StopIteration):
        next(it)


def test_take_stops_before_a_later_error():
    src = "pipeline main = from_tensor_slices([1, 1, 0]).map(|x| 1 // x)"
    assert list(pipec.compile(source=src).pipeline().take(2)) == [1, 1]


def test_threads_1_and_3_give_the_same_elements():
    src = """
fn f(x) { return sqrt(cast(x, f32)) * 3.0 + sin(cast(x, f32)) }
pipeline main = range(200000).map(f, num_parallel_calls: 4).filter(|x| x > 10.0).batch(1000)
"""
    prog = pipec.compile(source=src)
    one = list(prog.pipeline(threads=1))
    three = list(prog.pipeline(threads=3))
    assert len(one) == len(three) > 100
    for a, b in zip(one, three):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_arrays_are_writable_and_independent():
    # A slice of constant source data must not be handed out as a view into it: writing to
    # an element can never change what a later run reads.
    ds = pipec.compile(source="pipeline main = from_tensor_slices([[1, 2], [3, 4]])").pipeline()
    first = next(iter(ds))
    first[0] = 99
    assert next(iter(ds)).tolist() == [1, 2]
    batches = list(pipec.compile(source="pipeline main = range(6).batch(2)").pipeline())
    batches[0][0] = 42
    assert [b.tolist() for b in batches] == [[42, 1], [2, 3], [4, 5]]


def test_params():
    src = """
let scale = 2
let offset = 0.5
let name = "x"
let weights = [1.0, 2.0]
pipeline main = range(3).map(|x| cast(x * scale, f32) + offset)
pipeline w = from_tensors(weights)
"""
    base = pipec.compile(source=src)
    assert [float(v) for v in base.pipeline()] == [0.5, 2.5, 4.5]
    prog = pipec.compile(source=src, params={"scale": 10, "offset": 1, "name": "y"})
    assert [float(v) for v in prog.pipeline()] == [1.0, 11.0, 21.0]
    w = pipec.compile(source=src, params={"weights": np.array([3, 4, 5])})
    got = next(iter(w.pipeline("w")))
    assert got.dtype == np.float32 and got.tolist() == [3.0, 4.0, 5.0]


def test_param_errors():
    src = "let scale = 2\nlet n = 1 + 2\npipeline main = range(3).map(|x| x * scale)\n"
    with pytest.raises(pipec.CompileError) as info:
        pipec.compile(source=src, params={"scael": 3})
    [d] = info.value.diagnostics
    assert d.code == "E0810" and "did you mean `scale`?" in d.notes
    with pytest.raises(pipec.CompileError) as info:
        pipec.compile(source=src, params={"scale": 0.5})
    [d] = info.value.diagnostics
    assert d.code == "E0811" and (d.line, d.column) == (1, 13)
    with pytest.raises(pipec.CompileError) as info:
        pipec.compile(source=src, params={"n": 3})
    assert info.value.diagnostics[0].code == "E0811"
    with pytest.raises(TypeError):
        pipec.compile(source=src, params={"scale": object()})


def test_params_same_as_cli_set(pipec_bin, tmp_path):
    path = write(tmp_path, "let scale = 2\nlet xs = [1, 2]\npipeline main = from_tensor_slices(xs).map(|x| x * scale)\n")
    out = tmp_path / "o.npy"
    subprocess.run(
        [pipec_bin, "--set", "scale=7", "--set", "xs=[5, 6, 7]", "--output", str(out), str(path)],
        check=True,
    )
    py = list(pipec.compile(path, params={"scale": 7, "xs": [5, 6, 7]}).pipeline())
    np.testing.assert_array_equal(np.stack(py), np.load(out))
    bad = subprocess.run(
        [pipec_bin, "--set", "scale=0.5", str(path)], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "[E0811]" in bad.stderr
    with pytest.raises(pipec.CompileError) as info:
        pipec.compile(path, params={"scale": 0.5})
    assert str(info.value) == bad.stderr.rstrip()


def test_shards_are_disjoint_and_cover_the_dataset():
    src = "pipeline main = range(103).map(|x| x * 3).batch(4)"
    prog = pipec.compile(source=src)
    whole = np.concatenate(list(prog.pipeline())).tolist()
    parts = [np.concatenate(list(prog.pipeline(shard=(i, 3)))).tolist() for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(whole)
    assert parts[1][:3] == [3, 12, 21]
    # Shards compose: shard 1 of 2 of shard 2 of 3 is shard 2 + 3*1 = 5 of 6.
    sub = prog.pipeline(shard=(2, 3)).subshard(1, 2)
    assert sub.shard == (5, 6)
    assert np.concatenate(list(sub)).tolist() == list(range(15, 309, 18))


def test_shard_same_as_cli(pipec_bin, tmp_path):
    path = write(tmp_path, "pipeline main = range(10).zip(range(10).map(|x| x * 2))\n")
    out = tmp_path / "o.npz"
    subprocess.run([pipec_bin, "--shard", "1/3", "--output", str(out), str(path)], check=True)
    got = list(pipec.compile(path).pipeline(shard=(1, 3)))
    with np.load(out) as z:
        assert [tuple(e) for e in zip(z["arr_0"].tolist(), z["arr_1"].tolist())] == [
            (int(a), int(b)) for a, b in got
        ]
    assert [int(a) for a, _ in got] == [1, 4, 7]


def test_gil_released_while_pipec_computes():
    # A Python thread keeps running while the main thread waits for a slow pipeline.
    src = """
fn f(x) {
    let y = cast(x, f32)
    for i in 0..40 { y = sin(y) * 0.5 + cos(y) }
    return y
}
pipeline main = range(300000).map(f).batch(1000)
"""
    ds = pipec.compile(source=src).pipeline(threads=1)
    ticks = 0
    stop = threading.Event()

    def spin():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        before = ticks
        for _ in ds:
            pass
        during = ticks - before
    finally:
        stop.set()
        t.join()
    assert during > 1000


def test_breaking_early_leaves_no_thread_behind():
    src = "pipeline main = range(100000000).map(|x| cast(x, f32) * 2.0).batch(512)"
    ds = pipec.compile(source=src).pipeline(threads=2)
    for i, _ in enumerate(ds):  # warm up: lanes' helpers are started once per process
        if i == 200:
            break
    gc.collect()
    baseline = len(os.listdir("/proc/self/task"))
    py_threads = threading.active_count()
    for _ in range(3):
        for i, _ in enumerate(ds):
            if i == 100:
                break
        gc.collect()
    assert threading.active_count() == py_threads
    assert len(os.listdir("/proc/self/task")) == baseline


def test_breaking_early_reaps_exec_workers(root, tmp_path):
    worker = tmp_path / "double.py"
    worker.write_text(
        f"import sys; sys.path.insert(0, {str(root / 'python')!r})\n"
        "from pipec_worker import serve\nserve(lambda x: x * 2)\n"
    )
    path = write(
        tmp_path,
        'eager fn double(x) -> i64[] = exec("python3", "double.py")\n'
        "pipeline main = range(1000000).map(double)\n",
    )
    ds = pipec.compile(path, allow_exec=True).pipeline()
    it = iter(ds)
    assert [next(it) for _ in range(3)] == [0, 2, 4]

    def children():
        me = os.getpid()
        kids = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == me and fields[0] != "Z":
                    kids.append(int(pid))
        return kids

    assert children(), "the worker runs while the iterator lives"
    del it
    gc.collect()
    assert children() == []


def test_iterator_not_shared_across_threads_at_once():
    # Two threads pulling one iterator get an error, not a deadlock.
    src = """
extern eager fn slow(x: i64[]) -> i64[]
pipeline main = range(4).map(slow)
"""
    started = threading.Event()
    release = threading.Event()

    def slow(x):
        started.set()
        release.wait(10)
        return x

    it = iter(pipec.compile(source=src, host_functions={"slow": slow}).pipeline())
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("v", next(it)))
    t.start()
    assert started.wait(10)
    with pytest.raises(RuntimeError, match="already running"):
        next(it)
    release.set()
    t.join()
    assert result["v"] == 0


def test_pickle_roundtrip():
    import pickle

    prog = pipec.compile(source=LOG1P, params={})
    ds = prog.pipeline("other", threads=1, shard=(0, 2)).take(2)
    again = pickle.loads(pickle.dumps(ds))
    assert [b.tolist() for b in again] == [b.tolist() for b in ds] == [[0, 2], [4]]


def test_str_elements_are_object_arrays_of_bytes():
    # As TF's `.numpy()` gives them: numpy object arrays whose items are `bytes`.
    prog = pipec.compile(source='pipeline main = from_tensor_slices(["a b", "c"]).map(|s| (s, split(s))).padded_batch(2)')
    (whole, parts), = list(prog.pipeline())
    assert whole.dtype == object and whole.tolist() == [b"a b", b"c"]
    assert parts.dtype == object and parts.tolist() == [[b"a", b"b"], [b"c", b""]]
    scalars = list(pipec.compile(source='pipeline main = from_tensor_slices(["x", "yz"])').pipeline())
    assert scalars == [b"x", b"yz"]
    spec = prog.pipeline().element_spec
    assert spec[0].dtype == "str" and spec[0].numpy_dtype == np.dtype(object)
