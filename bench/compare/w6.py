"""W6: 2 000 JPEGs of 500x375 -> decode -> resize 224x224 bilinear -> normalize -> batch 32.

    python3 bench/compare/w6.py gen DIR      # writes DIR/img/NNNN.jpg (PIL, quality 90)
    python3 bench/compare/w6.py pil DIR      # PIL + numpy in a Python loop, one core
    python3 bench/compare/w6.py tf DIR [N]   # tf.data with N parallel calls (default 1)
Each timing mode prints `seconds=MEDIAN` (3 repetitions). pipec runs
bench/workloads/w6.pipe with the same DIR (see the comment there).
"""
import os
import statistics
import sys
import time

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def gen(root):
    from PIL import Image

    rng = np.random.default_rng(6)
    os.makedirs(os.path.join(root, "img"), exist_ok=True)
    y, x = np.mgrid[0:375, 0:500].astype(np.float32)
    for i in range(2000):
        planes = [128 + 100 * np.sin(x / (20 + i % 7) + k + i) * np.cos(y / (17 + k)) for k in range(3)]
        img = np.stack(planes, -1) + rng.normal(0, 8, (375, 500, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            os.path.join(root, "img", f"{i:04d}.jpg"), quality=90)


def files(root):
    d = os.path.join(root, "img")
    return sorted(os.path.join(d, f) for f in os.listdir(d))


def pil(root):
    from PIL import Image

    paths = files(root)

    def once():
        batch = []
        for p in paths:
            img = np.asarray(Image.open(p).convert("RGB").resize((224, 224), Image.BILINEAR), np.float32)
            batch.append((img / 255.0 - MEAN) / STD)
            if len(batch) == 32:
                np.stack(batch)
                batch = []
        if batch:
            np.stack(batch)

    return once


def tfdata(root, calls):
    import tensorflow as tf

    paths = files(root)

    def load(p):
        img = tf.io.decode_jpeg(tf.io.read_file(p), channels=3)
        x = tf.image.resize(img, [224, 224]) / 255.0
        return (x - MEAN) / STD

    def once():
        ds = tf.data.Dataset.from_tensor_slices(paths).map(load, num_parallel_calls=calls).batch(32)
        for _ in ds:
            pass

    return once


def main():
    mode, root = sys.argv[1], sys.argv[2]
    if mode == "gen":
        return gen(root)
    fn = pil(root) if mode == "pil" else tfdata(root, int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    print(f"seconds={statistics.median(times):.3f}")


if __name__ == "__main__":
    main()
