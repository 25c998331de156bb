"""Writes the small input files the run cases and crates/cli/tests/runtime.rs read, and the
numpy-written outputs that `pipec --output` must reproduce byte for byte, under tests/data/.

Run from anywhere: python3 tests/numpy/gen_files.py (deterministic; commit what it writes).
"""
import pathlib

import numpy as np

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"


def main():
    DATA.mkdir(exist_ok=True)
    # .npy / .npz inputs.
    np.save(DATA / "small.npy", (np.arange(12, dtype=np.float32).reshape(4, 3) - 3.5) / 4)
    x = np.arange(10, dtype=np.int32).reshape(5, 2) * 3 - 7
    y = np.linspace(-1, 1, 5).astype(np.float64)
    np.savez(DATA / "pair.npz", x=x, y=y)  # stored members
    np.savez_compressed(DATA / "pair_deflated.npz", x=x, y=y)  # deflated members
    np.savez(DATA / "positional.npz", np.arange(6, dtype=np.int64), np.ones((6, 2), np.float32))

    # CSV inputs: a header row and floats (signs, exponents, blank line, CRLF), plain ints, errors.
    (DATA / "table.csv").write_bytes(
        b"sepal_length, sepal_width,petal\r\n5.1,3.5,1.4\r\n4.9,-3.0,1e-1\r\n\r\n6.25,2.5e1,0.0\r\n7,3.2,.5\r\n"
    )
    (DATA / "ints.csv").write_text("1,2,3\n4,5,6\n7,8,9\n10,11,12\n13,14,15\n")
    (DATA / "bad_cell.csv").write_text("a,b\n1,2\n3,4\n5,x7\n9,10\n")
    (DATA / "ragged.csv").write_text("1,2,3\n4,5,6\n7,8\n")
    (DATA / "empty.csv").write_text("\n")

    # What `--output` must write (crates/cli/tests/runtime.rs): numpy.save of the stacked elements.
    out = DATA / "expect"
    out.mkdir(exist_ok=True)
    np.save(out / "halves.npy", np.arange(7, dtype=np.float32) * np.float32(0.5))
    np.save(out / "batches.npy", np.arange(12, dtype=np.int64).reshape(4, 3))
    np.save(out / "empty_rows.npy", np.zeros((0, 3), np.float32))
    np.save(out / "pair_x.npy", x * 2)
    np.save(out / "pair_y.npy", y + 1)
    i = np.arange(5, dtype=np.int64)
    np.save(out / "dict_id.npy", i)
    np.save(out / "dict_meta_sq.npy", i * i)
    np.save(out / "dict_meta_half.npy", i.astype(np.float32) * np.float32(0.5))
    # `str` elements: numpy bytes arrays (`S`, as wide as the longest), read and written.
    words = np.array([b"cat", b"", b"giraffe", b"a\x00b"])
    np.save(DATA / "words.npy", words)
    np.save(out / "words_upper.npy", np.char.upper(words))
    for f in sorted(DATA.rglob("*")):
        if f.is_file():
            print(f.relative_to(DATA), f.stat().st_size)


if __name__ == "__main__":
    main()
