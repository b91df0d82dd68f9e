#!/usr/bin/env python3
"""A small Confluent-compatible Schema Registry for evt's tests (Python 3 stdlib only).

No registry server is packaged for Debian or on PyPI, so the tests run this one. It answers
what evt and confluent-kafka's SchemaRegistryClient and serializers ask, as Confluent's
registry answers it (content type application/vnd.schemaregistry.v1+json):

  POST /subjects/{s}/versions      register: {"id"}; the same schema (type and text) under
                                   any subject gets the same id; ids start at 1
  POST /subjects/{s}               look up: {subject, version, id, schema, schemaType?};
                                   40401 without the subject, 40403 without the schema
  GET  /schemas/ids/{id}           {"schema", "schemaType"?}; 40403
  GET  /schemas/ids/{id}/subjects  the subjects that hold it
  GET  /schemas/ids/{id}/versions  [{subject, version}]
  GET  /schemas/types              ["AVRO", "JSON", "PROTOBUF"]
  GET  /subjects                   the subjects, sorted
  GET  /subjects/{s}/versions      [1, 2, …]; 40401
  GET  /subjects/{s}/versions/{n|latest}  {subject, version, id, schema, schemaType?};
                                   40401, 40402 (no such version), 42202 (not a version)
  GET  /config, /config/{s}        {"compatibilityLevel": "BACKWARD"}

schemaType is left out for AVRO, as Confluent does; schema texts are stored as given
(Confluent normalises nothing unless asked). Errors are {"error_code", "message"} with the
matching HTTP status. Query strings are accepted and ignored.

For the tests themselves (never behind authentication):
  GET  /_stats                     {"requests": N, "connections": N, "paths": {"GET /x": N}}:
                                   what was asked (query strings left out), and over how
                                   many TCP connections, not counting /_stats or /_fail
  POST /_fail                      {"status": 503, "count": N}: the next N requests get that
                                   status with error_code status*100+1 (50301)

Options: --user U --password P (basic auth; 401 otherwise), --tls-cert/--tls-key (https),
--client-ca CA (https that wants a client certificate signed by CA), --port-file PATH
(written once listening on 127.0.0.1, else `PORT\\n` on stdout). The registry exits when
its parent process does, so a crashed test run leaves nothing behind.
"""

