"""`pipec.torch.IterableDataset`: a pipeline as a PyTorch `IterableDataset`.

    loader = torch.utils.data.DataLoader(
        pipec.torch.IterableDataset(prog.pipeline("main")), batch_size=None, num_workers=2)

With `num_workers=k`, DataLoader worker `i` runs shard `i` of `k` of the pipeline (`shard`
inserted right after its sources, SPEC §15), so every element is produced exactly once and
each worker batches its own records. `batch_size=None` passes the pipeline's own batches
through; DataLoader turns their numpy arrays into tensors. torch is not a dependency of
pipec: importing this module needs it, `import pipec` does not.
"""

import torch.utils.data as _data


class IterableDataset(_data.IterableDataset):
    """Iterates `ds` (a `pipec.Dataset`), one shard per DataLoader worker.

    `worker_threads` is each worker's `threads` (default 1: the workers are the parallelism;
    `None` keeps the dataset's own). A dataset that is itself a shard (`shard=(I, N)`) is
    split further: worker `i` of `k` runs shard `I + N*i` of `N*k`.
    """

    def __init__(self, ds, worker_threads=1):
        super().__init__()
        self.ds = ds
        self.worker_threads = worker_threads

    def __iter__(self):
        info = _data.get_worker_info()
        ds = self.ds
        if info is not None:
            if ds.limit is not None and info.num_workers > 1:
                raise ValueError(
                    "a dataset with take(n) cannot be split across DataLoader workers "
                    "(each worker would deliver n elements of its own shard); iterate it "
                    "without take(n), or with num_workers=0"
                )
            if self.worker_threads is not None:
                ds = ds.with_threads(self.worker_threads)
            if info.num_workers > 1:
                ds = ds.subshard(info.id, info.num_workers)
        return iter(ds)
