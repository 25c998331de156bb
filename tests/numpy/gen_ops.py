#!/usr/bin/env python3
"""Generates tests/numpy/ops_cases.json: kernel inputs and numpy's outputs.

Run from anywhere: `python3 tests/numpy/gen_ops.py`. Replayed by
crates/tensor/tests/ops_numpy.rs.

Encoding (lossless): a tensor is {"dtype", "shape", "data"}; bool data are JSON booleans,
integer data decimal strings, float data hex bit patterns (f16/bf16 4 digits, f32 8, f64 16).
Inputs are indices into the top-level "tensors" table. An expected error is {"error": KIND} with "index" for DivisionByZero. "cmp" says how to
compare: "exact" (bit-exact; any NaN equals any NaN) or "ulp" (within the replay's ulp limit).

Where numpy does not define the semantics SPEC §6 fixes, the expectation is computed here:
float->int casts saturate (numpy's are platform-defined), bf16 (absent from numpy) is
rounded exactly with fractions, sigmoid/relu/rsqrt use numpy formulas.
"""

import json
import math
import os
from fractions import Fraction

import numpy as np

rng = np.random.default_rng(20240607)

INTS = ["i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64"]
FLOATS = ["f16", "f32", "f64"]
NP = {
    "bool": np.bool_, "i8": np.int8, "u8": np.uint8, "i16": np.int16, "u16": np.uint16,
    "i32": np.int32, "u32": np.uint32, "i64": np.int64, "u64": np.uint64,
    "f16": np.float16, "f32": np.float32, "f64": np.float64,
}
BITS = {"f16": np.uint16, "f32": np.uint32, "f64": np.uint64}
HEXW = {"f16": 4, "bf16": 4, "f32": 8, "f64": 16}

cases = []


def enc_data(dtype, flat):
    if dtype == "bool":
        return [bool(v) for v in flat]
    if dtype in INTS:
        return [str(int(v)) for v in flat]
    if dtype == "bf16":  # flat holds bf16 bit patterns as ints
        return [format(int(v), "04x") for v in flat]
    bits = np.asarray(flat, dtype=NP[dtype]).view(BITS[dtype])
    return [format(int(b), "0%dx" % HEXW[dtype]) for b in bits]


def dtname(arr):
    for k, v in NP.items():
        if arr.dtype == np.dtype(v):
            return k
    raise ValueError(arr.dtype)


def enc(arr, dtype=None):
    arr = np.asarray(arr)
    dtype = dtype or dtname(arr)
    return {"dtype": dtype, "shape": list(arr.shape), "data": enc_data(dtype, arr.reshape(-1))}


tensors = []
tensor_ids = {}


def intern(t):
    """Index of tensor t in the shared table (inputs repeat across ops: store them once)."""
    key = json.dumps(t, sort_keys=True)
    if key not in tensor_ids:
        tensor_ids[key] = len(tensors)
        tensors.append(t)
    return tensor_ids[key]


def add(kind, inputs, expect, cmp="exact", **args):
    cases.append({"kind": kind, "args": args, "inputs": inputs, "expect": expect, "cmp": cmp})


def err(kind, **extra):
    return dict(error=kind, **extra)


def ints_edge(dt):
    info = np.iinfo(NP[dt])
    vals = [0, 1, -1, 2, -2, 3, -3, 7, -7, 10, info.min, info.max, info.min + 1, info.max - 1]
    bits = info.bits
    return np.array([v % (1 << bits) if info.min == 0 else v for v in vals], dtype=object).astype(NP[dt])


def floats_edge(dt):
    t = NP[dt]
    fi = np.finfo(t)
    vals = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.7, -3.7, 0.001, 100.0, -100.0,
            float("inf"), float("-inf"), float("nan"), float(fi.max), float(fi.tiny), 7.0, -7.0]
    with np.errstate(all="ignore"):
        return np.array(vals, dtype=np.float64).astype(t)


def edge(dt):
    return ints_edge(dt) if dt in INTS else floats_edge(dt)


# ---------------------------------------------------------------- binary ops
BIN_NP = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum, "eq": np.equal, "ne": np.not_equal,
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
}

