"""Turn a numpy function into a pipec `exec` worker in one line.

    # sort_worker.py
    from pipec_worker import serve
    import numpy as np
    serve(lambda x: np.sort(x))

and in the .pipe file:

    eager fn sorted(x) -> f32[?] = exec("python3", "sort_worker.py")

Run pipec with --allow-exec. The function gets one numpy array per argument and returns
an array or a tuple of arrays. The wire protocol is described in docs/exec-protocol.md.
Anything the function prints goes to stderr, since stdout carries the protocol.
"""
import io
import os
import struct
import sys

import numpy as np


def _read_exact(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve(fn):
    """Answer pipec's requests with fn(*arrays) until pipec closes stdin."""
    inp = sys.stdin.buffer
    out = sys.stdout.buffer
    # stdout belongs to the protocol: route stray prints to stderr.
    sys.stdout = sys.stderr
    out.write(b"PIPEC-WORKER 1\n")
    out.flush()
    while True:
        tag = _read_exact(inp, 4)
        if tag is None:
            return
        if tag != b"CALL":
            raise SystemExit(f"pipec_worker: unexpected frame {tag!r}")
        (n,) = struct.unpack("<I", _read_exact(inp, 4))
        args = []
        for _ in range(n):
            (length,) = struct.unpack("<Q", _read_exact(inp, 8))
            args.append(np.load(io.BytesIO(_read_exact(inp, length)), allow_pickle=False))
        try:
            result = fn(*args)
            results = result if isinstance(result, tuple) else (result,)
            frame = [b"OK  ", struct.pack("<I", len(results))]
            for r in results:
                buf = io.BytesIO()
                np.save(buf, np.asarray(r), allow_pickle=False)
                data = buf.getvalue()
                frame += [struct.pack("<Q", len(data)), data]
            out.write(b"".join(frame))
        except Exception as e:  # the error goes back to pipec, which reports it per element
            msg = f"{type(e).__name__}: {e}".encode()
            out.write(b"ERR " + struct.pack("<Q", len(msg)) + msg)
        out.flush()


if __name__ == "__main__" and os.environ.get("PIPEC_WORKER_SELFTEST"):
    serve(lambda x: np.sort(x))
