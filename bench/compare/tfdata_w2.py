"""W2 in tf.data (runs only when TensorFlow is installed)."""
from common import drain, load, require_tensorflow, run

tf = require_tensorflow()
x = load("w2")
mean = tf.constant([0.485, 0.456, 0.406])
std = tf.constant([0.229, 0.224, 0.225])


def w2(_):
    ds = tf.data.Dataset.from_tensor_slices(x)
    ds = ds.map(lambda im: (tf.cast(im, tf.float32) / 255.0 - mean) / std)
    drain(ds.batch(32))


run(w2)
