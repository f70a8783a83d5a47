"""Python confluent-kafka producer throughput, for the rebound producer bench.

  produce_bench.py BOOTSTRAP TOPIC RECORDS KEYS LINGER_MS QUEUE_MAX

After one untimed warm-up record, sends RECORDS records of 100 B with keys key-<i % KEYS> (prepared before
the clock starts), idempotent, acks=all, murmur2_random, checks every
delivery report, and prints {"records": n, "seconds": s}: from the first
produce() to the end of flush(), and the CPU seconds (user + system) the
process used meanwhile.
"""

import json
import resource
import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    n, keys, linger, queue_max = (int(a) for a in sys.argv[3:7])
    p = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": linger,
        "queue.buffering.max.messages": queue_max,
    })
    value = b"x" * 100
    key_list = [("key-%d" % i).encode() for i in range(keys)]
    state = {"ok": 0, "failed": 0}

    def report(err, _msg):
        if err is None:
            state["ok"] += 1
        else:
            state["failed"] += 1

    # Warm-up, not timed: connect and acquire the producer id.
    p.produce(topic, value, key_list[0])
    p.flush(30)
    produce, poll = p.produce, p.poll
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    for i in range(n):
        while True:
            try:
                produce(topic, value, key_list[i % keys], on_delivery=report)
                break
            except BufferError:
                poll(0.01)
        if i % 1000 == 0:
            poll(0)
    left = p.flush(60)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu0
    if left or state["failed"] or state["ok"] != n:
        raise SystemExit("python producer: %d undelivered, %d failed, %d ok of %d"
                         % (left, state["failed"], state["ok"], n))
    print(json.dumps({"records": n, "seconds": seconds, "cpu_seconds": cpu}))


if __name__ == "__main__":
    main()
