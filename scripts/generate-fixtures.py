#!/usr/bin/env python3
"""Writes the golden frame fixtures in proto/fixtures/ straight from the byte layout in proto/README.md.

They are produced independently of the Swift code on purpose: the tests decode them with the Swift decoder,
so a change on either side that breaks the documented layout fails a test.
"""
import hashlib
import hmac
import os
import struct

HERE = os.path.join(os.path.dirname(__file__), "..", "proto", "fixtures")

KINDS = {"handshake": 1, "handshake_ack": 2, "call": 3, "reply": 4, "tell": 5, "error_reply": 6, "gossip": 7,
         "handoff": 8, "cancel": 9, "admin_request": 10, "admin_reply": 11}


def frame(kind, body, correlation=0, flags=0, version=1):
    header = struct.pack(">BBHQ", version, KINDS[kind], flags, correlation)
    return struct.pack(">I", len(header) + len(body)) + header + body


def short_string(text):
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def pb_bytes(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data


def pb_varint(field, n):
    return varint(field << 3) + varint(n)


# Binary codec: Counter.Request.increment = {"increment": {}}
def key(text):
    return varint(len(text)) + text.encode()


def keyed(entries):
    body = b"".join(entries)
    return b"\x09" + varint(len(body)) + body


increment = keyed([key("increment") + keyed([])])
# Counter.Reply(count: 1, node: "node-1")
reply = keyed([key("count") + b"\x03" + varint(2), key("node") + b"\x07" + varint(6) + b"node-1"])

call_body = (short_string("counter") + short_string("c1") + short_string("") + short_string("")
             + struct.pack(">QQQ", 5_000_000_000, 0x0102030405060708, 9) + increment)

hello = (pb_varint(1, 1) + pb_bytes(2, b"local") + pb_bytes(4, b"node-1") + pb_varint(5, 3)
         + pb_bytes(6, b"127.0.0.1:7101") + pb_bytes(7, bytes([0xAB] * 32)))
handshake = pb_bytes(1, hello)


# Handshake proof (proto/README.md, "Handshake proof"): HMAC-SHA256 under the cluster secret of a transcript that
# names which side made the proof, the cluster, and both parties (initiator first) with their nonces.
def proof_string(data):
    return struct.pack(">I", len(data)) + data


def party(role, node_id, incarnation, listen_address, nonce):
    return (struct.pack(">B", role) + proof_string(node_id) + struct.pack(">Q", incarnation)
            + proof_string(listen_address) + proof_string(nonce))


def proof(made_by, cluster, initiator, acceptor, secret):
    label = b"plex-handshake-v2 initiator proof" if made_by == "initiator" else b"plex-handshake-v2 acceptor proof"
    transcript = proof_string(label) + proof_string(cluster) + initiator + acceptor
    return hmac.new(secret, transcript, hashlib.sha256).digest()


SECRET = b"fixture-secret-0123456789"
INITIATOR = party(0, b"node-1", 3, b"127.0.0.1:7101", bytes([0xAB] * 32))
ACCEPTOR = party(0, b"node-2", 5, b"127.0.0.1:7102", bytes([0xCD] * 32))
challenge = (pb_varint(1, 1) + pb_bytes(2, b"local") + pb_bytes(3, b"node-2") + pb_varint(4, 5)
             + pb_bytes(5, b"127.0.0.1:7102") + pb_bytes(6, bytes([0xCD] * 32))
             + pb_bytes(7, proof("acceptor", b"local", INITIATOR, ACCEPTOR, SECRET)))
handshake_proof = pb_bytes(2, pb_bytes(1, proof("initiator", b"local", INITIATOR, ACCEPTOR, SECRET)))

fixtures = {
    "call-counter-increment.bin": frame("call", call_body, correlation=42),
    "reply-counter.bin": frame("reply", reply, correlation=42),
    "error-reply-node-unavailable.bin": frame("error_reply", pb_varint(1, 2) + pb_bytes(2, b"node-3 is unreachable"),
                                              correlation=43),
    "gossip.bin": frame("gossip", pb_bytes(1, b"node-1") + pb_varint(2, 3)
                        + pb_bytes(3, pb_bytes(1, b"node-1") + pb_bytes(2, b"127.0.0.1:7101") + pb_varint(3, 3))),
    "handshake-hello.bin": frame("handshake", handshake),
    "handshake-challenge.bin": frame("handshake_ack", pb_bytes(1, challenge)),
    "handshake-proof.bin": frame("handshake", handshake_proof),
    "tell-forwarded-json.bin": frame("tell", call_body[:-len(increment)] + b'{"get":{}}', flags=0b11),
}

os.makedirs(HERE, exist_ok=True)
for name, data in fixtures.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes")
