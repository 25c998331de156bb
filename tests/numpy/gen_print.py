#!/usr/bin/env python3
"""Builds tests/numpy/print_cases.json: arrays and the exact text numpy's print() gives them.

Run from anywhere: `python3 tests/numpy/gen_print.py` (needs numpy >= 2). Each case is
{name, dtype (pipec name), shape, data, expected}; `data` is row-major and every value is a
string so exact bits survive JSON: integers in decimal, bools "1"/"0", floats as the hex of
their bit pattern ("0x3f800000").

numpy has no bf16. pipec prints bf16 as numpy would print a floating dtype with bf16's bits
(see crates/tensor/src/format.rs). Its expected text comes from `PyFloatFormat` below, a
Python mirror of numpy's FloatingFormat on top of an exact-rational Dragon4; the script first
checks that mirror reproduces numpy's own output for every f16/f32/f64 case, then uses it
for bf16.
"""

import json
import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy._core import arrayprint

OUT = Path(__file__).with_name("print_cases.json")
PIPEC_NAME = {
    "bool": "bool", "int8": "i8", "uint8": "u8", "int16": "i16", "uint16": "u16",
    "int32": "i32", "uint32": "u32", "int64": "i64", "uint64": "u64",
    "float16": "f16", "float32": "f32", "float64": "f64",
}
BITS = {"float16": np.uint16, "float32": np.uint32, "float64": np.uint64}

# ---------------------------------------------------------------------------------------
# Python mirror of numpy's float printing, used as the bf16 oracle.
# ---------------------------------------------------------------------------------------

# (stored mantissa bits, exponent bits, exp cutoff = 10**min(8, finfo.precision),
#  scalar str() positional bound)
FLOAT_INFO = {
    "f16": (10, 5, 1e3, 1e3),
    "bf16": (7, 8, 1e2, 1e2),
    "f32": (23, 8, 1e6, 1e6),
    "f64": (52, 11, 1e8, 1e16),
}


def decode(bits, mb, eb):
    """(kind, neg, mantissa, exponent, unequal_margins) as numpy's dragon4.c splits floats."""
    neg = (bits >> (mb + eb)) & 1 == 1
    fm = bits & ((1 << mb) - 1)
    fe = (bits >> mb) & ((1 << eb) - 1)
    bias = (1 << (eb - 1)) - 1
    if fe == (1 << eb) - 1:
        return ("inf" if fm == 0 else "nan", neg, 0, 0, False)
    if fe != 0:
        return ("fin", neg, (1 << mb) | fm, fe - bias - mb, fe != 1 and fm == 0)
    return ("fin", neg, fm, 1 - bias - mb, False)


def dragon4(m, e, unequal, unique, total, cmax, cmin):
    """Digits and first-digit exponent, following dragon4.c's semantics with exact rationals."""
    if m == 0:
        return "0", 0
    even = m % 2 == 0
    v = Fraction(m) * Fraction(2) ** e
    mlow = Fraction(2) ** e / (4 if unequal else 2)
    mhigh = Fraction(2) ** e / 2
    de = math.floor(math.log10(float(v))) + 1 if float(v) > 0 else 0
    while Fraction(10) ** de <= v:
        de += 1
    while Fraction(10) ** (de - 1) > v:
        de -= 1
    if cmax >= 0 and not total and de <= -cmax:
        de = -cmax + 1
    cmax_exp = de - 16383
    if cmax >= 0:
        cmax_exp = max(cmax_exp, de - cmax if total else -cmax)
    cmin_exp = de
    if cmin >= 0:
        cmin_exp = min(cmin_exp, de - cmin if total else -cmin)
    out_exp = de - 1
    rem, p, digits = v, de, []
    low = high = False
    while True:
        p -= 1
        unit = Fraction(10) ** p
        d = rem // unit
        rem -= d * unit
        if unique:
            low = rem <= mlow if even else rem < mlow
            high = rem + mhigh >= unit if even else rem + mhigh > unit
            if ((low or high) and p <= cmin_exp) or p == cmax_exp:
                break
        elif rem == 0 or p == cmax_exp:
            break
        digits.append(int(d))
    round_down = low
    if low == high:
        c = 2 * rem - unit
        round_down = c < 0 or (c == 0 and d % 2 == 0)
    if round_down:
        digits.append(int(d))
    elif d == 9:
        while digits and digits[-1] == 9:
            digits.pop()
        if digits:
            digits[-1] += 1
        else:
            digits, out_exp = [1], out_exp + 1
    else:
        digits.append(int(d) + 1)
    return "".join(map(str, digits)), out_exp


