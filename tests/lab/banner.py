#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A small service host for the gateway lab (tests/lab/gwlab.sh).

Listens on ports 22, 25, 80 and 443, over IPv4 and IPv6, and says which host
it is, so a client can tell whether the gateway sent it to the protected
server or to the honeypot:

  22   "SSH-2.0-choreo-lab-<name>\\r\\n"
  25   "220 <name> ESMTP choreo-lab\\r\\n", then 250 to every line, 221 to QUIT
  80   HTTP/1.0: any request is answered "200 OK", header
       "X-Choreo-Host: <name>", body "<name>\\n"
  443  the same HTTP server inside TLS (--cert/--key); without a certificate
       a plain line "choreo-lab <name> (no TLS)\\r\\n"

Every accepted connection appends one line "<peer-ip> <port>" to the log
file (--log), before anything else happens on it, so that tests can count
what landed where, even connections a scanner drops at once. When all ports
listen, "ready" is printed on stdout.

For load runs (tests/lab/bench-*.sh): --workers N forks N-1 more processes,
every one with its own listening sockets on the same ports (SO_REUSEPORT, the
kernel spreads the connections over them); "ready" comes when all of them
listen, and the first process stops the others on SIGTERM/SIGINT. --backlog
sets listen()'s backlog (default 1024). --lite serves each connection from
a plain selector loop instead of asyncio streams, several times cheaper a
connection: 22, 25 and 443 (never TLS in this mode) send their greeting and
close at once, 80 answers the first request; the log is the same. Without
these options nothing changes.
"""
import argparse
import asyncio
import os
import signal
import socket
import ssl
import sys

IDLE_S = 5          # how long a connection may stay silent
MAX_REQUEST = 8192  # bytes of an HTTP request read at most
MAX_LINES = 20      # SMTP lines answered at most


class Host:
    def __init__(self, name, log_path, tls):
        self.name = name
        self.tls = tls
        # line-buffered append: one write per connection, visible at once
        self.log = open(log_path, "a", buffering=1, encoding="ascii")

    def note(self, peer, port):
        ip = peer[0] if peer else "?"
        if ip.startswith("::ffff:"):
            ip = ip[7:]
        self.log.write(f"{ip} {port}\n")

    def http_answer(self):
        body = f"{self.name}\n".encode()
        head = ("HTTP/1.0 200 OK\r\n"
                "Server: choreo-lab\r\n"
                f"X-Choreo-Host: {self.name}\r\n"
                "Content-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        return head + body

    async def http(self, reader, writer):
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            chunk = await asyncio.wait_for(reader.read(1024), IDLE_S)
            if not chunk:
                return
            data += chunk
            if len(data) > MAX_REQUEST:
                break
        writer.write(self.http_answer())
        await writer.drain()

    async def serve(self, lsock, port):
        """Accept loop of one listening socket: each connection is logged
        as soon as it is accepted, then served in a task of its own."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(lsock)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            self.note(peer, port)
            asyncio.create_task(self.handle(port, conn))

    async def handle(self, port, conn):
        loop = asyncio.get_running_loop()
        writer = None
        try:
            reader = asyncio.StreamReader()
            proto = asyncio.StreamReaderProtocol(reader)
            tls = self.tls if port == 443 else None
            # TLS from the first byte (start_tls() after a StreamReader has
            # read the ClientHello would lose it)
            transport, _ = await loop.connect_accepted_socket(
                lambda: proto, conn, ssl=tls,
                ssl_handshake_timeout=IDLE_S if tls else None)
            writer = asyncio.StreamWriter(transport, proto, reader, loop)
            if port == 22:
                writer.write(f"SSH-2.0-choreo-lab-{self.name}\r\n".encode())
                await writer.drain()
                # like sshd: wait for the client's identification, then close
                await asyncio.wait_for(reader.readline(), IDLE_S)
            elif port == 25:
                writer.write(f"220 {self.name} ESMTP choreo-lab\r\n".encode())
                await writer.drain()
                for _ in range(MAX_LINES):
                    line = await asyncio.wait_for(reader.readline(), IDLE_S)
                    if not line:
                        break
                    if line.strip().upper().startswith(b"QUIT"):
                        writer.write(b"221 bye\r\n")
                        await writer.drain()
                        break
                    writer.write(b"250 ok\r\n")
                    await writer.drain()
            elif port == 443 and self.tls is None:
                writer.write(f"choreo-lab {self.name} (no TLS)\r\n".encode())
                await writer.drain()
            else:
                await self.http(reader, writer)
        except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            try:
                if writer is not None:
                    writer.close()
                else:
                    conn.close()
            except Exception:
                pass


def listener(family, port, reuseport=False, backlog=1024):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::", port))
    else:
        s.bind(("0.0.0.0", port))
    s.listen(backlog)
    s.setblocking(False)
    return s


