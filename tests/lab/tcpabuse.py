#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Abusive and honest DNS TCP clients for tests/lab/test_tcp_abuse.sh;
standard library only. Each prints one line and exits 0 when it ran (the
shell judges the figures), 2 on bad arguments.

  tcpabuse.py slow SRC SERVER PORT N SECS
      N connections from SRC: one sends nothing, the others a query one
      byte a second; prints how many choreod closed and after how long
  tcpabuse.py greedy SRC[,SRC...] SERVER PORT N HOLD
      N connections at once (spread over the SRC addresses), each asked
      one query; prints how many were answered and how many were closed
      unanswered; holds the answered ones HOLD seconds
  tcpabuse.py noread SRC SERVER PORT N KIB SECS
      N connections from SRC, each sending KIB KiB of pipelined queries and
      never reading (small receive buffer); prints how many choreod closed
      and after how long since the last byte sent
  tcpabuse.py honest SRC SERVER PORT SECS RATE
      RATE a second, alternately: a query over a new TCP connection and a
      query over UDP, from SRC, each waited for (2 s); prints answered/sent
      and the slowest
"""
import socket
import struct
import sys
import time

TCP_INFO_STATE_ESTABLISHED = 1


def query(qid, name="example.test", qtype=6):
    wire = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.split("."):
        wire += bytes([len(label)]) + label.encode()
    return wire + b"\0" + struct.pack("!HH", qtype, 1)


def framed(msg):
    return struct.pack("!H", len(msg)) + msg


def fam(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def tcp_from(src, server, port, rcvbuf=None):
    s = socket.socket(fam(server), socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((src, 0))
    s.settimeout(3)
    s.connect((server, port))
    return s


def established(s):
    """Whether the connection is still up, without reading from it."""
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return info[0] == TCP_INFO_STATE_ESTABLISHED


def read_exact(s, n, deadline):
    buf = b""
    while len(buf) < n:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def slow(src, server, port, n, secs):
    socks = [tcp_from(src, server, port) for _ in range(n)]
    msg = framed(query(7))
    start = time.monotonic()
    closed = [None] * n
    i = 0
    while time.monotonic() - start < secs and None in closed:
        for k, s in enumerate(socks):
            if closed[k] is not None:
                continue
            try:
                if not established(s):
                    raise ConnectionError
                if k and i < len(msg):
                    s.send(msg[i:i + 1])  # the first one sends nothing
            except OSError:
                closed[k] = time.monotonic() - start
        i += 1
        time.sleep(1)
    for s in socks:
        s.close()
    done = [c for c in closed if c is not None]
    print(f"slow: {len(done)}/{n} closed by choreod, after "
          f"{min(done) if done else 0:.1f}-{max(done) if done else 0:.1f} s")
    return 0


def greedy(srcs, server, port, n, hold):
    socks = [tcp_from(srcs[k % len(srcs)], server, port) for k in range(n)]
    answered = refused = 0
    deadline = time.monotonic() + 3
    for k, s in enumerate(socks):
        try:
            s.sendall(framed(query(100 + k)))
            (length,) = struct.unpack("!H", read_exact(s, 2, deadline))
            read_exact(s, length, deadline)
            answered += 1
        except (OSError, ConnectionError):
            refused += 1
    print(f"greedy: {n} connections from {','.join(srcs)}: {answered} answered, "
          f"{refused} closed unanswered")
    time.sleep(hold)
    for s in socks:
        s.close()
    return 0


def noread(src, server, port, n, kib, secs):
    q = framed(query(9))
    blob = q * (kib * 1024 // len(q))
    socks = [tcp_from(src, server, port, rcvbuf=4096) for _ in range(n)]
    for s in socks:
        s.setblocking(False)
    sent = [0] * n
    last = [time.monotonic()] * n
    closed = [None] * n
    start = time.monotonic()
    while time.monotonic() - start < secs and None in closed:
        for k, s in enumerate(socks):
            if closed[k] is not None:
                continue
            try:
                if not established(s):
                    raise ConnectionError
                if sent[k] < len(blob):
                    w = s.send(blob[sent[k]:])
                    if w > 0:
                        sent[k] += w
                        last[k] = time.monotonic()
            except BlockingIOError:
                pass
            except OSError:
                closed[k] = time.monotonic() - last[k]
        time.sleep(0.05)
    for s in socks:
        s.close()
    done = [c for c in closed if c is not None]
    print(f"noread: {len(done)}/{n} closed by choreod, "
          f"{min(done) if done else 0:.1f}-{max(done) if done else 0:.1f} s after "
          f"their last byte sent; sent {min(sent)}-{max(sent)} of {len(blob)} bytes each")
    return 0


def honest(src, server, port, secs, rate):
    u = socket.socket(fam(server), socket.SOCK_DGRAM)
    u.bind((src, 0))
    u.connect((server, port))
    sent = {"tcp": 0, "udp": 0}
    ok = {"tcp": 0, "udp": 0}
    worst = 0.0
    end = time.monotonic() + secs
    k = 0
    while time.monotonic() < end:
        t0 = time.monotonic()
        qid = 2000 + k % 60000
        proto = "tcp" if k % 2 == 0 else "udp"
        sent[proto] += 1
        try:
            if proto == "tcp":
                s = tcp_from(src, server, port)
                s.sendall(framed(query(qid)))
                dl = t0 + 2
                (length,) = struct.unpack("!H", read_exact(s, 2, dl))
                got = read_exact(s, length, dl)
                s.close()
            else:
                u.send(query(qid))
                u.settimeout(2)
                got = u.recv(4096)
                while struct.unpack("!H", got[:2])[0] != qid:
                    got = u.recv(4096)
            if struct.unpack("!H", got[:2])[0] == qid:
                ok[proto] += 1
                worst = max(worst, time.monotonic() - t0)
        except (OSError, ConnectionError):
            pass
        k += 1
        left = 1.0 / rate - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
    print(f"honest: tcp {ok['tcp']}/{sent['tcp']} udp {ok['udp']}/{sent['udp']} "
          f"answered, slowest {worst * 1000:.0f} ms")
    return 0


def main():
    a = sys.argv[1:]
    try:
        if a[0] == "slow" and len(a) == 6:
            return slow(a[1], a[2], int(a[3]), int(a[4]), float(a[5]))
        if a[0] == "greedy" and len(a) == 6:
            return greedy(a[1].split(","), a[2], int(a[3]), int(a[4]), float(a[5]))
        if a[0] == "noread" and len(a) == 7:
            return noread(a[1], a[2], int(a[3]), int(a[4]), int(a[5]), float(a[6]))
        if a[0] == "honest" and len(a) == 6:
            return honest(a[1], a[2], int(a[3]), float(a[4]), float(a[5]))
    except (IndexError, ValueError):
        pass
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
