"""Writes 50 MB to stderr before answering: pipec must keep draining it and not block."""
import sys
sys.stdout.buffer.write(b"PIPEC-WORKER 1\n"); sys.stdout.flush()
for i in range(50 * 1024):
    sys.stderr.write("x" * 1023 + "\n")
sys.stdin.buffer.read(4)
sys.exit(1)
