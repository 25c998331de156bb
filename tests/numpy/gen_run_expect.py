"""Writes the expected output of every run case and example: NAME.stdout beside NAME.pipe.

Each case's header holds `# numpy: CODE`, Python that prints what pipec must print,
computed with numpy itself (the oracle). Run: python3 tests/numpy/gen_run_expect.py
"""
import contextlib
import io
import pathlib

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent.parent
# Run cases, and the examples (each example documents its own expected output).
ROOTS = [REPO / "tests" / "cases" / "run", REPO / "examples"]


def arr(x):
    """`x` as the array pipec prints: bytes (a `str` element) as the object array of bytes
    TF's `.numpy()` returns, anything else through `np.asarray`."""
    if isinstance(x, bytes):
        return np.array(x, dtype=object)
    return np.asarray(x)


def ptuple(*parts):
    """Prints a tuple element as SPEC section 11 fixes it: `(A, B)`, each part as numpy's str."""
    print("(" + ", ".join(str(arr(p)) for p in parts) + ")")


def fmt(x):
    """An element's text as SPEC section 11 fixes it: a dict as Python prints a dict (keys by
    `repr`, in order), a tuple as `(A, B)`, every array as numpy's `str`."""
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {fmt(v)}" for k, v in x.items()) + "}"
    if isinstance(x, tuple):
        inner = ", ".join(fmt(p) for p in x)
        return f"({inner},)" if len(x) == 1 else f"({inner})"
    return str(arr(x))


def pdict(d):
    """Prints a dict element (keys in the order written)."""
    print(fmt(d))


def shuffle(items, buffer, seed, epoch=0):
    """pipec's `shuffle(buffer, seed)` (docs/language.md: tf.data's buffer algorithm driven by
    SplitMix64, epoch k reseeded from `seed` and k), modelled independently of the Rust code
    so an example can show a seeded order that numpy has no generator for."""
    mask = (1 << 64) - 1
    state = ((seed + epoch * 0xD1B54A32D192ED03) & mask) ^ 0x9E3779B97F4A7C15

    def next_u64():
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    source, buf, out = iter(items), [], []
    while True:
        for x in source:
            buf.append(x)
            if len(buf) >= max(buffer, 1):
                break
        if not buf:
            return out
        i = (next_u64() * len(buf)) >> 64
        # Rust's swap_remove: the last element takes the emitted one's slot.
        out.append(buf[i])
        last = buf.pop()
        if i < len(buf):
            buf[i] = last


def main():
    # pipec_random (beside this script) models the random ops from their documentation.
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    for case in sorted(p for root in ROOTS for p in root.glob("*.pipe")):
        code = [l[len("# numpy:"):].strip() for l in case.read_text().splitlines() if l.startswith("# numpy:")]
        if not code:
            # The record-file examples (Parquet, TFRecord) have no numpy line: their data is
            # written by pyarrow/TensorFlow and their .stdout was reviewed by hand.
            print(f"{case.name}: skipped, no '# numpy:' line (its .stdout is kept as committed)")
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec("\n".join(code), {"np": np, "ptuple": ptuple, "pdict": pdict, "fmt": fmt, "shuffle": shuffle})
        case.with_suffix(".stdout").write_text(out.getvalue())
        print(f"{case.name}: {len(out.getvalue().splitlines())} lines")


if __name__ == "__main__":
    main()
