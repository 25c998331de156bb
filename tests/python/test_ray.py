"""`pipec.ray`: a pipeline read as a Ray Data dataset on a local Ray (`ray.init(num_cpus=2)`),
one read task per shard; every record arrives exactly once.

Skipped, with the reason shown, where `ray[data]` is not installed (scripts/test installs it).
"""

import collections

import numpy as np
import pytest

import pipec

from conftest import write

ray = pytest.importorskip("ray", reason="ray[data] is not installed (pip install 'ray[data]')")
pipec_ray = pytest.importorskip("pipec.ray", reason="ray.data is not importable")

PROGRAM = """
pipeline main = range(1000).map(|x| (x, cast(x, f32) * 0.5, broadcast_to(x % 7, [3])))
pipeline dicts = range(50).map(|x| {"id": x, "pair": (x * 2, x * 3)})
"""


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_two_shards_deliver_every_record_exactly_once(tmp_path, local_ray):
    ds = pipec.compile(str(write(tmp_path, PROGRAM))).pipeline("main")
    # One read task per shard, whatever parallelism Ray asks for.
    assert len(pipec_ray.PipecDatasource(ds, 2).get_read_tasks(8)) == 2
    rds = pipec_ray.read(ds, shards=2, rows_per_block=128)
    rows = rds.take_all()
    ids = [int(r["0"]) for r in rows]
    assert collections.Counter(ids) == collections.Counter(range(1000))
    for r in rows:
        i = int(r["0"])
        assert float(r["1"]) == np.float32(i) * np.float32(0.5)
        np.testing.assert_array_equal(r["2"], np.full(3, i % 7))
    # Each shard is what `shard=(i, 2)` gives: the union is the whole, disjointly.
    by_shard = [
        [int(e[0]) for e in pipec.compile(str(tmp_path / "p.pipe")).pipeline("main", shard=(i, 2))]
        for i in range(2)
    ]
    assert sorted(by_shard[0] + by_shard[1]) == list(range(1000))
    assert not set(by_shard[0]) & set(by_shard[1])


def test_dict_elements_become_columns_and_batches_are_numpy(tmp_path, local_ray):
    ds = pipec.compile(str(write(tmp_path, PROGRAM))).pipeline("dicts")
    rds = pipec_ray.read(ds, shards=3)
    batches = list(rds.iter_batches(batch_size=None, batch_format="numpy"))
    assert batches and all(isinstance(b["id"], np.ndarray) for b in batches)
    ids = np.concatenate([b["id"] for b in batches])
    assert sorted(ids.tolist()) == list(range(50))
    pairs = np.concatenate([b["pair/0"] for b in batches])
    assert sorted(pairs.tolist()) == [2 * i for i in range(50)]


def test_read_pipeline_compiles_with_params(tmp_path, local_ray):
    path = write(tmp_path, "let n = 10\npipeline main = range(n)\n")
    rds = pipec_ray.read_pipeline(str(path), shards=4, params={"n": 37})
    assert sorted(int(r["item"]) for r in rds.take_all()) == list(range(37))