with np.errstate(all="ignore"):
    for dt in INTS + FLOATS:
        x = edge(dt)
        for op, f in BIN_NP.items():
            if op == "div" and dt in INTS:
                continue
            a = x.reshape(-1, 1)
            b = x
            if dt in INTS and op in ("floordiv", "mod"):
                b = x[x != 0]
            if dt in INTS and op == "pow":
                b = np.array([0, 1, 2, 3, 5, 7, 8, 31, 63, 64], dtype=object).astype(NP[dt])
            out = f(a, b)
            cmp = "ulp" if (op == "pow" and dt in FLOATS) else "exact"
            add("binary", [enc(a), enc(b)], enc(out), cmp, op=op)
        if dt in INTS:
            # Division by zero: the index is row-major in the broadcast output.
            a = np.arange(6).reshape(2, 3).astype(NP[dt])
            b = np.array([[3], [0]]).astype(NP[dt])
            for op in ("floordiv", "mod"):
                add("binary", [enc(a), enc(b)], err("DivisionByZero", index=3), op=op)
                b2 = np.array([1, 2, 0]).astype(NP[dt])
                add("binary", [enc(a), enc(b2)], err("DivisionByZero", index=2), op=op)
            if dt.startswith("i"):
                add("binary", [enc(a), enc(np.array([2, -1, 1]).astype(NP[dt]))], err("NegativePower"), op="pow")
    # Random operands exercise the general paths.
    for dt in FLOATS:
        a = (rng.standard_normal((4, 5)) * 10).astype(NP[dt])
        b = (rng.standard_normal((5,)) * 3).astype(NP[dt])
        for op in ("add", "sub", "mul", "div", "floordiv", "mod", "maximum", "minimum"):
            add("binary", [enc(a), enc(b)], enc(BIN_NP[op](a, b)), op=op)
        add("binary", [enc(np.abs(a)), enc(b)], enc(np.power(np.abs(a), b)), "ulp", op="pow")
    for op in ("and", "or"):
        a = np.array([[True], [False]])
        b = np.array([True, False])
        add("binary", [enc(a), enc(b)], enc(np.logical_and(a, b) if op == "and" else np.logical_or(a, b)), op=op)
    for op in ("eq", "ne"):
        a = np.array([[True], [False]])
        b = np.array([True, False])
        add("binary", [enc(a), enc(b)], enc(BIN_NP[op](a, b)), op=op)
    # atan2: glibc's, as np.arctan2 calls it; "ulp" for numpy builds with their own loops.
    for dt in FLOATS:
        x = edge(dt)
        add("binary", [enc(x.reshape(-1, 1)), enc(x)], enc(np.arctan2(x.reshape(-1, 1), x)), "ulp", op="atan2")
    add("binary", [enc(np.arange(3, dtype=np.int32)), enc(np.ones(3, np.int32))], err("DType"), op="atan2")
    add("binary", [enc(np.zeros((2, 3), np.float32)), enc(np.zeros((4,), np.float32))], err("Broadcast"), op="add")
    add("binary", [enc(np.zeros((2,), np.float32)), enc(np.zeros((2,), np.float64))], err("DType"), op="add")
    add("binary", [enc(np.zeros((2,), np.int32)), enc(np.ones((2,), np.int32))], err("DType"), op="div")

# ---------------------------------------------------------------- unary ops


def sigmoid(x):
    with np.errstate(all="ignore"):
        if x.dtype == np.float16:
            return sigmoid(x.astype(np.float32)).astype(np.float16)
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


UN_EXACT = {
    "neg": np.negative, "abs": np.abs, "sign": np.sign, "square": np.square,
    "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)),
}
UN_FLOAT_EXACT = {
    "floor": np.floor, "ceil": np.ceil, "round": np.round, "sqrt": np.sqrt,
    "rsqrt": lambda x: (np.ones((), x.dtype) / np.sqrt(x)).astype(x.dtype),
    "reciprocal": lambda x: (np.ones((), x.dtype) / x).astype(x.dtype),
    "isnan": np.isnan, "isfinite": np.isfinite,
}
# Exact: pipec ports numpy's own float32 SIMD kernels (log/exp/sin/cos/tanh, f64 tanh)
# and calls the same glibc routines for the rest (tests/numpy/gen_transcendental.py).
UN_TRANSCENDENTAL = {
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "sin": np.sin,
    "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "sigmoid": sigmoid,
}

