#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""failload: continuous clients for the failover lab (tests/lab/long_failover.sh).

  prime   N clients of one network ask the resolver and connect at once (each
          is then bound at the gateway it went through); prints "SRC DST HOST"
  run     until --duration or the --stop file: threads that each log one
          line per event to --out ("TIME KIND SRC NODE RCODE DST HOST"):
            bound  the clients of --bound (lines "SRC DST ..."), reconnecting
                   in turn to the address they were given, never asking again
            new1   fresh clients of net A asking dns1 directly, connecting at once
            new2   the same, asking dns2
            newb   fresh clients of net B asking the resolver, connecting at once
          and a sampler: every --sample s, each gateway's open set through
          `nft -j` ("TIME open GW TOTAL IN_BLOCK1 IN_BLOCK2 ELEMS")
  connect each "SRC DST" of --file once; prints "SRC DST HOST"

Every loop is bounded in count and time. HOST is server, honeypot, none
(no answer: timeout, refused, unreachable) or other.
"""
import argparse
import ctypes
import ipaddress
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.environ["GWLAB_DIR"])
import gwtool as g  # noqa: E402

LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
LOCK = threading.Lock()
MAX_EVENTS = 200000


def enter(ns):
    """setns(2) for the calling thread only."""
    fd = os.open("/run/netns/" + ns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if LIBC.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns " + ns + ": " + os.strerror(e))
    finally:
        os.close(fd)


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.n = 0

    def put(self, t0, *fields):
        """One event, stamped with the time it started (t0, time.time())."""
        with LOCK:
            if self.n < MAX_EVENTS:
                self.f.write(f"{t0:.3f} " + " ".join(str(x) for x in fields) + "\n")
                self.n += 1


def done(a, t_end):
    return time.monotonic() >= t_end or os.path.exists(a.stop)


def bound_loop(a, log, t_end):
    enter(a.ns_a)
    ports = (80, 22)
    k = 0
    while not done(a, t_end):
        try:
            with open(a.bound) as f:
                pairs = [ln.split()[:2] for ln in f if len(ln.split()) >= 2]
        except OSError:
            pairs = []
        if not pairs:
            time.sleep(0.2)
            continue
        for src, dst in pairs[:1000]:
            if done(a, t_end):
                break
            t0 = time.time()
            host = g.connect(src, dst, ports[k % 2], a.timeout)
            log.put(t0, "bound", src, "-", "-", dst, host)
            k += 1
            time.sleep(a.pause)


def new_loop(a, log, t_end, kind, ns, base, server, rd, limit):
    enter(ns)
    base = ipaddress.ip_address(base)
    for i in range(limit):
        if done(a, t_end):
            break
        src = str(base + i)
        t0 = time.time()
        rcode, got, _ = g.ask(server, src, a.name, "A", rd, a.timeout, 1)
        if rcode != "NOERROR" or not got:
            log.put(t0, kind, src, server, rcode, "-", "-")
            time.sleep(a.pause)
            continue
        host = g.connect(src, got[0], (22, 25, 80)[i % 3], a.timeout)
        log.put(t0, kind, src, server, rcode, got[0], host)
        time.sleep(a.pause)


def sampler(a, log, t_end):
    blocks = [ipaddress.ip_network(b) for b in a.blocks.split(",")]
    gws = [x.split("=", 1) for x in a.gateways.split(",")]
    while not done(a, t_end):
        for name, spec in gws:
            ns, table = spec.split(":", 1)
            t0 = time.time()
            try:
                out = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "set",
                                      "inet", table, a.set], capture_output=True, timeout=5,
                                     check=False).stdout
                elems = []
                for obj in json.loads(out or b"{}").get("nftables", []):
                    for e in obj.get("set", {}).get("elem", []) or []:
                        v = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
                        elems.append(str(v))
            except (OSError, ValueError, subprocess.SubprocessError):
                log.put(t0, "open", name, -1, -1, -1, "-")
                continue
            per = [sum(1 for x in elems if ipaddress.ip_address(x) in b) for b in blocks]
            log.put(t0, "open", name, len(elems), *per, ",".join(elems) or "-")
        time.sleep(a.sample)


def cmd_run(a):
    log = Log(a.out)
    t_end = time.monotonic() + a.duration
    th = [threading.Thread(target=bound_loop, args=(a, log, t_end)),
          threading.Thread(target=new_loop, args=(a, log, t_end, "new1", a.ns_a, a.new1_base,
                                                  a.dns1, False, a.limit)),
          threading.Thread(target=new_loop, args=(a, log, t_end, "new2", a.ns_a, a.new2_base,
                                                  a.dns2, False, a.limit)),
          threading.Thread(target=new_loop, args=(a, log, t_end, "newb", a.ns_b, a.newb_base,
                                                  a.resolver, True, a.limit)),
          threading.Thread(target=sampler, args=(a, log, t_end))]
    for t in th:
        t.daemon = True
        t.start()
    for t in th:
        t.join(max(0.0, t_end - time.monotonic()) + 10)
    print(f"events {log.n}")
    return 0


def cmd_prime(a):
    enter(a.ns)
    base = ipaddress.ip_address(a.src)
    for i in range(a.count):
        src = str(base + i)
        rcode, got, _ = g.ask(a.resolver, src, a.name, "A", True, 2.0, 2)
        if rcode != "NOERROR" or not got:
            print(f"{src} - dns:{rcode}")
            continue
        print(f"{src} {got[0]} {g.connect(src, got[0], 80, a.timeout)}")
    return 0


def cmd_connect(a):
    enter(a.ns)
    with open(a.file) as f:
        pairs = [ln.split()[:2] for ln in f if len(ln.split()) >= 2]
    for src, dst in pairs[:2000]:
        print(f"{src} {dst} {g.connect(src, dst, 80, a.timeout)}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--out", required=True)
    p.add_argument("--stop", required=True)
    p.add_argument("--duration", type=float, default=120)
    p.add_argument("--bound", required=True)
    p.add_argument("--ns-a", required=True)
    p.add_argument("--ns-b", required=True)
    p.add_argument("--dns1", required=True)
    p.add_argument("--dns2", required=True)
    p.add_argument("--resolver", required=True)
    p.add_argument("--name", default="www.example.test")
    p.add_argument("--new1-base", required=True)
    p.add_argument("--new2-base", required=True)
    p.add_argument("--newb-base", required=True)
    p.add_argument("--limit", type=int, default=5000)
    p.add_argument("--pause", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=1.5)
    p.add_argument("--gateways", required=True, help="gw1=NS:TABLE,gw2=NS:TABLE")
    p.add_argument("--set", default="www_open4")
    p.add_argument("--blocks", required=True, help="BLOCK1,BLOCK2")
    p.add_argument("--sample", type=float, default=0.25)
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("prime")
    p.add_argument("--ns", required=True)
    p.add_argument("--resolver", required=True)
    p.add_argument("--name", default="www.example.test")
    p.add_argument("--src", required=True)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(fn=cmd_prime)
    p = sub.add_parser("connect")
    p.add_argument("--ns", required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(fn=cmd_connect)
    a = ap.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
