#!/usr/bin/env python3
"""Checks schema_registry.py with confluent-kafka's own client, a faithful peer.

Registers Avro and JSON schemas, reads them back every way SchemaRegistryClient can, and
round-trips values through AvroSerializer/AvroDeserializer and JSONSerializer/JSONDeserializer
with a topic's SerializationContext. Prints one JSON object of what it found on success
({"avro_id", "json_id", "avro_bytes", "json_bytes"}, bytes in hex); on a failed check, says
which on stderr and exits 1.

Usage: schema_registry_peer.py --url URL [--user-info U:P] [--ca CA] [--cert C --key K]
"""

import argparse
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

AVRO = json.dumps({
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "item", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "qty", "type": "int"},
    ],
})
JSON_SCHEMA = json.dumps({
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"],
})


def check(condition, what):
    if not condition:
        sys.stderr.write("schema registry check failed: %s\n" % what)
        sys.exit(1)


def error_code(call):
    try:
        call()
    except SchemaRegistryError as error:
        return error.error_code
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--user-info")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    options = parser.parse_args()
    conf = {"url": options.url}
    if options.user_info is not None:
        conf["basic.auth.user.info"] = options.user_info
    if options.ca:
        conf["ssl.ca.location"] = options.ca
    if options.cert:
        conf["ssl.certificate.location"] = options.cert
        conf["ssl.key.location"] = options.key
    client = SchemaRegistryClient(conf)

    avro_id = client.register_schema("orders-value", Schema(AVRO, "AVRO"))
    check(avro_id == 1, "the first schema's id is %r, not 1" % avro_id)
    # A second client: nothing comes from the first one's cache.
    other = SchemaRegistryClient(conf)
    check(other.register_schema("archive-value", Schema(AVRO, "AVRO")) == avro_id,
          "the same schema under another subject got another id")
    json_id = other.register_schema("events-value", Schema(JSON_SCHEMA, "JSON"))
    check(json_id == avro_id + 1, "the JSON schema's id is %r" % json_id)

    fetched = other.get_schema(avro_id)
    check(fetched.schema_str == AVRO and fetched.schema_type == "AVRO", "get_schema(avro) gave %r" % fetched)
    fetched = other.get_schema(json_id)
    check(fetched.schema_str == JSON_SCHEMA and fetched.schema_type == "JSON", "get_schema(json) gave %r" % fetched)
    latest = other.get_latest_version("orders-value")
    check((latest.schema_id, latest.version, latest.subject) == (avro_id, 1, "orders-value"),
          "get_latest_version gave %r" % latest)
    check(latest.schema.schema_str == AVRO, "get_latest_version's schema is %r" % latest.schema)
    version = other.get_version("events-value", 1)
    check((version.schema_id, version.schema.schema_type) == (json_id, "JSON"), "get_version gave %r" % version)
    found = other.lookup_schema("archive-value", Schema(AVRO, "AVRO"))
    check((found.schema_id, found.version) == (avro_id, 1), "lookup_schema gave %r" % found)
    check(sorted(other.get_subjects()) == ["archive-value", "events-value", "orders-value"],
          "get_subjects gave %r" % other.get_subjects())
    check(sorted(other.get_subjects_by_schema_id(avro_id)) == ["archive-value", "orders-value"],
          "get_subjects_by_schema_id gave %r" % other.get_subjects_by_schema_id(avro_id))
    check(other.get_versions("orders-value") == [1], "get_versions gave %r" % other.get_versions("orders-value"))

    check(error_code(lambda: other.get_schema(99)) == 40403, "an unknown id is not 40403")
    check(error_code(lambda: other.get_latest_version("nobody-value")) == 40401, "an unknown subject is not 40401")
    check(error_code(lambda: other.get_version("orders-value", 7)) == 40402, "an unknown version is not 40402")
    check(error_code(lambda: other.lookup_schema("orders-value", Schema(JSON_SCHEMA, "JSON"))) == 40403,
          "looking up an absent schema is not 40403")
    check(error_code(lambda: other.lookup_schema("nobody-value", Schema(AVRO, "AVRO"))) == 40401,
          "looking up in an absent subject is not 40401")

    # Serializers, each with a fresh client: what they register and fetch goes over the wire.
    order = {"id": 42, "item": "book", "note": "gift", "qty": 3}
    context = SerializationContext("orders", MessageField.VALUE)
    avro_bytes = AvroSerializer(SchemaRegistryClient(conf), AVRO)(order, context)
    check(avro_bytes[:5] == b"\x00" + avro_id.to_bytes(4, "big"), "Avro framing is %r" % avro_bytes[:5])
    check(AvroDeserializer(SchemaRegistryClient(conf))(avro_bytes, context) == order, "Avro did not round-trip")
    event = {"id": 7}
    context = SerializationContext("events", MessageField.VALUE)
    json_bytes = JSONSerializer(JSON_SCHEMA, SchemaRegistryClient(conf))(event, context)
    check(json_bytes[:5] == b"\x00" + json_id.to_bytes(4, "big"), "JSON framing is %r" % json_bytes[:5])
    check(JSONDeserializer(None, schema_registry_client=SchemaRegistryClient(conf))(json_bytes, context) == event,
          "JSON did not round-trip")

    print(json.dumps({"avro_id": avro_id, "json_id": json_id,
                      "avro_bytes": avro_bytes.hex(), "json_bytes": json_bytes.hex()}))


if __name__ == "__main__":
    main()