with np.errstate(all="ignore"):
    for dt in INTS + FLOATS:
        x = edge(dt)
        for op, f in UN_EXACT.items():
            add("unary", [enc(x)], enc(f(x)), op=op)
        if dt in INTS:
            add("unary", [enc(x)], err("DType"), op="log")
            continue
        extra = np.array([0.49999997, 0.5000001, 1e-8, -1e-8, 4.5, 5.5, -4.5, -5.5, 1e5, 123456.5, 1e15 + 0.5,
                          2.0 ** 52 + 1, 0.1, 1e-300, 710.0, -745.0, 88.7, -103.0, 11.1, -11.1, 20.0, -20.0, 40.0])
        xe = np.concatenate([x, extra.astype(NP[dt])])
        for op, f in UN_FLOAT_EXACT.items():
            add("unary", [enc(xe)], enc(f(xe)), op=op)
        rand = np.concatenate([
            rng.uniform(-10, 10, 100), rng.uniform(-1, 1, 60) * 10.0 ** rng.uniform(-8, 0, 60),
            rng.uniform(0, 100, 60), 10.0 ** rng.uniform(-30, 30, 50), rng.uniform(-1000, 1000, 50),
        ]).astype(NP[dt])
        xr = np.concatenate([xe, rand])
        for op, f in UN_TRANSCENDENTAL.items():
            add("unary", [enc(xr)], enc(f(xr)), op=op)
        # softplus is np.logaddexp(x, 0) (half types through float32, as pipec computes
        # them); erf is math.erf rounded to the dtype (musl's erf agrees within the ulp limit).
        if dt == "f16":
            sp = np.logaddexp(xr.astype(np.float32), np.float32(0)).astype(np.float16)
        else:
            sp = np.logaddexp(xr, np.zeros((), xr.dtype))
        add("unary", [enc(xr)], enc(sp), "ulp", op="softplus")
        erf = np.array([math.erf(float(v)) if np.isfinite(v) else (np.sign(v) if np.isinf(v) else v)
                        for v in xr.astype(np.float64)]).astype(NP[dt])
        add("unary", [enc(xr)], enc(erf), "ulp", op="erf")
    add("unary", [enc(np.array([True, False]))], enc(np.array([False, True])), op="not")
    add("unary", [enc(np.array([1, 2], np.int32))], err("DType"), op="not")

# ---------------------------------------------------------------- cast


def round_exact(v, mant, emin, emax):
    """Rounds a Fraction to a binary format (RNE, subnormals, overflow to inf); returns float."""
    if v == 0:
        return 0.0
    sign = -1 if v < 0 else 1
    a = abs(v)
    e = math.floor(math.log2(a))
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    e = max(e, emin)
    q = Fraction(2) ** (e - mant + 1)
    n = a / q
    fl = math.floor(n)
    r = n - fl
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and fl % 2 == 1):
        fl += 1
    val = fl * q
    maxv = (2 - Fraction(2) ** (1 - mant)) * Fraction(2) ** emax
    if val > maxv:
        return sign * float("inf")
    return sign * float(val)


def to_bf16_bits(v):
    """v: a Python int, a float, or nan/inf; returns the bf16 bit pattern."""
    if isinstance(v, float) and math.isnan(v):
        return 0x7FC0
    if isinstance(v, float) and math.isinf(v):
        return 0xFF80 if v < 0 else 0x7F80
    neg = (isinstance(v, float) and math.copysign(1, v) < 0) or (not isinstance(v, float) and v < 0)
    f = round_exact(Fraction(v), 8, -126, 127)
    bits = int(np.array(f, np.float32).view(np.uint32)) >> 16
    if f == 0 and neg:
        bits |= 0x8000
    return bits


def bf16_value(bits):
    return float(np.array(bits << 16, np.uint32).view(np.float32))


# self-check of the exact rounder against numpy's float16 conversion
for v in rng.standard_normal(2000) * 10.0 ** rng.uniform(-9, 4.5, 2000):
    want = float(np.float16(v))
    got = round_exact(Fraction(float(v)), 11, -14, 15)
    assert want == got, (v, want, got)

