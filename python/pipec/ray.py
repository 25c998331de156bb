"""`pipec.ray`: a pipeline as a Ray Data dataset, one read task per shard.

    import ray, pipec, pipec.ray
    ds = pipec.compile("train.pipe").pipeline("main")
    rds = pipec.ray.read(ds, shards=8)          # a ray.data.Dataset
    for batch in rds.iter_batches(batch_size=None):
        ...

Each read task runs shard `i` of `shards` (`--shard i/shards`, SPEC §15) in-process through
this module, in whatever Ray worker Ray schedules it on, and yields blocks of numpy columns.
Ray schedules, retries and scales the tasks; a retried task reruns its shard from the start,
which gives the same records (shards are deterministic). Ray is not a dependency of pipec:
importing this module needs `ray[data]`, `import pipec` does not.

Columns: a tensor element is the column `item` (Ray's name for a single column); a tuple's
components are `0`, `1`, ...; a dict's keys are its columns; nested parts are joined by `/`.
"""

import functools

import numpy as np
from ray.data import Datasource, ReadTask, read_datasource
from ray.data.block import BlockAccessor, BlockMetadata


def _columns(element, prefix, out):
    """Flattens one element into (column name, numpy value) pairs, in element order."""
    if isinstance(element, dict):
        for k, v in element.items():
            _columns(v, f"{prefix}/{k}" if prefix else str(k), out)
    elif isinstance(element, tuple):
        for i, v in enumerate(element):
            _columns(v, f"{prefix}/{i}" if prefix else str(i), out)
    else:
        out.append((prefix or "item", element))
    return out


def _block(rows):
    """A Ray block from flattened rows (each a list of (name, value))."""
    names = [name for name, _ in rows[0]]
    batch = {name: np.stack([r[i][1] for r in rows]) for i, name in enumerate(names)}
    return BlockAccessor.batch_to_block(batch)


def _read_shard(ds, index, count, rows_per_block, worker_threads):
    """The body of one read task: shard `index` of `count` of `ds`, as blocks."""
    if worker_threads is not None:
        ds = ds.with_threads(worker_threads)
    if count > 1:
        ds = ds.subshard(index, count)
    rows = []
    for element in ds:
        rows.append(_columns(element, "", []))
        if len(rows) == rows_per_block:
            yield _block(rows)
            rows = []
    if rows:
        yield _block(rows)


def _metadata():
    """Metadata for a read task whose size is unknown until it runs (keyword names differ
    between Ray versions: pass only those this one takes)."""
    import inspect

    params = inspect.signature(BlockMetadata).parameters
    kwargs = {
        "num_rows": None,
        "size_bytes": None,
        "input_files": None,
        "exec_stats": None,
        "schema": None,
    }
    return BlockMetadata(**{k: v for k, v in kwargs.items() if k in params})


class PipecDatasource(Datasource):
    """A pipec dataset (`pipec.Dataset`) as a Ray Data datasource: one read task per shard."""

    def __init__(self, ds, shards=2, *, rows_per_block=1024, worker_threads=1):
        super().__init__()
        if shards < 1:
            raise ValueError("shards is at least 1")
        if ds.limit is not None and shards > 1:
            raise ValueError(
                "a dataset with take(n) cannot be split into shards (each would deliver n "
                "elements of its own); read it without take(n), or with shards=1"
            )
        self._ds = ds
        self._shards = shards
        self._rows_per_block = rows_per_block
        self._worker_threads = worker_threads

    def get_name(self):
        return f"pipec({self._ds.name})"

    def estimate_inmemory_data_size(self):
        return None

    def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
        # One task per shard, whatever parallelism Ray asks for: the shards are the split.
        return [
            ReadTask(
                functools.partial(
                    _read_shard,
                    self._ds,
                    i,
                    self._shards,
                    self._rows_per_block,
                    self._worker_threads,
                ),
                _metadata(),
            )
            for i in range(self._shards)
        ]


def read(ds, shards=2, *, rows_per_block=1024, worker_threads=1, **read_args):
    """`ds` (a `pipec.Dataset`) as a `ray.data.Dataset` read by `shards` tasks.

    `worker_threads` is each task's `threads` (default 1: the tasks are the parallelism;
    `None` keeps the dataset's own). Other keyword arguments go to
    `ray.data.read_datasource` (`num_cpus=`, `concurrency=`, `ray_remote_args=`, ...).
    """
    source = PipecDatasource(
        ds, shards, rows_per_block=rows_per_block, worker_threads=worker_threads
    )
    return read_datasource(source, **read_args)


def read_pipeline(path, pipeline=None, *, shards=2, params=None, **kwargs):
    """Compiles `path` (with `params`) and reads its `pipeline` like `read`."""
    import pipec

    ds = pipec.compile(path, params=params).pipeline(pipeline)
    return read(ds, shards, **kwargs)
