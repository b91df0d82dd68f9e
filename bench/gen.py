"""Writes the benchmark data once: Kafka lines (~200 B JSON), stream lines (8 fields), the
same stream entries as RESP XADD commands for redis-cli --pipe, and envelopes of such entries
spread over 64 streams (bench:0 .. bench:63) for `evt publish 'stream:*' --envelope`."""
import json, random, sys

work, lines, stream_lines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(7)
words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]

with open(f"{work}/kafka.ndjson", "w") as out:
    for i in range(lines):
        record = {"id": i, "user": {"id": i % 1000, "name": random.choice(words)},
                  "type": "order.created", "amount": round(random.random() * 1000, 2),
                  "items": [random.choice(words) for _ in range(3)], "note": "x" * 60}
        out.write(json.dumps(record, separators=(",", ":")) + "\n")

def resp(args):
    parts = [f"*{len(args)}\r\n"]
    for a in args:
        b = a.encode()
        parts.append(f"${len(b)}\r\n{a}\r\n")
    return "".join(parts)

with open(f"{work}/stream.ndjson", "w") as nd, open(f"{work}/stream.resp", "w", newline="") as rp:
    for i in range(stream_lines):
        fields = {f"f{k}": f"{random.choice(words)}-{i}-{k}" for k in range(8)}
        nd.write(json.dumps(fields, separators=(",", ":")) + "\n")
        args = ["XADD", "pub-cli", "*"]
        for k, v in fields.items():
            args += [k, v]
        rp.write(resp(args))

# Pub/sub: the same small JSON messages as PUBLISH commands, plus one last message so a
# `redis-cli SUBSCRIBE | head` subscriber writes once more after head exits, and ends.
channel_messages = stream_lines
with open(f"{work}/channel.resp", "w", newline="") as rp:
    for i in range(channel_messages + 1):
        rp.write(resp(["PUBLISH", "bench", json.dumps({"n": i, "type": "tick", "price": i % 997 + 0.25},
                                                      separators=(",", ":"))]))

# Envelopes naming their stream, line i to bench:(i % 64), each value 8 fields as above (its own
# random sequence, so the files above stay as they were).
spread = random.Random(64)
with open(f"{work}/streams64.ndjson", "w") as nd:
    for i in range(stream_lines):
        fields = {f"f{k}": f"{spread.choice(words)}-{i}-{k}" for k in range(8)}
        nd.write(json.dumps({"stream": f"bench:{i % 64}", "value": fields}, separators=(",", ":")) + "\n")
