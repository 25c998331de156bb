"""Checkpoints from Python (SPEC §15): `it.state()` and `ds.iterator(resume=state)`.

A run stopped anywhere and resumed, at any thread count, gives with the first part exactly the
elements of one uninterrupted run; the bytes are `pipec --save-state`'s format, so the CLI
resumes what Python saved.
"""

import subprocess

import numpy as np
import pytest

import pipec

from conftest import write

PROGRAM = """
pipeline main = range(300).shuffle(17, seed: 9).map(|x| x * 3, num_parallel_calls: 3)
    .filter(|x| x % 4 != 1).batch(5).prefetch(2).unbatch().repeat(2)
pipeline pairs = zip(range(40), range(100, 140)).enumerate().map(|i, ab| (i, ab[0] + ab[1]))
"""


def values(it, n=None):
    """Up to n elements of an iterator (all without n), as plain Python numbers."""
    out = []
    for e in it:
        out.append(tuple(int(x) for x in e) if isinstance(e, tuple) else int(e))
        if n is not None and len(out) == n:
            break
    return out


@pytest.mark.parametrize("cut", [0, 1, 7, 64, 150, 299, 451])
@pytest.mark.parametrize("threads", [(1, 3), (3, 1)])
def test_state_resumes_exactly_after_the_last_element(tmp_path, cut, threads):
    prog = pipec.compile(str(write(tmp_path, PROGRAM)))
    whole = values(prog.pipeline("main", threads=1))
    it = prog.pipeline("main", threads=threads[0]).iterator()
    first = values(it, cut) if cut else []
    state = it.state()
    assert isinstance(state, bytes) and state.startswith(b"pipec-state\n")
    rest = values(prog.pipeline("main", threads=threads[1]).iterator(resume=state))
    assert first + rest == whole


def test_state_of_a_finished_iterator_resumes_to_nothing(tmp_path):
    ds = pipec.compile(str(write(tmp_path, PROGRAM))).pipeline("pairs")
    it = iter(ds)
    assert len(values(it)) == 40
    assert values(ds.iterator(resume=it.state())) == []


def test_state_is_taken_any_number_of_times_and_chains(tmp_path):
    ds = pipec.compile(str(write(tmp_path, PROGRAM))).pipeline("pairs", threads=2)
    whole = values(ds)
    got, state = [], None
    while True:
        it = ds.iterator(resume=state)
        part = values(it, 6)
        got += part
        state = it.state()
        assert it.state() == state  # asking twice changes nothing
        if len(part) < 6:
            break
    assert got == whole


def test_cli_resumes_a_python_state_and_python_a_cli_state(tmp_path, pipec_bin):
    path = write(tmp_path, PROGRAM)
    ds = pipec.compile(str(path)).pipeline("main")
    whole = values(ds)
    it = ds.iterator()
    first = values(it, 100)
    (tmp_path / "py.state").write_bytes(it.state())
    out = subprocess.run(
        [pipec_bin, "--resume", str(tmp_path / "py.state"), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert first + [int(x) for x in out.stdout.split()] == whole
    subprocess.run(
        [pipec_bin, "--take", "33", "--save-state", str(tmp_path / "cli.state"), str(path)],
        capture_output=True,
        check=True,
    )
    rest = values(ds.iterator(resume=(tmp_path / "cli.state").read_bytes()))
    assert rest == whole[33:]


def test_a_state_of_another_shard_or_a_damaged_one_is_a_run_error(tmp_path):
    prog = pipec.compile(str(write(tmp_path, PROGRAM)))
    it = prog.pipeline("main", shard=(0, 2)).iterator()
    values(it, 10)
    state = it.state()
    with pytest.raises(pipec.RunError) as e:
        prog.pipeline("main", shard=(1, 2)).iterator(resume=state)
    assert "E0821" in str(e.value) and "the shard (--shard) differs" in str(e.value)
    with pytest.raises(pipec.RunError) as e:
        prog.pipeline("main").iterator(resume=state[: len(state) // 2])
    assert "E0820" in str(e.value)
    with pytest.raises(pipec.RunError) as e:
        prog.pipeline("main").iterator(resume=b"not a state")
    assert "E0820" in str(e.value)
    # The shard's own dataset resumes it.
    whole = values(prog.pipeline("main", shard=(0, 2)))
    assert values(it, None) == whole[10:]
    assert values(prog.pipeline("main", shard=(0, 2)).iterator(resume=state)) == whole[10:]


def test_state_holds_numpy_elements_of_every_shape(tmp_path):
    prog = pipec.compile(
        str(
            write(
                tmp_path,
                "pipeline main = from_tensor_slices([[1.5, 2.0], [3.0, 4.5], [5.0, 6.0]])"
                ".repeat(4).shuffle(5, seed: 2).batch(2)\n",
            )
        )
    )
    ds = prog.pipeline("main")
    whole = [b.copy() for b in ds]
    it = ds.iterator()
    first = [next(it).copy() for _ in range(2)]
    rest = list(ds.iterator(resume=it.state()))
    assert len(first) + len(rest) == len(whole)
    for a, b in zip(first + rest, whole):
        np.testing.assert_array_equal(a, b)


ORDER = """
pipeline main = range(1, 9).interleave(|n| range(n * 3)
        .map(|x| x * 10 + random_uniform([], 0, 10, i64, seed: 1)), cycle_length: 3,
        block_length: 2)
    .map(|x| x * 100 + random_uniform([], 0, 100, i64, seed: 2)).repeat(2)
    .batch(4, drop_remainder: true).unbatch()
pipeline shuffled = range(50).map(|x| x * 10 + random_uniform([], 0, 10, i64, seed: 3))
    .global_shuffle(seed: 4).repeat(3)
"""


@pytest.mark.parametrize("name", ["main", "shuffled"])
@pytest.mark.parametrize("cut", [0, 5, 77, 120])
def test_interleave_global_shuffle_and_random_ops_resume_exactly(tmp_path, name, cut):
    prog = pipec.compile(str(write(tmp_path, ORDER)))
    whole = values(prog.pipeline(name, threads=1))
    it = prog.pipeline(name, threads=3).iterator()
    first = values(it, cut) if cut else []
    rest = values(prog.pipeline(name, threads=1).iterator(resume=it.state()))
    assert first + rest == whole