def positional(dec, unique=True, precision=-1, min_digits=-1, trim=".", pad_left=-1, pad_right=-1):
    _, neg, m, e, uneq = dec
    digits, pe = dragon4(m, e, uneq, unique, False, precision, min_digits)
    s = "-" if neg else ""
    if pe >= 0:
        whole = pe + 1
        if len(digits) <= whole:
            s += digits + "0" * (whole - len(digits))
            frac = 0
        else:
            s += digits[:whole] + "." + digits[whole:]
            frac = len(digits) - whole
    else:
        zeros = -(pe + 1)
        s += "0." + "0" * zeros + digits
        frac, whole = len(digits) + zeros, 1
    if trim != "-" and frac == 0:
        s += "."
    add = max(min_digits if unique else precision, 0)
    if trim == "0":
        if frac == 0:
            s, frac = s + "0", 1
    elif trim == "k" and add > frac:
        s, frac = s + "0" * (add - frac), add
    if trim != "k" and frac > 0:
        while s.endswith("0"):
            s, frac = s[:-1], frac - 1
        if s.endswith("."):
            if trim == "0":
                s, frac = s + "0", frac + 1
            elif trim == "-":
                s = s[:-1]
    if pad_right >= frac:
        if trim == "-" and frac == 0:
            s += " "
        s += " " * (pad_right - frac)
    if pad_left > whole + neg:
        s = " " * (pad_left - whole - neg) + s
    return s


def scientific(dec, unique=True, precision=-1, min_digits=-1, trim=".", pad_left=-1, exp_digits=-1):
    _, neg, m, e, uneq = dec
    s = " " * max(pad_left - 1 - neg, 0) + ("-" if neg else "")
    digits, pe = dragon4(m, e, uneq, unique, True,
                         -1 if precision < 0 else precision + 1,
                         -1 if min_digits < 0 else min_digits + 1)
    s += digits[0]
    frac = len(digits) - 1
    if frac > 0:
        s += "." + digits[1:]
    if trim != "-" and frac == 0:
        s += "."
    add = max(min_digits if unique else precision, 0)
    if trim == "0":
        if frac == 0:
            s, frac = s + "0", 1
    elif trim == "k" and add > frac:
        s += "0" * (add - frac)
    if trim != "k" and frac > 0:
        s = s.rstrip("0")
        if trim == "0" and s.endswith("."):
            s += "0"
    ed = 2 if exp_digits < 0 else min(exp_digits, 5)
    return s + "e" + ("+" if pe >= 0 else "-") + str(abs(pe)).rjust(ed, "0")


