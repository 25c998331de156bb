#!/usr/bin/env python3
"""Records numpy's transcendental ufuncs bit for bit, for crates/tensor/tests/transcendental_numpy.rs.

numpy on x86-64 with AVX2+FMA3 computes float32 log/exp/sin/cos/tanh with its own SIMD
kernels (not correctly rounded); pipec ports them (crates/tensor/src/kernels/scalar/numpy_math.rs)
and must agree with numpy on every bit. These files hold the evidence:

  transcendental_f32.npy  uint32 (N, 9): column 0 the input bits, then numpy's output bits
                          for FUNCS in order, on a deterministic sample (edge cases, a stride
                          over all 2^32 patterns, dense random samples in each function's
                          interesting range).
  transcendental_f16.npy  uint16 (65536, 5): numpy's float16 outputs for F16_FUNCS on every
                          float16 bit pattern (row index = input bits).
  transcendental_f64.npy  uint64 (M, 9): as the f32 file, for float64 (numpy calls glibc).

`python3 tests/numpy/gen_transcendental.py` regenerates them (needs numpy on an AVX2+FMA3,
non-AVX512 x86-64 machine: elsewhere numpy takes other code paths and the files change).

`python3 tests/numpy/gen_transcendental.py --stream STEP FUNC...` instead writes to stdout,
for each FUNC in turn, numpy's float32 output bits on the inputs `k * STEP` for
k = 0 .. ceil(2^32 / STEP), as raw little-endian uint32; the env-gated test
`exhaustive_stream` in transcendental_numpy.rs (ignored unless run with --ignored)
reads that from PIPEC_NUMPY_STREAM.
"""

import os
import sys

import numpy as np

FUNCS = ["log", "exp", "sin", "cos", "tanh", "expm1", "log1p", "tan"]
F16_FUNCS = ["log", "exp", "sin", "cos", "tanh"]
HERE = os.path.dirname(os.path.abspath(__file__))


def check_machine():
    """Refuses to record on a machine where numpy would dispatch differently."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as f
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as f
    if not (f.get("AVX2") and f.get("FMA3")) or f.get("AVX512F"):
        sys.exit("need x86-64 with AVX2+FMA3 and without AVX512F (numpy's dispatch differs otherwise)")


def apply(name, x):
    with np.errstate(all="ignore"):
        return getattr(np, name)(x)


def f32_inputs():
    rng = np.random.default_rng(20250101)
    f = np.float32
    edges = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 7.0, 2.0, 0.5, 5.0, 6.0,
             np.finfo(f).tiny, np.finfo(f).max, -np.finfo(f).max,
             88.72283935546875, -103.97208404541015625, 88.7, -87.33655, -86.0, -100.0,
             0.70710677, 1.4142135, 1e-8, -1e-8, 1e30, -1e30, 71476.0625, 117435.992,
             3.1415927, 1.5707964, 0.7853982, 9.0, 10.0, 20.0, -20.0, 1e-30]
    bits = [np.array(edges, f).view(np.uint32)]
    bits.append(np.array([0x3f486945, 0xc2781e37, 0x00000001, 0x007fffff, 0x80000001, 0x807fffff,
                          0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fffffff, 0x3f800001,
                          0x3f7fffff, 0x3f3504f3, 0x3f3504f2, 0x3f3504f4], np.uint32))
    # Neighbours of the exp thresholds and of the subnormal-result boundary.
    for c in [88.72283935546875, -103.97208404541015625, -86.64, -87.33655, -88.72284]:
        b = int(np.array(c, f).view(np.uint32))
        bits.append(np.arange(b - 8, b + 9, dtype=np.uint64).astype(np.uint32))
    # A stride over every bit pattern (odd step, so mantissas vary).
    bits.append((np.arange(7000, dtype=np.uint64) * 613567 + 12345).astype(np.uint32))
    bits.append(rng.integers(0, 0x7f800000, 5000, dtype=np.uint32))  # all positive finite
    bits.append(rng.uniform(-104.0, 89.0, 4000).astype(f).view(np.uint32))  # exp's range
    bits.append(rng.uniform(0.5, 2.0, 1500).astype(f).view(np.uint32))  # log near 1
    bits.append(rng.uniform(-10.0, 10.0, 3000).astype(f).view(np.uint32))  # trig / tanh
    bits.append((rng.uniform(-1, 1, 1500) * 10.0 ** rng.uniform(-8, 6, 1500)).astype(f).view(np.uint32))
    bits.append(rng.uniform(-1e5, 1e5, 1000).astype(f).view(np.uint32))
    allb = np.concatenate(bits)
    return allb


def f64_inputs():
    rng = np.random.default_rng(20250102)
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 7.0, 709.78, -745.1, 1e-300,
                      5e-324, 1e300, 0.5, 3.141592653589793, 1e22, 20.0, -20.0], np.float64)
    parts = [edges.view(np.uint64),
             (np.arange(400, dtype=np.uint64) * np.uint64(46116860184273879)).astype(np.uint64),
             rng.uniform(-750, 710, 300).view(np.uint64),
             rng.uniform(-10, 10, 300).view(np.uint64),
             rng.uniform(-40, 40, 400).view(np.uint64),  # every tanh interval
             (rng.choice([-1.0, 1.0], 300) * 10.0 ** rng.uniform(-12, 1.7, 300)).view(np.uint64)]
    return np.concatenate(parts)


def record():
    check_machine()
    b32 = f32_inputs()
    x32 = b32.view(np.float32)
    cols = [b32] + [apply(n, x32).view(np.uint32) for n in FUNCS]
    np.save(os.path.join(HERE, "transcendental_f32.npy"), np.stack(cols, axis=1).astype("<u4"))

    x16 = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    cols = [apply(n, x16).view(np.uint16) for n in F16_FUNCS]
    np.save(os.path.join(HERE, "transcendental_f16.npy"), np.stack(cols, axis=1).astype("<u2"))

    b64 = f64_inputs()
    x64 = b64.view(np.float64)
    cols = [b64] + [apply(n, x64).view(np.uint64) for n in FUNCS]
    np.save(os.path.join(HERE, "transcendental_f64.npy"), np.stack(cols, axis=1).astype("<u8"))
    print("f32 samples:", len(b32), " f16: 65536", " f64 samples:", len(b64))


def stream(step, funcs):
    check_machine()
    total = -(-(1 << 32) // step)
    out = sys.stdout.buffer
    chunk = 1 << 22
    for name in funcs:
        for start in range(0, total, chunk):
            k = np.arange(start, min(start + chunk, total), dtype=np.uint64)
            x = (k * np.uint64(step)).astype(np.uint32).view(np.float32)
            out.write(apply(name, x).astype("<f4").tobytes())
    out.flush()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--stream":
        stream(int(sys.argv[2]), sys.argv[3:])
    else:
        record()
