#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hold choreod's control socket and measure DNS meanwhile; stdlib only.

  ctlstress.py dribble SOCKET SECONDS     send "status\\n" one byte a second;
                                          print when choreod closed it
  ctlstress.py dns SERVER PORT SECONDS RATE
                                          UDP queries (static and rotated)
                                          at RATE per second, each waited
                                          for (1 s); print answered/sent
                                          and latency p50/p99/max in ms
Exit 0 unless the arguments are wrong (dns: unless a query went unanswered).
"""
import random
import socket
import struct
import sys
import time


def dribble(path, seconds):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    start = time.monotonic()
    msg = b"status\n"
    closed_at = None
    for i in range(int(seconds)):
        try:
            s.send(msg[i % len(msg):i % len(msg) + 1])
        except OSError:
            closed_at = time.monotonic() - start
            break
        s.settimeout(1.0)
        try:
            data = s.recv(4096)
            if data == b"":
                closed_at = time.monotonic() - start
                break
        except socket.timeout:
            pass
        except OSError:
            closed_at = time.monotonic() - start
            break
    s.close()
    if closed_at is None:
        print(f"dribble: still open after {seconds} s")
    else:
        print(f"dribble: closed by choreod after {closed_at:.1f} s")
    return 0


def query(qid, name, qtype):
    wire = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.split("."):
        wire += bytes([len(label)]) + label.encode()
    return wire + b"\0" + struct.pack("!HH", qtype, 1)


def dns(server, port, seconds, rate):
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect((server, port))
    lat = []
    sent = 0
    end = time.monotonic() + seconds
    gap = 1.0 / rate
    rng = random.Random(5)
    while time.monotonic() < end:
        qid = rng.randrange(65536)
        name = "www.example.test" if sent % 2 else "example.test"
        t0 = time.monotonic()
        s.send(query(qid, name, 1 if sent % 2 else 6))
        sent += 1
        s.settimeout(1.0)
        try:
            while True:
                data = s.recv(4096)
                if struct.unpack("!H", data[:2])[0] == qid:
                    lat.append((time.monotonic() - t0) * 1000)
                    break
        except socket.timeout:
            pass
        left = gap - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
    lat.sort()
    def pct(p):
        return lat[min(len(lat) - 1, int(len(lat) * p))] if lat else float("nan")
    print(f"dns: answered {len(lat)}/{sent} p50 {pct(0.5):.2f} ms p99 {pct(0.99):.2f} ms "
          f"max {lat[-1] if lat else float('nan'):.2f} ms")
    return 0 if len(lat) == sent else 1


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "dribble":
        return dribble(sys.argv[2], float(sys.argv[3]))
    if len(sys.argv) == 6 and sys.argv[1] == "dns":
        return dns(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