class PyFloatFormat:
    """numpy's FloatingFormat (default options) over bit patterns of any FLOAT_INFO dtype."""

    def __init__(self, bits, kind, value_of, round_to):
        mb, eb, self.cutoff, _ = FLOAT_INFO[kind]
        self.kind, self.mb, self.eb = kind, mb, eb
        decs = [decode(int(b), mb, eb) for b in bits]
        fin = [(d, value_of(b)) for d, b in zip(decs, bits) if d[0] == "fin"]
        self.exp = False
        nz = [abs(v) for _, v in fin if v != 0]
        if nz:
            mx, mn = max(nz), min(nz)
            # numpy compares against Python floats converted to the dtype (NEP 50), and
            # divides in the dtype (halfs via f32).
            self.exp = mx >= self.cutoff or mn < round_to(1e-4) or round_to(
                float(np.float32(mx) / np.float32(mn)) if kind in ("f16", "bf16") else (
                    float(np.float32(mx) / np.float32(mn)) if kind == "f32" else mx / mn)) > 1000.0
        self.precision, self.min_digits, self.trim = 8, -1, "."
        self.pad_left = self.pad_right = 0
        self.exp_size = -1
        if not fin:
            pass
        elif self.exp:
            strs = [scientific(d, precision=8, trim=".") for d, _ in fin]
            mant, exps = zip(*(s.split("e") for s in strs))
            ints, fracs = zip(*(s.split(".") for s in mant))
            self.exp_size = max(len(s) for s in exps) - 1
            self.trim = "k"
            self.precision = self.min_digits = max(len(s) for s in fracs)
            self.pad_left = max(len(s) for s in ints)
            self.pad_right = self.exp_size + 2 + self.precision
        else:
            strs = [positional(d, precision=8, trim=".") for d, _ in fin]
            ints, fracs = zip(*(s.split(".") for s in strs))
            self.pad_left = max(len(s) for s in ints)
            self.pad_right = max(len(s) for s in fracs)
            self.min_digits = 0
        if len(fin) != len(decs):
            neginf = any(d[0] == "inf" and d[1] for d in decs)
            off = self.pad_right + 1
            self.pad_left = max(self.pad_left, 3 - off, 3 + neginf - off)

    def __call__(self, b):
        d = decode(int(b), self.mb, self.eb)
        if d[0] != "fin":
            ret = "nan" if d[0] == "nan" else ("-inf" if d[1] else "inf")
            return " " * (self.pad_left + self.pad_right + 1 - len(ret)) + ret
        if self.exp:
            return scientific(d, precision=self.precision, min_digits=self.min_digits,
                              trim=self.trim, pad_left=self.pad_left, exp_digits=self.exp_size)
        return positional(d, precision=self.precision, min_digits=self.min_digits,
                          trim=self.trim, pad_left=self.pad_left, pad_right=self.pad_right)


def py_scalar_str(b, kind, value):
    mb, eb, _, pos_max = FLOAT_INFO[kind]
    d = decode(int(b), mb, eb)
    if d[0] != "fin":
        return "nan" if d[0] == "nan" else ("-inf" if d[1] else "inf")
    a = abs(value)
    if a == 0 or 1e-4 <= a < pos_max:
        return positional(d, trim="0")
    return scientific(d, trim="-")


def py_str(bits_arr, kind, value_of, round_to):
    """str() of an array of bit patterns of a float dtype, through numpy's own layout code."""
    if bits_arr.shape == ():
        return py_scalar_str(bits_arr[()], kind, value_of(bits_arr[()]))
    if bits_arr.size == 0:
        return "[]"
    data, summary = bits_arr, ""
    if bits_arr.size > 1000:
        data, summary = arrayprint._leading_trailing(bits_arr, 3), "..."
    fmt = PyFloatFormat(data.ravel(), kind, value_of, round_to)
    return arrayprint._formatArray(bits_arr, fmt, 75, " ", " ", 3, summary, sys.maxsize)


# ---------------------------------------------------------------------------------------
# bf16 helpers (round-to-nearest-even from f32, like ml_dtypes and the half crate).
# ---------------------------------------------------------------------------------------

