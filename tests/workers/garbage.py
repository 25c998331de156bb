"""Greets, then answers with text instead of a frame."""
import sys
sys.stdout.buffer.write(b"PIPEC-WORKER 1\n"); sys.stdout.flush()
sys.stdin.buffer.read(4)
sys.stdout.buffer.write(b"hello, I am not a frame\n"); sys.stdout.flush()
import time; time.sleep(5)
