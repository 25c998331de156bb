"""W5 in numpy, whole-array: batches of 256 of i32[1M, 2, 3], cast f32 * [1, 2, 3]."""
import numpy as np
from common import load, run

x = load("w5")
scale = np.array([1.0, 2.0, 3.0], dtype=np.float32)


def w5(_):
    y = x.astype(np.float32) * scale
    return [y[i:i + 256] for i in range(0, len(y), 256)]


run(w5)
