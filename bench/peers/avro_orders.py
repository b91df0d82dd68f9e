#!/usr/bin/env python3
"""The Python side of bench/schemas: the rich Order records of evt's schema tests
(Tests/EvtEndToEndTests/Fixtures/schema_peer.py), made and read with confluent-kafka's
AvroSerializer/AvroDeserializer against a registry, the way a Python user would.

  schema                                   the Order schema (.avsc) on stdout
  lines COUNT                              COUNT Orders as natural JSON lines (bare unions;
                                           bytes and fixed as strings of code points 0-255,
                                           logical types as their underlying type)
  produce BROKERS TOPIC REGISTRY COUNT PARTITIONS
                                           COUNT Orders (framed Avro, ~160 B) in PARTITIONS runs
                                           of consecutive ids, one a partition (full batches: the
                                           mock cluster serves a topic of one-record batches at
                                           ~200 k records/s, whoever reads it);
                                           prints the average framed value size in bytes
  consume BROKERS TOPIC REGISTRY PARTITIONS
                                           every record of every partition from the beginning to
                                           its end, each deserialized value as a JSON line
                                           (json.dumps, default=str); the count on stderr
Deterministic: the same COUNT gives the same records.
"""
import json
import os
import sys
from datetime import date, datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../Tests/EvtEndToEndTests/Fixtures"))
from schema_peer import ORDER, order  # noqa: E402


def bench_order(i):
    """The tests' Order i with a longer note and customer name: ~160 B framed, a usual size
    for an event."""
    value = order(i)
    if value["note"] is not None:
        value["note"] += ": leave the parcel at the back door, ring twice, and call if nobody answers"
    if value["customer"] is not None:
        value["customer"]["name"] += " M\u00fcller-L\u00fcdenscheidt GmbH"
    return value


def natural(i):
    """Order i as evt publish takes it: the schema's JSON with bare unions."""
    value = bench_order(i)
    epoch = date(1970, 1, 1)
    latin = lambda b: b.decode("latin-1")  # bytes as code points 0-255
    value["items"] = [dict(item, price=latin(int(item["price"] * 100).to_bytes(4, "big", signed=True)))
                      for item in value["items"]]
    value["checksum"] = latin(value["checksum"])
    value["blob"] = latin(value["blob"])
    value["created"] = int(value["created"].timestamp() * 1000)
    value["day"] = (value["day"] - epoch).days
    return value


def main():
    command = sys.argv[1]
    if command == "schema":
        print(json.dumps(ORDER))
        return
    if command == "lines":
        out = sys.stdout
        for i in range(int(sys.argv[2])):
            out.write(json.dumps(natural(i), ensure_ascii=False) + "\n")
        return
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    brokers, topic, registry = sys.argv[2:5]
    client = SchemaRegistryClient({"url": registry})
    if command == "produce":
        count, partitions = int(sys.argv[5]), int(sys.argv[6])
        serializer = AvroSerializer(client, json.dumps(ORDER))
        context = SerializationContext(topic, MessageField.VALUE)
        producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "linger.ms": 5})
        size = 0
        for i in range(count):
            value = serializer(bench_order(i), context)
            size += len(value)
            while True:
                try:
                    producer.produce(topic, value=value, partition=i * partitions // count)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
        if producer.flush(60) != 0:
            sys.exit("avro_orders: not every record was delivered")
        print(size // max(count, 1))
        return
    if command == "consume":
        partitions = int(sys.argv[5])
        consumer = Consumer({"bootstrap.servers": brokers, "group.id": "bench-avro", "enable.auto.commit": False})
        deserializer = AvroDeserializer(client)
        ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in range(partitions)]
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions) if ends[p] > 0])
        left, read = sum(ends), 0
        out = sys.stdout
        while read < left:
            message = consumer.poll(30)
            if message is None:
                sys.exit("avro_orders: only %d of %d records arrived" % (read, left))
            if message.error():
                sys.exit("avro_orders: %s" % message.error())
            value = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE, message.headers()))
            out.write(json.dumps(value, default=str) + "\n")
            read += 1
        consumer.close()
        print("avro_orders: %d records" % read, file=sys.stderr)
        return
    sys.exit("avro_orders: unknown command %s" % command)


if __name__ == "__main__":
    main()
