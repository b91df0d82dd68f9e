#!/usr/bin/env python3
"""The peer for `evt copy-between STREAM TOPIC --key-field F`, feeding `kcat -P -K TAB`:
redis-py pages through the whole stream with XRANGE COUNT 10000 and writes one line per
entry, the field F's value, a tab, then the JSON object of the entry's fields (as evt tail
prints them). redis-py uses the hiredis parser when it is installed.

    xrange_lines.py PORT STREAM KEY-FIELD
"""
import json
import sys

import redis


def main():
    port, stream, key_field = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
    client = redis.Redis(port=port)
    out = sys.stdout
    start = "-"
    while True:
        entries = client.xrange(stream, min=start, max="+", count=10000)
        if not entries:
            break
        for _, fields in entries:
            out.write(fields.get(key_field, b"").decode())
            out.write("\t")
            out.write(json.dumps({k.decode(): v.decode() for k, v in fields.items()}, separators=(",", ":")))
            out.write("\n")
        start = "(" + entries[-1][0].decode()
    out.flush()


main()
