"""Writes the small data files the examples read (run from the repo root:
python3 examples/data/gen_data.py). Fixed seed: the files are committed, and rerunning this
reproduces them byte for byte."""
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def main():
    rng = np.random.default_rng(20261126)
    # Six 2x2 RGB images (HWC, u8) and their class labels (0..3).
    np.save(HERE / "images.npy", rng.integers(0, 256, size=(6, 2, 2, 3), dtype=np.uint8))
    np.save(HERE / "labels.npy", np.array([2, 0, 3, 1, 0, 2], dtype=np.int64))
    # Token ids of five sentences of different lengths, zero-padded to 6 on the right.
    lengths = [3, 6, 1, 4, 2]
    tokens = np.zeros((5, 6), dtype=np.int32)
    for i, n in enumerate(lengths):
        tokens[i, :n] = rng.integers(1, 100, size=n)
    np.save(HERE / "tokens.npy", tokens)
    # A numeric table with a header: age, height in cm, income in thousands.
    rows = np.column_stack([
        rng.integers(18, 80, size=8),
        rng.normal(170.0, 10.0, size=8).round(1),
        rng.normal(50.0, 15.0, size=8).round(2),
    ])
    with open(HERE / "features.csv", "w") as f:
        f.write("age,height_cm,income_k\n")
        for r in rows:
            f.write(f"{int(r[0])},{r[1]:.1f},{r[2]:.2f}\n")
    table = np.loadtxt(HERE / "features.csv", delimiter=",", skiprows=1, dtype=np.float32)
    print("features.csv mean:", table.mean(axis=0), "std:", table.std(axis=0))


if __name__ == "__main__":
    main()