import argparse
import base64
import http.server
import json
import os
import re
import ssl
import sys
import threading
import time
from urllib.parse import unquote

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class Registry:
    """Schemas by id, and each subject's versions (ids), under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.schemas = []  # index id-1 → (schemaType, text)
        self.ids = {}  # (schemaType, text) → id
        self.subjects = {}  # subject → [id, …], version n at index n-1
        self.requests = 0
        self.connections = 0
        self.paths = {}
        self.failures = (0, 0)  # (status, how many requests still to fail)

    def register(self, subject, schema_type, text):
        with self.lock:
            key = (schema_type, text)
            schema_id = self.ids.get(key)
            if schema_id is None:
                self.schemas.append(key)
                schema_id = len(self.schemas)
                self.ids[key] = schema_id
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id

    def schema(self, schema_id):
        with self.lock:
            if 1 <= schema_id <= len(self.schemas):
                return self.schemas[schema_id - 1]
            return None


class RegistryError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found_subject(subject):
    return RegistryError(404, 40401, "Subject '%s' not found." % subject)


def schema_body(schema_type, text):
    body = {"schema": text}
    if schema_type != "AVRO":
        body["schemaType"] = schema_type
    return body


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client may send every request over one connection
    registry = None  # set by main
    credentials = None  # (user, password) or None

    def setup(self):
        super().setup()
        with self.registry.lock:
            self.registry.connections += 1
        if isinstance(self.connection, ssl.SSLSocket):
            # The handshake runs here, on this connection's thread, not in the accept loop.
            self.connection.settimeout(30)
            self.connection.do_handshake()
            self.connection.settimeout(None)

    def handle(self):
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            pass  # a client that failed its handshake or hung up: its own business

    def log_message(self, format, *args):
        pass  # quiet: the tests read /_stats, not a log

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        path = self.path.split("?", 1)[0]
        body = self.read_body()
        if path == "/_stats":
            with self.registry.lock:
                stats = {"requests": self.registry.requests, "connections": self.registry.connections,
                         "paths": dict(self.registry.paths)}
            return self.answer(200, stats)
        if path == "/_fail" and method == "POST":
            request = json.loads(body or b"{}")
            with self.registry.lock:
                self.registry.failures = (int(request.get("status", 503)), int(request.get("count", 1)))
            return self.answer(200, {})
        with self.registry.lock:
            self.registry.requests += 1
            key = method + " " + path
            self.registry.paths[key] = self.registry.paths.get(key, 0) + 1
            status, remaining = self.registry.failures
            if remaining > 0:
                self.registry.failures = (status, remaining - 1)
        if remaining > 0:
            return self.answer(status, {"error_code": status * 100 + 1, "message": "Injected failure %d" % status})
        if not self.authorized():
            return self.answer(401, {"error_code": 401, "message": "Unauthorized"},
                               {"WWW-Authenticate": 'Basic realm="SchemaRegistry"'})
        try:
            self.answer(200, self.route(method, path, body))
        except RegistryError as error:
            self.answer(error.status, {"error_code": error.code, "message": error.message})

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def authorized(self):
        if self.credentials is None:
            return True
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except ValueError:
            return False
        return (user, password) == self.credentials

    def answer(self, status, value, headers=None):
        data = json.dumps(value).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        for name, header in (headers or {}).items():
            self.send_header(name, header)
        self.end_headers()
        self.wfile.write(data)

    def route(self, method, path, body):
        registry = self.registry
        parts = [unquote(part) for part in path.strip("/").split("/")]
        if method == "GET" and parts[0] == "config" and len(parts) <= 2:
            return {"compatibilityLevel": "BACKWARD"}
        if method == "GET" and parts == ["schemas", "types"]:
            return ["AVRO", "JSON", "PROTOBUF"]
        if method == "GET" and parts == ["subjects"]:
            with registry.lock:
                return sorted(registry.subjects)
        if method == "GET" and len(parts) >= 3 and parts[:2] == ["schemas", "ids"]:
            schema_id = parse_int(parts[2])
            found = registry.schema(schema_id) if schema_id is not None else None
            if found is None:
                raise RegistryError(404, 40403, "Schema %s not found" % parts[2])
            if len(parts) == 3:
                return schema_body(*found)
            with registry.lock:
                holders = [(s, v.index(schema_id) + 1) for s, v in sorted(registry.subjects.items()) if schema_id in v]
            if parts[3:] == ["subjects"]:
                return [s for s, _ in holders]
            if parts[3:] == ["versions"]:
                return [{"subject": s, "version": v} for s, v in holders]
        if len(parts) >= 2 and parts[0] == "subjects":
            subject = parts[1]
            if method == "POST" and len(parts) == 3 and parts[2] == "versions":
                schema_type, text = parse_schema(body)
                return {"id": registry.register(subject, schema_type, text)}
            if method == "POST" and len(parts) == 2:
                schema_type, text = parse_schema(body)
                with registry.lock:
                    versions = registry.subjects.get(subject)
                    schema_id = registry.ids.get((schema_type, text))
                if versions is None:
                    raise not_found_subject(subject)
                if schema_id is None or schema_id not in versions:
                    raise RegistryError(404, 40403, "Schema not found")
                return dict(subject=subject, version=versions.index(schema_id) + 1, id=schema_id,
                            **schema_body(schema_type, text))
            if method == "GET" and len(parts) >= 3 and parts[2] == "versions":
                with registry.lock:
                    versions = list(registry.subjects.get(subject) or [])
                if not versions:
                    raise not_found_subject(subject)
                if len(parts) == 3:
                    return list(range(1, len(versions) + 1))
                if len(parts) == 4:
                    wanted = parts[3]
                    version = len(versions) if wanted in ("latest", "-1") else parse_int(wanted)
                    if version is None or version < 1:
                        raise RegistryError(422, 42202, "The specified version '%s' is not a valid version id. "
                                            "Allowed values are between [1, 2^31-1] and the string \"latest\"" % wanted)
                    if version > len(versions):
                        raise RegistryError(404, 40402, "Version %d not found." % version)
                    schema_id = versions[version - 1]
                    return dict(subject=subject, version=version, id=schema_id, **schema_body(*registry.schema(schema_id)))
        raise RegistryError(404, 404, "HTTP 404 Not Found")


def parse_int(text):
    return int(text) if re.fullmatch(r"-?[0-9]{1,10}", text) else None


def parse_schema(body):
    """(schemaType, text) of a register or look-up body; 42201 if it holds no usable schema."""
    try:
        request = json.loads(body)
        text = request["schema"]
        schema_type = request.get("schemaType") or "AVRO"
        if not isinstance(text, str) or schema_type not in ("AVRO", "JSON", "PROTOBUF"):
            raise ValueError("bad request")
        if schema_type != "PROTOBUF":
            json.loads(text)
    except (ValueError, KeyError, TypeError) as error:
        raise RegistryError(422, 42201, "Either the input schema or one of its references is invalid: %s" % error)
    return schema_type, text


def exit_with_parent():
    """Ends this process once the process that started it has gone."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description="A Confluent-compatible Schema Registry for tests.")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--client-ca")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    options = parser.parse_args()
    if (options.user is None) != (options.password is None):
        parser.error("--user and --password go together")
    if (options.tls_cert is None) != (options.tls_key is None) or (options.client_ca and not options.tls_cert):
        parser.error("--tls-cert and --tls-key go together, and --client-ca needs them")

    Handler.registry = Registry()
    Handler.credentials = (options.user, options.password) if options.user is not None else None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    server.daemon_threads = True
    if options.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(options.tls_cert, options.tls_key)
        if options.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(options.client_ca)
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    port = server.server_address[1]
    if options.port_file:
        with open(options.port_file + ".new", "w") as file:
            file.write("%d\n" % port)
        os.rename(options.port_file + ".new", options.port_file)
    else:
        sys.stdout.write("%d\n" % port)
        sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
