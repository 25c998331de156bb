"""A minimal reader of 8-bit, non-interlaced RGB/RGBA/grey PNG files (the zlib module and
numpy only), so that a `# numpy:` oracle can start from the pixels of an example's images
on a machine without PIL. It is the PNG specification's filter arithmetic, nothing more."""
import struct
import zlib

import numpy as np


def read_png(path):
    """The pixels of the PNG at `path` as a uint8 array of shape (height, width, channels)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, "8-bit, non-interlaced only"
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * channels
    out = np.zeros((h, stride), dtype=np.int64)
    for y in range(h):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        f, row = line[0], np.frombuffer(line[1:], dtype=np.uint8).astype(np.int64)
        up = out[y - 1] if y else np.zeros(stride, dtype=np.int64)
        cur = np.zeros(stride, dtype=np.int64)
        for x in range(stride):
            a = cur[x - channels] if x >= channels else 0
            b = up[x]
            c = up[x - channels] if x >= channels else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (row[x] + pred) & 0xFF
        out[y] = cur
    return out.astype(np.uint8).reshape(h, w, channels)