INFO = {dt: np.iinfo(NP[dt]) for dt in INTS}


def cast_expect(vals, src, dst):
    """Expected values of casting vals (Python ints/floats/bools) from src to dst."""
    out = []
    for v in vals:
        if dst == "bool":
            out.append(bool(v != 0) if not (isinstance(v, float) and math.isnan(v)) else True)
        elif dst in INTS:
            if isinstance(v, float):
                if math.isnan(v):
                    out.append(0)
                elif math.isinf(v):
                    out.append(INFO[dst].max if v > 0 else INFO[dst].min)
                else:
                    out.append(min(max(math.trunc(v), INFO[dst].min), INFO[dst].max))
            else:
                bits = INFO[dst].bits
                w = int(v) % (1 << bits)
                if INFO[dst].min < 0 and w >= 1 << (bits - 1):
                    w -= 1 << bits
                out.append(w)
        elif dst == "bf16":
            out.append(to_bf16_bits(float(v) if isinstance(v, float) else int(v)))
        else:
            if isinstance(v, float):
                with np.errstate(all="ignore"):
                    out.append(np.float64(v).astype(NP[dst]))
            else:
                mant, emin, emax = {"f16": (11, -14, 15), "f32": (24, -126, 127), "f64": (53, -1022, 1023)}[dst]
                out.append(NP[dst](round_exact(Fraction(int(v)), mant, emin, emax)))
    if dst == "bf16":
        return {"dtype": "bf16", "shape": [len(out)], "data": enc_data("bf16", out)}
    return enc(np.array(out, dtype=object).astype(NP[dst]) if dst in INTS else np.array(out, dtype=NP[dst]))


ALL = ["bool"] + INTS + FLOATS + ["bf16"]
big = [1e10, -1e10, 3e9, -3e9, 2.0 ** 31, -2.0 ** 31, 2.0 ** 31 - 1, 2.0 ** 32, 2.0 ** 63, -2.0 ** 63, 2.0 ** 64,
       300.5, -129.7, 255.9, 256.0, -0.9, 0.9, 65504.0, 65519.99, 65520.0, 1e300, -1e300, 1e-300,
       3.3895313892515355e38, 3.3961775292304e38, 1.0000000596046448, 1.00390625, 1.005859375,
       1.0039062500000002, 2049.0, 4097.0, 16777217.0, 9007199254740993.0 - 1, 0.1, 1 / 3]
for src in ALL:
    if src == "bool":
        vals = [False, True]
        inp = enc(np.array(vals))
    elif src in INTS:
        arr = np.concatenate([ints_edge(src), np.array([100, 127, 128, 255, 256, 2049, 4097, 65535, 65536,
                              16777217, 2 ** 31 - 1, 2 ** 31], dtype=object).astype(np.uint64).astype(NP[src])])
        vals = [int(v) for v in arr]
        inp = enc(arr)
    elif src == "bf16":
        bits = [0x0000, 0x8000, 0x3F80, 0xBF80, 0x7F80, 0xFF80, 0x7FC0, 0x4B80, 0x4F00, 0xCF00, 0x5F00,
                0x3F00, 0x4020, 0x4230, 0xC2FF, 0x0001, 0x7F7F, 0x3F81, 0x477F, 0x4780]
        vals = [bf16_value(b) for b in bits]
        inp = {"dtype": "bf16", "shape": [len(bits)], "data": enc_data("bf16", bits)}
    else:
        with np.errstate(all="ignore"):
            arr = np.concatenate([floats_edge(src), np.array(big).astype(NP[src])])
        vals = [float(v) for v in arr]
        inp = enc(arr)
    for dst in ALL:
        add("cast", [inp], cast_expect(vals, src, dst), to=dst)

