#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Clients for the gateway lab (tests/lab/gwlab.sh): DNS questions from any
source address, connections that say where they landed, sweeps, floods and
the demo's legitimate clients.

Where a connection landed is read from the service's banner (banner.py): the
host name in it, "server" or "honeypot"; "none" when nothing answered.

  ask        one DNS question; prints "RCODE ADDR..."
  connect    one connection; prints the host it reached
  askconnect DNS answer, then at once (no delay) a connection to the answered
             address, from the same source, COUNT times; prints a summary
  sweep      a connection to every address of a prefix (or a random sample),
             all at once; prints "ADDR HOST" lines and a summary
  race       a connection from each of many sources to one address, all at
             once; prints the sources that reached the server and a summary
  flood      COUNT questions from many sources in a few seconds; summary
  clients    the demo's legitimate clients for DURATION seconds; JSON summary

Sources are given as a comma list of items: ADDR, ADDR+N (N consecutive
addresses from ADDR) or ADDR*N (ADDR N times).
"""
import argparse
import asyncio
import ipaddress
import json
import os
import random
import re
import selectors
import socket
import ssl
import struct
import sys
import time

QTYPE = {"A": 1, "AAAA": 28, "SOA": 6, "MX": 15, "TXT": 16}
RCODE = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN",
         4: "NOTIMP", 5: "REFUSED"}
HOST_RE = [re.compile(rb"SSH-2\.0-choreo-lab-([A-Za-z0-9_-]+)"),
           re.compile(rb"^220 ([A-Za-z0-9_-]+) ESMTP", re.M),
           re.compile(rb"X-Choreo-Host: ([A-Za-z0-9_-]+)"),
           re.compile(rb"choreo-lab ([A-Za-z0-9_-]+) \(no TLS\)")]
DEBUG = bool(os.environ.get("GWTOOL_DEBUG"))
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


# ---- sources -----------------------------------------------------------------

def sources(spec):
    out = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        if "+" in item:
            a, n = item.split("+", 1)
            base = ipaddress.ip_address(a)
            out += [str(base + i) for i in range(int(n))]
        elif "*" in item:
            a, n = item.split("*", 1)
            out += [str(ipaddress.ip_address(a))] * int(n)
        else:
            out.append(str(ipaddress.ip_address(item)))
    return out


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


# ---- DNS wire format -----------------------------------------------------------

def ecs_option(prefix):
    """An EDNS Client Subnet option (RFC 7871) for "addr/len"."""
    net = ipaddress.ip_network(prefix, strict=False)
    fam = 1 if net.version == 4 else 2
    nbytes = (net.prefixlen + 7) // 8
    data = struct.pack(">HBB", fam, net.prefixlen, 0) + net.network_address.packed[:nbytes]
    return struct.pack(">HH", 8, len(data)) + data


def dns_query(name, qtype, rd, qid, ecs=None):
    q = struct.pack(">HHHHHH", qid, 0x0100 if rd else 0, 1, 0, 0, 1 if ecs else 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", QTYPE[qtype], 1)
    if ecs:
        opt = ecs_option(ecs)
        q += b"\0" + struct.pack(">HHIH", 41, 1232, 0, len(opt)) + opt
    return q


def skip_name(msg, off):
    for _ in range(128):
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n
    raise ValueError("name too long")


def dns_parse(msg):
    """(id, rcode, [addresses], [ttls]) of a response."""
    qid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    addrs, ttls = [], []
    for _ in range(an):
        off = skip_name(msg, off)
        rtype, _cls, ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        if rtype == 1 and rdlen == 4:
            addrs.append(socket.inet_ntop(socket.AF_INET, rdata))
            ttls.append(ttl)
        elif rtype == 28 and rdlen == 16:
            addrs.append(socket.inet_ntop(socket.AF_INET6, rdata))
            ttls.append(ttl)
    return qid, flags & 0xF, addrs, ttls


def ask(server, src, name, qtype, rd, timeout=2.0, tries=2):
    """(rcode name, addresses, ttls); rcode "TIMEOUT" without an answer."""
    s = socket.socket(family(server), socket.SOCK_DGRAM)
    try:
        s.bind((src, 0))
        s.settimeout(timeout)
        for _ in range(tries):
            qid = random.getrandbits(16)
            s.sendto(dns_query(name, qtype, rd, qid), (server, 53))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    msg = s.recv(4096)
                except socket.timeout:
                    break
                rid, rcode, addrs, ttls = dns_parse(msg)
                if rid == qid:
                    return RCODE.get(rcode, str(rcode)), addrs, ttls
        return "TIMEOUT", [], []
    finally:
        s.close()


# ---- connections ----------------------------------------------------------------

def greeting(port):
    if port == 22:
        return b"SSH-2.0-choreo-lab-client\r\n"
    if port == 25:
        return b"QUIT\r\n"
    return b"GET / HTTP/1.0\r\nHost: www.example.test\r\n\r\n"


def host_of(data):
    for r in HOST_RE:
        m = r.search(data)
        if m:
            return m.group(1).decode()
    return "other" if data else "none"


LAST_GAP_US = [0.0]


def connect(src, dst, port, timeout=3.0, t0=None):
    """The host that answered: "server", "honeypot", "none" or "other".
    With t0 (perf_counter of the DNS answer), LAST_GAP_US[0] is the time
    from the answer to the connect() call that sends the SYN."""
    s = socket.socket(family(dst), socket.SOCK_STREAM)
    data = b""
    try:
        s.settimeout(timeout)
        s.bind((src, 0))
        if t0 is not None:
            LAST_GAP_US[0] = (time.perf_counter() - t0) * 1e6
        s.connect((dst, port))
        if port == 443:
            s = TLS.wrap_socket(s)
        if port in (80, 443):
            s.sendall(greeting(port))
        for _ in range(64):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            if host_of(data) not in ("none", "other"):
                break
        if port in (22, 25):
            s.sendall(greeting(port))
    except (OSError, ssl.SSLError) as e:
        if DEBUG:
            print(f"# {src} -> {dst}:{port}: {e!r} after {data!r}", file=sys.stderr)
    finally:
        s.close()
    return host_of(data)


async def aconnect(src, dst, port, timeout=3.0):
    sock = socket.socket(family(dst), socket.SOCK_STREAM)
    data = b""
    writer = None
    try:
        sock.setblocking(False)
        sock.bind((src, 0))
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(sock, (dst, port)), timeout)
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=TLS if port == 443 else None,
            server_hostname="www.example.test" if port == 443 else None,
            ssl_handshake_timeout=timeout if port == 443 else None)
        sock = None
        if port in (80, 443):
            writer.write(greeting(port))
        for _ in range(64):
            chunk = await asyncio.wait_for(reader.read(4096), timeout)
            if not chunk:
                break
            data += chunk
            if host_of(data) not in ("none", "other"):
                break
        if port in (22, 25):
            writer.write(greeting(port))
            await writer.drain()
    except (OSError, ssl.SSLError, asyncio.TimeoutError):
        pass
    finally:
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1)
            except (OSError, ssl.SSLError, asyncio.TimeoutError):
                pass
        if sock is not None:
            sock.close()
    return host_of(data)


async def aask(server, src, name, qtype, rd, timeout=2.0, tries=2):
    loop = asyncio.get_running_loop()
    s = socket.socket(family(server), socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        s.bind((src, 0))
        s.connect((server, 53))
        for _ in range(tries):
            qid = random.getrandbits(16)
            await loop.sock_sendall(s, dns_query(name, qtype, rd, qid))
            deadline = loop.time() + timeout
            while loop.time() < deadline:
                try:
                    msg = await asyncio.wait_for(loop.sock_recv(s, 4096),
                                                 deadline - loop.time())
                except asyncio.TimeoutError:
                    break
                rid, rcode, addrs, _ttls = dns_parse(msg)
                if rid == qid:
                    return RCODE.get(rcode, str(rcode)), addrs
        return "TIMEOUT", []
    except OSError:
        return "ERROR", []
    finally:
        s.close()


# ---- commands ---------------------------------------------------------------------

def cmd_ask(a):
    rcode, addrs, ttls = ask(a.server, a.src, a.name, a.type, a.rd, a.timeout)
    if a.ttl:
        print(rcode, *[f"{x}/{t}" for x, t in zip(addrs, ttls)])
    else:
        print(rcode, *addrs)
    return 0


def cmd_connect(a):
    print(connect(a.src, a.dst, a.port, a.timeout))
    return 0


def cmd_askconnect(a):
    srcs = sources(a.srcs)
    count = a.count or len(srcs)
    tally = {"server": 0, "honeypot": 0, "none": 0, "other": 0}
    dnsfail = 0
    gap_us = []
    for i in range(count):
        src = srcs[i % len(srcs)]
        rcode, addrs, _ = ask(a.server, src, a.name, a.type, a.rd, a.timeout)
        t_answer = time.perf_counter()
        if rcode != "NOERROR" or not addrs:
            dnsfail += 1
            print(f"# {src}: DNS {rcode} {' '.join(addrs)}")
            continue
        # no delay: the SYN leaves as soon as the answer is read
        host = connect(src, addrs[0], a.port, a.timeout, t0=t_answer)
        gap_us.append(LAST_GAP_US[0])
        tally[host] = tally.get(host, 0) + 1
        if a.show:
            print(f"= {src} {addrs[0]} {host}")
        if host != "server":
            print(f"# misroute: {src} -> {addrs[0]}:{a.port} reached {host}")
    gap_us.sort()
    print(f"asked {count} dnsfail {dnsfail} server {tally['server']} "
          f"honeypot {tally['honeypot']} none {tally['none']} "
          f"other {tally['other']} misroutes {count - dnsfail - tally['server']} "
          f"sources {len(set(srcs[i % len(srcs)] for i in range(count)))} "
          f"gap_us_median {gap_us[len(gap_us) // 2] if gap_us else 0:.0f} "
          f"gap_us_max {gap_us[-1] if gap_us else 0:.0f}")
    return 0


async def sweep(src, targets, port, conc, timeout):
    sem = asyncio.Semaphore(conc)

    async def one(dst):
        async with sem:
            return dst, await aconnect(src, dst, port, timeout)
    return await asyncio.gather(*(one(t) for t in targets))


async def race(srcs, dst, port, timeout):
    return await asyncio.gather(*(aconnect(s, dst, port, timeout) for s in srcs))


def cmd_race(a):
    """One connection from each source to DST, all at once (a window's
    claims must be taken atomically); prints the tally."""
    srcs = sources(a.srcs)
    res = asyncio.run(race(srcs, a.dst, a.port, a.timeout))
    tally = {}
    for src, host in zip(srcs, res):
        if host == "server":
            print(f"= {src} server")
        tally[host] = tally.get(host, 0) + 1
    print("summary " + " ".join(f"{k} {tally.get(k, 0)}"
                                for k in ("server", "honeypot", "none", "other")))
    return 0


def cmd_sweep(a):
    net = ipaddress.ip_network(a.prefix)
    if a.sample:
        n = net.num_addresses
        picks = random.sample(range(n), min(a.sample, n)) if n < 1 << 20 else \
            [random.getrandbits(net.max_prefixlen - net.prefixlen)
             for _ in range(a.sample)]
        targets = [str(net.network_address + i) for i in picks]
    else:
        targets = [str(x) for x in net]
    res = asyncio.run(sweep(a.src, targets, a.port, a.conc, a.timeout))
    tally = {}
    for dst, host in res:
        print(dst, host)
        tally[host] = tally.get(host, 0) + 1
    print("summary " + " ".join(f"{k} {tally.get(k, 0)}"
                                for k in ("server", "honeypot", "none", "other"))
          + f" total {len(res)}")
    return 0


def cmd_flood(a):
    """COUNT questions for NAME, spread over the sources, paced over
    DURATION seconds, answers read as they come."""
    srcs = sorted(set(sources(a.srcs)))
    ecs_list = [e.strip() for e in a.ecs.split(",") if e.strip()] if a.ecs else []
    sel = selectors.DefaultSelector()
    socks = []
    for src in srcs:
        s = socket.socket(family(a.server), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((src, 0))
        s.connect((a.server, 53))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    tally, addrs = {}, set()
    answered = sent = 0
    start = time.monotonic()

    def drain(wait):
        nonlocal answered
        for key, _ in sel.select(wait):
            for _ in range(64):
                try:
                    msg = key.fileobj.recv(4096)
                except BlockingIOError:
                    break
                _id, rcode, got, _ = dns_parse(msg)
                answered += 1
                r = RCODE.get(rcode, str(rcode))
                tally[r] = tally.get(r, 0) + 1
                addrs.update(got)

    for i in range(a.count):
        due = start + a.duration * i / a.count
        while time.monotonic() < due:
            drain(max(0.0, due - time.monotonic()))
        s = socks[i % len(socks)]
        ecs = ecs_list[i % len(ecs_list)] if ecs_list else None
        try:
            s.send(dns_query(a.name, a.type, False, i & 0xFFFF, ecs))
            sent += 1
        except BlockingIOError:
            pass
    end = time.monotonic() + 2
    while answered < sent and time.monotonic() < end:
        drain(0.1)
    elapsed = time.monotonic() - start
    for s in socks:
        s.close()
    print(f"sent {sent} answered {answered} "
          + " ".join(f"{k.lower()} {v}" for k, v in sorted(tally.items()))
          + f" distinct {len(addrs)} sources {len(srcs)} seconds {elapsed:.1f}")
    print("addrs", *sorted(addrs, key=ipaddress.ip_address))
    return 0


async def clients(a):
    """Legitimate clients: each asks DNS (directly or through the resolver),
    then connects at once to a random port of the answered address and reads
    the banner; then thinks a little and starts again."""
    stop_at = asyncio.get_running_loop().time() + a.duration
    ports = [int(p) for p in a.ports.split(",")]
    stats = {m: {"transactions": 0, "server": 0, "honeypot": 0, "none": 0,
                 "other": 0, "dnsfail": 0} for m in ("direct", "resolver")}
    misroutes = []

    async def client(src, mode):
        fam6 = ":" in src
        if mode == "direct":
            server, rd = (a.server6 if fam6 else a.server), False
        else:
            server, rd = (a.resolver6 if fam6 else a.resolver), True
        qtype = "AAAA" if fam6 else "A"
        await asyncio.sleep(random.uniform(0, a.think))
        while asyncio.get_running_loop().time() < stop_at:
            st = stats[mode]
            rcode, addrs = await aask(server, src, a.name, qtype, rd)
            if rcode != "NOERROR" or not addrs:
                st["dnsfail"] += 1
            else:
                port = random.choice(ports)
                host = await aconnect(src, addrs[0], port)
                st["transactions"] += 1
                st[host] = st.get(host, 0) + 1
                if host != "server":
                    misroutes.append(f"{mode} {src} -> {addrs[0]}:{port} {host}")
            await asyncio.sleep(random.uniform(a.think / 4, a.think))

    tasks = [client(s, "direct") for s in sources(a.direct)] if a.direct else []
    tasks += [client(s, "resolver") for s in sources(a.resolved)] if a.resolved else []
    await asyncio.gather(*tasks)
    return {"stats": stats, "misroutes": misroutes[:20]}


def cmd_clients(a):
    print(json.dumps(asyncio.run(clients(a))))
    return 0


def main():
    ap = argparse.ArgumentParser(description="gateway lab clients")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def dns_args(p):
        p.add_argument("--server", required=True)
        p.add_argument("--name", default="www.example.test")
        p.add_argument("--type", default="A", choices=sorted(QTYPE))
        p.add_argument("--rd", action="store_true", help="recursion desired")
        p.add_argument("--timeout", type=float, default=2.0)

    p = sub.add_parser("ask")
    dns_args(p)
    p.add_argument("--src", required=True)
    p.add_argument("--ttl", action="store_true", help="print ADDR/TTL")
    p.set_defaults(fn=cmd_ask)

    p = sub.add_parser("connect")
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(fn=cmd_connect)

    p = sub.add_parser("askconnect")
    dns_args(p)
    p.add_argument("--srcs", required=True)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--port", type=int, default=22)
    p.add_argument("--show", action="store_true", help="print '= SRC ADDR HOST' for each")
    p.set_defaults(fn=cmd_askconnect)

    p = sub.add_parser("sweep")
    p.add_argument("--src", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--sample", type=int, default=0)
    p.add_argument("--conc", type=int, default=256)
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(fn=cmd_sweep)

    p = sub.add_parser("race")
    p.add_argument("--srcs", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--port", type=int, default=22)
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(fn=cmd_race)

    p = sub.add_parser("flood")
    dns_args(p)
    p.add_argument("--srcs", required=True)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--ecs", default="", help="client subnets to send, in turn (comma list)")
    p.set_defaults(fn=cmd_flood)

    p = sub.add_parser("clients")
    p.add_argument("--server", required=True)
    p.add_argument("--server6", default="")
    p.add_argument("--resolver", required=True)
    p.add_argument("--resolver6", default="")
    p.add_argument("--name", default="www.example.test")
    p.add_argument("--direct", default="")
    p.add_argument("--resolved", default="")
    p.add_argument("--ports", default="22,25,80,443")
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--think", type=float, default=1.0)
    p.set_defaults(fn=cmd_clients)

    a = ap.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