def to_bf16_bits(values):
    f = np.asarray(values, dtype=np.float32)
    u = f.view(np.uint32).astype(np.uint64)
    rounded = np.array((u + 0x7FFF + ((u >> 16) & 1)) >> 16, dtype=np.uint16)
    nan = np.isnan(f)
    rounded[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def bf16_value(b):
    return float(np.array([int(b) << 16], dtype=np.uint32).view(np.float32)[0])


def bf16_round(x):
    return bf16_value(to_bf16_bits([x])[0])


# ---------------------------------------------------------------------------------------
# The catalogue.
# ---------------------------------------------------------------------------------------

CASES = []
NAMES = set()
rng = np.random.default_rng(20240601)


def encode(arr):
    flat = arr.ravel()
    if arr.dtype == np.bool_:
        return ["1" if x else "0" for x in flat]
    if arr.dtype.kind == "f":
        w = arr.dtype.itemsize * 2
        return [f"0x{int(b):0{w}x}" for b in flat.view(BITS[arr.dtype.name])]
    return [str(int(x)) for x in flat]


def add(name, arr):
    assert name not in NAMES, name
    NAMES.add(name)
    arr = np.asarray(arr)
    CASES.append({
        "name": name,
        "dtype": PIPEC_NAME[arr.dtype.name],
        "shape": list(arr.shape),
        "data": encode(arr),
        "expected": str(arr),
    })
    if arr.dtype.kind == "f":
        kind = PIPEC_NAME[arr.dtype.name]
        bits = arr.view(BITS[arr.dtype.name])
        dt = arr.dtype.type
        mirror = py_str(bits, kind, lambda b: float(np.array(b, dtype=bits.dtype).view(dt)),
                        lambda x: float(dt(x)))
        assert mirror == str(arr), f"oracle mirror disagrees with numpy on {name}:\n{mirror}\n{arr}"


def add_bf16(name, values):
    name = "bf16/" + name
    assert name not in NAMES, name
    NAMES.add(name)
    bits = to_bf16_bits(values)
    CASES.append({
        "name": name,
        "dtype": "bf16",
        "shape": list(bits.shape),
        "data": [f"0x{int(b):04x}" for b in bits.ravel()],
        "expected": py_str(bits, "bf16", bf16_value, bf16_round),
    })


FLOAT_VALUES = {
    "integral": [1, 2, 3],
    "halves": [0.5, 1, 2],
    "log1p": np.log1p(np.array([1, 2, 3], np.float64)),
    "log1p_456": np.log1p(np.array([4, 5, 6], np.float64)),
    "mixed_width": [1.5, -22.25, 333.125, 0.75],
    "thirds": [1 / 3, 2 / 3, 1.0],
    "tenths": [0.1, 0.2, 0.3, 0.7],
    "neg_zero": [-0.0, 0.0, 1.0],
    "neg_zero_only": [-0.0],
    "zeros": [0.0, 0.0, 0.0],
    "tiny": [1e-5, 1.0],
    "tiny_only": [1e-5, 2e-5, 3.5e-5],
    "edge_1e-4": [1e-4, 1.0],
    "edge_1e-4_half": [1e-4, 0.5],
    "ratio_1000": [0.001, 1.0],
    "ratio_1001": [0.001, 1.001],
    "ratio_big": [0.01, 100.0],
    "big_999": [999.0, 1.0],
    "big_1000": [1000.0, 1.0],
    "big_1e5": [123456.0, 1.0],
    "big_1e6": [1e6, 2.0],
    "big_1e7": [12345678.0, 3.0],
    "big_1e8": [1e8, 1.0],
    "huge": [1.2345e10, 1.0],
    "nan_one": [np.nan, 1.0],
    "nan_only": [np.nan],
    "inf_ninf_nan": [np.inf, -np.inf, np.nan],
    "inf_only": [np.inf],
    "ninf_num": [-np.inf, 2.5],
    "nan_tiny_big": [np.nan, 1e-5, 1e5],
    "inf_frac": [np.inf, 0.125, 3.0],
    "neg_mix": [-1.5, 2.25, -100.0, 7.0],
    "pi_e": [np.pi, np.e, -np.pi],
    "sevenths": [1 / 7, 10 / 7, 100 / 7],
    "round_up_9": [0.99999999, 9.9999999, 1.0],
    "sci_neg": [-1e-6, 2e-6, -3e-7],
    "mixed_sci": [1e-5, 1.2345678e10],
    "mixed_sci2": [1e-5, 1.5e10],
}

for dt in (np.float16, np.float32, np.float64):
    tag = PIPEC_NAME[np.dtype(dt).name]
    with np.errstate(over="ignore"):
        for name, vals in FLOAT_VALUES.items():
            add(f"{tag}/{name}", np.array(vals, dtype=np.float64).astype(dt))
        add(f"{tag}/normal10", rng.standard_normal(10).astype(dt))
        add(f"{tag}/uniform20", rng.uniform(-5, 5, 20).astype(dt))
        add(f"{tag}/wrap30", rng.uniform(0, 1, 30).astype(dt))
        add(f"{tag}/wrap_sci", (rng.uniform(1, 9, 25) * 10.0 ** rng.integers(-6, 4, 25)).astype(dt))
        add(f"{tag}/grid4x5", rng.standard_normal((4, 5)).astype(dt))
        add(f"{tag}/wide3x12", rng.uniform(-100, 100, (3, 12)).astype(dt))
        add(f"{tag}/cube", np.array([[[1, 4, 9], [4, 10, 18]], [[7, 16, 27], [10, 22, 36]]], dt))
        add(f"{tag}/rank4", np.arange(16, dtype=dt).reshape(2, 2, 2, 2) / dt(4))
        add(f"{tag}/col", np.array([[1.5], [2.0], [-3.0]], dt))
        add(f"{tag}/summ1d", np.linspace(0, 1, 1001).astype(dt))
        add(f"{tag}/summ2d", rng.standard_normal((40, 40)).astype(dt))
        add(f"{tag}/summ3d", np.arange(11 * 11 * 11, dtype=dt).reshape(11, 11, 11))
        add(f"{tag}/summ_nan", np.concatenate([[np.nan], np.ones(1000), [np.inf]]).astype(dt))
        add(f"{tag}/empty", np.zeros((0,), dt))
        add(f"{tag}/empty2x0", np.zeros((2, 0), dt))
        add(f"{tag}/empty0x3", np.zeros((0, 3), dt))
        for i, v in enumerate([1.5, 0.1, -0.0, 0.0, 1e-4, 9.9e-5, 999.0, 1000.0, 123456.0,
                               1e6, 1e16, 1e20, 1.5e-7, np.nan, np.inf, -np.inf, -2.0]):
            add(f"{tag}/scalar{i}", np.array(v).astype(dt))
        fi = np.finfo(dt)
        add(f"{tag}/limits", np.array([fi.max, fi.tiny, fi.eps, -fi.max], dt))
        add(f"{tag}/subnormal", np.array([fi.smallest_subnormal, 1.0], dt))
        add(f"{tag}/scalar_max", np.array(fi.max, dt))
        add(f"{tag}/scalar_subnormal", np.array(fi.smallest_subnormal, dt))

add("f64/exp3", np.array([1e-300, 1e300, 1.0]))
add("f64/exp3_neg", np.array([-1e-300, 2.0]))
add("f32/f32_1e-45", np.array([1e-45, 1.0], np.float32))
add("f16/max_65504", np.array([65504, 1], np.float16))
add("f16/33216", np.array([33216, 33184], np.float16))
add("f32/3e10_boundary", np.array([3e10 - 2048, 3e10, 3e10 + 2048], np.float32))
add("f64/long_digits", np.array([0.1 + 0.2, 1 / 3]))
add("f64/precision_cut", np.array([1.23456789012, 2.0]))
add("f32/tie_round", np.array([0.125, 0.375, 1.0], np.float32) / np.float32(1024))
add("f64/mixed_int_frac_long", np.arange(0, 10, 0.25))
add("f64/neg_col_wrap", -rng.uniform(0, 1000, 24))
add("f32/rank3_wrap", rng.uniform(0, 1, (2, 2, 15)).astype(np.float32))

# Random-bit sweeps: every bit pattern is a valid float, including specials.
for dt, ut, n in ((np.float16, np.uint16, 40), (np.float32, np.uint32, 20), (np.float64, np.uint64, 20)):
    tag = PIPEC_NAME[np.dtype(dt).name]
    for k in range(4):
        bits = rng.integers(0, np.iinfo(ut).max, n, dtype=ut, endpoint=True)
        add(f"{tag}/randbits{k}", bits.view(dt))
    for k in range(3):
        # Same exponent range, random mantissas: positional cases with many digits.
        add(f"{tag}/randmant{k}", (rng.uniform(0.5, 50, 12)).astype(dt))

for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64):
    tag = PIPEC_NAME[np.dtype(dt).name]
    ii = np.iinfo(dt)
    add(f"{tag}/small", np.array([1, 2, 3], dt))
    add(f"{tag}/limits", np.array([ii.min, 0, ii.max], dt))
    add(f"{tag}/grid", (np.arange(12).reshape(3, 4) * 7 % 13).astype(dt))
    add(f"{tag}/wrap", np.arange(40).astype(dt))
    add(f"{tag}/summ", np.arange(1500).astype(dt))
    add(f"{tag}/scalar", np.array(ii.max, dt))
    add(f"{tag}/scalar_min", np.array(ii.min, dt))
    add(f"{tag}/empty", np.zeros((0, 2), dt))
    if ii.min < 0:
        add(f"{tag}/neg", np.array([-1, 10, -100 % 128 * -1], dt))
        add(f"{tag}/rank3", (np.arange(24).reshape(2, 3, 4) - 12).astype(dt))