# ---------------------------------------------------------------- where, clip
with np.errstate(all="ignore"):
    c = np.array([[True], [False]])
    for dt in ["bool", "i32", "u8", "f16", "f32", "f64"]:
        a = np.array([1, 0, 1]).astype(NP[dt])
        b = np.array(0).astype(NP[dt]) if dt == "bool" else np.array([5, 6, 7]).astype(NP[dt])
        add("where", [enc(c), enc(a), enc(b)], enc(np.where(c, a, b)))
    for dt in INTS + FLOATS:
        x = edge(dt)
        lo = np.array(-2).astype(NP[dt]) if dt not in ("u8", "u16", "u32", "u64") else np.array(2).astype(NP[dt])
        hi = np.array(5).astype(NP[dt])
        add("clip", [enc(x), enc(lo), enc(hi)], enc(np.clip(x, lo, hi)))
        add("clip", [enc(x), enc(hi), enc(lo)], enc(np.minimum(np.maximum(x, hi), lo)))
    x = np.array([1.0, np.nan, -3.0, 9.0], np.float32)
    lo = np.array([0.0, 0.0, np.nan, 0.0], np.float32)
    add("clip", [enc(x), enc(lo), enc(np.float32(5))], enc(np.clip(x, lo, np.float32(5))))

# ---------------------------------------------------------------- shape ops
x24 = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
xf = rng.standard_normal((3, 4)).astype(np.float32)
add("reshape", [enc(x24)], enc(x24.reshape(4, 6)), shape=[4, 6])
add("reshape", [enc(x24.transpose(2, 0, 1))], enc(x24.transpose(2, 0, 1).reshape(24)), shape=[24], pre_perm=None)
add("reshape", [enc(x24)], err("InvalidArgument"), shape=[5, 5])
for perm in ([0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1], []):
    add("transpose", [enc(x24)], enc(np.transpose(x24, perm or None)), perm=perm)
add("transpose", [enc(x24)], err("InvalidArgument"), perm=[0, 0, 1])
for ax in range(4):
    add("expand_dims", [enc(x24)], enc(np.expand_dims(x24, ax)), axis=ax)
add("expand_dims", [enc(x24)], err("InvalidArgument"), axis=4)
x1 = np.arange(6, dtype=np.float64).reshape(1, 2, 1, 3)
add("squeeze", [enc(x1)], enc(np.squeeze(x1)), axes=[])
add("squeeze", [enc(x1)], enc(np.squeeze(x1, axis=2)), axes=[2])
add("squeeze", [enc(x1)], enc(np.squeeze(x1, axis=(0, 2))), axes=[0, 2])
add("squeeze", [enc(x1)], err("InvalidArgument"), axes=[1])
y24 = (x24 * 10).astype(np.int32)
for ax in range(3):
    add("concat", [enc(x24), enc(y24), enc(x24)], enc(np.concatenate([x24, y24, x24], ax)), axis=ax)
    add("stack", [enc(x24), enc(y24)], enc(np.stack([x24, y24], ax)), axis=ax)
add("stack", [enc(x24), enc(y24)], enc(np.stack([x24, y24], 3)), axis=3)
add("concat", [enc(x24), enc(x24[:, :2])], err("InvalidArgument"), axis=0)
add("concat", [enc(x24), enc(x24[:, :2])], enc(np.concatenate([x24, x24[:, :2]], 1)), axis=1)
add("concat", [enc(x24), enc(xf)], err("InvalidArgument"), axis=0)
add("broadcast_to", [enc(xf[0])], enc(np.broadcast_to(xf[0], (2, 3, 4))), shape=[2, 3, 4])
add("broadcast_to", [enc(xf)], err("Broadcast"), shape=[4, 4])
for reps in ([2], [2, 1], [1, 3], [2, 2, 2], [0, 2], [3]):
    add("tile", [enc(xf[:2, :3])], enc(np.tile(xf[:2, :3], reps)), reps=reps)
for axes in ([0], [1], [2], [0, 2], []):
    add("reverse", [enc(x24)], enc(np.flip(x24, axes) if axes else x24), axes=axes)

