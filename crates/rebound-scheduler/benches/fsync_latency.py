"""fdatasync latency after a write that appends to a file against one that
overwrites zeros already in it (the redo log's files are made of zeros
before use for this). Run: python3 crates/rebound-scheduler/benches/fsync_latency.py [DIR]
Prints, twice each: median and p99 of write+fdatasync, in ms, for 2,000
writes of 20,000 bytes."""

import os
import statistics
import sys
import time


def run(path, prealloc, n=2000, size=20000):
    if os.path.exists(path):
        os.remove(path)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY)
    try:
        if prealloc:
            os.write(fd, b"\0" * (n * size))
            os.fsync(fd)
            os.lseek(fd, 0, 0)
        buf = b"x" * size
        took = []
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, buf)
            os.fdatasync(fd)
            took.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.remove(path)
    took.sort()
    return statistics.median(took) * 1e3, took[int(len(took) * 0.99)] * 1e3


if __name__ == "__main__":
    path = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "/tmp", "fsync-latency.bin")
    for _ in range(2):
        for name, prealloc in (("append", False), ("overwrite zeros", True)):
            p50, p99 = run(path, prealloc)
            print(f"{name}: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