add("u64/max_row", np.array([2**64 - 1] * 8, np.uint64))
add("i64/wide_wrap", np.array([-(2**62), 2**62, 123456789012345] * 6, np.int64))
add("i32/summ2d", np.arange(60 * 60, dtype=np.int32).reshape(60, 60))
add("i32/summ4d", np.arange(8 * 8 * 8 * 8, dtype=np.int32).reshape(8, 8, 8, 8))
add("i32/summ_long_axis_only", np.arange(2 * 600, dtype=np.int32).reshape(2, 600))

add("f64/summ_column", np.linspace(-1, 1, 1001).reshape(1001, 1))
add("f32/summ_short_rows", rng.uniform(0, 10, (3, 400)).astype(np.float32))
add("f32/summ_sci", (rng.uniform(1, 9, 1200) * 10.0 ** rng.integers(-8, 8, 1200)).astype(np.float32))
add("f64/empty_0x0x2", np.zeros((0, 0, 2)))
add("f64/rank5", np.arange(32, dtype=np.float64).reshape(2, 2, 2, 2, 2) - 15.5)
add("i16/rank1_single", np.array([-7], np.int16))
add("f32/single", np.array([2.5], np.float32))
add("f32/nested_single", np.array([[[0.1]]], np.float32))

add("bool/pair", np.array([True, False]))
add("bool/grid", np.array([[True, False, True], [False, False, True]]))
add("bool/scalar_true", np.array(True))
add("bool/scalar_false", np.array(False))
add("bool/wrap", rng.integers(0, 2, 40).astype(bool))
add("bool/summ", rng.integers(0, 2, 1200).astype(bool))
add("bool/empty", np.zeros((0,), bool))
add("bool/all_false", np.zeros((4,), bool))

