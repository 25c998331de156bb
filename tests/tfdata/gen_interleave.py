"""Expected outputs of `interleave`/`flat_map` order cases, computed by tf.data itself.

Run with TensorFlow installed (any venv outside the repository):
    python tests/tfdata/gen_interleave.py
It rewrites tests/tfdata/interleave_cases.txt, which `crates/cli/tests/interleave.rs`
replays through pipec without TensorFlow. Each case is a line `== NAME`, the pipeline in
pipec's language on the next line, then the lines numpy's print() gives for the elements
tf.data produces from the same pipeline written in tf.data (below).
"""

import os

import numpy as np
import tensorflow as tf

D = tf.data.Dataset

# (name, pipec pipeline, tf.data pipeline)
CASES = [
    ("repeat_cycle2", "range(1, 6).interleave(|n| from_tensors(n).repeat(n), cycle_length: 2)",
     lambda: D.range(1, 6).interleave(lambda n: D.from_tensors(n).repeat(n), cycle_length=2)),
    ("repeat_cycle3_block2",
     "range(1, 6).interleave(|n| from_tensors(n).repeat(n), cycle_length: 3, block_length: 2)",
     lambda: D.range(1, 6).interleave(lambda n: D.from_tensors(n).repeat(n), cycle_length=3,
                                      block_length=2)),
    ("ranges_cycle2_block2",
     "range(4).interleave(|n| range(n * 10, n * 10 + 3), cycle_length: 2, block_length: 2)",
     lambda: D.range(4).interleave(lambda n: D.range(n * 10, n * 10 + 3), cycle_length=2,
                                   block_length=2)),
    ("empty_inner", "range(5).interleave(|n| range(n), cycle_length: 2)",
     lambda: D.range(5).interleave(lambda n: D.range(n), cycle_length=2)),
    ("cycle_longer_than_input",
     "range(1, 4).interleave(|n| range(n).map(|x| x * 2), cycle_length: 4, block_length: 3)",
     lambda: D.range(1, 4).interleave(lambda n: D.range(n).map(lambda x: x * 2), cycle_length=4,
                                      block_length=3)),
    ("slices", "from_tensor_slices([[1, 2, 3], [4, 5, 6], [7, 8, 9]]).interleave(|x| from_tensor_slices(x), cycle_length: 2)",
     lambda: D.from_tensor_slices(np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.int32))
     .interleave(lambda x: D.from_tensor_slices(x), cycle_length=2)),
    ("parallel_deterministic",
     "range(6).interleave(|n| range(n, n + 4), cycle_length: 3, block_length: 2, num_parallel_calls: 2)",
     lambda: D.range(6).interleave(lambda n: D.range(n, n + 4), cycle_length=3, block_length=2,
                                   num_parallel_calls=2, deterministic=True)),
    ("flat_map_ranges", "range(1, 5).flat_map(|n| range(n))",
     lambda: D.range(1, 5).flat_map(lambda n: D.range(n))),
    ("flat_map_repeat", "range(3).flat_map(|x| from_tensors(x).repeat(3))",
     lambda: D.range(3).flat_map(lambda x: D.from_tensors(x).repeat(3))),
    ("flat_map_vectors",
     "from_tensor_slices([[1.5, 2.5], [3.5, 4.5]]).flat_map(|x| from_tensors(x * 2.0).repeat(2))",
     lambda: D.from_tensor_slices(np.array([[1.5, 2.5], [3.5, 4.5]], np.float32))
     .flat_map(lambda x: D.from_tensors(x * 2.0).repeat(2))),
    ("interleave_then_batch",
     "range(3).interleave(|n| range(n, 10, 3), cycle_length: 2).batch(4)",
     lambda: D.range(3).interleave(lambda n: D.range(n, 10, 3), cycle_length=2).batch(4)),
    ("empty_outer", "range(0).flat_map(|n| range(n))",
     lambda: D.range(0).flat_map(lambda n: D.range(n))),
]


def main():
    out = [f"# Written by tests/tfdata/gen_interleave.py with TensorFlow {tf.__version__}."]
    for name, pipe, make in CASES:
        out.append(f"== {name}")
        out.append(pipe)
        out.extend(str(e.numpy()) for e in make())
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "interleave_cases.txt")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