# slicing: items are ["i", k] | ["r", start, stop, step] | ["n"]
x10 = np.arange(10, dtype=np.int64)
SL = [
    (x10, [["r", None, None, 2]]), (x10, [["r", None, None, -1]]), (x10, [["r", -1, -4, -1]]),
    (x10, [["r", 5, 1, -2]]), (x10, [["r", 100, None, 1]]), (x10, [["r", -100, 3, 1]]),
    (x10, [["r", 1, 1, 1]]), (x10, [["r", 8, 2, 1]]), (x10, [["r", None, -100, -1]]),
    (x10, [["r", 100, -100, -3]]), (x10, [["r", -3, None, 1]]), (x10, [["i", -1]]), (x10, [["i", 0]]),
    (x10, [["n"]]), (x10, [["r", 2, 9, 3], ["n"]]), (x10, [["r", 3, None, 7]]),
    (x24, [["i", 1]]), (x24, [["r", None, None, 1], ["i", -1]]), (x24, [["i", 0], ["r", 1, 3, 1], ["i", 2]]),
    (x24, [["n"], ["r", None, None, -1], ["n"], ["r", 1, None, 1]]),
    (x24, [["r", None, None, 1], ["r", None, None, 1], ["r", None, None, -2]]),
    (x24, [["i", -2], ["r", -1, None, -1]]),
]


def apply_items(x, items):
    idx = []
    for it in items:
        if it[0] == "i":
            idx.append(it[1])
        elif it[0] == "n":
            idx.append(None)
        else:
            idx.append(slice(it[1], it[2], it[3]))
    return x[tuple(idx)]


for x, items in SL:
    add("slice", [enc(x)], enc(apply_items(x, items)), items=items)
add("slice", [enc(x10)], err("InvalidArgument"), items=[["r", None, None, 0]])
add("slice", [enc(x10)], err("InvalidArgument"), items=[["i", 10]])
add("slice", [enc(x10)], err("InvalidArgument"), items=[["i", -11]])
add("slice", [enc(x10)], err("InvalidArgument"), items=[["i", 0], ["i", 0]])

# ---------------------------------------------------------------- matmul
MM = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((2, 1, 2, 3), (3, 3, 2)),
      ((5, 2, 3), (3, 4)), ((1, 0), (0, 2))]
for dt in ["i8", "u8", "i32", "i64", "u64", "f16", "f32", "f64"]:
    for sa, sb in MM:
        if dt in INTS:
            info = np.iinfo(NP[dt])
            a = rng.integers(info.min, info.max, sa, endpoint=True, dtype=NP[dt])
            b = rng.integers(info.min, info.max, sb, endpoint=True, dtype=NP[dt])
            with np.errstate(all="ignore"):
                out = np.matmul(a, b)
            add("matmul", [enc(a), enc(b)], enc(out))
        else:
            a = rng.standard_normal(sa).astype(NP[dt])
            b = rng.standard_normal(sb).astype(NP[dt])
            # exact reference: f64 products summed exactly, then rounded to the dtype
            ref = np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(NP[dt])
            add("matmul", [enc(a), enc(b)], enc(ref), "close")
add("matmul", [enc(np.zeros((2, 3), np.float32)), enc(np.zeros((2, 3), np.float32))], err("InvalidArgument"))
add("matmul", [enc(np.zeros((2, 2, 3), np.float32)), enc(np.zeros((3, 3, 2), np.float32))], err("Broadcast"))

# ---------------------------------------------------------------- reductions
RED_SHAPES = [((7,), [[0]]), ((200,), [[0]]), ((3, 4), [[0], [1], [0, 1]]),
              ((3, 300), [[1], [0]]), ((300, 3), [[0], [1], [0, 1]]),
              ((2, 3, 4), [[0], [1], [2], [0, 2], [0, 1], [1, 2], [0, 1, 2]]), ((4, 50, 3), [[0, 1], [1]])]
