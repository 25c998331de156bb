"""Answers two calls correctly, then exits in the middle of the run (on the third request)."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from pipec_worker import serve

calls = 0


def once(x):
    global calls
    calls += 1
    if calls > 2:
        sys.stderr.write("worker leaving after two answers\n")
        sys.stderr.flush()
        os._exit(4)
    return x * 10


serve(once)
