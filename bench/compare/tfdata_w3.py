"""W3 in tf.data (runs only when TensorFlow is installed)."""
from common import drain, require_tensorflow, run

tf = require_tensorflow()


def w3(_):
    ds = tf.data.Dataset.range(10_000_000)
    ds = ds.map(lambda x: x * x % 7).filter(lambda x: x < 3)
    drain(ds.batch(1024))


run(w3)
