#!/usr/bin/env python3
"""The peer for `evt subscribe STREAM --group G -c N`: the usual redis-py worker loop.

XREADGROUP COUNT 1000, one JSON line per entry on stdout, then one XACK for the batch's
ids, until N entries were handled. redis-py uses the hiredis parser when it is installed.

    xreadgroup.py PORT STREAM GROUP COUNT
"""
import json
import sys

import redis


def main():
    port, stream, group, total = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = redis.Redis(port=port)
    try:
        client.xgroup_create(stream, group, id="0")
    except redis.ResponseError:
        pass
    out = sys.stdout
    handled = 0
    while handled < total:
        reply = client.xreadgroup(group, "py", {stream: ">"}, count=min(1000, total - handled), block=0)
        ids = []
        for _, entries in reply:
            for entry_id, fields in entries:
                out.write(json.dumps({"stream": stream, "id": entry_id.decode(),
                                      "value": {k.decode(): v.decode() for k, v in fields.items()}}))
                out.write("\n")
                ids.append(entry_id)
        out.flush()
        client.xack(stream, group, *ids)
        handled += len(ids)


main()
