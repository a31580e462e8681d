#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RFC 7766 checks against a DNS server over TCP; standard library only.

  tcpcheck.py pipeline SERVER PORT N   N queries in one write; all N answers
                                       must come back, IDs matching, in order
  tcpcheck.py idle SERVER PORT SECS    an idle connection must be closed by
                                       the server within SECS + 2 s
  tcpcheck.py cap SERVER PORT MAX      MAX connections stay usable; one more
                                       is closed without an answer
  tcpcheck.py udpburst SERVER PORT N   N UDP queries sent at once from one
                                       socket; prints how many were answered
Prints one line; exit 0 when the check holds, 1 when not.
"""
import socket
import struct
import sys
import time


def query(qid, name="www.example.test", qtype=1):
    wire = struct.pack("!HHHHHH", qid, 0x0000, 1, 0, 0, 0)
    for label in name.split("."):
        wire += bytes([len(label)]) + label.encode()
    return wire + b"\0" + struct.pack("!HH", qtype, 1)


def framed(msg):
    return struct.pack("!H", len(msg)) + msg


def read_exact(sock, n, deadline):
    buf = b""
    while len(buf) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def read_msg(sock, deadline):
    (length,) = struct.unpack("!H", read_exact(sock, 2, deadline))
    return read_exact(sock, length, deadline)


def connect(server, port):
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(3)
    sock.connect((server, port))
    return sock


def pipeline(server, port, n):
    sock = connect(server, port)
    sock.sendall(b"".join(framed(query(1000 + i)) for i in range(n)))
    deadline = time.monotonic() + 5
    ids = []
    for _ in range(n):
        ids.append(struct.unpack("!H", read_msg(sock, deadline)[:2])[0])
    sock.close()
    ok = ids == [1000 + i for i in range(n)]
    print(f"pipeline: sent {n}, answered {len(ids)}, in order: {ok}")
    return ok


def closed_by_peer(sock, deadline):
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if sock.recv(1) == b"":
                return True
        except socket.timeout:
            return False
        except ConnectionError:
            return True
    return False


def idle(server, port, secs):
    sock = connect(server, port)
    start = time.monotonic()
    closed = closed_by_peer(sock, start + secs + 2)
    took = time.monotonic() - start
    sock.close()
    # closed, and not before the timeout (minus a tick of slack)
    ok = closed and took >= secs - 1.1
    print(f"idle: closed={closed} after {took:.1f} s (timeout {secs} s)")
    return ok


def cap(server, port, maximum):
    socks = [connect(server, port) for _ in range(maximum)]
    deadline = time.monotonic() + 5
    usable = 0
    for i, s in enumerate(socks):
        s.sendall(framed(query(i)))
        try:
            read_msg(s, deadline)
            usable += 1
        except (ConnectionError, socket.timeout):
            pass
    extra = connect(server, port)
    try:
        extra.sendall(framed(query(9999)))
        read_msg(extra, time.monotonic() + 2)
        refused = False
    except (ConnectionError, socket.timeout, OSError):
        refused = True
    for s in socks + [extra]:
        s.close()
    print(f"cap: {usable}/{maximum} usable, connection {maximum + 1} refused: {refused}")
    return usable == maximum and refused


def udpburst(server, port, n):
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    # SO_RCVBUFFORCE (33): past rmem_max, we run as root in the lab
    sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
    for i in range(n):
        sock.sendto(query(i), (server, port))
    seen = set()
    deadline = time.monotonic() + 5
    while len(seen) < n and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        seen.add(struct.unpack("!H", data[:2])[0])
    print(f"udpburst: sent {n}, answered {len(seen)}")
    return len(seen) == n


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    check, server, port, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    fn = {"pipeline": pipeline, "idle": idle, "cap": cap, "udpburst": udpburst}[check]
    try:
        return 0 if fn(server, port, arg) else 1
    except (OSError, ConnectionError) as e:
        print(f"{check}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
