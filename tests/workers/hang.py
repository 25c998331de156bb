"""Greets, then never answers."""
import sys, time
sys.stdout.buffer.write(b"PIPEC-WORKER 1\n"); sys.stdout.flush()
time.sleep(3600)
