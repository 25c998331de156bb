"""W2 in numpy, whole-array: cast f32, /255, - mean, / std, then batches of 32."""
import numpy as np
from common import load, run

x = load("w2")
mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
std = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def w2(_):
    y = (x.astype(np.float32) / np.float32(255.0) - mean) / std
    return [y[i:i + 32] for i in range(0, len(y), 32)]


run(w2)
