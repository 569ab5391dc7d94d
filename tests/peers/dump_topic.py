"""Reads a topic from the beginning with librdkafka (confluent-kafka) and
prints one JSON object per record: partition, offset, key/value (hex or
null), headers [[k, hex|null]...], timestamp. Stops after --count records
or --idle seconds without one."""
import argparse, json, sys, time
from confluent_kafka import Consumer, TopicPartition

p = argparse.ArgumentParser()
p.add_argument("--bootstrap", required=True)
p.add_argument("--topic", required=True)
p.add_argument("--count", type=int, default=-1)
p.add_argument("--idle", type=float, default=10.0)
a = p.parse_args()

c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "dump-unused",
              "enable.auto.commit": False, "enable.partition.eof": False})
md = c.list_topics(a.topic, timeout=10).topics[a.topic]
c.assign([TopicPartition(a.topic, p, 0) for p in md.partitions])  # 0 = from the start
h = lambda b: None if b is None else b.hex()
seen, last = 0, time.time()
out = sys.stdout
while seen != a.count and time.time() - last < a.idle:
    msgs = c.consume(num_messages=1000, timeout=0.5)
    for m in msgs:
        if m.error():
            print(json.dumps({"error": str(m.error())}), file=sys.stderr)
            continue
        seen += 1
        last = time.time()
        out.write(json.dumps({"partition": m.partition(), "offset": m.offset(), "key": h(m.key()),
                              "value": h(m.value()), "headers": [[k, h(v)] for k, v in (m.headers() or [])],
                              "timestamp": m.timestamp()[1]}) + "\n")
c.close()