with np.errstate(all="ignore"):
    for dt in INTS + FLOATS:
        for shape, axes_list in RED_SHAPES:
            if dt in INTS:
                info = np.iinfo(NP[dt])
                x = rng.integers(info.min, info.max, shape, endpoint=True, dtype=NP[dt])
            else:
                n = int(np.prod(shape))
                x = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-2, 3, shape)).astype(NP[dt])
                if n > 20:
                    # mostly positive data keeps sums meaningful in f16
                    x = np.abs(x) if dt == "f16" else x
            for axes in axes_list:
                ax = tuple(axes)
                for kd in (False, True):
                    if kd and shape not in ((2, 3, 4), (3, 4)):
                        continue
                    add("reduce", [enc(x)], enc(np.sum(x, axis=ax, dtype=x.dtype, keepdims=kd)), op="sum", axes=axes, keepdims=kd)
                    add("reduce", [enc(x)], enc(np.max(x, axis=ax, keepdims=kd)), op="max", axes=axes, keepdims=kd)
                    add("reduce", [enc(x)], enc(np.min(x, axis=ax, keepdims=kd)), op="min", axes=axes, keepdims=kd)
                    if int(np.prod([shape[a] for a in axes])) <= 60 or dt in INTS:
                        add("reduce", [enc(x)], enc(np.prod(x, axis=ax, dtype=x.dtype, keepdims=kd)), op="prod", axes=axes, keepdims=kd)
                    if dt in FLOATS:
                        add("reduce", [enc(x)], enc(np.asarray(np.mean(x, axis=ax, keepdims=kd))), op="mean", axes=axes, keepdims=kd)
                if len(axes) == 1:
                    add("reduce", [enc(x)], enc(np.argmax(x, axis=axes[0])), op="argmax", axes=axes, keepdims=False)
                    add("reduce", [enc(x)], enc(np.argmin(x, axis=axes[0])), op="argmin", axes=axes, keepdims=False)
        if dt in FLOATS:
            x = np.array([[1.0, np.nan, 3.0], [2.0, 2.0, -1.0], [np.inf, -np.inf, 0.0]]).astype(NP[dt])
            for op, f in (("max", np.max), ("min", np.min), ("argmax", np.argmax), ("argmin", np.argmin), ("sum", np.sum)):
                for a in (0, 1):
                    add("reduce", [enc(x)], enc(np.asarray(f(x, axis=a))), op=op, axes=[a], keepdims=False)
    x = rng.uniform(0, 2, 9000).astype(np.float16)
    add("reduce", [enc(x)], enc(np.asarray(np.mean(x))), op="mean", axes=[0], keepdims=False)
    add("reduce", [enc(x)], enc(np.asarray(np.sum(x))), op="sum", axes=[0], keepdims=False)
    x = rng.standard_normal(5000).astype(np.float32)
    add("reduce", [enc(x)], enc(np.asarray(np.sum(x))), op="sum", axes=[0], keepdims=False)
    add("reduce", [enc(x)], enc(np.asarray(np.mean(x))), op="mean", axes=[0], keepdims=False)
    b = rng.random((3, 4, 5)) < 0.3
    for axes in ([0], [1], [2], [0, 2], [0, 1, 2]):
        add("reduce", [enc(b)], enc(np.any(b, axis=tuple(axes))), op="any", axes=axes, keepdims=False)
    add("reduce", [enc(np.zeros((0, 3), np.float32))], enc(np.sum(np.zeros((0, 3), np.float32), axis=0)), op="sum", axes=[0], keepdims=False)
    add("reduce", [enc(np.zeros((0, 3), np.float32))], err("InvalidArgument"), op="max", axes=[0], keepdims=False)
    add("reduce", [enc(np.zeros((2, 3), np.float32))], err("InvalidArgument"), op="argmax", axes=[0, 1], keepdims=False)
    add("reduce", [enc(np.zeros((2, 3), np.int32))], err("DType"), op="mean", axes=[0], keepdims=False)
    add("reduce", [enc(np.zeros((2, 3), np.int32))], err("InvalidArgument"), op="sum", axes=[2], keepdims=False)

for axes in ([0], [1], [2], [0, 2], [0, 1, 2]):
    b = rng.random((3, 4, 5)) < 0.9
    add("reduce", [enc(b)], enc(np.all(b, axis=tuple(axes))), op="all", axes=axes, keepdims=False)

