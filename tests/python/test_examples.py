"""Every pipeline of every example gives in Python exactly the arrays the CLI writes."""

import json
import pathlib
import subprocess

import numpy as np
import pytest

import pipec

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.pipe"))


def header_args(path):
    """The flags of the example's `# args:` line."""
    for line in path.read_text().splitlines():
        if line.startswith("# args:"):
            return line[len("# args:") :].split()
    return []


def leaves(element):
    """The arrays of an element, flattened in order (as .npz components are)."""
    if isinstance(element, tuple):
        return [leaf for part in element for leaf in leaves(part)]
    return [element]


def cli_output(pipec_bin, path, name, args, tmp_path):
    """The CLI's elements as one list of leaves per element, exact dtypes.

    `.npz` (stacked, exact) when the elements share a shape; otherwise `.jsonl`, read back
    into arrays of the dtype the Python side has, which `.jsonl` text holds exactly (floats
    are written with enough digits to round-trip)."""
    npz = tmp_path / f"{path.stem}-{name}.npz"
    run = subprocess.run(
        [pipec_bin, *args, "--pipeline", name, "--output", str(npz), str(path)],
        capture_output=True,
        text=True,
    )
    if run.returncode == 0:
        with np.load(npz) as z:
            parts = [z[f"arr_{k}"] for k in range(len(z.files))]
        return "npz", parts
    jsonl = tmp_path / f"{path.stem}-{name}.jsonl"
    run = subprocess.run(
        [pipec_bin, *args, "--pipeline", name, "--output", str(jsonl), str(path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return "jsonl", [json.loads(line) for line in jsonl.read_text().splitlines()]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_matches_cli(path, pipec_bin, tmp_path):
    args = header_args(path)
    prog = pipec.compile(path, allow_exec="--allow-exec" in args)
    assert prog.pipelines, "every example declares a pipeline"
    for name in prog.pipelines:
        got = [leaves(e) for e in prog.pipeline(name)]
        kind, want = cli_output(pipec_bin, path, name, args, tmp_path)
        if kind == "npz":
            assert all(len(e) == len(want) for e in got)
            for k, arr in enumerate(want):
                mine = np.stack([np.asarray(e[k]) for e in got]) if got else arr[:0]
                assert mine.dtype == arr.dtype, (name, k)
                np.testing.assert_array_equal(mine, arr, err_msg=f"{path.name} {name} arr_{k}")
        else:
            assert len(got) == len(want)
            for mine, line in zip(got, want):
                line = line if len(mine) > 1 else [line]
                for m, w in zip(mine, line):
                    w = np.asarray(w, dtype=np.asarray(m).dtype)
                    np.testing.assert_array_equal(np.asarray(m), w, err_msg=f"{path.name} {name}")
