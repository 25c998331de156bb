"""W3 in numpy, whole-array: range(10M), x*x % 7, keep x < 3, batches of 1024."""
import numpy as np
from common import run


def w3(_):
    x = np.arange(10_000_000, dtype=np.int64)
    y = x * x % 7
    y = y[y < 3]
    return [y[i:i + 1024] for i in range(0, len(y), 1024)]


run(w3)
