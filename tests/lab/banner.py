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


def listener(family, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::", port))
    else:
        s.bind(("0.0.0.0", port))
    s.listen(1024)
    s.setblocking(False)
    return s


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ports", default="22,25,80,443")
    args = ap.parse_args()

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
                host.serve(listener(family, port), port)))
    print("ready" + ("" if tls else " (no TLS on 443)"), flush=True)
    await stop.wait()
    for t in loops:
        t.cancel()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
