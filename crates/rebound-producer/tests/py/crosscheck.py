"""Cross-client check with confluent-kafka (librdkafka's Python client).

  crosscheck.py consume BOOTSTRAP TOPIC COUNT
      Reads COUNT records from every partition of TOPIC (from the
      beginning, read_committed) and prints one JSON object per record.
  crosscheck.py produce BOOTSTRAP TOPIC COUNT
      Produces COUNT keyed records with headers (murmur2_random, the Java
      client's key partitioning; idempotent, acks=all) and prints one JSON
      object per delivery.

Bytes are hex in the JSON; a null header value is null.
"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def hexed(b):
    return None if b is None else b.hex()


def consume(bootstrap, topic, count):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "crosscheck-%d" % time.time_ns(),
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    md = c.list_topics(topic, timeout=10)
    parts = sorted(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    deadline = time.time() + 30
    out = 0
    while out < count and time.time() < deadline:
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            raise SystemExit("consume error: %s" % m.error())
        print(json.dumps({
            "partition": m.partition(),
            "offset": m.offset(),
            "key": hexed(m.key()),
            "value": hexed(m.value()),
            "headers": [[k, hexed(v)] for k, v in (m.headers() or [])],
        }))
        out += 1
    c.close()
    if out < count:
        raise SystemExit("read %d of %d records before the deadline" % (out, count))


def produce(bootstrap, topic, count):
    p = Producer({
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
    })
    failed = []

    def report(err, m):
        if err is not None:
            failed.append(str(err))
            return
        print(json.dumps({
            "partition": m.partition(),
            "offset": m.offset(),
            "key": hexed(m.key()),
        }))

    for i in range(count):
        p.produce(
            topic,
            key=("py-key-%d" % i).encode(),
            value=("py-value-%d" % i).encode(),
            headers=[("source", b"python"), ("i", str(i).encode()), ("empty", None)],
            on_delivery=report,
        )
        p.poll(0)
    left = p.flush(30)
    if failed or left:
        raise SystemExit("produce failed: %s, %d undelivered" % (failed[:3], left))


if __name__ == "__main__":
    mode, bootstrap, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    {"consume": consume, "produce": produce}[mode](bootstrap, topic, count)
