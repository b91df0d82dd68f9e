#!/usr/bin/env python3
"""A SASL front for librdkafka's mock cluster, for evt's Kafka security tests.

The 2.0.2 mock has no SASL listener. This front listens on 127.0.0.1:PORT (plain TCP for
sasl_plaintext, TLS for sasl_ssl), answers SaslHandshake (API key 17, v1) and
SaslAuthenticate (key 36, v0/v1) itself for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (the
server side of RFC 5802 / RFC 7677), adds those two keys to the ApiVersions answers it
forwards, and once a client has authenticated forwards everything byte for byte to the
mock through a Unix socket. Wrong credentials are refused as a Kafka broker refuses them:
SaslAuthenticate error 58 (SASL_AUTHENTICATION_FAILED) with a message, then the connection
is closed. Any other request before authentication also closes the connection, as a broker
with a SASL listener does.

Python 3 standard library only. Each accepted connection gets its own upstream connection.
With --log FILE, one line per authentication attempt ("ok USER MECHANISM" or
"refused USER MECHANISM"), so a test can tell that the SASL path was really taken.
"""

import argparse
import base64
import hashlib
import hmac
import os
import select
import socket
import ssl
import struct
import sys
import threading

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58
# Only versions implemented here: SaslHandshake v0 (the SASL tokens follow as bare frames,
# without Kafka headers) and v1 (they come in SaslAuthenticate requests), SaslAuthenticate
# v0/v1 (v2 is a flexible version). librdkafka wants v0 listed to know the handshake at all.
ADDED_APIS = {SASL_HANDSHAKE: (0, 1), SASL_AUTHENTICATE: (0, 1)}
SCRAM_HASHES = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}
SCRAM_ITERATIONS = 4096

log_lock = threading.Lock()


def log(path, line):
    if not path:
        return
    with log_lock, open(path, "a") as f:
        f.write(line + "\n")


class Closed(Exception):
    pass


def read_exact(sock, size):
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise Closed()
        data += chunk
    return bytes(data)


def read_frame(sock):
    (size,) = struct.unpack(">i", read_exact(sock, 4))
    if size < 0 or size > 100 * 1024 * 1024:
        raise Closed()
    return read_exact(sock, size)


def write_frame(sock, payload):
    sock.sendall(struct.pack(">i", len(payload)) + payload)


class Reader:
    def __init__(self, data, offset=0):
        self.data, self.offset = data, offset

    def take(self, fmt):
        values = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string(self):
        size = self.take(">h")
        if size < 0:
            return None
        value = self.data[self.offset:self.offset + size].decode()
        self.offset += size
        return value

    def bytes_(self):
        size = self.take(">i")
        if size < 0:
            return None
        value = self.data[self.offset:self.offset + size]
        self.offset += size
        return value

    def uvarint(self):
        shift = value = 0
        while True:
            byte = self.data[self.offset]
            self.offset += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7


def uvarint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def kafka_string(text):
    if text is None:
        return struct.pack(">h", -1)
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def kafka_bytes(data):
    return struct.pack(">i", len(data)) + data


def parse_request(frame):
    """(api_key, api_version, correlation_id, reader at the body) of a request frame.
    The body offset is right for the non-flexible versions this front answers itself."""
    reader = Reader(frame)
    api_key, api_version, correlation_id = reader.take(">hhi")
    reader.string()  # client_id
    return api_key, api_version, correlation_id, reader


def with_sasl_apis(response, version):
    """The mock's ApiVersions response with SaslHandshake and SaslAuthenticate added. An
    error answer (the mock answers v3 with UNSUPPORTED_VERSION in a layout of its own, and
    the client retries lower) is passed through untouched."""
    correlation_id = response[:4]
    reader = Reader(response, 4)
    error = reader.take(">h")
    if error != 0:
        return response
    apis = {}
    if version >= 3:
        count = reader.uvarint() - 1
        for _ in range(count):
            key, low, high = reader.take(">hhh")
            for _ in range(reader.uvarint()):  # per-entry tagged fields: dropped
                reader.uvarint()
                reader.offset += reader.uvarint()
            apis[key] = (low, high)
    else:
        for _ in range(reader.take(">i")):
            key, low, high = reader.take(">hhh")
            apis[key] = (low, high)
    rest = response[reader.offset:]  # throttle_time_ms (v1+), tagged fields (v3)
    apis.update(ADDED_APIS)
    body = struct.pack(">h", 0)
    if version >= 3:
        body += uvarint(len(apis) + 1)
        body += b"".join(struct.pack(">hhh", k, lo, hi) + b"\x00" for k, (lo, hi) in sorted(apis.items()))
    else:
        body += struct.pack(">i", len(apis))
        body += b"".join(struct.pack(">hhh", k, lo, hi) for k, (lo, hi) in sorted(apis.items()))
    return correlation_id + body + rest


