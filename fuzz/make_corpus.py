#!/usr/bin/env python3
"""Writes the seed corpus for the `proxy_header` fuzz target.

The files are committed; this script exists so they can be reproduced and reviewed. It uses
only the standard library. Run it from anywhere:

    python3 fuzz/make_corpus.py

It overwrites its own files and leaves any others alone (inputs a fuzzing run found and that
were committed as regressions). The `proxy-core` unit test `proxy_protocol::corpus_tests` reads
the same directory.
"""

import ipaddress
import pathlib
import struct

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus" / "proxy_header"

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_PROXY = 0x21  # version 2, command PROXY
V2_LOCAL = 0x20  # version 2, command LOCAL
V2_TCP4 = 0x11  # AF_INET, STREAM
V2_TCP6 = 0x21  # AF_INET6, STREAM
V2_UNSPEC = 0x00  # AF_UNSPEC, UNSPEC

TLV_ALPN = 0x01
TLV_AUTHORITY = 0x02
TLV_UNIQUE_ID = 0x05
TLV_SSL = 0x20
TLV_AWS = 0xEA
TLV_AZURE = 0xEE

# The first bytes of a TLS 1.2/1.3 ClientHello record: handshake, TLS 1.0 record version,
# length, ClientHello, length, client version, the start of the random.
CLIENT_HELLO_PREFIX = bytes.fromhex("160301 00c8 01 0000c4 0303") + bytes(range(32))


def tlv(kind, value):
    return struct.pack("!BH", kind, len(value)) + value


def v2(command, family, addresses, tlvs=b""):
    body = addresses + tlvs
    return V2_SIGNATURE + struct.pack("!BBH", command, family, len(body)) + body


def v2_ipv4(src, dst, sport, dport):
    return (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!HH", sport, dport)
    )


def v2_ipv6(src, dst, sport, dport):
    return (
        ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + struct.pack("!HH", sport, dport)
    )


# Every TLV the proxy has a typed accessor for.
ALL_TLVS = b"".join(
    [
        tlv(TLV_AUTHORITY, b"kafka.example.com"),
        tlv(TLV_ALPN, b"h2"),
        tlv(TLV_UNIQUE_ID, b"conn-42"),
        # PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN, verify = 0 (verified).
        tlv(TLV_SSL, b"\x03\x00\x00\x00\x00"),
        tlv(TLV_AWS, b"\x01vpce-0123456789abcdef0"),
        # Subtype PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID, a little-endian u32.
        tlv(TLV_AZURE, b"\x01" + struct.pack("<I", 0x12345678)),
    ]
)

V2_IPV4_TLVS = v2(V2_PROXY, V2_TCP4, v2_ipv4("192.0.2.7", "198.51.100.1", 40000, 9192), ALL_TLVS)

SEEDS = {
    "v1_tcp4": b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 9192\r\n",
    "v1_tcp6": b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n",
    "v1_unknown": b"PROXY UNKNOWN\r\n",
    "v1_then_payload": b"PROXY TCP4 10.0.0.1 10.0.0.2 51000 9092\r\n"
    + b"\x00\x00\x00\x14\x00\x12\x00\x03\x00\x00\x00\x01\x00\x06client",
    "v2_ipv4_tlvs": V2_IPV4_TLVS,
    "v2_ipv6_tlvs": v2(
        V2_PROXY, V2_TCP6, v2_ipv6("2001:db8::1", "2001:db8::2", 4000, 443), ALL_TLVS
    ),
    "v2_local": v2(V2_LOCAL, V2_UNSPEC, b""),
    "v2_then_client_hello": v2(
        V2_PROXY,
        V2_TCP4,
        v2_ipv4("203.0.113.9", "198.51.100.1", 50123, 9093),
        tlv(TLV_AUTHORITY, b"broker-1.example.com"),
    )
    + CLIENT_HELLO_PREFIX,
    # The fixed part and half the addresses and TLVs: a header cut by a TCP segment.
    "v2_truncated": V2_IPV4_TLVS[:40],
    "garbage": bytes.fromhex("deadbeef00ff7f80") + b"\r\n\x00PROXZ\x01\x02",
    "http_request": b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\n\r\n",
    "tls_record_start": CLIENT_HELLO_PREFIX,
}


def main():
    CORPUS.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        (CORPUS / name).write_bytes(data)
        print(f"{len(data):5} {name}")


if __name__ == "__main__":
    main()
