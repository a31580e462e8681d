#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""relaylag: how long a binding one gateway's kernel learns takes to reach
another gateway's binding set, through the controller (tests/lab).

For each of COUNT fresh clients of the client namespace: ask a DNS node for
the protected name, connect to the answer at once (through the client's own
gateway, which learns the binding), and time the moment the other gateway's
table gets the element (source . address): `nft monitor` in that gateway's
namespace prints each element userspace adds, as it is added. Prints one
line per client ("lag_ms SRC ADDR MS", or "lost SRC ADDR") and a summary:

  summary clients N server N relayed N lost N p50_ms X p99_ms Y max_ms Z

Every wait is bounded (--wait per client); it runs as root from the root
namespace and enters the namespaces it names (setns) for each socket.
"""
import argparse
import ctypes
import ipaddress
import os
import queue
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwtool as g  # noqa: E402

LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def enter(ns):
    fd = os.open("/run/netns/" + ns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if LIBC.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns " + ns + ": " + os.strerror(e))
    finally:
        os.close(fd)


def monitor(p, table, lines, stop):
    """Every 'add element' line of the table, with the time it was read."""
    while not stop.is_set():
        line = p.stdout.readline()
        if not line:
            break
        if table in line and "_bound" in line:
            lines.put((time.perf_counter(), line))


def stop_monitor(p):
    """nft monitor ends here, not when its next line comes (it holds the
    caller's stderr open: a $(...) around this tool would wait for it)."""
    p.terminate()
    try:
        p.wait(timeout=2)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client-ns", required=True)
    ap.add_argument("--src-base", required=True, help="first client address")
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--dns", required=True, help="the DNS node to ask")
    ap.add_argument("--name", default="www.example.test")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--monitor-ns", required=True, help="the other gateway's namespace")
    ap.add_argument("--table", required=True, help="the other gateway's table")
    ap.add_argument("--wait", type=float, default=3.0, help="s to wait for each relay")
    a = ap.parse_args()
    if a.count < 1 or a.count > 1000:
        ap.error("--count must be 1..1000")

    lines, stop = queue.Queue(), threading.Event()
    mon_p = subprocess.Popen(["ip", "netns", "exec", a.monitor_ns, "nft", "monitor", "new",
                              "elements"], stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        return measure(a, mon_p, lines, stop)
    finally:
        stop.set()
        stop_monitor(mon_p)


def measure(a, mon_p, lines, stop):
    mon = threading.Thread(target=monitor, args=(mon_p, a.table, lines, stop), daemon=True)
    mon.start()
    time.sleep(0.5)  # nft monitor subscribed
    base = ipaddress.ip_address(a.src_base)
    lags, lost, server = [], 0, 0
    enter(a.client_ns)
    for i in range(a.count):
        src = str(base + i)
        rcode, addrs, _ = g.ask(a.dns, src, a.name, "A", False, 2.0)
        if rcode != "NOERROR" or not addrs:
            print(f"# {src}: DNS {rcode}")
            lost += 1
            continue
        addr = addrs[0]
        t0 = time.perf_counter()
        host = g.connect(src, addr, a.port, 3.0)
        server += host == "server"
        want = f"{src} . {addr}"
        deadline = t0 + a.wait
        got = None
        while got is None and time.perf_counter() < deadline:
            try:
                t, line = lines.get(timeout=max(0.01, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if want in line:
                got = t
        if got is None:
            print(f"lost {src} {addr}")
            lost += 1
        else:
            ms = (got - t0) * 1000
            lags.append(ms)
            print(f"lag_ms {src} {addr} {ms:.1f}")
    lags.sort()

    def pct(q):
        return lags[min(len(lags) - 1, int(q * len(lags)))] if lags else 0.0
    print(f"summary clients {a.count} server {server} relayed {len(lags)} lost {lost} "
          f"p50_ms {pct(0.5):.1f} p99_ms {pct(0.99):.1f} max_ms {(lags[-1] if lags else 0):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