# ---------------------------------------------------------------- sort, one_hot, host-only ops
with np.errstate(all="ignore"):
    for dt in ["f16", "f32", "f64"]:
        x = np.concatenate([rng.standard_normal(40), [np.nan, np.inf, -np.inf, np.nan, 3.0]]).astype(NP[dt])
        rng.shuffle(x)
        add("sort", [enc(x)], enc(np.sort(x)), axis=0)
        x2 = rng.standard_normal((4, 6)).astype(NP[dt])
        for a in (0, 1):
            add("sort", [enc(x2)], enc(np.sort(x2, axis=a)), axis=a)
    for dt in INTS:
        info = np.iinfo(NP[dt])
        x = rng.integers(info.min, info.max, (5, 7), endpoint=True, dtype=NP[dt])
        for a in (0, 1):
            add("sort", [enc(x)], enc(np.sort(x, axis=a)), axis=a)
        xu = rng.integers(0, 6, 30).astype(NP[dt])
        add("unique", [enc(xu)], enc(np.unique(xu)))
    add("sort", [enc(np.array([True, False, True, False]))], enc(np.array([False, False, True, True])), axis=0)
    xu = np.array([3.0, np.nan, 1.0, 3.0, np.nan, -np.inf, 1.0, 2.5], np.float32)
    add("unique", [enc(xu)], enc(np.unique(xu)))
    add("unique", [enc(np.array([[2, 1], [2, 5]], np.int32))], enc(np.unique(np.array([[2, 1], [2, 5]], np.int32))))
    for dt, depth in (("f32", 3), ("i64", 4), ("u8", 1), ("bool", 3)):
        idx = np.array([[0, 2, -1], [5, 1, 3]], np.int32)
        oh = np.zeros(idx.shape + (depth,), NP[dt])
        for pos in np.ndindex(idx.shape):
            if 0 <= idx[pos] < depth:
                oh[pos + (idx[pos],)] = 1
        add("one_hot", [enc(idx)], enc(oh), depth=depth, dtype=dt)
    idx = np.array([0, 255, 3], np.uint8)
    add("one_hot", [enc(idx)], enc(np.eye(4, dtype=np.float64)[[0, 3]][[0, 0, 1]] * np.array([[1], [0], [1]])), depth=4, dtype="f64")
    add("one_hot", [enc(np.array([1.0], np.float32))], err("DType"), depth=2, dtype="f32")
    b = rng.random((3, 4)) < 0.4
    add("nonzero", [enc(b)], enc(np.argwhere(b).astype(np.int64)))
    xi = np.array([0, 3, 0, -1, 7], np.int32)
    add("nonzero", [enc(xi)], enc(np.argwhere(xi).reshape(-1).astype(np.int64)))
    xf = np.array([[0.0, -0.0, np.nan], [1.0, 0.0, -2.0]], np.float32)
    add("nonzero", [enc(xf)], enc(np.argwhere(xf).astype(np.int64)))
    x3 = rng.standard_normal((3, 4, 2)).astype(np.float32)
    m1 = np.array([True, False, True])
    add("boolean_mask", [enc(x3), enc(m1)], enc(x3[m1]))
    m2 = rng.random((3, 4)) < 0.5
    add("boolean_mask", [enc(x3), enc(m2)], enc(x3[m2]))
    m3 = rng.random((3, 4, 2)) < 0.5
    add("boolean_mask", [enc(x3), enc(m3)], enc(x3[m3]))
    add("boolean_mask", [enc(x3), enc(np.array([True, False]))], err("InvalidArgument"))

# ---------------------------------------------------------------- creation
for dt in ALL:
    if dt == "bf16":
        add("arange", [], {"dtype": "bf16", "shape": [5], "data": enc_data("bf16", [to_bf16_bits(float(i)) for i in range(5)])}, n=5, dtype=dt)
        continue
    n = 2 if dt == "bool" else 7
    add("arange", [], enc(np.arange(n).astype(NP[dt])), n=n, dtype=dt)
    if dt != "bool":
        add("zeros", [], enc(np.zeros((2, 3), NP[dt])), shape=[2, 3], dtype=dt)
        add("ones", [], enc(np.ones((3,), NP[dt])), shape=[3], dtype=dt)
add("arange", [], err("InvalidArgument"), n=300, dtype="i8")

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops_cases.json")
with open(out, "w") as f:
    for c in cases:
        c["inputs"] = [intern(t) for t in c["inputs"]]
    json.dump({"numpy": np.__version__, "tensors": tensors, "cases": cases}, f, separators=(",", ":"))
print(f"{len(cases)} cases, {os.path.getsize(out)} bytes -> {out}")
