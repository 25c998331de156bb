"""W5 in tf.data (runs only when TensorFlow is installed)."""
from common import drain, load, require_tensorflow, run

tf = require_tensorflow()
x = load("w5")


def w5(_):
    ds = tf.data.Dataset.from_tensor_slices(x).batch(256)
    ds = ds.map(lambda b: tf.cast(b, tf.float32) * tf.constant([1.0, 2.0, 3.0]))
    drain(ds)


run(w5)