def serve_lite(host, args, ready_fd=None):
    """--lite: one selector loop, no asyncio; same greetings and log."""
    import selectors
    import time
    name = host.name
    greet = {22: f"SSH-2.0-choreo-lab-{name}\r\n".encode(),
             25: f"220 {name} ESMTP choreo-lab\r\n".encode(),
             443: f"choreo-lab {name} (no TLS)\r\n".encode()}
    http = host.http_answer()
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    sel = selectors.DefaultSelector()
    for port in (int(p) for p in args.ports.split(",")):
        for family in (socket.AF_INET, socket.AF_INET6):
            sel.register(listener(family, port, args.workers > 1, args.backlog),
                         selectors.EVENT_READ, port)
    conns = {}   # socket -> [deadline, bytes read]
    if ready_fd is not None:
        os.write(ready_fd, b"r")
        os.close(ready_fd)
    else:
        print("ready (lite, no TLS on 443)"
              + (f" ({args.workers} workers)" if args.workers > 1 else ""), flush=True)
    last_sweep = time.monotonic()

    def drop(c):
        sel.unregister(c)
        del conns[c]
        c.close()

    while not stop:
        try:
            events = sel.select(1.0)
        except InterruptedError:
            continue
        now = time.monotonic()
        for key, _ in events:
            sock = key.fileobj
            if sock not in conns:                  # a listener
                port = key.data
                for _ in range(64):
                    try:
                        c, peer = sock.accept()
                    except OSError:
                        break
                    host.note(peer, port)
                    if port in greet:
                        try:
                            c.send(greet[port])
                        except OSError:
                            pass
                        c.close()
                    else:
                        c.setblocking(False)
                        sel.register(c, selectors.EVENT_READ)
                        conns[c] = [now + IDLE_S, b""]
                continue
            try:
                d = sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            st = conns[sock]
            st[1] += d
            if (not d or b"\r\n\r\n" in st[1] or b"\n\n" in st[1]
                    or len(st[1]) > MAX_REQUEST):
                if d:
                    try:
                        sock.send(http)
                    except OSError:
                        pass
                drop(sock)
        if now - last_sweep >= 1.0:
            last_sweep = now
            for c in [c for c, st in conns.items() if st[0] < now]:
                drop(c)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ports", default="22,25,80,443")
    ap.add_argument("--workers", type=int, default=1,
                    help="processes sharing the ports (SO_REUSEPORT), 1..64")
    ap.add_argument("--backlog", type=int, default=1024)
    ap.add_argument("--lite", action="store_true",
                    help="selector loop, no asyncio, no TLS (load runs)")
    args = ap.parse_args()
    if not 1 <= args.workers <= 64:
        ap.error("--workers must be 1..64")
    if not 1 <= args.backlog <= 65535:
        ap.error("--backlog must be 1..65535")
    return args


def die_with_parent():
    """A forked worker gets SIGTERM when the first process dies (Linux)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)   # PR_SET_PDEATHSIG
    except Exception:
        pass


def start_workers(args):
    """Fork args.workers - 1 processes; return their PIDs once every one
    listens (each writes one byte on a pipe)."""
    pids = []
    rfd, wfd = os.pipe()
    for _ in range(args.workers - 1):
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            die_with_parent()
            code = 0
            try:
                if args.lite:
                    serve_lite(Host(args.name, args.log, None), args, wfd)
                else:
                    asyncio.run(main(args, ready_fd=wfd))
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    os.close(wfd)
    got = 0
    while got < len(pids):
        b = os.read(rfd, 64)   # EOF if every writer is gone
        if not b:
            break
        got += len(b)
    os.close(rfd)
    if got < len(pids):
        stop_workers(pids)
        sys.exit("banner.py: a worker did not start")
    return pids


def stop_workers(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass


async def main(args, ready_fd=None):
    reuse = args.workers > 1

    tls = None
    if args.cert and args.key and os.path.exists(args.cert):
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
    host = Host(args.name, args.log, tls)

    loop = asyncio.get_running_loop()
    # scanners drop connections mid-handshake: keep that out of the log
    loop.set_exception_handler(lambda _loop, _ctx: None)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    loops = []
    for port in (int(p) for p in args.ports.split(",")):
        for family in (socket.AF_INET, socket.AF_INET6):
            loops.append(asyncio.create_task(
                host.serve(listener(family, port, reuse, args.backlog), port)))
    if ready_fd is not None:
        os.write(ready_fd, b"r")
        os.close(ready_fd)
    else:
        print("ready" + ("" if tls else " (no TLS on 443)")
              + (f" ({args.workers} workers)" if reuse else ""), flush=True)
    await stop.wait()
    for t in loops:
        t.cancel()


if __name__ == "__main__":
    ARGS = parse_args()
    WORKERS = start_workers(ARGS) if ARGS.workers > 1 else []
    try:
        if ARGS.lite:
            serve_lite(Host(ARGS.name, ARGS.log, None), ARGS)
        else:
            asyncio.run(main(ARGS))
    except KeyboardInterrupt:
        pass
    finally:
        stop_workers(WORKERS)
    sys.exit(0)
