"""Prints something else first (e.g. a forgotten debug print)."""
print("debug: starting", flush=True)
import time; time.sleep(5)
