#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A mixed, bounded DNS workload for memory-checking runs; stdlib only.

  querymix.py SERVER PORT UDP TCP GARBAGE [SEED]

UDP queries (static names, rotated A/AAAA, rotated A with EDNS Client
Subnet options of many prefix lengths, NXDOMAIN, names outside the zone),
TCP connections each carrying a few pipelined queries, and GARBAGE malformed
datagrams (random bytes, cut headers, bad EDNS, bad ECS, compression loops).
Each UDP query waits for its answer (1 s) so that a slow server (Valgrind)
is not flooded. Prints one line; exit 0 when every well-formed query got an
answer with the same ID, 1 otherwise.
"""
import random
import socket
import struct
import sys
import time


def name_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def opt_rr(options=b"", payload=1232, version=0):
    return b"\0" + struct.pack("!HHBBHH", 41, payload, 0, version, 0, len(options)) + options


def ecs_option(family, prefix, addr):
    nbytes = (prefix + 7) // 8
    data = struct.pack("!HBB", family, prefix, 0) + addr[:nbytes]
    return struct.pack("!HH", 8, len(data)) + data


def query(qid, name, qtype, opt=None):
    ar = 1 if opt is not None else 0
    wire = struct.pack("!HHHHHH", qid, 0x0000, 1, 0, 0, ar)
    wire += name_wire(name) + struct.pack("!HH", qtype, 1)
    return wire + (opt or b"")


def well_formed(rng, qid):
    kind = rng.randrange(8)
    if kind == 0:
        return query(qid, "example.test", rng.choice([6, 2, 15, 255]))
    if kind == 1:
        return query(qid, rng.choice(["static.example.test", "txt.example.test",
                                      "web.example.test", "a.b.c.example.test",
                                      "x.wild.example.test", "big.example.test"]),
                     rng.choice([1, 16, 28]), opt_rr(payload=rng.choice([512, 1232, 4096])))
    if kind == 2:
        return query(qid, "nothere%d.example.test" % rng.randrange(1000), 1)
    if kind == 3:
        return query(qid, "outside.invalid", 1)
    if kind == 4:
        return query(qid, "www.example.test", 28, opt_rr())
    if kind == 5:
        fam, size = rng.choice([(1, 4), (2, 16)])
        prefix = rng.randrange(0, size * 8 + 1)
        addr = bytes(rng.randrange(256) for _ in range(size))
        # host bits past the prefix must be zero (RFC 7871)
        full = int.from_bytes(addr, "big") >> (size * 8 - prefix) << (size * 8 - prefix) if prefix else 0
        addr = full.to_bytes(size, "big")
        return query(qid, "www.example.test", rng.choice([1, 28]),
                     opt_rr(ecs_option(fam, prefix, addr)))
    return query(qid, "WwW.Example.TEST", 1)


def garbage(rng, qid):
    kind = rng.randrange(7)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
    if kind == 1:
        return query(qid, "www.example.test", 1)[: rng.randrange(1, 12)]
    if kind == 2:  # bad ECS: scope set, prefix past the address
        bad = struct.pack("!HH", 8, 8) + struct.pack("!HBB", 1, 40, 3) + b"\1\2\3\4"
        return query(qid, "www.example.test", 1, opt_rr(bad))
    if kind == 3:  # EDNS version 1
        return query(qid, "www.example.test", 1, opt_rr(version=1))
    if kind == 4:  # a compression pointer to itself
        return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack("!HH", 1, 1)
    if kind == 5:  # counts that promise more than there is
        return struct.pack("!HHHHHH", qid, 0, 9, 9, 9, 9) + name_wire("www.example.test")
    wire = bytearray(query(qid, "www.example.test", 1, opt_rr(ecs_option(1, 24, b"\xc6\x12\x01"))))
    for _ in range(3):
        wire[rng.randrange(len(wire))] = rng.randrange(256)
    return bytes(wire)


def udp(server, port, n, rng):
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    answered = 0
    for i in range(n):
        qid = rng.randrange(65536)
        sock.sendto(well_formed(rng, qid), (server, port))
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65535)
            except socket.timeout:
                break
            if len(data) >= 2 and struct.unpack("!H", data[:2])[0] == qid:
                answered += 1
                break
    sock.close()
    return answered


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def tcp(server, port, n, rng):
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    answered = 0
    sent = 0
    while sent < n:
        batch = min(n - sent, rng.randrange(1, 6))
        ids = [rng.randrange(65536) for _ in range(batch)]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(5)
        try:
            sock.connect((server, port))
            msgs = [well_formed(rng, q) for q in ids]
            sock.sendall(b"".join(struct.pack("!H", len(m)) + m for m in msgs))
            for q in ids:
                (length,) = struct.unpack("!H", read_exact(sock, 2))
                if struct.unpack("!H", read_exact(sock, length)[:2])[0] == q:
                    answered += 1
        except (OSError, ConnectionError):
            pass
        sock.close()
        sent += batch
    return answered


def junk(server, port, n, rng):
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    for i in range(n):
        sock.sendto(garbage(rng, rng.randrange(65536)), (server, port))
        if i % 20 == 19:
            time.sleep(0.02)  # bounded pace: let a slow server keep up
    sock.close()


def main():
    if len(sys.argv) not in (6, 7):
        print(__doc__, file=sys.stderr)
        return 2
    server, port = sys.argv[1], int(sys.argv[2])
    n_udp, n_tcp, n_junk = (int(a) for a in sys.argv[3:6])
    rng = random.Random(int(sys.argv[6]) if len(sys.argv) == 7 else 7)
    got_udp = udp(server, port, n_udp, rng)
    junk(server, port, n_junk, rng)
    got_tcp = tcp(server, port, n_tcp, rng)
    # the server still answers after the junk
    after = udp(server, port, 5, rng)
    print(f"querymix: udp {got_udp}/{n_udp} tcp {got_tcp}/{n_tcp} garbage {n_junk} sent, "
          f"after the garbage {after}/5")
    return 0 if (got_udp, got_tcp, after) == (n_udp, n_tcp, 5) else 1


if __name__ == "__main__":
    sys.exit(main())
