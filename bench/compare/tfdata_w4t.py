"""W4 (traced sort) in tf.data (runs only when TensorFlow is installed): tf.sort in the map."""
from common import drain, load, require_tensorflow, run

tf = require_tensorflow()
x = load("w4")


def w4(_):
    ds = tf.data.Dataset.from_tensor_slices(x).map(tf.sort)
    drain(ds)


run(w4)
