"""W1 in tf.data (runs only when TensorFlow is installed)."""
from common import drain, load, require_tensorflow, run

tf = require_tensorflow()
x = load("w1")


def w1(_):
    ds = tf.data.Dataset.from_tensor_slices(x)
    ds = ds.map(lambda r: tf.math.log(1.0 + tf.cast(r, tf.float32)) * 0.5 + 2.0)
    drain(ds.batch(256))


run(w1)
