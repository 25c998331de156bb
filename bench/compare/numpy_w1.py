"""W1 in numpy, whole-array: cast f32, log(1 + x), x*0.5 + 2.0, then split into batches of 256."""
import numpy as np
from common import load, run

x = load("w1")


def w1(_):
    y = np.log(1.0 + x.astype(np.float32)) * np.float32(0.5) + np.float32(2.0)
    return [y[i:i + 256] for i in range(0, len(y), 256)]


run(w1)
