"""Greets, then dies on the first request."""
import sys
sys.stdout.buffer.write(b"PIPEC-WORKER 1\n"); sys.stdout.flush()
sys.stdin.buffer.read(4)
sys.stderr.write("about to crash\n")
sys.exit(3)
