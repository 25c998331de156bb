"""Ctrl-C during iteration raises KeyboardInterrupt promptly and leaves nothing running."""

import os
import pathlib
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]

CHILD = r"""
import sys, time
import pipec
src = '''
fn f(x) {
    let y = cast(x, f32)
    for i in 0..20 { y = sin(y) * 0.5 + cos(y) }
    return y
}
pipeline main = range(1000000000000).map(f).batch(64)
'''
ds = pipec.compile(source=src).pipeline(threads=2)
n = 0
try:
    for b in ds:
        n += 1
        if n == 20:
            print("running", flush=True)
except KeyboardInterrupt:
    print("interrupted after", n, flush=True)
    sys.exit(3)
"""


def test_ctrl_c_interrupts_iteration():
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert line.strip() == "running", child.stderr.read()
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=20)
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 3, err
    assert out.startswith("interrupted after"), out
    assert took < 5, f"KeyboardInterrupt took {took:.1f} s"
