"""fdatasync latency after a write that appends to a file against one that
overwrites zeros already in it (the redo log's files are made of zeros
before use for this). Run: python3 crates/rebound-scheduler/benches/fsync_latency.py [DIR]
Prints, twice each: median and p99 of write+fdatasync, in ms, for 2,000
writes of 20,000 bytes.

With --overlap: syncs a second when 1, 2 or 3 threads each write 7,000
bytes and fdatasync in a loop, on disjoint parts of one file of zeros
(whether the disk overlaps syncs; the redo log makes one at a time)."""

import os
import statistics
import sys
import threading
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


def overlap(path, threads, n=1500, size=7000):
    fd = os.open(path, os.O_CREAT | os.O_RDWR)
    try:
        os.pwrite(fd, b"\0" * (n * size * threads), 0)
        os.fsync(fd)
        buf = b"x" * size

        def loop(base):
            for i in range(n):
                os.pwrite(fd, buf, base + i * size)
                os.fdatasync(fd)

        ts = [threading.Thread(target=loop, args=(k * n * size,)) for k in range(threads)]
        t = time.perf_counter()
        for x in ts:
            x.start()
        for x in ts:
            x.join()
        return n * threads / (time.perf_counter() - t)
    finally:
        os.close(fd)
        os.remove(path)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--overlap"]
    path = os.path.join(args[0] if args else "/tmp", "fsync-latency.bin")
    if "--overlap" in sys.argv:
        for _ in range(2):
            for k in (1, 2, 3):
                print(f"{k} thread(s): {overlap(path, k):,.0f} syncs/s")
        sys.exit(0)
    for _ in range(2):
        for name, prealloc in (("append", False), ("overwrite zeros", True)):
            p50, p99 = run(path, prealloc)
            print(f"{name}: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
