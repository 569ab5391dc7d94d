"""librdkafka (confluent-kafka) peer for interop tests. Subcommands:
  produce  --topic T --codec C --count N         records with keys, headers, timestamps; prints them as JSON lines
  member   --topic T --group G --seconds S [--assignor A] [--protocol consumer]   joins the group
           (classic, or KIP-848 with --protocol consumer), consumes, commits; prints JSON summary
  commit   --topic T --group G --offsets p:o,...  commits offsets for a group without joining
  committed --topic T --group G --partitions N   prints {partition: offset} committed for the group
  txn      --topic T --count N                   one aborted then one committed transaction of N records each
Bytes are hex in JSON."""
import argparse, json, sys, time
from confluent_kafka import Consumer, Producer, TopicPartition

p = argparse.ArgumentParser()
p.add_argument("cmd")
p.add_argument("--bootstrap", required=True)
p.add_argument("--topic", required=True)
p.add_argument("--group")
p.add_argument("--codec", default="none")
p.add_argument("--count", type=int, default=0)
p.add_argument("--seconds", type=float, default=10)
p.add_argument("--assignor", default="range")
p.add_argument("--offsets", default="")
p.add_argument("--partitions", type=int, default=0)
p.add_argument("--protocol", default="classic")
a = p.parse_args()
h = lambda b: None if b is None else b.hex()

if a.cmd == "produce":
    pr = Producer({"bootstrap.servers": a.bootstrap, "compression.type": a.codec, "linger.ms": 5,
                   "enable.idempotence": True})
    sent = []
    for i in range(a.count):
        key = None if i % 5 == 0 else f"key-{i % 13}".encode()
        value = None if i % 11 == 3 else (f"{a.codec} value {i} " * (1 + i % 9)).encode()
        headers = [("i", str(i).encode()), ("null", None), ("i", b"repeat")] if i % 3 == 0 else None
        ts = 1_700_000_000_000 + i
        def cb(err, m, key=key, value=value, headers=headers, ts=ts):
            if err is not None:
                sys.exit(f"delivery failed: {err}")
            sent.append({"partition": m.partition(), "offset": m.offset(), "key": h(key), "value": h(value),
                         "headers": [[k, h(v)] for k, v in (headers or [])], "timestamp": ts})
        pr.produce(a.topic, key=key, value=value, headers=headers, timestamp=ts, on_delivery=cb)
        pr.poll(0)
    pr.flush(30)
    for s in sent:
        print(json.dumps(s))
elif a.cmd == "member":
    conf = {"bootstrap.servers": a.bootstrap, "group.id": a.group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "group.protocol": a.protocol}
    if a.protocol == "classic":  # the consumer protocol's assignor and timeouts are the broker's
        conf.update({"partition.assignment.strategy": a.assignor,
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 300})
    c = Consumer(conf)
    c.subscribe([a.topic])
    records, assignment, end = [], set(), time.time() + a.seconds
    while time.time() < end:
        m = c.poll(0.2)
        assignment = {tp.partition for tp in c.assignment()}
        if m is None or m.error():
            continue
        records.append([m.partition(), m.offset()])
        c.commit(message=m, asynchronous=False)
    print(json.dumps({"assignment": sorted(assignment), "records": records}))
    c.close()
elif a.cmd == "commit":
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group, "enable.auto.commit": False})
    tps = [TopicPartition(a.topic, int(p), int(o)) for p, o in (x.split(":") for x in a.offsets.split(","))]
    c.commit(offsets=tps, asynchronous=False)
    c.close()
elif a.cmd == "committed":
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group, "enable.auto.commit": False})
    got = c.committed([TopicPartition(a.topic, p) for p in range(a.partitions)], timeout=10)
    print(json.dumps({str(tp.partition): tp.offset for tp in got}))
    c.close()
elif a.cmd == "txn":
    pr = Producer({"bootstrap.servers": a.bootstrap, "transactional.id": f"txn-{a.topic}"})
    pr.init_transactions(30)
    for outcome in ("abort", "commit"):
        pr.begin_transaction()
        for i in range(a.count):
            pr.produce(a.topic, value=f"{outcome}-{i}".encode(), partition=0)
        pr.flush(30)
        (pr.abort_transaction if outcome == "abort" else pr.commit_transaction)(30)
else:
    sys.exit(f"unknown command {a.cmd}")
