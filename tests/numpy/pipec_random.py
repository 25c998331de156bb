"""pipec's stateless random ops, modelled from docs/language.md ("Random ops") alone.

An independent Python model of the documented generator (Philox4x32-10), key derivation and
value mappings, used by gen_run_expect.py so run cases can state exactly what pipec draws.
A random op's site is the list of words `call(line, col)` / `loop(i)` of the calls and loop
iterations around it (outermost first), then `at(line, col)` of the op itself.
"""
import math

import numpy as np

M32 = 0xFFFFFFFF
M64 = (1 << 64) - 1


def philox(ctr, key):
    """Philox4x32-10 of counter (4 words) and key (2 words)."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & M32, (p0 >> 32) ^ c3 ^ k1, p0 & M32
    return [c0, c1, c2, c3]


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def at(line, col):
    return (line << 32) | col


def call(line, col):
    return (1 << 62) | at(line, col)


def loop(i):
    return (2 << 62) | i


def op_key(seed, site):
    h = mix64(seed & M64)
    for i, w in enumerate(site):
        h = mix64(h ^ mix64((w + (i + 1) * 0x9E3779B97F4A7C15) & M64))
    return mix64(h ^ len(site))


def words(key, pos, epoch, n):
    out, i = [], 0
    while len(out) < n:
        out += philox([i, epoch & M32, pos & M32, pos >> 32], [key & M32, key >> 32])
        i += 1
    return out[:n]


def _pair(w, j):
    return (w[2 * j] << 32) | w[2 * j + 1]


def _float_in(dtype, lo, hi, u):
    r = lo + (hi - lo) * u
    x, h = dtype(r), dtype(hi)
    return np.nextafter(h, dtype(-np.inf)) if x >= h else x


def uniform(seed, site, pos, epoch, shape, lo, hi, dtype=np.float32):
    key, n = op_key(seed, site), int(np.prod(shape, dtype=np.int64))
    dt = np.dtype(dtype)
    if dt.kind == "f":
        lo64, hi64 = float(dt.type(lo)), float(dt.type(hi))
        if dt == np.float64:
            w = words(key, pos, epoch, 2 * n)
            vals = [_float_in(dt.type, lo64, hi64, (_pair(w, j) >> 11) * 2.0**-53) for j in range(n)]
        else:
            w = words(key, pos, epoch, n)
            vals = [_float_in(dt.type, lo64, hi64, (x >> 8) * 2.0**-24) for x in w]
    else:
        w = words(key, pos, epoch, 2 * n)
        vals = [lo + ((_pair(w, j) * (hi - lo)) >> 64) for j in range(n)]
    return np.array(vals, dtype=dt).reshape(shape)


def normal(seed, site, pos, epoch, shape, mean=0.0, std=1.0, dtype=np.float32):
    key, n = op_key(seed, site), int(np.prod(shape, dtype=np.int64))
    pairs = (n + 1) // 2
    if np.dtype(dtype) == np.float64:
        w = words(key, pos, epoch, 4 * pairs)
        uv = [(((_pair(w, 2 * k) >> 11) + 1) * 2.0**-53, (_pair(w, 2 * k + 1) >> 11) * 2.0**-53) for k in range(pairs)]
    else:
        w = words(key, pos, epoch, 2 * pairs)
        uv = [((w[2 * k] + 1) * 2.0**-32, w[2 * k + 1] * 2.0**-32) for k in range(pairs)]
    out = []
    for u, v in uv:
        r = math.sqrt(-2.0 * math.log(u))
        t = 2.0 * math.pi * v
        out += [mean + std * (r * math.cos(t)), mean + std * (r * math.sin(t))]
    return np.array(out[:n], dtype=dtype).reshape(shape)


def crop(seed, site, pos, epoch, img, size):
    img = np.asarray(img)
    w = words(op_key(seed, site), pos, epoch, len(size))
    offs = [(x * (d - s + 1)) >> 32 for x, d, s in zip(w, img.shape, size)]
    return img[tuple(slice(o, o + s) for o, s in zip(offs, size))]


def _flips(seed, site, pos, epoch):
    return words(op_key(seed, site), pos, epoch, 1)[0] < 1 << 31


def flip_left_right(seed, site, pos, epoch, img):
    img = np.asarray(img)
    return img[:, ::-1] if _flips(seed, site, pos, epoch) else img


def flip_up_down(seed, site, pos, epoch, img):
    img = np.asarray(img)
    return img[::-1] if _flips(seed, site, pos, epoch) else img


def brightness(seed, site, pos, epoch, img, max_delta):
    img = np.asarray(img)
    delta = uniform(seed, site, pos, epoch, [], -max_delta, max_delta, np.float32)[()] if max_delta > 0 else np.float32(0)
    if img.dtype == np.uint8:
        x = img.astype(np.float32) * np.float32(1.0 / 255.0) + np.float32(delta)
        return np.clip(x * np.float32(255.5), 0, 255).astype(np.uint8)
    if img.dtype == np.float64:
        return (img.astype(np.float32) + delta).astype(np.float64)
    return (img + img.dtype.type(delta)).astype(img.dtype)