for name, vals in FLOAT_VALUES.items():
    add_bf16(name, vals)
for name, vals in {
    "normal10": rng.standard_normal(10),
    "grid4x5": rng.standard_normal((4, 5)),
    "wrap30": rng.uniform(0, 1, 30),
    "big_99": [99.0, 1.0],
    "big_100": [100.0, 1.0],
    "cube": [[[1, 4, 9], [4, 10, 18]], [[7, 16, 27], [10, 22, 36]]],
    "summ1d": np.linspace(0, 1, 1001),
    "limits": [3.3895314e38, 1.1754944e-38, 0.0078125, -3.3895314e38],
    "subnormal": [9.1835e-41, 1.0],
    "scalar_1.5": np.array(1.5),
    "scalar_0.1": np.array(0.1),
    "scalar_100": np.array(100.0),
    "scalar_99": np.array(99.0),
    "scalar_tiny": np.array(1e-5),
    "scalar_nan": np.array(np.nan),
    "scalar_ninf": np.array(-np.inf),
    "empty": np.zeros((2, 0)),
}.items():
    add_bf16(name, vals)
for k in range(3):
    bits = rng.integers(0, 2**16, 30, dtype=np.uint32)
    vals = (bits << 16).astype(np.uint32).view(np.float32)
    add_bf16(f"randbits{k}", vals)

text = json.dumps(CASES, indent=0)
OUT.write_text(text + "\n")
print(f"{len(CASES)} cases, {len(text)} bytes -> {OUT}")
