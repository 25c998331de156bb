"""The PyTorch adapter: each DataLoader worker runs its own shard."""

import numpy as np
import pytest

import pipec

torch = pytest.importorskip("torch", reason="torch is not installed (pipec does not depend on it)")

SRC = """
fn f(x) { return (cast(x, f32) * 0.5, x) }
pipeline main = range(1000).map(f).batch(16)
"""


def flat(batches):
    xs = np.concatenate([np.asarray(x) for x, _ in batches])
    ys = np.concatenate([np.asarray(y) for _, y in batches])
    return xs, ys


@pytest.mark.parametrize("context", [None, "spawn"])
def test_dataloader_two_workers_produce_every_element_once(context):
    import pipec.torch

    ds = pipec.compile(source=SRC).pipeline()
    loader = torch.utils.data.DataLoader(
        pipec.torch.IterableDataset(ds),
        batch_size=None,
        num_workers=2,
        multiprocessing_context=context,
    )
    batches = list(loader)
    assert all(isinstance(x, torch.Tensor) and x.dtype == torch.float32 for x, _ in batches)
    xs, ys = flat(batches)
    assert sorted(ys.tolist()) == list(range(1000))
    np.testing.assert_array_equal(np.sort(xs), np.arange(1000, dtype=np.float32) * 0.5)
    # Each worker batches its own shard: worker 0 has the even records, worker 1 the odd.
    first = np.asarray(batches[0][1])
    assert len({int(v) % 2 for v in first}) == 1


def test_dataloader_in_process_and_with_a_user_shard():
    import pipec.torch

    prog = pipec.compile(source=SRC)
    whole = flat(list(torch.utils.data.DataLoader(pipec.torch.IterableDataset(prog.pipeline()), batch_size=None)))
    assert whole[1].tolist() == list(range(1000))
    half = prog.pipeline(shard=(1, 2))
    loader = torch.utils.data.DataLoader(pipec.torch.IterableDataset(half), batch_size=None, num_workers=2)
    ys = sorted(flat(list(loader))[1].tolist())
    assert ys == list(range(1, 1000, 2))


def test_training_loop_sketch():
    import pipec.torch

    src = """
fn make(i) {
    let x = cast(i % 7, f32) / 7.0
    return (expand_dims(x, 0), expand_dims(3.0 * x + 1.0, 0))
}
pipeline main = range(512).map(make).batch(64)
"""
    ds = pipec.compile(source=src).pipeline()
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = torch.utils.data.DataLoader(pipec.torch.IterableDataset(ds), batch_size=None, num_workers=2)
    for _ in range(30):
        for x, y in loader:
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
    assert loss.item() < 1e-3
