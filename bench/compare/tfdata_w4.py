"""W4 in tf.data (runs only when TensorFlow is installed): numpy sort per row via
tf.numpy_function, the analogue of pipec's eager fn."""
import numpy as np
from common import drain, load, require_tensorflow, run

tf = require_tensorflow()
x = load("w4")


def w4(_):
    ds = tf.data.Dataset.from_tensor_slices(x)
    ds = ds.map(lambda r: tf.numpy_function(np.sort, [r], tf.float32))
    drain(ds)


run(w4)
