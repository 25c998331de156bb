"""`extern eager fn` bodies as Python callables (`host_functions=`)."""

import subprocess
import threading

import numpy as np
import pytest

import pipec

DECL = """
extern eager fn decode(x: i32[?]) -> f32[?]
pipeline main = from_tensor_slices([[3, 1, 2], [9, 8, 7]]).map(decode)
"""


def test_host_function_gets_and_returns_arrays():
    seen = []

    def decode(x):
        seen.append((x.dtype, x.shape, threading.current_thread().name))
        return np.sort(x).astype(np.float32) / 2

    prog = pipec.compile(source=DECL, host_functions={"decode": decode})
    got = [r.tolist() for r in prog.pipeline()]
    assert got == [[0.5, 1.0, 1.5], [3.5, 4.0, 4.5]]
    assert [s[:2] for s in seen] == [(np.dtype("int32"), (3,)), (np.dtype("int32"), (3,))]


def test_host_function_arguments_are_private_copies():
    def scribble(x):
        out = x.astype(np.float32)
        x[:] = 0  # must not reach the constant the source slices
        return out

    prog = pipec.compile(source=DECL, host_functions={"decode": scribble})
    first = [r.tolist() for r in prog.pipeline()]
    second = [r.tolist() for r in prog.pipeline()]
    assert first == second == [[3.0, 1.0, 2.0], [9.0, 8.0, 7.0]]


def test_tuple_results():
    src = """
extern eager fn split(x: i64[]) -> (i64[], f64[2])
pipeline main = range(3).map(split)
"""
    prog = pipec.compile(
        source=src, host_functions={"split": lambda x: (x * 10, np.array([x, -x], np.float64))}
    )
    got = list(prog.pipeline())
    assert [(int(a), b.tolist()) for a, b in got] == [(0, [0.0, -0.0]), (10, [1.0, -1.0]), (20, [2.0, -2.0])]


def test_missing_host_function_is_a_compile_error():
    with pytest.raises(pipec.CompileError) as info:
        pipec.compile(source=DECL)
    assert info.value.diagnostics[0].code == "E0501"
    with pytest.raises(TypeError, match="not callable"):
        pipec.compile(source=DECL, host_functions={"decode": 3})


def test_raising_host_function_is_a_run_error_with_the_cause_chained():
    def decode(x):
        if x[0] == 9:
            raise ValueError("cannot decode a 9")
        return x.astype(np.float32)

    ds = pipec.compile(source=DECL, host_functions={"decode": decode}).pipeline()
    it = iter(ds)
    assert next(it).tolist() == [3.0, 1.0, 2.0]
    with pytest.raises(pipec.RunError) as info:
        next(it)
    err = info.value
    assert err.code == "E0506"
    assert err.element_index == 1
    assert "host function `decode` failed: ValueError: cannot decode a 9" in str(err)
    assert "in element 1" in str(err)
    assert isinstance(err.__cause__, ValueError)
    assert str(err.__cause__) == "cannot decode a 9"


@pytest.mark.parametrize(
    "result, shown",
    [
        (lambda x: x.astype(np.float64), "f64[3]"),  # wrong dtype
        (lambda x: np.zeros((2, 2), np.float32), "f32[2, 2]"),  # wrong rank
        (lambda x: [1.5, 2.5], "f64[2]"),  # a list: numpy's dtype for it
    ],
)
def test_mistyped_result_is_the_cli_eager_error(result, shown):
    ds = pipec.compile(source=DECL, host_functions={"decode": result}).pipeline()
    with pytest.raises(pipec.RunError) as info:
        list(ds)
    err = info.value
    assert err.code == "E0500"
    assert err.element_index == 0
    assert f"eager function `decode` returned {shown.split('[')[0]}" in str(err)
    assert "declared to return f32[?]" in str(err)


def test_mistyped_result_same_text_as_cli_eager_fn(pipec_bin, tmp_path):
    # The CLI's own eager fn returning f64 where f32 is declared, and a Python host function
    # doing the same, get the same diagnostic.
    body = "pipeline main = from_tensor_slices([[3, 1, 2], [9, 8, 7]]).map(decode)\n"
    eager = tmp_path / "eager.pipe"
    eager.write_text("eager fn decode(x: i32[?]) -> f32[?] { return cast(x, f64) }\n" + body)
    cli = subprocess.run([pipec_bin, "--discard", str(eager)], capture_output=True, text=True)
    assert cli.returncode == 1
    host = tmp_path / "host.pipe"
    host.write_text("extern eager fn decode(x: i32[?]) -> f32[?]\n" + body)
    with pytest.raises(pipec.RunError) as info:
        list(pipec.compile(host, host_functions={"decode": lambda x: x.astype(np.float64)}).pipeline())
    # The same code and statement (the runtime's check adds "for element N" to its message).
    for text in (str(info.value), cli.stderr):
        first = text.splitlines()[0]
        assert first.startswith("[E0500] Error: eager function `decode` returned f64[3]"), first
        assert first.endswith("but it is declared to return f32[?]"), first
    assert info.value.code == "E0500"


def test_unsupported_result_dtype():
    ds = pipec.compile(source=DECL, host_functions={"decode": lambda x: x.astype(complex)}).pipeline()
    with pytest.raises(pipec.RunError) as info:
        list(ds)
    assert info.value.code == "E0506"
    assert "complex128" in str(info.value)
    assert isinstance(info.value.__cause__, TypeError)


def test_host_function_in_a_parallel_map():
    src = """
extern eager fn sq(x: i64[]) -> i64[]
pipeline main = range(200).map(sq, num_parallel_calls: 4).batch(50)
"""
    prog = pipec.compile(source=src, host_functions={"sq": lambda x: x * x})
    got = np.concatenate(list(prog.pipeline(threads=3))).tolist()
    assert got == [i * i for i in range(200)]


def test_host_function_called_per_element_on_demand():
    # A pipeline with a host function is not computed ahead of the consumer.
    calls = []
    src = """
extern eager fn f(x: i64[]) -> i64[]
pipeline main = range(1000).map(f)
"""
    ds = pipec.compile(source=src, host_functions={"f": lambda x: calls.append(int(x)) or x}).pipeline()
    it = iter(ds)
    next(it), next(it)
    assert calls == [0, 1]