def scram_unescape(name):
    return name.replace("=2C", ",").replace("=3D", "=")


class Scram:
    """The server side of one SCRAM exchange (RFC 5802) for a user of `users`."""

    def __init__(self, mechanism, users):
        self.hash = SCRAM_HASHES[mechanism]
        self.mechanism = mechanism
        self.users = users
        self.user = None
        self.step = 0

    def hmac(self, key, message):
        return hmac.new(key, message, self.hash).digest()

    def next(self, token):
        """(server token, None) to go on, or (final token or None, True/False) when done."""
        text = token.decode()
        if self.step == 0:
            self.step = 1
            # gs2-header "n,," (or "n,a=authzid,"), then the client-first-message-bare.
            parts = text.split(",", 2)
            self.client_first_bare = parts[2]
            fields = dict(item.split("=", 1) for item in self.client_first_bare.split(","))
            self.user = scram_unescape(fields.get("n", ""))
            self.nonce = fields["r"] + base64.b64encode(os.urandom(18)).decode()
            self.salt = os.urandom(16)
            self.server_first = "r=%s,s=%s,i=%d" % (self.nonce, base64.b64encode(self.salt).decode(), SCRAM_ITERATIONS)
            return self.server_first.encode(), None
        fields = dict(item.split("=", 1) for item in text.split(","))
        without_proof = text[:text.rindex(",p=")]
        password = self.users.get(self.user)
        # A Kafka broker (ScramSaslServer) checks only that the client's nonce ends with the
        # server's: librdkafka 2.0.2 sends its own nonce in front of the server's, which
        # already starts with it (RFC 5802 wants them equal).
        if password is None or not fields.get("r", "").endswith(self.nonce):
            return None, False
        salted = hashlib.pbkdf2_hmac(self.hash().name, password.encode(), self.salt, SCRAM_ITERATIONS)
        client_key = self.hmac(salted, b"Client Key")
        stored_key = self.hash(client_key).digest()
        auth_message = ",".join([self.client_first_bare, self.server_first, without_proof]).encode()
        signature = self.hmac(stored_key, auth_message)
        proof = base64.b64decode(fields["p"])
        recovered = bytes(a ^ b for a, b in zip(proof, signature))
        if len(proof) != len(signature) or not hmac.compare_digest(self.hash(recovered).digest(), stored_key):
            return None, False
        server_signature = self.hmac(self.hmac(salted, b"Server Key"), auth_message)
        return ("v=" + base64.b64encode(server_signature).decode()).encode(), True


class Mechanism:
    """One authentication with the mechanism the client asked for; `next` takes each client
    token and returns (server token, None) to go on, or (final token, True) / (None, False)."""

    def __init__(self, name, options):
        self.name, self.options = name, options
        self.scram = Scram(name, options.users) if name in SCRAM_HASHES else None
        if self.scram:
            self.refusal = "Authentication failed during authentication due to invalid credentials with SASL mechanism " + name
        else:
            self.refusal = "Authentication failed: Invalid username or password"

    def next(self, token):
        if self.scram:
            reply, ok = self.scram.next(token)
            user = self.scram.user
        else:
            # PLAIN: authzid NUL authcid NUL password.
            parts = token.split(b"\x00")
            user, password = (parts[1].decode(), parts[2].decode()) if len(parts) == 3 else ("", None)
            reply, ok = b"", password is not None and self.options.users.get(user) == password
        if ok is not None:
            log(self.options.log, "%s %s %s" % ("ok" if ok else "refused", user, self.name))
        return reply, ok


