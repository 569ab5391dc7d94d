"""Golden-frame capture (run through scripts/capture-golden, not directly).

  workload BOOTSTRAP OUTDIR   drive librdkafka (confluent-kafka) through every
                              API the client uses; write expected records
  extract PCAP OUTDIR         split a loopback capture into request/response
                              frames of the `golden-*` clients
"""
import json
import os
import struct
import sys
import time

API = {
    0: "produce", 1: "fetch", 2: "list_offsets", 3: "metadata", 8: "offset_commit",
    9: "offset_fetch", 10: "find_coordinator", 11: "join_group", 12: "heartbeat",
    13: "leave_group", 14: "sync_group", 15: "describe_groups", 18: "api_versions",
    19: "create_topics", 20: "delete_topics", 22: "init_producer_id", 32: "describe_configs",
}
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PER_KIND = 3  # frames kept per (api, direction, version)
MAX_FRAME = 256 * 1024


def records(codec):
    """The records each peer producer writes: null/empty/large, headers."""
    out = []
    for i in range(40):
        key = None if i % 7 == 0 else f"key-{codec}-{i}"
        if i % 11 == 0:
            value = None
        elif i % 5 == 0:
            value = ""
        else:
            value = f"value-{codec}-{i}-" + "x" * (i * 37 % 500)
        headers = [] if i % 3 else [["h1", f"v{i}"], ["h2", None], ["h1", "dup"]]
        out.append({"key": key, "value": value, "headers": headers, "timestamp": 1700000000000 + i})
    return out


def enc(s):
    return None if s is None else s.encode()


def workload(bootstrap, outdir):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    stamp = int(time.time())
    common = {"bootstrap.servers": bootstrap, "client.id": "golden-peer"}
    admin = AdminClient(common)
    topics = {c: f"golden-{stamp}-{c}" for c in CODECS}
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()]).values():
        f.result(30)
    for codec, topic in topics.items():
        p = Producer({**common, "enable.idempotence": True, "compression.type": codec,
                      "linger.ms": 50, "client.id": f"golden-peer-{codec}"})
        for r in records(codec):
            hs = [(k, enc(v)) for k, v in r["headers"]]
            p.produce(topic, key=enc(r["key"]), value=enc(r["value"]), headers=hs or None,
                      timestamp=r["timestamp"])
        assert p.flush(30) == 0
    admin.describe_configs([ConfigResource("TOPIC", topics["none"])])[
        ConfigResource("TOPIC", topics["none"])].result(30)
    c = Consumer({**common, "group.id": f"golden-{stamp}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "heartbeat.interval.ms": 200,
                  "session.timeout.ms": 6000, "fetch.wait.max.ms": 100})
    c.subscribe(list(topics.values()))
    want, got, deadline = 40 * len(CODECS), 0, time.time() + 60
    while got < want and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got += 1
    assert got == want, f"consumed {got} of {want}"
    lo, hi = c.get_watermark_offsets(TopicPartition(topics["none"], 0), timeout=10, cached=False)
    c.commit(asynchronous=False)
    c.committed([TopicPartition(t, 0) for t in topics.values()], timeout=10)
    time.sleep(1.0)  # a few heartbeats
    list(admin.describe_consumer_groups([f"golden-{stamp}"]).values())[0].result(30)
    c.close()
    with open(os.path.join(outdir, "workload.json"), "w") as f:
        json.dump({"topics": topics, "records": {c: records(c) for c in CODECS}}, f)


def pcap_packets(path):
    """(src_port, dst_port, seq, flags, payload) of each TCP/IPv4 packet."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    pos = 24
    while pos + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[pos:pos + 16])
        pkt = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if linktype == 1:  # Ethernet (Linux lo)
            if pkt[12:14] != b"\x08\x00":
                continue
            ip = pkt[14:]
        elif linktype == 113:  # Linux cooked
            ip = pkt[16:]
        else:
            ip = pkt[4:]  # BSD loopback
        if not ip or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 0xF) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        off = (tcp[12] >> 4) * 4
        yield sport, dport, seq, tcp[13], tcp[off:]


def streams(path, port):
    """Reassembled bytes per connection: {client_port: (to_broker, from_broker)}."""
    segs = {}
    for sport, dport, seq, flags, payload in pcap_packets(path):
        if dport == port:
            key, d = sport, 0
        elif sport == port:
            key, d = dport, 1
        else:
            continue
        s = segs.setdefault(key, ({}, {}))
        if payload:
            s[d].setdefault(seq, payload)
    out = {}
    for key, dirs in segs.items():
        parts = []
        for d in dirs:
            buf, nxt = bytearray(), None
            for seq in sorted(d):
                p = d[seq]
                if nxt is not None and seq < nxt:
                    p = p[nxt - seq:]
                buf += p
                nxt = seq + len(d[seq]) if nxt is None else max(nxt, seq + len(d[seq]))
            parts.append(bytes(buf))
        out[key] = tuple(parts)
    return out


def frames(buf):
    pos = 0
    while pos + 4 <= len(buf):
        n = struct.unpack(">i", buf[pos:pos + 4])[0]
        if n < 0 or pos + 4 + n > len(buf):
            return
        yield buf[pos:pos + 4 + n]
        pos += 4 + n


def extract(pcap, outdir, port=9092):
    counts, kept = {}, 0
    for _, (req, resp) in sorted(streams(pcap, port).items()):
        pending = {}
        for f in frames(req):
            key, ver, corr, cid_len = struct.unpack(">hhih", f[4:14])
            cid = f[14:14 + cid_len].decode(errors="replace") if cid_len > 0 else ""
            if not cid.startswith("golden-") or key not in API:
                continue
            pending[corr] = (key, ver)
            save(outdir, counts, f, key, "request", ver)
        for f in frames(resp):
            corr = struct.unpack(">i", f[4:8])[0]
            if corr in pending:
                key, ver = pending.pop(corr)
                kept += save(outdir, counts, f, key, "response", ver)
    print(f"kept {sum(counts.values())} frames:", file=sys.stderr)
    for k in sorted(counts):
        print(f"  {k[0]}_{k[1]}_v{k[2]}: {counts[k]}", file=sys.stderr)
    missing = [n for n in API.values() if not any(k[0] == n for k in counts)]
    if missing:
        sys.exit(f"no frames captured for {missing}")


def save(outdir, counts, frame, key, kind, ver):
    k = (API[key], kind, ver)
    if counts.get(k, 0) >= PER_KIND or len(frame) > MAX_FRAME:
        return 0
    # Keep Fetch responses that carry records over empty long-polls.
    if key == 1 and kind == "response" and len(frame) < 200 and counts.get(k, 0) >= 1:
        return 0
    name = f"{k[0]}_{kind}_v{ver}_{counts.get(k, 0):03}.bin"
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(frame)
    counts[k] = counts.get(k, 0) + 1
    return 1


if __name__ == "__main__":
    cmd, a, b = sys.argv[1:4]
    workload(a, b) if cmd == "workload" else extract(a, b)
