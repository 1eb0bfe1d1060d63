#!/usr/bin/env python3
"""Latency of one `fdatasync` after appending a 700-byte record (about one audit record in the
gateway's journal), the disk wait a request makes with `[audit] durability = "answer"`.

    scripts/fsync-latency.py [DIR] [COUNT]      # default: /var/tmp 2000

Run it alone, then while `scripts/bench-gateway.sh` (or a build) loads the machine, to see how
much of the gateway's p99 the disk alone accounts for. Prints p50/p90/p99/p99.9 in ms.
"""
import os
import sys
import tempfile
import time

directory = sys.argv[1] if len(sys.argv) > 1 else "/var/tmp"
count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
record = b"x" * 700
times = []
with tempfile.NamedTemporaryFile(dir=directory, prefix="fsync-latency-") as f:
    fd = f.fileno()
    for _ in range(count):
        os.write(fd, record)
        t = time.perf_counter()
        os.fdatasync(fd)
        times.append(time.perf_counter() - t)
        time.sleep(0.001)
times.sort()
q = lambda p: 1e3 * times[min(len(times) - 1, int(p * len(times)))]
print(f"fdatasync after a 700-byte append, {count} times in {directory}: "
      f"p50 {q(0.5):.3f} ms, p90 {q(0.9):.3f} ms, p99 {q(0.99):.3f} ms, p99.9 {q(0.999):.3f} ms")