def authenticate_response(version, correlation_id, error, message, token):
    body = struct.pack(">h", error) + kafka_string(message) + kafka_bytes(token)
    if version >= 1:
        body += struct.pack(">q", 0)  # session_lifetime_ms: no re-authentication
    return struct.pack(">i", correlation_id) + body


def pump(client, upstream):
    """Forwards bytes both ways until one side closes. One thread for both directions: an
    SSL socket must not be read and written from two threads at once."""
    peer = {client: upstream, upstream: client}
    while True:
        # Bytes OpenSSL has decrypted already do not make the raw socket readable.
        ready = [client] if isinstance(client, ssl.SSLSocket) and client.pending() else []
        if not ready:
            ready, _, _ = select.select([client, upstream], [], [])
        for sock in ready:
            try:
                data = sock.recv(65536)
            except ssl.SSLWantReadError:
                continue
            if not data:
                return
            peer[sock].sendall(data)


def serve(client, options):
    upstream = None
    try:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(options.upstream_unix)
        mechanism = None
        while True:
            frame = read_frame(client)
            api_key, api_version, correlation_id, body = parse_request(frame)
            if api_key == API_VERSIONS:
                write_frame(upstream, frame)
                write_frame(client, with_sasl_apis(read_frame(upstream), api_version))
            elif api_key == SASL_HANDSHAKE and api_version in (0, 1):
                requested = body.string()
                enabled = options.mechanisms
                error = 0 if requested in enabled else UNSUPPORTED_SASL_MECHANISM
                answer = struct.pack(">ih", correlation_id, error) + struct.pack(">i", len(enabled))
                answer += b"".join(kafka_string(name) for name in enabled)
                write_frame(client, answer)
                if error == 0:
                    mechanism = Mechanism(requested, options)
                    if api_version == 0:
                        # v0: bare tokens both ways; a refusal closes the connection.
                        while True:
                            reply, ok = mechanism.next(read_frame(client))
                            if ok is False:
                                return
                            write_frame(client, reply or b"")
                            if ok:
                                break
                        break
            elif api_key == SASL_AUTHENTICATE and api_version in (0, 1) and mechanism:
                reply, ok = mechanism.next(body.bytes_() or b"")
                if ok is None:
                    write_frame(client, authenticate_response(api_version, correlation_id, 0, None, reply))
                    continue
                if not ok:
                    write_frame(client, authenticate_response(api_version, correlation_id,
                                                              SASL_AUTHENTICATION_FAILED, mechanism.refusal, b""))
                    return
                write_frame(client, authenticate_response(api_version, correlation_id, 0, None, reply or b""))
                break
            else:
                # Not authenticated yet: a SASL listener takes nothing else.
                log(options.log, "unexpected request %d v%d before authentication" % (api_key, api_version))
                return
        pump(client, upstream)
    except (Closed, OSError, ValueError, KeyError, IndexError, UnicodeDecodeError, struct.error):
        pass
    finally:
        for sock in (client, upstream):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True, help="listen on 127.0.0.1:PORT")
    parser.add_argument("--upstream-unix", required=True, help="the Unix socket that reaches the mock")
    parser.add_argument("--user", action="append", default=[], help="NAME:PASSWORD (repeatable)")
    parser.add_argument("--mechanism", action="append", default=[],
                        help="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable; default all three)")
    parser.add_argument("--cert", help="TLS certificate (PEM): the front speaks sasl_ssl")
    parser.add_argument("--key", help="TLS private key (PEM)")
    parser.add_argument("--log", help="append one line per authentication attempt")
    options = parser.parse_args()
    options.users = dict(entry.split(":", 1) for entry in options.user)
    options.mechanisms = options.mechanism or ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    context = None
    if options.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(options.cert, options.key)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", options.port))
    listener.listen(64)
    while True:
        client, _ = listener.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def start(client=client):
            if context:
                try:
                    client.settimeout(10)
                    client = context.wrap_socket(client, server_side=True)
                    client.settimeout(None)
                except (OSError, ssl.SSLError):
                    client.close()
                    return
            serve(client, options)

        threading.Thread(target=start, daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
