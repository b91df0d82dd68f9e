#!/usr/bin/env python3
"""The confluent-kafka side of evt's schema tests: makes and reads every schema payload with
confluent-kafka's own serializers (AvroSerializer/AvroDeserializer, JSONSerializer/
JSONDeserializer) against a registry, so that no payload is made or read only by evt.

  produce-avro BROKERS TOPIC REGISTRY COUNT [--first N]
      COUNT rich Order records (framed string keys "k<i>"), deterministic. Prints the
      Avro JSON encoding of each (fastavro's json_writer, as kafka-avro-console-consumer
      prints it) as NDJSON {"key":…,"value":…}.
  consume-avro BROKERS TOPIC REGISTRY COUNT
      Reads every record (at least COUNT) from the beginning with AvroDeserializer; prints
      each as above.
  produce-json / consume-json: the same with JSON Schema (the Order as plain JSON).
  dump BROKERS TOPIC COUNT
      The raw bytes of every record (at least COUNT) from the beginning, as NDJSON {"key":HEX,"value":HEX}.
  produce-raw BROKERS TOPIC HEX…: one record per HEX value, unframed bytes as they are.
Every record of a topic is read from partition 0's beginning (the tests make 1-partition
topics).
"""
import io
import json
import sys
from datetime import date, datetime, timezone
from decimal import Decimal

import fastavro
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer

ORDER = {
    "type": "record", "name": "Order", "namespace": "com.acme",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": ["null", {
            "type": "record", "name": "Customer", "fields": [
                {"name": "name", "type": "string"},
                {"name": "tier", "type": {"type": "enum", "name": "Tier", "symbols": ["FREE", "GOLD"]}},
            ]}], "default": None},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
        {"name": "items", "type": {"type": "array", "items": {
            "type": "record", "name": "Item", "fields": [
                {"name": "sku", "type": "string"},
                {"name": "qty", "type": "int"},
                {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
            ]}}},
        {"name": "attributes", "type": {"type": "map", "values": "string"}},
        {"name": "checksum", "type": {"type": "fixed", "name": "Checksum", "size": 4}},
        {"name": "blob", "type": "bytes"},
        {"name": "created", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "ratio", "type": "double"},
        {"name": "score", "type": "float"},
        {"name": "flag", "type": "boolean"},
    ],
}
ORDER_JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Order", "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "item": {"type": "string"},
        "qty": {"type": "integer", "minimum": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["id", "item", "qty"],
}
PARSED = fastavro.parse_schema(json.loads(json.dumps(ORDER)))


def order(i):
    """A rich Order, different in every field from record to record (Python values, as
    AvroDeserializer returns them)."""
    return {
        "id": i,
        "customer": None if i % 3 == 0 else {"name": "cust-%d \u00e9" % i, "tier": "GOLD" if i % 2 else "FREE"},
        "note": None if i % 2 else "note %d" % i,
        "status": ["NEW", "PAID", "SHIPPED"][i % 3],
        "items": [{"sku": "sku-%d-%d" % (i, j), "qty": j + 1, "price": Decimal("%d.%02d" % (i + j, j * 7 % 100))}
                  for j in range(i % 4)],
        "attributes": {"a%d" % j: "v%d" % (i * j) for j in range(i % 3)},
        "checksum": bytes([i % 256, 0, 255, (i * 7) % 256]),
        "blob": bytes(range(i % 5)) + b"\xff",
        "created": datetime.fromtimestamp((1_700_000_000_000 + i * 1000) / 1000, tz=timezone.utc),
        "day": date(2026, 1 + i % 12, 1 + i % 28),
        "ratio": i / 4,
        "score": (i % 8) * 0.5,
        "flag": i % 2 == 0,
    }


def avro_json(value):
    """The Avro JSON encoding of an Order, as fastavro's json_writer writes it."""
    out = io.StringIO()
    fastavro.json_writer(out, PARSED, [value])
    return json.loads(out.getvalue())


def registry(url):
    return SchemaRegistryClient({"url": url})


def read(brokers, topic, count, key_deserializer=None, value_deserializer=None):
    """Every record of partition 0, up to its end (at least `count`): a producer's retry may
    have written one twice on the mock cluster, and a reader must see the same as evt."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "schema-peer", "enable.auto.commit": False})
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    count = max(count, high)
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    while len(got) < count:
        message = consumer.poll(30)
        if message is None:
            sys.exit("schema peer: only %d of %d records arrived" % (len(got), count))
        if message.error():
            sys.exit("schema peer: %s" % message.error())
        key_context = SerializationContext(topic, MessageField.KEY, message.headers())
        value_context = SerializationContext(topic, MessageField.VALUE, message.headers())
        key = message.key() if key_deserializer is None else key_deserializer(message.key(), key_context)
        value = message.value() if value_deserializer is None else value_deserializer(message.value(), value_context)
        got.append((key, value))
    consumer.close()
    return got


def main():
    command, brokers, topic = sys.argv[1], sys.argv[2], sys.argv[3]
    if command == "dump":
        for key, value in read(brokers, topic, int(sys.argv[4])):
            print(json.dumps({"key": key.hex() if key is not None else None,
                              "value": value.hex() if value is not None else None}))
        return
    if command == "produce-raw":
        producer = Producer({"bootstrap.servers": brokers})
        for text in sys.argv[4:]:
            producer.produce(topic, value=bytes.fromhex(text), partition=0)
        if producer.flush(30) != 0:
            sys.exit("schema peer: not every record was delivered")
        return
    client = registry(sys.argv[4])
    count = int(sys.argv[5])
    first = int(sys.argv[7]) if len(sys.argv) > 7 and sys.argv[6] == "--first" else 0
    if command in ("produce-avro", "produce-json"):
        if command == "produce-avro":
            serializer = AvroSerializer(client, json.dumps(ORDER))
            key_serializer = AvroSerializer(client, json.dumps("string"))
            values = [order(i) for i in range(first, first + count)]
        else:
            serializer = JSONSerializer(json.dumps(ORDER_JSON_SCHEMA), client)
            key_serializer = StringSerializer()
            values = [{"id": i, "item": "item-%d" % i, "qty": 1 + i % 5, "tags": ["t%d" % j for j in range(i % 3)]}
                      for i in range(first, first + count)]
        producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True})
        for i, value in enumerate(values, start=first):
            key = "k%d" % i
            producer.produce(topic, partition=0,
                             key=key_serializer(key, SerializationContext(topic, MessageField.KEY)),
                             value=serializer(value, SerializationContext(topic, MessageField.VALUE)))
            print(json.dumps({"key": key, "value": avro_json(value) if command == "produce-avro" else value}))
        if producer.flush(30) != 0:
            sys.exit("schema peer: not every record was delivered")
        return
    if command == "consume-avro":
        records = read(brokers, topic, count, AvroDeserializer(client), AvroDeserializer(client))
        for key, value in records:
            print(json.dumps({"key": key, "value": avro_json(value)}))
        return
    if command == "consume-json":
        records = read(brokers, topic, count, None, JSONDeserializer(None, schema_registry_client=client))
        for key, value in records:
            print(json.dumps({"key": key.decode() if key is not None else None, "value": value}))
        return
    sys.exit("schema peer: unknown command %s" % command)


if __name__ == "__main__":
    main()
