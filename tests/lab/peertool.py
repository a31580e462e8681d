#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An independent peer of choreo's peer protocol, version 1, written from
docs/protocol.md alone (standard library only). A DNS node (client), a
gateway (server, for self-tests), a node of a controller and a controller,
and the lab's attacks on a gateway and on a controller.

  send CHANGE...  as a DNS node: handshake, one CHANGES frame, wait for its ACK
  ping            as a DNS node: handshake, PING, wait for the PONG
  serve           as a gateway: accept DNS nodes, print their changes, ACK 0
                  (ESTALE when --digest is given and the frame's differs)
  join [LEARNED...]  as a DNS node or a gateway (--role) of a controller: JOIN
                  (--claim), a REPORT (--report), a LEARNED of the bindings
                  given ("learned SOURCE ADDR MS"), then --stay seconds,
                  answering ASSIGN with ASSIGNED and CHANGES with ACK 0 and
                  printing them (a CHANGES a gateway would refuse is marked)
  fakectl         as a controller (--peer-name NODE=ROLE,...): accepts its
                  nodes, checks what they send as a controller does, and does
                  what stdin says, one command a line, one outcome a line
                  (see fakectl() below: wait, changes, assign, frame, report)
  attack NAME     one attack on a gateway, or with --peer-role controller on a
                  controller (below), one line of outcome
  digest FILE     the configuration digest of a choreo.conf's [service] sections
  selftest        client against server in-process, HKDF vectors, every attack

A CHANGE is one argument (MS: milliseconds; N: index of the [service]):
  open ADDR MS [svc=N]             "open 203.0.113.7 5000"
  bind ASKER ADDR MS [svc=N]       "bind 198.18.1.1 203.0.113.7 7000"
  scoped PREFIX ADDR MS [svc=N]    "scoped 198.18.7.0/24 203.0.113.7 5000"
IPv6 addresses work the same; svc defaults to --service.

Attacks (client side; --stage hello attacks the HELLO, --stage data a CHANGES
after a valid handshake; --variant picks a flavour, default the first):
  wrongkey   HELLO tagged with another PSK (same key id)
  keyid      HELLO with key id 65535 (65534), one the gateway does not hold
  replay     a real session's HELLO, PROOF, CHANGES resent on a new connection
  duplicate  a valid CHANGES frame sent twice (same sequence number)
  reorder    CHANGES with sequence 3, then one with sequence 2
  truncate   half a frame, then the write side shut          [--stage]
  hugelen    a header announcing 0xFFFFFFFF bytes of payload  [--stage]
  bitflip    one bit flipped            [--variant payload|tag] [--stage]
  oldtime    timestamp 60 s off   [--variant past|future]    [--stage]
  role       HELLO claiming [--variant gateway|controller|name|server|given]
  early      CHANGES instead of PROOF, after the WELCOME
  bigcount   CHANGES counts    [--variant over|short|zero]: 24001 changes,
             more than the length holds, none
  badchange  one change out of range [--variant kind|family|reserved|srclen|
             bindlen|opensrc|addrbits|hostbits|ms0|mslong|service|given]
             (given: the --change as written, e.g. an address outside the
             pool, or svc=N past the last service)
  slowloris  --count sockets sending a HELLO one byte per --interval s, and
             meanwhile one valid handshake (locked out while 64 are pending?)
             from --probe-source; --source A,B,... spreads the sockets over
             those local addresses in turn
With --peer-role controller (--peer-name the controller's name, --name and
--role the node posed as), the data frame of duplicate, reorder, replay and
the staged attacks is a REPORT after a valid JOIN, and these attack the
controller's link after the handshake:
  prejoin    [--variant report|learned|assigned|ack|leave|changes] as the
             first frame, before any JOIN
  rejoin     a valid JOIN, then a second one
  stalejoin  JOIN with another services digest
  claim      JOIN with the --claim given (EPOCH:BITS/BLOCK/SHARE,...): slices
             claimed by a gateway, block_bits not the controller's, ...
  learned    a valid JOIN, then LEARNED [--variant given (the --change, kind
             learned), open, bind (another kind), more (more = 1), count0,
             countover (24001), short (count past the bytes), ms0, mslong,
             srclen (24), service (65535), digest (another)]
  ack        a valid JOIN, then an ACK of a commit never sent
  assigned   a valid JOIN, then ASSIGNED of --epoch, never sent
  leave      a valid JOIN, then LEAVE [--variant plain|payload (8 bytes)]
  report     a valid JOIN, then REPORT [--variant control (a BEL), del (0x7f),
             empty, long (1025 bytes), short (length past the bytes), given
             (--text)]
Each prints "ATTACK: what it did -> what came back; refused|ACCEPTED" (NOT RUN
when a valid JOIN before it was refused). Refused means the peer closed the
connection without an answer that would mean it took the frame.

The PSK file's bytes are the secret, trailing newlines stripped. Exit status:
0 done (ACK result 0; attack refused), 1 otherwise, 2 usage error.
"""
import argparse
import collections
import dataclasses
import hashlib
import hmac
import ipaddress
import secrets
import select
import socket
import struct
import sys
import threading
import time

# ---- constants (docs/protocol.md) ---------------------------------------------

MAGIC = b"chor"
VERSION = 1
HELLO, WELCOME, PROOF, CHANGES, ACK, PING, PONG, WINDOWS = 1, 2, 3, 16, 17, 18, 19, 20
JOIN, LEARNED, REPORT, ASSIGN, ASSIGNED, LEAVE = 32, 33, 34, 35, 36, 37  # the controller's
TYPE_NAMES = {HELLO: "HELLO", WELCOME: "WELCOME", PROOF: "PROOF",
              CHANGES: "CHANGES", ACK: "ACK", PING: "PING", PONG: "PONG",
              WINDOWS: "WINDOWS", JOIN: "JOIN", LEARNED: "LEARNED", REPORT: "REPORT",
              ASSIGN: "ASSIGN", ASSIGNED: "ASSIGNED", LEAVE: "LEAVE"}
HEADER = struct.Struct(">4sBBHIQQ")  # magic version type key_id N seq timestamp
TAG_LEN = 32
MAX_PAYLOAD = 1048576
MAX_HANDSHAKE_PAYLOAD = 1024
CHANGES_HEAD = 4 + 32 + 2  # commit_id, config_digest, count
CHANGE_LEN = 42
MAX_CHANGES = 24000
CHANGE_MAX_MS = 8 * 24 * 3600 * 1000  # 691 200 000
CLOCK_FUDGE_MS = 30000
HANDSHAKE_S = 5.0
MAX_UNAUTHENTICATED = 64
PING_IDLE_S, SILENCE_S = 10.0, 30.0
ESTALE = -116
ROLES = (b"dns", b"gateway", b"controller")
NAME_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
BIND, OPEN, OPEN_SCOPED, KIND_LEARNED = 1, 2, 3, 4
KIND_WORDS = {"bind": BIND, "open": OPEN, "scoped": OPEN_SCOPED, "learned": KIND_LEARNED}
DNS_KINDS = (BIND, OPEN, OPEN_SCOPED)  # what a DNS node's CHANGES may carry
CTL_KINDS = (KIND_LEARNED,)            # what a controller's CHANGES may carry
MAX_SERVICES = 256                     # entries of an assignment
MAX_BLOCK_BITS = 16
REPORT_MAX = 1024                      # bytes of a REPORT's text

assert HEADER.size == 28


class Refused(Exception):
    """A frame failed a check (ours or the peer's): the connection is closed."""


class PeerClosed(Exception):
    """The peer closed the connection (EOF, reset)."""


class Quiet(Exception):
    """Nothing came back in time; the connection is still open."""


# ---- HKDF-SHA256 (RFC 5869) and the protocol's keys ------------------------------

def hkdf_extract(salt, ikm):
    # RFC 5869 2.2: no salt (K_hello's) means HashLen zero bytes; HMAC pads
    # an empty key to the same block, so either gives the same PRK.
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length):
    assert length <= 255 * 32
    okm, block, counter = b"", b"", 0
    while len(okm) < length:
        counter += 1
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def hkdf(ikm, salt, info, length=32):
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)


def lv(data):
    """u8 len || data."""
    if len(data) > 255:
        raise ValueError("field longer than 255 bytes")
    return bytes([len(data)]) + data


def k_hello(psk, key_id):
    return hkdf(psk, b"", b"choreo v1 hello\0" + struct.pack(">H", key_id))


def direction_keys(psk, key_id, client_nonce, server_nonce,
                   client_role, client_name, server_role, server_name):
    """(K_c2s, K_s2c) of one connection."""
    salt = client_nonce + server_nonce
    tail = (struct.pack(">H", key_id) + lv(client_role) + lv(client_name)
            + lv(server_role) + lv(server_name))
    return tuple(hkdf(psk, salt, b"choreo v1 " + d + b"\0" + tail)
                 for d in (b"c2s", b"s2c"))


def read_psk(path):
    with open(path, "rb") as f:
        psk = f.read().rstrip(b"\r\n")
    if not 32 <= len(psk) <= 1024:
        raise ValueError(f"{path}: the secret is {len(psk)} bytes, not 32-1024")
    return psk


# ---- frames ---------------------------------------------------------------------

Frame = collections.namedtuple("Frame", "type key_id seq ts payload raw")


def now_ms():
    return int(time.time() * 1000)


def encode_frame(key, ftype, key_id, seq, payload, ts=None, length=None):
    """header || payload || HMAC-SHA256(key, header || payload). `length`
    overrides the header's N (attacks only)."""
    head = HEADER.pack(MAGIC, VERSION, ftype, key_id,
                       len(payload) if length is None else length,
                       seq, now_ms() if ts is None else ts)
    return head + payload + hmac.new(key, head + payload, hashlib.sha256).digest()


class Reader:
    """A bounded reader of a payload: any byte out of place is Refused."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise Refused("payload too short")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def u8(self):
        return self.take(1)[0]

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def name(self):
        n = self.take(self.u8())
        if not n or len(n) > 63 or not set(n) <= NAME_BYTES:
            raise Refused(f"bad node name {n!r}")
        return n

    def role(self):
        r = self.take(self.u8())
        if r not in ROLES:
            raise Refused(f"unknown role {r!r}")
        return r

    def end(self):
        if self.pos != len(self.data):
            raise Refused(f"{len(self.data) - self.pos} bytes past the payload's end")


# Payloads (docs/protocol.md): HELLO nonce role name server_name; WELCOME nonce
# role name; PROOF the transcript hash; ACK and PING/PONG fixed formats.
ACK_FMT, TOKEN_FMT = ">IiH", ">Q"  # commit_id result applied; token


def hello_payload(nonce, role, name, server_name):
    return nonce + lv(role) + lv(name) + lv(server_name)


def welcome_payload(nonce, role, name):
    return nonce + lv(role) + lv(name)


def parse(payload, *fields):
    """A payload's fields in order, and nothing after them: "role", "name",
    or a struct format ("32s" for a nonce or a hash, ACK_FMT, TOKEN_FMT)."""
    r, out = Reader(payload), []
    for f in fields:
        out += ([r.role()] if f == "role" else [r.name()] if f == "name"
                else list(struct.unpack(f, r.take(struct.calcsize(f)))))
    r.end()
    return out


# ---- changes ----------------------------------------------------------------------

@dataclasses.dataclass
class Change:
    kind: int
    family: int
    src_len: int
    service: int
    ms: int
    addr: bytes  # 16 bytes
    src: bytes   # 16 bytes
    reserved: int = 0

    def encode(self):
        return struct.pack(">BBBBHI16s16s", self.kind, self.family, self.src_len,
                           self.reserved, self.service, self.ms, self.addr, self.src)

    def __str__(self):
        n = 4 if self.family == 4 else 16
        ip = lambda b: str(ipaddress.ip_address(b[:n]))
        addr = ip(self.addr)
        if self.family not in (4, 6):
            return f"kind {self.kind} family {self.family} {self.encode().hex()}"
        what = {BIND: f"bind {ip(self.src)} {addr}", OPEN: f"open {addr}",
                OPEN_SCOPED: f"scoped {ip(self.src)}/{self.src_len} {addr}",
                KIND_LEARNED: f"learned {ip(self.src)} {addr}"}
        return f"{what.get(self.kind, f'kind {self.kind}')} {self.ms} svc={self.service}"


def parse_change_text(text, service=0):
    """"open ADDR MS", "bind ASKER ADDR MS", "scoped PREFIX ADDR MS",
    "learned SOURCE ADDR MS", each optionally followed by svc=N."""
    words = text.split()
    if words and words[-1].startswith("svc="):
        service = int(words.pop()[4:])
    if not words or words[0] not in KIND_WORDS or len(words) != (3 if words[0] == "open" else 4):
        raise ValueError(f"bad change {text!r}")
    kind = KIND_WORDS[words[0]]
    addr, ms = ipaddress.ip_address(words[-2]), int(words[-1])
    if kind == OPEN:
        src, src_len = bytes(16), 0
    else:
        net = ipaddress.ip_network(words[1], strict=True)
        if kind in (BIND, KIND_LEARNED) and net.prefixlen != net.max_prefixlen:
            raise ValueError(f"bad asker {words[1]!r}")
        if net.version != addr.version:
            raise ValueError(f"{text!r}: families differ")
        src, src_len = net.network_address.packed.ljust(16, b"\0"), net.prefixlen
    return Change(kind, addr.version, src_len, service, ms, addr.packed.ljust(16, b"\0"), src)


def decode_change(r, kinds=DNS_KINDS):
    """One change from untrusted bytes, checked as docs/protocol.md says; the
    service's range is the caller's (it depends on the digest). `kinds`: the
    kinds this sender may send (a DNS node's CHANGES: bind, open, open_scoped;
    a controller's and a LEARNED: learned)."""
    kind, family, src_len, reserved, service, ms = struct.unpack(">BBBBHI", r.take(10))
    c = Change(kind, family, src_len, service, ms, r.take(16), r.take(16), reserved)
    if kind not in kinds:
        raise Refused(f"change kind {kind}")
    if family not in (4, 6):
        raise Refused(f"change family {family}")
    if reserved:
        raise Refused("change reserved byte not 0")
    n = 4 if family == 4 else 16
    if any(c.addr[n:]) or any(c.src[n:]):
        raise Refused("change bits set past the address")
    if kind in (BIND, KIND_LEARNED) and src_len != 8 * n:
        raise Refused(f"{'bind' if kind == BIND else 'learned'} with src_len {src_len}")
    if kind == OPEN and (src_len or any(c.src)):
        raise Refused("open with a source")
    if kind == OPEN_SCOPED:
        if not 1 <= src_len <= 8 * n:
            raise Refused(f"open_scoped with src_len {src_len}")
        if int.from_bytes(c.src[:n], "big") & ((1 << (8 * n - src_len)) - 1):
            raise Refused("open_scoped with host bits set")
    if not 1 <= ms <= CHANGE_MAX_MS:
        raise Refused(f"change ms {ms}")
    return c


def changes_payload(commit_id, digest, changes, count=None):
    body = b"".join(c if isinstance(c, bytes) else c.encode() for c in changes)
    return (struct.pack(">I", commit_id) + digest
            + struct.pack(">H", len(changes) if count is None else count) + body)


def windows_payload(digest, windows=(), more=False):
    body = b"".join(c if isinstance(c, bytes) else c.encode() for c in windows)
    return digest + bytes([1 if more else 0]) + struct.pack(">H", len(windows)) + body


def parse_windows(payload):
    """A WINDOWS payload: (digest, more, [Change]); every change open or open_scoped."""
    r = Reader(payload)
    digest, more, count = r.take(32), r.u8(), r.unpack(">H")
    if more > 1 or count > MAX_CHANGES:
        raise Refused(f"WINDOWS more {more} count {count}")
    if len(payload) != 32 + 1 + 2 + CHANGE_LEN * count:
        raise Refused(f"WINDOWS count {count} does not match its {len(payload)} bytes")
    windows = [decode_change(r) for _ in range(count)]
    r.end()
    if any(w.kind not in (OPEN, OPEN_SCOPED) for w in windows):
        raise Refused("WINDOWS with a change that is not a window")
    return digest, more == 1, windows


def parse_changes(payload, kinds=DNS_KINDS):
    r = Reader(payload)
    commit_id, digest, count = r.unpack(">I"), r.take(32), r.unpack(">H")
    if not 1 <= count <= MAX_CHANGES:
        raise Refused(f"CHANGES count {count}")
    if len(payload) != CHANGES_HEAD + CHANGE_LEN * count:
        raise Refused(f"CHANGES count {count} does not match its {len(payload)} bytes")
    changes = [decode_change(r, kinds) for _ in range(count)]
    r.end()
    return commit_id, digest, changes


def changes_head(payload):
    """(commit_id, digest, [Change]) read without the checks, for printing
    what a peer sent (raw: an observer shows garbage too)."""
    commit_id, digest, count = struct.unpack_from(">I32sH", payload)
    out, pos = [], CHANGES_HEAD
    while pos + CHANGE_LEN <= len(payload):
        k, f, sl, rs, sv, ms = struct.unpack_from(">BBBBHI", payload, pos)
        out.append(Change(k, f, sl, sv, ms, payload[pos + 10:pos + 26],
                          payload[pos + 26:pos + 42], rs))
        pos += CHANGE_LEN
    return commit_id, digest, out


# ---- the controller's payloads ---------------------------------------------------

def learned_payload(digest, changes, more=0, count=None):
    """LEARNED: the layout of WINDOWS (more = 0, count 1 .. 24 000, kind learned)."""
    body = b"".join(c if isinstance(c, bytes) else c.encode() for c in changes)
    return (digest + bytes([more])
            + struct.pack(">H", len(changes) if count is None else count) + body)


def parse_learned(payload):
    """A LEARNED payload: (digest, [Change]); more 0, count 1 .. 24 000, each
    change of kind learned."""
    r = Reader(payload)
    digest, more, count = r.take(32), r.u8(), r.unpack(">H")
    if more != 0 or not 1 <= count <= MAX_CHANGES:
        raise Refused(f"LEARNED more {more} count {count}")
    if len(payload) != 32 + 1 + 2 + CHANGE_LEN * count:
        raise Refused(f"LEARNED count {count} does not match its {len(payload)} bytes")
    changes = [decode_change(r, CTL_KINDS) for _ in range(count)]
    r.end()
    return digest, changes


@dataclasses.dataclass
class Assignment:
    """A DNS node's slices and shares (ASSIGN; a JOIN's claim): epoch, and per
    service (block_bits, block, share); block -1: none. Encoded as given, so
    that an attack can carry any value (block_bits 17, block 2^bits ...)."""
    epoch: int = 0
    entries: list = dataclasses.field(default_factory=list)

    def encode(self):
        return struct.pack(">QH", self.epoch, len(self.entries)) + b"".join(
            struct.pack(">BII", bits, block & 0xFFFFFFFF, share)
            for bits, block, share in self.entries)

    def __str__(self):
        return f"{self.epoch}:" + ",".join(f"{b}/{k}/{s}" for b, k, s in self.entries)


def parse_assignment_text(text):
    """"EPOCH:BITS/BLOCK/SHARE,..." (entry i is service i; BLOCK -1: none);
    "0:" is none (a gateway's claim, a DNS node's without one)."""
    epoch, _, rest = text.partition(":")
    entries = []
    for item in filter(None, rest.split(",")):
        bits, block, share = (int(x) for x in item.split("/"))
        entries.append((bits, block, share))
    return Assignment(int(epoch), entries)


def read_assignment(r, is_assign):
    """An assignment from untrusted bytes: n <= 256, epoch 0 only with n 0 (an
    ASSIGN never has epoch 0), each block_bits <= 16 and block -1 or below
    2^block_bits."""
    epoch, n = r.unpack(">Q"), r.unpack(">H")
    if n > MAX_SERVICES or (epoch == 0 and (n or is_assign)):
        raise Refused(f"assignment epoch {epoch} n {n}")
    if len(r.data) - r.pos != 9 * n:
        raise Refused(f"assignment n {n} does not match its {len(r.data) - r.pos} bytes")
    entries = []
    for _ in range(n):
        bits, block, share = r.u8(), r.unpack(">I"), r.unpack(">I")
        block = -1 if block == 0xFFFFFFFF else block
        if bits > MAX_BLOCK_BITS or not (block == -1 or 0 <= block < 1 << bits):
            raise Refused(f"assignment entry block_bits {bits} block {block}")
        entries.append((bits, block, share))
    r.end()
    return Assignment(epoch, entries)


def join_payload(digest, claim=None):
    return digest + (claim or Assignment()).encode()


def parse_join(payload):
    r = Reader(payload)
    digest = r.take(32)
    return digest, read_assignment(r, False)


def parse_assign(payload):
    return read_assignment(Reader(payload), True)


def report_payload(text, length=None):
    return struct.pack(">H", len(text) if length is None else length) + text


def parse_report(payload):
    """REPORT: u16 len || 1 .. 1024 bytes of printable ASCII."""
    r = Reader(payload)
    n = r.unpack(">H")
    if not 1 <= n <= REPORT_MAX:
        raise Refused(f"REPORT length {n}")
    text = r.take(n)
    r.end()
    if any(not 0x20 <= b <= 0x7e for b in text):
        raise Refused("REPORT with a byte outside 0x20 .. 0x7e")
    return text.decode()


def parse_assigned(payload):
    epoch = parse(payload, ">Q")[0]
    if epoch == 0:
        raise Refused("ASSIGNED epoch 0")
    return epoch


# ---- the configuration digest ----------------------------------------------------

def config_digest(path):
    """(digest, number of services) of a choreo.conf: its [service] sections
    in file order, defaults as choreo.conf(5) gives them."""
    sections, ttl = [], 5
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line.startswith("["):
                sections.append((line.strip("[]").split(), {}))
            elif line:
                key, _, value = line.partition("=")
                sections[-1][1][key.strip()] = value.strip()
                if sections[-1][0] == ["dns"] and key.strip() == "ttl":
                    ttl = int(value)
    services = [(head[1], kv) for head, kv in sections if head[0] == "service"]
    out = b"choreo services v1" + struct.pack(">H", len(services))
    for section, kv in services:
        dn = kv["name"].lower().rstrip(".") + "."
        pool = ipaddress.IPv4Network(kv["pool"])
        out += lv(section.encode()) + lv(dn.encode())
        out += bytes([4]) + pool.network_address.packed + bytes(12) + bytes([pool.prefixlen])
        if "pool6" in kv:
            pool6 = ipaddress.IPv6Network(kv["pool6"])
            out += bytes([6]) + pool6.network_address.packed + bytes([pool6.prefixlen])
        else:
            out += bytes(18)
        out += struct.pack(">5I", int(kv.get("window", ttl)), int(kv.get("grace", 2)),
                           int(kv.get("binding", 600)), int(kv.get("max_open", 16)),
                           int(kv.get("window_claims", 0)))
    return hashlib.sha256(out).digest(), len(services)


# ---- a connection: sequence numbers, keys, and the receiver's checks --------------

class Conn:
    def __init__(self, sock, key_id, seq_rule="next"):
        self.sock, self.key_id, self.seq_rule = sock, key_id, seq_rule
        self.k_tx = self.k_rx = None
        self.tx_seq, self.rx_last = 0, -1
        self.tx_bytes = self.rx_bytes = 0
        self.deadline = None  # the handshake's, time.monotonic()
        self.sent = []        # raw frames, for the replay attack

    def send_raw(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise PeerClosed(f"send failed ({type(e).__name__})") from None
        self.tx_bytes += len(data)
        self.sent.append(data)
        return data

    def frame(self, ftype, payload, key=None, **kw):
        """A frame with the next sequence number (the sender always adds 1)."""
        f = encode_frame(key or self.k_tx, ftype, self.key_id, self.tx_seq, payload, **kw)
        self.tx_seq += 1
        return f

    def send(self, ftype, payload, key=None, **kw):
        return self.send_raw(self.frame(ftype, payload, key, **kw))

    def recv_exact(self, n, timeout):
        buf = bytearray()
        while len(buf) < n:
            t = timeout
            if self.deadline is not None:
                t = self.deadline - time.monotonic()
                if t <= 0:
                    raise Refused("handshake not completed in time")
            self.sock.settimeout(t)
            try:
                chunk = self.sock.recv(min(n - len(buf), 65536))
            except socket.timeout:
                if self.deadline is not None:
                    raise Refused("handshake not completed in time") from None
                raise Quiet(f"nothing for {timeout:g} s") from None
            except OSError as e:
                raise PeerClosed(f"reset ({type(e).__name__})") from None
            if not chunk:
                raise PeerClosed(f"EOF after {len(buf)} of {n} bytes" if buf else "EOF")
            buf += chunk
            self.rx_bytes += len(chunk)
        return bytes(buf)

    def recv(self, expect, cap, key_for=None, timeout=None):
        """One frame, checked in docs/protocol.md's order; nothing of it is
        used (not even its sequence number) before every check passed.
        key_for(key_id) gives the tag's key, or None for a key id refused."""
        head = self.recv_exact(HEADER.size, timeout)
        magic, version, ftype, key_id, n, seq, ts = HEADER.unpack(head)
        # 1. header: magic, version, key id, length, before any allocation
        if magic != MAGIC:
            raise Refused(f"bad magic {magic.hex()}")
        if version != VERSION:
            raise Refused(f"version {version}")
        key = key_for(key_id) if key_for else (self.k_rx if key_id == self.key_id else None)
        if key is None:
            raise Refused(f"key id {key_id} refused")
        if n > cap:
            raise Refused(f"payload length {n} over the cap {cap}")
        # 2. payload and tag, the tag checked in constant time
        rest = self.recv_exact(n + TAG_LEN, timeout)
        payload, tag = rest[:n], rest[n:]
        if not hmac.compare_digest(tag, hmac.new(key, head + payload, hashlib.sha256).digest()):
            raise Refused(f"bad tag on a {n}-byte frame")
        # 3. sequence number
        if seq <= self.rx_last or (self.seq_rule == "next" and seq != self.rx_last + 1):
            raise Refused(f"sequence {seq} after {self.rx_last}")
        # 4. timestamp
        if abs(ts - now_ms()) > CLOCK_FUDGE_MS:
            raise Refused(f"timestamp {(ts - now_ms()) / 1000:+.1f} s off")
        # 5. a type this state expects (the payload is the caller's to parse)
        if ftype not in expect:
            raise Refused(f"unexpected type {TYPE_NAMES.get(ftype, ftype)}")
        self.rx_last = seq
        return Frame(ftype, key_id, seq, ts, payload, head + rest)


# ---- the client: a DNS node -------------------------------------------------------

class Client:
    def __init__(self, host, port, psk, key_id=1, name=b"dns1", role=b"dns",
                 peer_name=b"gw1", peer_role=b"gateway", timeout=5.0, source=None):
        self.host, self.port, self.psk, self.key_id = host, port, psk, key_id
        self.source = source  # local address to connect from (None: the kernel's choice)
        self.name, self.role, self.peer_name, self.peer_role = name, role, peer_name, peer_role
        self.timeout = timeout
        self.conn = None

    def connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout,
                                        source_address=(self.source, 0) if self.source else None)
        self.conn = Conn(sock, self.key_id)
        return self

    def close(self):
        self.conn.sock.close()

    def hello_frame(self, ts=None, length=None):
        self.nonce = secrets.token_bytes(32)
        self.hello = self.conn.frame(HELLO, hello_payload(self.nonce, self.role, self.name, self.peer_name),
                                     key=k_hello(self.psk, self.key_id), ts=ts, length=length)
        return self.hello

    def welcome(self):
        """Read the WELCOME, check it, derive the keys; returns the transcript hash."""
        kh = k_hello(self.psk, self.key_id)
        w = self.conn.recv({WELCOME}, MAX_HANDSHAKE_PAYLOAD, timeout=self.timeout,
                           key_for=lambda kid: kh if kid == self.key_id else None)
        nonce, role, name = parse(w.payload, "32s", "role", "name")
        if name != self.peer_name or role != self.peer_role:
            raise Refused(f"WELCOME from {name.decode()} ({role.decode()}), "
                          f"not {self.peer_name.decode()} ({self.peer_role.decode()})")
        c = self.conn
        c.k_tx, c.k_rx = direction_keys(self.psk, self.key_id, self.nonce, nonce,
                                        self.role, self.name, role, name)
        return hashlib.sha256(self.hello + w.raw).digest()

    def handshake(self):
        self.conn.send_raw(self.hello_frame())
        transcript = self.welcome()
        self.conn.send(PROOF, transcript)
        p = self.conn.recv({PROOF}, MAX_HANDSHAKE_PAYLOAD, timeout=self.timeout)
        if not hmac.compare_digest(parse(p.payload, "32s")[0], transcript):
            raise Refused("the server's PROOF does not match the transcript")
        # the gateway's windows, before anything else (protocol.md, WINDOWS);
        # a controller sends none: the node speaks first, with its JOIN
        self.windows, more = [], self.peer_role != b"controller"
        while more:
            f = self.conn.recv({WINDOWS}, MAX_PAYLOAD, timeout=self.timeout)
            _, more, got = parse_windows(f.payload)
            self.windows += got
        return self

    def next_data_frame(self, expect):
        """The next data frame of a type in `expect`, answering PINGs."""
        while True:
            f = self.conn.recv(expect | {PING, PONG}, MAX_PAYLOAD, timeout=self.timeout)
            if f.type == PING:
                self.conn.send(PONG, struct.pack(TOKEN_FMT, *parse(f.payload, TOKEN_FMT)))
            elif f.type in expect:
                return f

    def commit(self, changes, commit_id, digest):
        """One CHANGES frame and its ACK: (result, applied)."""
        self.conn.send(CHANGES, changes_payload(commit_id, digest, changes))
        got, result, applied = parse(self.next_data_frame({ACK}).payload, ACK_FMT)
        if got != commit_id:
            raise Refused(f"ACK for commit {got}, not {commit_id}")
        return result, applied

    # -- as a node of a controller (protocol.md, "The controller") --

    def join(self, digest, claim=None):
        """JOIN, the first frame after the handshake: the digest and the
        claim (a gateway's, and a DNS node's without one: epoch 0, n 0)."""
        self.conn.send(JOIN, join_payload(digest, claim))
        return self

    def report(self, text):
        self.conn.send(REPORT, report_payload(text.encode() if isinstance(text, str) else text))

    def learned(self, digest, changes):
        self.conn.send(LEARNED, learned_payload(digest, changes))

    def ping(self):
        token = secrets.randbits(64)
        self.conn.send(PING, struct.pack(TOKEN_FMT, token))
        if parse(self.next_data_frame({PONG}).payload, TOKEN_FMT)[0] != token:
            raise Refused("PONG with another token")


# ---- the server: a gateway ----------------------------------------------------------

class Gateway:
    """keys {key_id: psk}; peers {name: role} ([peer NAME] sections);
    digest None accepts any; services None leaves the index unchecked."""

    accepts = (b"dns",)  # the roles that connect to this server's role

    def __init__(self, name, keys, peers, digest=None, services=None, role=b"gateway",
                 seq_rule="next", handshake_s=HANDSHAKE_S, log=None):
        self.name, self.role, self.keys, self.peers = name, role, keys, peers
        self.hello_keys = {kid: k_hello(psk, kid) for kid, psk in keys.items()}
        self.digest, self.services, self.seq_rule = digest, services, seq_rule
        self.handshake_s, self.log = handshake_s, log or self.say
        self.lock = threading.Lock()
        self.unauthenticated = 0
        self.applied = []   # (commit_id, [Change]) in order
        self.closed = []    # why each connection ended
        self.lsock = None

    def say(self, line):
        with self.lock:
            print(line, flush=True)

    def stop(self):
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept()
        except OSError:
            pass
        self.lsock.close()

    def listen(self, host, port):
        self.lsock = socket.create_server((host, port), backlog=256,
                                          family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.listen_port = self.lsock.getsockname()[1]
        return self.listen_port

    def serve_forever(self):
        while True:
            try:
                sock, addr = self.lsock.accept()
            except OSError:
                return  # listening socket closed
            with self.lock:
                full = self.unauthenticated >= MAX_UNAUTHENTICATED
                if not full:
                    self.unauthenticated += 1
            if full:
                sock.close()  # at once
                self.note(f"{addr[0]}:{addr[1]}", "closed at once: 64 unauthenticated")
                continue
            threading.Thread(target=self.handle, args=(sock, addr), daemon=True).start()

    def note(self, who, what):
        with self.lock:
            self.closed.append(what)
        self.log(f"{who}: {what}")

    def handle(self, sock, addr):
        who = f"{addr[0]}:{addr[1]}"
        c = Conn(sock, None, self.seq_rule)
        c.deadline = time.monotonic() + self.handshake_s
        authenticated = False
        try:
            peer = self.handshake(c)
            with self.lock:
                self.unauthenticated -= 1
            authenticated, c.deadline = True, None
            self.log(f"{who}: {peer.decode()} authenticated, key id {c.key_id}")
            self.session(c, who, peer)
        except Refused as e:
            self.note(who, f"refused: {e}")
        except (PeerClosed, Quiet) as e:
            self.note(who, f"peer closed: {e}")
        finally:
            if not authenticated:
                with self.lock:
                    self.unauthenticated -= 1
            sock.close()

    def handshake(self, c):
        hello = c.recv({HELLO}, MAX_HANDSHAKE_PAYLOAD, key_for=self.hello_keys.get)
        cnonce, crole, cname, sname = parse(hello.payload, "32s", "role", "name", "name")
        configured = self.peers.get(cname)
        if configured is None:
            raise Refused(f"{cname.decode()} is not a configured peer")
        if configured not in self.accepts:
            raise Refused(f"{cname.decode()} is configured as {configured.decode()}, not "
                          + " or ".join(r.decode() for r in self.accepts))
        if crole != configured:
            raise Refused(f"{cname.decode()} claims role {crole.decode()}, configured "
                          f"{configured.decode()}")
        if sname != self.name:
            raise Refused(f"HELLO means {sname.decode()}, not us")
        c.key_id = hello.key_id
        snonce = secrets.token_bytes(32)
        welcome = c.send(WELCOME, welcome_payload(snonce, self.role, self.name),
                         key=self.hello_keys[c.key_id])
        c.k_rx, c.k_tx = direction_keys(self.keys[c.key_id], c.key_id, cnonce, snonce,
                                        crole, cname, self.role, self.name)
        transcript = hashlib.sha256(hello.raw + welcome).digest()
        proof = c.recv({PROOF}, MAX_HANDSHAKE_PAYLOAD)
        if not hmac.compare_digest(parse(proof.payload, "32s")[0], transcript):
            raise Refused("the client's PROOF does not match the transcript")
        c.send(PROOF, transcript)
        if self.role == b"gateway":  # a controller sends none
            c.send(WINDOWS, windows_payload(self.digest or bytes(32)))  # holds none
        return cname

    def session(self, c, who, peer=None):
        last_rx = time.monotonic()
        while True:
            if not select.select([c.sock], [], [], PING_IDLE_S)[0]:
                if time.monotonic() - last_rx >= SILENCE_S:
                    raise Refused(f"silent for {SILENCE_S:g} s")
                c.send(PING, struct.pack(TOKEN_FMT, secrets.randbits(64)))
                continue
            f = c.recv({CHANGES, PING, PONG}, MAX_PAYLOAD, timeout=SILENCE_S)
            last_rx = time.monotonic()
            if f.type == PING:
                c.send(PONG, struct.pack(TOKEN_FMT, *parse(f.payload, TOKEN_FMT)))
            elif f.type == PONG:
                parse(f.payload, TOKEN_FMT)
            else:
                self.apply(c, f, who)

    def apply(self, c, f, who):
        commit_id, digest, changes = parse_changes(f.payload)
        if self.digest is not None and not hmac.compare_digest(digest, self.digest):
            self.log(f"{who}: commit {commit_id}: digest {digest.hex()[:16]}... not ours: ESTALE")
            c.send(ACK, struct.pack(ACK_FMT, commit_id, ESTALE, 0))
            return
        for ch in changes:
            if self.services is not None and ch.service >= self.services:
                raise Refused(f"service {ch.service} past the configuration's {self.services}")
        with self.lock:
            self.applied.append((commit_id, changes))
        for ch in changes:
            self.log(f"{who}: commit {commit_id}: {ch}")
        c.send(ACK, struct.pack(ACK_FMT, commit_id, 0, len(changes)))


# ---- the server: a controller ----------------------------------------------------------

class CtlSession:
    """A node's connection to the controller, from its JOIN on."""

    def __init__(self, serial, c, name, role, who, claim):
        self.id, self.c, self.name, self.role, self.who = serial, c, name, role, who
        self.claim = claim
        self.send_lock = threading.Lock()  # the reader answers PINGs meanwhile
        self.events = []       # (type, value): REPORT text, LEARNED changes, ACK, ASSIGNED, LEAVE
        self.closed = None     # how it ended
        self.next_commit = 0   # the controller's commit ids, from 0 on each connection
        self.inflight = []     # commit ids sent and not yet acknowledged, in order
        self.epochs_sent = set()
        self.last_report = None

    def send(self, ftype, payload):
        with self.send_lock:
            return self.c.send(ftype, payload)


class Controller(Gateway):
    """The controller's side of protocol.md, "The controller": JOIN first (a
    digest other than ours, a gateway claiming slices, a DNS node's claim
    cut with other block_bits: refused), REPORT, LEARNED (gateways only),
    ACK of a CHANGES sent, ASSIGNED of an ASSIGN sent, LEAVE (DNS nodes
    only). It relays nothing by itself: request() sends what the caller
    wants (the lab's fake controller) and waits for the answer.
    block_bits: per service, or None (unchecked)."""

    accepts = (b"dns", b"gateway")

    def __init__(self, name, keys, peers, digest=None, services=None, block_bits=None, **kw):
        super().__init__(name, keys, peers, digest, services, role=b"controller", **kw)
        self.block_bits = block_bits
        self.cv = threading.Condition()  # sessions and their events (not self.lock: say())
        self.nodes = {}                  # name -> its latest CtlSession
        self.serial = 0

    def session(self, c, who, peer):
        role = self.peers[peer]
        while True:  # PING is the link's, answered in any state
            f = c.recv({JOIN, PING, PONG}, MAX_PAYLOAD, timeout=SILENCE_S)
            if f.type == PING:
                c.send(PONG, struct.pack(TOKEN_FMT, *parse(f.payload, TOKEN_FMT)))
            elif f.type == JOIN:
                break
        digest, claim = parse_join(f.payload)
        if self.digest is not None and not hmac.compare_digest(digest, self.digest):
            raise Refused(f"JOIN of {peer.decode()} with another services digest (stale)")
        if role == b"gateway" and claim.epoch:
            raise Refused(f"JOIN of gateway {peer.decode()} claims slices {claim}")
        if role == b"dns" and claim.epoch:
            if self.services is not None and len(claim.entries) != self.services:
                raise Refused(f"JOIN of {peer.decode()} claims {len(claim.entries)} services")
            for i, (bits, block, _) in enumerate(claim.entries):
                if self.block_bits is not None and block >= 0 and bits != self.block_bits[i]:
                    raise Refused(f"JOIN of {peer.decode()}: block_bits {bits} for service {i}")
        with self.cv:
            self.serial += 1
            sess = CtlSession(self.serial, c, peer, role, who, claim)
            self.nodes[peer] = sess
            self.cv.notify_all()
        self.log(f"{who}: {peer.decode()} ({role.decode()}) joined, claim {claim}")
        ended = "closed"
        try:
            self.node_frames(sess)
            ended = f"{peer.decode()} left (LEAVE): closed by the controller"
        except Refused as e:
            ended = f"refused by the controller: {e}"
            raise
        except (PeerClosed, Quiet) as e:
            ended = f"closed by {peer.decode()} ({e})"
            raise
        finally:
            with self.cv:
                sess.closed = sess.closed or ended
                self.cv.notify_all()

    def event(self, sess, ftype, value):
        with self.cv:
            sess.events.append((ftype, value))
            self.cv.notify_all()

    def node_frames(self, sess):
        c, name, last_rx, pinged = sess.c, sess.name.decode(), time.monotonic(), 0.0
        while True:
            if not select.select([c.sock], [], [], 1.0)[0]:
                idle = time.monotonic() - last_rx
                if idle >= SILENCE_S:
                    raise Refused(f"silent for {SILENCE_S:g} s")
                if idle >= PING_IDLE_S and time.monotonic() - pinged >= PING_IDLE_S:
                    sess.send(PING, struct.pack(TOKEN_FMT, secrets.randbits(64)))
                    pinged = time.monotonic()
                continue
            f = c.recv({REPORT, LEARNED, ACK, ASSIGNED, LEAVE, PING, PONG}, MAX_PAYLOAD,
                       timeout=SILENCE_S)
            last_rx = time.monotonic()
            if f.type == PING:
                sess.send(PONG, struct.pack(TOKEN_FMT, *parse(f.payload, TOKEN_FMT)))
            elif f.type == PONG:
                parse(f.payload, TOKEN_FMT)
            elif f.type == REPORT:
                sess.last_report = parse_report(f.payload)
                self.event(sess, REPORT, sess.last_report)
            elif f.type == LEARNED:
                if sess.role != b"gateway":
                    raise Refused(f"unexpected type LEARNED from DNS node {name}")
                digest, changes = parse_learned(f.payload)
                if self.digest is not None and not hmac.compare_digest(digest, self.digest):
                    raise Refused(f"LEARNED of {name} with another services digest (stale)")
                for ch in changes:
                    if self.services is not None and ch.service >= self.services:
                        raise Refused(f"service {ch.service} past the configuration's {self.services}")
                self.log(f"{sess.who}: {name}: LEARNED {'; '.join(map(str, changes))}")
                self.event(sess, LEARNED, changes)
            elif f.type == ACK:
                if sess.role != b"gateway":
                    raise Refused(f"unexpected type ACK from DNS node {name}")
                commit, result, applied = parse(f.payload, ACK_FMT)
                with self.cv:
                    if not sess.inflight or sess.inflight[0] != commit:
                        raise Refused(f"ACK of commit {commit}: nothing sent, or out of order")
                    sess.inflight.pop(0)
                self.event(sess, ACK, (commit, result, applied))
            elif f.type == ASSIGNED:
                if sess.role != b"dns":
                    raise Refused(f"unexpected type ASSIGNED from gateway {name}")
                epoch = parse_assigned(f.payload)
                if epoch not in sess.epochs_sent:
                    raise Refused(f"ASSIGNED of epoch {epoch}, never sent")
                self.event(sess, ASSIGNED, epoch)
            else:  # LEAVE
                if sess.role != b"dns":
                    raise Refused(f"unexpected type LEAVE from gateway {name}")
                parse(f.payload)
                self.event(sess, LEAVE, None)
                self.log(f"{sess.who}: {name} left")
                return

    # -- what a (fake) controller does with a joined node --

    def wait_node(self, name, timeout):
        """The node's session once it has joined and is still open, or None."""
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                sess = self.nodes.get(name)
                if sess and sess.closed is None:
                    return sess
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)

    def request(self, sess, ftype, payload, want=lambda ev: False, timeout=5.0, before=None):
        """Send one frame to a joined node and wait for an event that `want`s
        it, for the link's end, or for `timeout`: (event or None, how it ended
        or None). before(sess), under the lock, notes what is being sent."""
        with self.cv:
            start = len(sess.events)
            if before:
                before(sess)
        try:
            sess.send(ftype, payload)
        except PeerClosed as e:
            with self.cv:
                sess.closed = sess.closed or f"closed by {sess.name.decode()} ({e})"
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for ev in sess.events[start:]:
                    if want(ev):
                        return ev, None
                if sess.closed is not None:
                    return None, sess.closed
                left = end - time.monotonic()
                if left <= 0:
                    return None, None
                self.cv.wait(left)

    def changes(self, sess, changes, digest=None, timeout=5.0):
        """CHANGES with the session's next commit id: (commit, ACK or None, ended)."""
        with self.cv:
            commit = sess.next_commit
            sess.next_commit += 1
        payload = changes_payload(commit, digest or self.digest or bytes(32), changes)
        ev, ended = self.request(sess, CHANGES, payload, lambda e: e[0] == ACK and e[1][0] == commit,
                                 timeout, before=lambda s: s.inflight.append(commit))
        return commit, ev and ev[1], ended

    def assign(self, sess, a, timeout=5.0):
        """ASSIGN: (ASSIGNED epoch or None, ended)."""
        ev, ended = self.request(sess, ASSIGN, a.encode(),
                                 lambda e: e[0] == ASSIGNED and e[1] == a.epoch, timeout,
                                 before=lambda s: s.epochs_sent.add(a.epoch))
        return ev and ev[1], ended


def change_arg(text, service=0):
    """A change as text (parse_change_text), or "hex:" and its 42 bytes as given."""
    return bytes.fromhex(text[4:]) if text.startswith("hex:") else parse_change_text(text, service)


def ctl_command(ctl, words, timeout, digest):
    """One command of the fake controller (fakectl); its outcome, one line."""
    cmd, node = words[0], words[1].encode() if len(words) > 1 else b""
    if cmd == "wait":
        limit = float(words[2]) if len(words) > 2 else 30.0
        sess = ctl.wait_node(node, limit)
        if not sess:
            return f"wait {node.decode()}: not joined in {limit:g} s"
        return (f"joined {node.decode()} session {sess.id} role {sess.role.decode()} "
                f"claim {sess.claim}")
    if cmd == "report":
        with ctl.cv:
            sess = ctl.nodes.get(node)
        return f"report {node.decode()}: {sess.last_report if sess else None}"
    if cmd == "events":
        with ctl.cv:
            sess = ctl.nodes.get(node)
            evs = list(sess.events) if sess else []
        return f"events {node.decode()}: " + ", ".join(
            f"{TYPE_NAMES[t]} {v if t != LEARNED else '; '.join(map(str, v))}" for t, v in evs)
    sess = ctl.wait_node(node, timeout)
    if not sess:
        return f"{cmd} {node.decode()}: not joined in {timeout:g} s; nothing sent"
    rest = words[2:]
    if cmd == "changes":
        use = digest
        if rest and rest[0].startswith("digest="):
            use = bytes.fromhex(rest.pop(0)[7:])
        changes = [change_arg(t.strip()) for t in " ".join(rest).split(";") if t.strip()]
        commit, ack, ended = ctl.changes(sess, changes, use, timeout)
        what = f"changes {node.decode()} session {sess.id} commit {commit} ({len(changes)} changes) -> "
        if ack:
            return what + "ACK result=%d applied=%d" % ack[1:]
        return what + "no ACK; " + (ended or f"link open after {timeout:g} s")
    if cmd == "assign":
        a = parse_assignment_text(rest[0])
        epoch, ended = ctl.assign(sess, a, timeout)
        what = f"assign {node.decode()} session {sess.id} {a} -> "
        if epoch:
            return what + f"ASSIGNED epoch={epoch}; link open"
        return what + "no ASSIGNED; " + (ended or f"link open after {timeout:g} s")
    if cmd == "frame":
        names = {v: k for k, v in TYPE_NAMES.items()}
        ftype = names[rest[0]] if rest[0] in names else int(rest[0])
        payload = b"" if len(rest) < 2 or rest[1] == "-" else bytes.fromhex(rest[1])
        _, ended = ctl.request(sess, ftype, payload, timeout=timeout)
        return (f"frame {node.decode()} session {sess.id} {TYPE_NAMES.get(ftype, ftype)} "
                f"({len(payload)} bytes) -> " + (ended or f"link open after {timeout:g} s"))
    raise ValueError(f"unknown command {cmd!r}")


def fakectl(o, ctl):
    """The fake controller's commands, one a line on stdin, one outcome a line
    on stdout (what it logs goes to stderr):
      wait NODE [S]                  until NODE has joined (a new link after one ended)
      changes NODE [digest=HEX] CHANGE[;CHANGE...]   CHANGES, then its ACK or the end
      assign NODE EPOCH:BITS/BLOCK/SHARE,...         ASSIGN, then ASSIGNED or the end
      frame NODE TYPE HEX|-          any frame; does the node end the link?
      report NODE / events NODE      its last REPORT / what it sent since its JOIN
      quit"""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            print("bye", flush=True)
            return 0
        try:
            out = ctl_command(ctl, words, o.timeout, o.digest)
        except (ValueError, KeyError, IndexError, struct.error) as e:
            out = f"error: {type(e).__name__}: {e}"
        print(out, flush=True)
    return 0


# ---- a node of a controller (legitimate) ----------------------------------------------

def node_join(o, changes, say=None):
    """As a DNS node or a gateway: JOIN (with --claim), a REPORT (--report),
    LEARNED of the changes given, then --stay seconds answering PINGs,
    acknowledging ASSIGN (ASSIGNED) and CHANGES (ACK 0), printing each."""
    say = say or (lambda line: print(line, flush=True))
    t0 = time.monotonic()
    cl = attack_session(o).handshake()
    claim = parse_assignment_text(o.claim)
    cl.join(o.digest, claim)
    say(f"JOIN as {o.role.decode()} {o.name.decode()}, claim {claim}")
    if o.report:
        cl.report(o.report)
        say(f"REPORT {o.report!r}")
    if changes:
        cl.learned(o.digest, changes)
        say(f"LEARNED {'; '.join(map(str, changes))}")
    ended, end = None, time.monotonic() + o.stay
    try:
        while time.monotonic() < end:
            if not select.select([cl.conn.sock], [], [], max(0, min(1.0, end - time.monotonic())))[0]:
                continue
            f = cl.conn.recv({PING, PONG, ASSIGN, CHANGES}, MAX_PAYLOAD, timeout=o.timeout)
            if f.type == PING:
                cl.conn.send(PONG, struct.pack(TOKEN_FMT, *parse(f.payload, TOKEN_FMT)))
            elif f.type == ASSIGN:
                a = parse_assign(f.payload)
                say(f"ASSIGN {a}")
                if not o.no_assigned:
                    cl.conn.send(ASSIGNED, struct.pack(">Q", a.epoch))
                if getattr(o, "until_assign", False):
                    end = min(end, time.monotonic() + 1.0)  # its answer on its way, then go
            elif f.type == CHANGES:
                commit, _, raw = changes_head(f.payload)
                try:
                    parse_changes(f.payload, CTL_KINDS)
                    verdict = ""
                except Refused as e:
                    verdict = f" [a gateway refuses it: {e}]"
                say(f"CHANGES commit={commit}: {'; '.join(map(str, raw))}{verdict}")
                cl.conn.send(ACK, struct.pack(ACK_FMT, commit, 0, len(raw)))
    except (Refused, PeerClosed, Quiet, OSError) as e:
        ended = f"{type(e).__name__}: {e}"
    cl.close()
    el = time.monotonic() - t0
    say(f"join: {'link open after %.1f s' % el if not ended else 'ended after %.1f s: %s' % (el, ended)}")
    return 0 if not ended else 1


# ---- attacks ---------------------------------------------------------------------------

def observe(sock, timeout=2.0, until=()):
    """What the peer does next, read without checks: the frames it sends,
    until it closes, stays quiet `timeout` s, or sends a type in `until`.
    Returns ([(type, text)], how it closed or None, bytes received)."""
    seen, buf, rx, end = [], b"", 0, time.monotonic() + timeout
    while True:
        while len(buf) >= HEADER.size:
            _, _, t, _, n, seq, _ = HEADER.unpack_from(buf)
            if n > MAX_PAYLOAD or len(buf) < HEADER.size + n + TAG_LEN:
                break
            payload, buf = buf[HEADER.size:HEADER.size + n], buf[HEADER.size + n + TAG_LEN:]
            text = TYPE_NAMES.get(t, f"type {t}")
            if t == ACK and n == 10:
                text += " commit=%d result=%d applied=%d" % struct.unpack(ACK_FMT, payload)
            seen.append((t, text))
            if t in until:
                return seen, None, rx
        left = end - time.monotonic()
        if left <= 0:
            return seen, None, rx
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return seen, None, rx
        except OSError as e:
            return seen, f"reset ({type(e).__name__})", rx
        if not chunk:
            return seen, "EOF", rx
        buf, rx = buf + chunk, rx + len(chunk)


VARIANTS = {  # the first is the default
    "bitflip": ("payload", "tag"),
    "oldtime": ("past", "future"),
    "role": ("gateway", "controller", "name", "server", "given"),
    "bigcount": ("over", "short", "zero"),
    "badchange": ("kind", "family", "reserved", "srclen", "bindlen", "opensrc", "addrbits",
                  "hostbits", "ms0", "mslong", "service", "given"),
    # against a controller (--peer-role controller)
    "prejoin": ("report", "learned", "assigned", "ack", "leave", "changes"),
    "learned": ("given", "open", "bind", "more", "count0", "countover", "short", "ms0", "mslong",
                "srclen", "service", "digest"),
    "leave": ("plain", "payload"),
    "report": ("control", "del", "empty", "long", "short", "given"),
}
STAGED = ("truncate", "hugelen", "bitflip", "oldtime")
# Attacks on a controller: the link after the handshake (JOIN and what follows).
CTL_ATTACKS = ("prejoin", "rejoin", "stalejoin", "claim", "learned", "ack", "assigned",
               "leave", "report")
ATTACKS = ("wrongkey", "keyid", "replay", "duplicate", "reorder", "early", "role", "bigcount",
           "badchange", "slowloris") + STAGED + CTL_ATTACKS


@dataclasses.dataclass
class Outcome:
    name: str
    did: str = ""
    seen: list = dataclasses.field(default_factory=list)  # [(type, text)] that came back
    closed: str = None
    tx: int = 0
    rx: int = 0
    forbidden: tuple = (WELCOME, PROOF, ACK)  # answers that would mean "accepted"
    good: set = dataclasses.field(default_factory=set)  # commits to be applied once
    bad: set = dataclasses.field(default_factory=set)   # commits never to be applied
    spoilt: str = None  # the attack never happened (e.g. its JOIN was refused first)

    @property
    def refused(self):
        return (self.closed is not None and not self.spoilt
                and not any(t in self.forbidden for t, _ in self.seen))

    def line(self):
        back = ", ".join(text for _, text in self.seen) or "nothing"
        end = f"closed by the peer ({self.closed})" if self.closed else "connection still open"
        verdict = f"NOT RUN ({self.spoilt})" if self.spoilt else \
            "refused" if self.refused else "ACCEPTED"
        return (f"{self.name}: {self.did} -> {back}; {end} after {self.tx} bytes sent, "
                f"{self.rx} received; {verdict}")


def attack_session(opts, **over):
    kw = dict(key_id=opts.key_id, name=opts.name, role=opts.role, peer_name=opts.peer_name,
              peer_role=opts.peer_role, timeout=opts.timeout,
              source=(getattr(opts, "source", None) or "").split(",")[0] or None)
    psk = over.pop("psk", opts.psk)
    kw.update(over)
    return Client(opts.host, opts.port, psk, **kw).connect()


def changes_frame(opts, cl, out, changes=None, count=None, **frame_kw):
    """A CHANGES frame with a fresh commit id, marked as one never to apply."""
    commit = secrets.randbits(32)
    out.bad.add(commit)
    if changes is None:
        changes = [parse_change_text(opts.change, opts.service)]
    return cl.conn.frame(CHANGES, changes_payload(commit, opts.digest, changes, count), **frame_kw), commit


def is_ctl(opts):
    return opts.peer_role == b"controller"


def data_frame(opts, cl, out, **frame_kw):
    """The attack's data frame after a valid handshake: a CHANGES to a
    gateway; to a controller (after the JOIN) a REPORT, which draws no answer.
    Returns (frame, commit id or None)."""
    if not is_ctl(opts):
        return changes_frame(opts, cl, out, **frame_kw)
    text = f"peertool {opts.attack} seq {cl.conn.tx_seq}".encode()
    return cl.conn.frame(REPORT, report_payload(text), **frame_kw), None


def ctl_join(opts, cl, out, claim=None):
    """The JOIN that opens a controller session, and a look that it was taken
    (the link still open 0.2 s later): else the attack is spoilt."""
    claim = claim or parse_assignment_text(opts.claim)
    cl.join(opts.digest, claim)
    seen, closed, rx = observe(cl.conn.sock, 0.2)
    out.seen += seen
    cl.conn.rx_bytes += rx
    if closed:
        out.closed, out.spoilt = closed, f"its JOIN (claim {claim}) was refused first"
    return not closed


def finish(out, cl, send=(), observe_s=None):
    """Send the attack's bytes, then see what comes back."""
    if out.spoilt:
        cl.close()
        return out
    try:
        for data in send:
            cl.conn.send_raw(data)
    except PeerClosed as e:
        out.closed = str(e)
    seen, closed, rx = observe(cl.conn.sock, observe_s or cl.timeout)
    out.seen += seen
    out.closed = out.closed or closed
    out.tx, out.rx = cl.conn.tx_bytes, cl.conn.rx_bytes + rx
    cl.close()
    return out


def answered(cl, until=(ACK,), timeout=None):
    """The first answer to a frame the attack sent as a legitimate one."""
    seen, closed, rx = observe(cl.conn.sock, timeout or cl.timeout, until)
    cl.conn.rx_bytes += rx
    return (seen[-1][1] if seen else "nothing") + (f", closed ({closed})" if closed else ""), closed


def ctl_attack(opts, cl, out, name, v):
    """An attack on a controller's link after the handshake."""
    out.forbidden = ()  # a controller answers nothing a node sends: refused = closed
    cl.handshake()
    digest = opts.digest
    base = parse_change_text(opts.change if opts.change.startswith("learned") else
                             "learned 198.18.99.1 203.0.113.7 60000", opts.service)
    if name == "prejoin":
        ftype, payload = {
            "report": (REPORT, report_payload(b"before the join 1")),
            "learned": (LEARNED, learned_payload(digest, [base])),
            "assigned": (ASSIGNED, struct.pack(">Q", 1)),
            "ack": (ACK, struct.pack(ACK_FMT, 0, 0, 1)),
            "leave": (LEAVE, b""),
            "changes": (CHANGES, changes_payload(0, digest, [base]))}[v]
        out.did = f"{TYPE_NAMES[ftype]} ({len(payload)} bytes) as the first frame, before any JOIN"
        return finish(out, cl, [cl.conn.frame(ftype, payload)])
    claim = parse_assignment_text(opts.claim)
    if name == "stalejoin":
        other = bytes([digest[0] ^ 0xFF]) + digest[1:]
        out.did = f"JOIN with another services digest ({other.hex()[:16]}...), claim {claim}"
        return finish(out, cl, [cl.conn.frame(JOIN, join_payload(other, claim))])
    if name == "claim":
        out.did = f"JOIN as {opts.role.decode()} with the claim {claim} ({claim.encode().hex()})"
        return finish(out, cl, [cl.conn.frame(JOIN, join_payload(digest, claim))])
    ctl_join(opts, cl, out, claim)
    if name == "rejoin":
        out.did = f"JOIN (claim {claim}) taken, then a second JOIN"
        return finish(out, cl, [cl.conn.frame(JOIN, join_payload(digest, claim))])
    if name == "ack":
        commit = secrets.randbits(32)
        out.did = f"JOIN, then ACK of commit {commit} (no CHANGES was sent to us)"
        return finish(out, cl, [cl.conn.frame(ACK, struct.pack(ACK_FMT, commit, 0, 1))])
    if name == "assigned":
        out.did = f"JOIN, then ASSIGNED of epoch {opts.epoch} (never sent to us)"
        return finish(out, cl, [cl.conn.frame(ASSIGNED, struct.pack(">Q", opts.epoch))])
    if name == "leave":
        payload = b"" if v == "plain" else bytes(8)
        out.did = f"JOIN as {opts.role.decode()}, then LEAVE with {len(payload)} bytes of payload"
        return finish(out, cl, [cl.conn.frame(LEAVE, payload)])
    if name == "report":
        text = {"control": (b"queries 1 \x07 bell", None), "del": (b"queries 1\x7f", None),
                "empty": (b"", None), "long": (b"x" * (REPORT_MAX + 1), None),
                "short": (b"queries 1", 20), "given": (opts.text.encode(), None)}[v]
        payload = report_payload(*text)
        out.did = (f"JOIN, then REPORT ({v}): length field {struct.unpack_from('>H', payload)[0]}, "
                   f"{len(payload) - 2} bytes of text {payload[2:34]!r}{'...' if len(payload) > 34 else ''}")
        return finish(out, cl, [cl.conn.frame(REPORT, payload)])
    # LEARNED
    more, count, changes, use = 0, None, [base], digest
    if v == "open":
        changes = [dataclasses.replace(base, kind=OPEN, src_len=0, src=bytes(16))]
    elif v == "bind":
        changes = [dataclasses.replace(base, kind=BIND)]
    elif v == "more":
        more = 1
    elif v == "count0":
        changes = []
    elif v == "countover":
        changes = [base] * (MAX_CHANGES + 1)
    elif v == "short":
        count = 5
    elif v == "ms0":
        changes = [dataclasses.replace(base, ms=0)]
    elif v == "mslong":
        changes = [dataclasses.replace(base, ms=CHANGE_MAX_MS + 1)]
    elif v == "srclen":
        changes = [dataclasses.replace(base, src_len=24)]
    elif v == "service":
        changes = [dataclasses.replace(base, service=65535)]
    elif v == "digest":
        use = bytes([digest[0] ^ 0xFF]) + digest[1:]
    payload = learned_payload(use, changes, more, count)
    first = changes[0] if changes else None
    out.did = (f"JOIN, then LEARNED ({v}): more {more} count "
               f"{len(changes) if count is None else count}, {len(payload)} bytes"
               + (f", first change {first} ({first.encode().hex()})" if first else ""))
    return finish(out, cl, [cl.conn.frame(LEARNED, payload)])


def attack(opts):
    name, v = opts.attack, opts.variant or VARIANTS.get(opts.attack, ("",))[0]
    cl, out = attack_session(opts), Outcome(opts.attack)
    ctl = is_ctl(opts)
    what = "HELLO" if opts.stage == "hello" else "REPORT" if ctl else "CHANGES"
    if name in CTL_ATTACKS:
        if not ctl:
            raise ValueError(f"attack {name} is one on a controller (--peer-role controller)")
        return ctl_attack(opts, cl, out, name, v)
    if name in STAGED:
        # The frame attacked: the HELLO (--stage hello), or a CHANGES after a
        # valid handshake (to a controller: a REPORT after a valid JOIN).
        kw = {}
        if name == "oldtime":
            kw["ts"] = now_ms() + (60000 if v == "future" else -60000)
        if name == "hugelen":
            kw["length"] = 0xFFFFFFFF
        if opts.stage == "hello":
            frame = bytearray(cl.hello_frame(**kw))
        else:
            cl.handshake()
            if ctl:
                ctl_join(opts, cl, out)
            frame = bytearray(data_frame(opts, cl, out, **kw)[0])
            out.forbidden = () if ctl else (ACK,)
        if name == "oldtime":
            out.did = f"{what} stamped 60 s in the {v}"
        elif name == "hugelen":
            frame = frame[:HEADER.size]
            out.did = f"{what} header announcing 0xFFFFFFFF payload bytes, nothing after it"
        elif name == "truncate":
            frame = frame[:len(frame) // 2]
            out.did = f"{what} cut to {len(frame)} bytes, then SHUT_WR"
        else:
            at = (HEADER.size + (len(frame) - HEADER.size - TAG_LEN) // 2 if v == "payload"
                  else len(frame) - 1)
            frame[at] ^= 0x10
            out.did = f"{what} with bit 4 of byte {at} ({v}) flipped"
        if out.spoilt:
            return finish(out, cl)
        try:
            cl.conn.send_raw(bytes(frame))
            if name == "truncate":
                cl.conn.sock.shutdown(socket.SHUT_WR)
        except (PeerClosed, OSError) as e:
            out.closed = str(e)
        return finish(out, cl)
    if name in ("wrongkey", "keyid", "role"):
        if name == "wrongkey":
            cl.psk = secrets.token_bytes(32)
        elif name == "keyid":
            cl.key_id = cl.conn.key_id = 65535 if opts.key_id != 65535 else 65534
        elif v in ("gateway", "controller"):
            cl.role = v.encode()
        elif v in ("name", "server"):
            setattr(cl, "name" if v == "name" else "peer_name", b"intruder")
        out.did = (f"HELLO from {cl.name.decode()} as {cl.role.decode()} to {cl.peer_name.decode()}, "
                   f"key id {cl.key_id}" + (", tagged with another PSK" if name == "wrongkey" else ""))
        return finish(out, cl, [cl.hello_frame()])
    if name == "early":
        cl.conn.send_raw(cl.hello_frame())
        cl.welcome()
        out.did = f"{'JOIN' if ctl else 'CHANGES'} (seq 1, K_c2s) instead of PROOF, after the WELCOME"
        out.forbidden = (PROOF, ACK)
        early = (cl.conn.frame(JOIN, join_payload(opts.digest)) if ctl
                 else changes_frame(opts, cl, out)[0])
        return finish(out, cl, [early])
    cl.handshake()
    if ctl and not ctl_join(opts, cl, out):
        return finish(out, cl)
    # what a frame sent as a legitimate one gets: an ACK from a gateway;
    # from a controller nothing (the link stays open a while)
    wait = dict(until=(), timeout=0.5) if ctl else {}
    if name == "replay":
        frame, commit = data_frame(opts, cl, out)
        if commit is not None:
            out.bad.discard(commit)
            out.good.add(commit)
        cl.conn.send_raw(frame)
        answer, _ = answered(cl, **wait)
        recorded = list(cl.conn.sent)
        cl.close()
        out.did = (f"session 1's {what}" + (f" commit {commit}" if commit is not None else "")
                   + f" got {answer}; the {len(recorded)} frames "
                   f"it sent ({sum(map(len, recorded))} bytes) resent one by one on a new connection")
        out.forbidden = (PROOF, ACK)  # a replayed HELLO may get a WELCOME: it is authentic
        cl = attack_session(opts)
        for data in recorded:
            try:
                cl.conn.send_raw(data)
            except PeerClosed as e:
                out.closed = str(e)
                break
            seen, out.closed, rx = observe(cl.conn.sock, 0.5)
            out.seen, cl.conn.rx_bytes = out.seen + seen, cl.conn.rx_bytes + rx
            if out.closed:
                break
        return finish(out, cl, observe_s=0.2 if out.closed else None)
    if name == "duplicate":
        frame, commit = data_frame(opts, cl, out)
        if commit is not None:
            out.bad.discard(commit)
            out.good.add(commit)
        cl.conn.send_raw(frame)
        seq = HEADER.unpack_from(frame)[5]
        out.did = (f"{what} seq {seq}" + (f" commit {commit}" if commit is not None else "")
                   + f" (answered: {answered(cl, **wait)[0]}), then the same bytes again")
        if ctl:
            out.forbidden = ()
        return finish(out, cl, [frame])
    if name == "reorder":
        f2, commit = data_frame(opts, cl, out)
        f3, second = data_frame(opts, cl, out)
        out.bad.discard(second)  # a gap is allowed by "greater than the last"
        cl.conn.send_raw(f3)
        answer, out.closed = answered(cl, **wait)
        s2, s3 = HEADER.unpack_from(f2)[5], HEADER.unpack_from(f3)[5]
        out.did = (f"{what} seq {s3} (answered: {answer}), then seq {s2}"
                   + (" not sent" if out.closed else ""))
        out.forbidden = () if ctl else (ACK,)
        return finish(out, cl, [] if out.closed else [f2])
    if ctl:
        raise ValueError(f"attack {name} is one on a gateway")
    out.forbidden = (ACK,)
    if name == "bigcount":
        one = parse_change_text(opts.change, opts.service)
        changes, count = {"over": ([one] * (MAX_CHANGES + 1), None), "short": ([one], 5),
                          "zero": ([], 0)}[v]
        frame, _ = changes_frame(opts, cl, out, changes, count)
        out.did = (f"CHANGES ({v}): count {len(changes) if count is None else count}, "
                   f"{len(frame) - HEADER.size - TAG_LEN} bytes of payload")
        return finish(out, cl, [frame])
    if name == "badchange" and v == "given":
        bad = parse_change_text(opts.change, opts.service)
        out.did = f"CHANGES with a bad change (given): {bad}"
        return finish(out, cl, [changes_frame(opts, cl, out, [bad])[0]])
    if name == "badchange":
        change = parse_change_text("open 203.0.113.7 5000", opts.service)
        scoped = dict(kind=OPEN_SCOPED, src_len=24, src=bytes([198, 18, 7, 0]) + bytes(12))
        bad = dataclasses.replace(change, **{
            "kind": dict(kind=9), "family": dict(family=5), "reserved": dict(reserved=1),
            "srclen": dict(scoped, src_len=33), "bindlen": dict(kind=BIND, src_len=24),
            "opensrc": dict(kind=OPEN, src_len=0, src=bytes([198, 18, 7]) + bytes(13)),
            "addrbits": dict(addr=change.addr[:4] + b"\1" + bytes(11)),
            "hostbits": dict(scoped, src=bytes([198, 18, 7, 1]) + bytes(12)),
            "ms0": dict(ms=0), "mslong": dict(ms=CHANGE_MAX_MS + 1),
            "service": dict(service=65535)}[v])
        out.did = f"CHANGES with a bad change ({v}): {bad.encode().hex()}"
        return finish(out, cl, [changes_frame(opts, cl, out, [bad])[0]])
    raise ValueError(f"unknown attack {name!r}")


def slowloris(opts):
    """--count sockets, each sending a valid HELLO one byte per --interval s;
    when and after how many bytes the gateway closes each."""
    socks, start = [], time.monotonic()
    sources = (getattr(opts, "source", None) or "").split(",")
    for i in range(opts.count):
        cl = attack_session(opts, source=sources[i % len(sources)] or None)
        cl.conn.sock.setblocking(False)
        socks.append(dict(sock=cl.conn.sock, data=cl.hello_frame(), t0=time.monotonic(),
                          sent=0, closed=None, answered=False))
    # meanwhile, a DNS node with the right key: does it get in?
    probe = attack_session(opts, source=getattr(opts, "probe_source", None))
    try:
        probe.handshake()
        legit = "completed"
    except (Refused, PeerClosed, Quiet, OSError) as e:
        legit = f"failed ({e})"
    probe.close()
    tick, end = start, start + opts.duration
    while time.monotonic() < end:
        live = [x for x in socks if x["closed"] is None]
        if not live:
            break
        if time.monotonic() >= tick:
            for x in live:
                try:
                    x["sent"] += x["sock"].send(x["data"][x["sent"]:x["sent"] + 1])
                except OSError:
                    x["closed"] = time.monotonic() - x["t0"]
            tick += opts.interval
        wait = max(0, min(tick, end) - time.monotonic())
        ready = select.select([x["sock"] for x in live if x["closed"] is None], [], [], wait)[0]
        for x in live:
            if x["sock"] in ready:
                try:
                    data = x["sock"].recv(4096)
                except OSError:
                    data = b""
                x["answered"] |= bool(data)
                if not data:
                    x["closed"] = time.monotonic() - x["t0"]
    for x in socks:
        x["sock"].close()
    at_once = [x for x in socks if x["closed"] is not None and x["closed"] < 1.0]
    later = [x for x in socks if x["closed"] is not None and x["closed"] >= 1.0]
    still = len(socks) - len(at_once) - len(later)
    answered = sum(x["answered"] for x in socks)
    span = lambda v: "-" if not v else f"{min(v):g}" + (f"-{max(v):g}" if max(v) > min(v) else "")
    line = (f"slowloris: {len(socks)} sockets sending a HELLO at 1 byte per {opts.interval:g} s -> "
            f"{len(at_once)} closed at once ({span([x['sent'] for x in at_once])} bytes sent), "
            f"{len(later)} closed after {span([round(x['closed'], 1) for x in later])} s "
            f"({span([x['sent'] for x in later])} bytes sent), {still} still open at "
            f"{opts.duration:g} s, {answered} answered; a valid handshake meanwhile {legit}")
    ok = not still and not answered and len(later) <= MAX_UNAUTHENTICATED
    return line + ("; refused" if ok else "; ACCEPTED"), ok


# ---- selftest ---------------------------------------------------------------------------

# Every attack the selftest runs: (attack, options, what the gateway must have said).
SELFTEST_ATTACKS = [
    ("wrongkey", {}, "bad tag"), ("keyid", {}, "key id 65535 refused"),
    ("replay", {}, "bad tag"), ("duplicate", {}, "sequence 2 after 2"),
    ("reorder", {}, "sequence 3 after 1"), ("reorder", dict(seq_rule="gt"), "sequence 2 after 3"),
    ("early", {}, "unexpected type CHANGES"),
    ("truncate", dict(stage="hello"), "EOF after"), ("truncate", {}, "EOF after"),
    ("hugelen", dict(stage="hello"), "4294967295 over the cap 1024"),
    ("hugelen", {}, "4294967295 over the cap 1048576"),
    ("oldtime", dict(stage="hello"), "timestamp -60"), ("oldtime", {}, "timestamp -60"),
    ("oldtime", dict(variant="future"), "timestamp +60"),
    ("bitflip", dict(stage="hello"), "bad tag"), ("bitflip", dict(stage="hello", variant="tag"), "bad tag"),
    ("bitflip", {}, "bad tag"), ("bitflip", dict(variant="tag"), "bad tag"),
    ("role", {}, "claims role gateway"), ("role", dict(variant="controller"), "claims role controller"),
    ("role", dict(variant="name"), "intruder is not a configured peer"),
    ("role", dict(variant="server"), "HELLO means intruder"),
    ("role", dict(variant="given", name=b"gw2", role=b"gateway"), "gw2 is configured as gateway"),
    ("bigcount", {}, "count 24001"), ("bigcount", dict(variant="short"), "does not match"),
    ("bigcount", dict(variant="zero"), "count 0"),
] + [("badchange", dict(variant=v), why) for v, why in zip(VARIANTS["badchange"], (
    "kind 9", "family 5", "reserved", "src_len 33", "bind with src_len 24", "open with a source",
    "past the address", "host bits", "ms 0", "ms 691200001", "service 65535"))] + [
    ("badchange", dict(variant="given", change="open 203.0.113.7 5000 svc=2"), "service 2 past")]


# Attacks on the controller: (attack, options, what the controller must have said).
CTL_SELFTEST_ATTACKS = [
    ("prejoin", dict(variant=v), f"unexpected type {t}") for v, t in (
        ("report", "REPORT"), ("learned", "LEARNED"), ("assigned", "ASSIGNED"), ("ack", "ACK"),
        ("leave", "LEAVE"), ("changes", "CHANGES"))] + [
    ("rejoin", {}, "unexpected type JOIN"), ("stalejoin", {}, "another services digest"),
    ("claim", dict(name=b"gw2", role=b"gateway", claim="1:1/0/4,1/1/4"), "claims slices"),
    ("claim", dict(claim="1:2/0/4,1/1/4"), "block_bits 2 for service 0"),
    ("claim", dict(claim="1:1/0/4"), "claims 1 services"),
    ("learned", {}, "unexpected type LEARNED from DNS node"),
] + [("learned", dict(name=b"gw2", role=b"gateway", variant=v), why) for v, why in (
    ("open", "change kind 2"), ("bind", "change kind 1"), ("more", "LEARNED more 1"),
    ("count0", "count 0"), ("countover", "count 24001"), ("short", "does not match"),
    ("ms0", "ms 0"), ("mslong", "ms 691200001"), ("srclen", "learned with src_len 24"),
    ("service", "service 65535"), ("digest", "another services digest"))] + [
    ("ack", dict(name=b"gw2", role=b"gateway"), "nothing sent"),
    ("ack", {}, "unexpected type ACK from DNS node"),
    ("assigned", {}, "never sent"),
    ("assigned", dict(name=b"gw2", role=b"gateway"), "unexpected type ASSIGNED from gateway"),
    ("leave", dict(name=b"gw2", role=b"gateway"), "unexpected type LEAVE from gateway"),
    ("leave", dict(variant="payload"), "past the payload's end"),
] + [("report", dict(variant=v), why) for v, why in (
    ("control", "outside 0x20"), ("del", "outside 0x20"), ("empty", "REPORT length 0"),
    ("long", "REPORT length 1025"), ("short", "payload too short"))] + [
    ("duplicate", {}, "sequence 3 after 3"), ("reorder", {}, "sequence 4 after 2"),
    ("replay", {}, "bad tag"), ("wrongkey", {}, "bad tag"), ("keyid", {}, "key id 65535 refused"),
    ("role", {}, "claims role gateway"), ("early", {}, "unexpected type JOIN"),
    ("oldtime", {}, "timestamp -60"), ("bitflip", {}, "bad tag"),
]


def selftest_controller(check, psk, digest):
    """The controller's side: a node joins, reports and learns; a fake
    controller's CHANGES and ASSIGN are answered; every attack on the
    controller's link is refused for its reason."""
    peers = {b"dns1": b"dns", b"dns2": b"dns", b"gw2": b"gateway", b"gw3": b"gateway"}
    ctl = Controller(b"ctl", {1: psk}, peers, digest, services=2, block_bits=[1, 1],
                     log=lambda line: None)
    opts = argparse.Namespace(host="127.0.0.1", port=ctl.listen("127.0.0.1", 0), psk=psk, key_id=1,
                              name=b"dns1", role=b"dns", peer_name=b"ctl", peer_role=b"controller",
                              timeout=2.0, digest=digest, service=0, change="open 203.0.113.7 5000",
                              stage="data", variant=None, claim="0:", epoch=1 << 40,
                              text="queries 1", report=None, stay=0.0, no_assigned=False)
    threading.Thread(target=ctl.serve_forever, daemon=True).start()
    learned = parse_change_text("learned 198.18.1.1 203.0.113.7 660000")

    def node(label, lines, **over):
        o = argparse.Namespace(**dict(vars(opts), **over))
        t = threading.Thread(target=lambda: lines.append(node_join(o, [learned] if o.role == b"gateway"
                                                                   else [], lines.append)))
        t.start()
        return t

    lines = []
    t = node("gw2", lines, name=b"gw2", role=b"gateway", report="commits 1 failures 0", stay=1.0)
    t.join(5)
    sess = ctl.nodes.get(b"gw2")
    check("controller: a gateway joins, reports, reports a binding it learned",
          sess and sess.last_report == "commits 1 failures 0" and sess.events[-1] == (LEARNED, [learned])
          and lines[-1] == 0, "; ".join(map(str, lines)))
    lines = []
    t = node("dns1", lines, claim="0:", stay=2.0)
    sess = ctl.wait_node(b"dns1", 3)
    epoch, ended = ctl.assign(sess, Assignment(7, [(1, 0, 4), (1, 1, 2)])) if sess else (None, "no JOIN")
    t.join(5)
    check("controller: ASSIGN to a DNS node, answered ASSIGNED", epoch == 7 and lines[-1] == 0,
          f"ASSIGNED {epoch} {ended or ''}; " + "; ".join(map(str, lines)))
    lines = []
    t = node("gw3", lines, name=b"gw3", role=b"gateway", stay=2.0)
    sess = ctl.wait_node(b"gw3", 3)
    commit, ack, ended = ctl.changes(sess, [learned]) if sess else (None, None, "no JOIN")
    t.join(5)
    check("controller: CHANGES of a learned binding to a gateway, ACK 0",
          commit == 0 and ack == (0, 0, 1) and lines[-1] == 0, f"ACK {ack} {ended or ''}; "
          + "; ".join(map(str, lines)))
    for name, over, why in CTL_SELFTEST_ATTACKS:
        label = " ".join([f"controller: attack {name}"] + [f"{k}={v if isinstance(v, str) else v.decode()}"
                                                             for k, v in over.items()])
        o = argparse.Namespace(**dict(vars(opts), attack=name, **over))
        with ctl.lock:
            before = len(ctl.closed)
        try:
            out = attack(o)
        except (Refused, PeerClosed, Quiet, OSError) as e:
            check(label, False, f"{type(e).__name__}: {e}")
            continue
        time.sleep(0.05)
        with ctl.lock:
            said = ctl.closed[before:]
        check(label, out.refused and any(why in x for x in said),
              out.line() + f" [controller: {'; '.join(said)}]")
    ctl.stop()


def selftest(_opts):
    results = []

    def check(name, ok, detail=""):
        results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")

    # HKDF: RFC 5869 A.1, and A.3 (an empty salt, as K_hello has)
    ikm = bytes([0x0b]) * 22
    prk = hkdf_extract(bytes(range(13)), ikm)
    check("hkdf rfc5869 A.1", prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
          and hkdf_expand(prk, bytes(range(0xf0, 0xfa)), 42).hex() ==
          "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    check("hkdf rfc5869 A.3", hkdf(ikm, b"", b"", 42).hex() ==
          "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    texts = ["open 203.0.113.7 5000", "bind 198.18.1.1 203.0.113.7 7000 svc=1",
             "scoped 198.18.7.0/24 203.0.113.7 5000", "open 2001:db8:1::7 5000",
             "bind 2001:db8:9::1 2001:db8:1::7 691200000", "scoped 2001:db8:77::/48 2001:db8:1::7 1"]
    changes = [parse_change_text(t) for t in texts]
    check("change encoding round trip", parse_changes(changes_payload(7, bytes(32), changes))[2] == changes
          and [str(c) for c in changes[:3]] == [t if "svc" in t else t + " svc=0" for t in texts[:3]])

    psk, psk2 = secrets.token_bytes(48), secrets.token_bytes(32)
    digest = hashlib.sha256(b"selftest services").digest()
    peers = {b"dns1": b"dns", b"dns2": b"dns", b"gw2": b"gateway"}
    gw = Gateway(b"gw1", {1: psk, 2: psk2}, peers, digest, services=2, log=lambda line: None)
    gw_gt = Gateway(b"gw1", {1: psk}, peers, digest, services=2, seq_rule="gt", log=lambda line: None)
    opts = argparse.Namespace(host="127.0.0.1", port=gw.listen("127.0.0.1", 0), psk=psk, key_id=1,
                              name=b"dns1", role=b"dns", peer_name=b"gw1", peer_role=b"gateway",
                              timeout=2.0, digest=digest, service=0, change="open 203.0.113.7 5000",
                              stage="data", variant=None, count=70, interval=1.0, duration=8.0)
    port_gt = gw_gt.listen("127.0.0.1", 0)
    for g in (gw, gw_gt):
        threading.Thread(target=g.serve_forever, daemon=True).start()

    def applied(commit):
        with gw.lock, gw_gt.lock:
            return sum(1 for c, _ in gw.applied + gw_gt.applied if c == commit)

    def exchange(label, commit, changes, want, digest=digest, **over):
        cl = attack_session(opts, **over)
        try:
            got = cl.handshake().commit(changes, commit, digest)
            if commit == 101:
                cl.ping()
            check(label, got == want and applied(commit) == (1 if want[0] == 0 else 0),
                  "ACK result=%d applied=%d" % got)
        except (Refused, PeerClosed, Quiet, OSError) as e:
            check(label, False, f"{type(e).__name__}: {e}")
        cl.close()

    exchange("CHANGES, ACK, PING, PONG", 101, changes, (0, len(changes)))
    check("the changes applied are the ones sent", gw.applied and gw.applied[-1][1] == changes)
    exchange("CHANGES with another digest: ESTALE", 102, changes, (ESTALE, 0), digest=bytes(32))
    exchange("a second DNS node, IPv6 changes", 103, changes[3:], (0, 3), name=b"dns2")
    exchange("the second key id (rotation)", 104, changes[:1], (0, 1), key_id=2, psk=psk2)

    for name, over, why in SELFTEST_ATTACKS:
        label = " ".join([f"attack {name}"] + [f"{k}={v if isinstance(v, str) else v.decode()}"
                                              for k, v in over.items()])
        g = gw_gt if over.get("seq_rule") else gw
        o = argparse.Namespace(**dict(vars(opts), attack=name, port=g.listen_port,
                                      **{k: v for k, v in over.items() if k != "seq_rule"}))
        with g.lock:
            before = len(g.closed)
        try:
            out = attack(o)
        except (Refused, PeerClosed, Quiet, OSError) as e:
            check(label, False, f"{type(e).__name__}: {e}")
            continue
        time.sleep(0.05)
        with g.lock:
            said = g.closed[before:]
        ok = (out.refused and any(why in x for x in said) and all(applied(c) == 0 for c in out.bad)
              and all(applied(c) == 1 for c in out.good))
        check(label, ok, out.line() + f" [gateway: {'; '.join(said)}]")

    time.sleep(0.3)  # the gateway's threads are done with the connections above
    with gw.lock:
        pending, before = gw.unauthenticated, len(gw.closed)
    line, ok = slowloris(opts)
    with gw.lock:
        said = gw.closed[before:]
    timeouts = sum("handshake not completed" in x for x in said)
    check("attack slowloris", ok and pending == 0 and timeouts == MAX_UNAUTHENTICATED
          and sum("closed at once" in x for x in said) == opts.count - MAX_UNAUTHENTICATED + 1,
          line + f" [gateway: {timeouts} handshake timeouts]")
    exchange("a valid session after the attacks", 105, changes[:2], (0, 2))
    gw.stop()
    gw_gt.stop()
    selftest_controller(check, psk, digest)
    failed = results.count(False)
    print(f"selftest: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


# ---- command line -------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("command", choices=("send", "ping", "serve", "attack", "digest", "selftest",
                                        "join", "fakectl"))
    p.add_argument("args", nargs="*", help="changes (send; join: learned ones), attack name, "
                   "or conf file (digest)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int)
    p.add_argument("--key-file", help="the PSK file")
    p.add_argument("--key-id", type=int, default=1)
    p.add_argument("--name", help="own node name (default dns1, serve: gw1)")
    p.add_argument("--role", help="own role (default dns, serve: gateway)")
    p.add_argument("--peer-name", help="the gateway to reach (default gw1); serve: the DNS "
                   "nodes accepted, NAME or NAME=ROLE, comma-separated (default dns1)")
    p.add_argument("--peer-role", help="the role configured for the server (default gateway; "
                   "join: controller)")
    p.add_argument("--digest", help="config digest, 64 hex digits (default: 32 zero bytes; "
                   "serve: accept any)")
    p.add_argument("--config", help="choreo.conf to take the digest and service count from")
    p.add_argument("--services", type=int, help="serve: services configured (default: unchecked)")
    p.add_argument("--service", type=int, default=0, help="default service index of a change")
    p.add_argument("--commit-id", type=int, help="send: commit id (default random)")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--seq-rule", choices=("gt", "next"), default="next",
                   help="serve: sequence must be greater than the last (gt) or last + 1 (next)")
    p.add_argument("--stage", choices=("hello", "data"), default="data")
    p.add_argument("--variant")
    p.add_argument("--change", default="open 203.0.113.7 5000", help="attack: the change carried")
    p.add_argument("--count", type=int, default=70, help="slowloris: sockets")
    p.add_argument("--interval", type=float, default=1.0, help="slowloris: s per byte")
    p.add_argument("--duration", type=float, default=10.0, help="slowloris: s to watch")
    p.add_argument("--source", help="local address to connect from (slowloris: A,B,... in turn)")
    p.add_argument("--probe-source", help="slowloris: local address of the valid handshake")
    p.add_argument("--claim", default="0:", help="JOIN's claim, EPOCH:BITS/BLOCK/SHARE,... "
                   "(default 0:, none)")
    p.add_argument("--epoch", type=int, default=1 << 40, help="attack assigned: the epoch")
    p.add_argument("--text", default="queries 1", help="attack report --variant given: the text")
    p.add_argument("--report", help="join: a REPORT with this text after the JOIN")
    p.add_argument("--stay", type=float, default=0.0, help="join: seconds to stay on the link")
    p.add_argument("--no-assigned", action="store_true", help="join: do not answer ASSIGN")
    p.add_argument("--until-assign", action="store_true",
                   help="join: leave 1 s after the first ASSIGN (at the latest after --stay)")
    p.add_argument("--block-bits", help="fakectl: the block_bits of each service, comma-"
                   "separated (default: a claim's are not checked)")
    o = p.parse_intermixed_args(argv)
    if o.command == "selftest":
        return selftest(o)
    try:  # everything that can be a usage error, before any connection
        if o.command == "digest":
            if len(o.args) != 1:
                p.error("digest takes one file")
            digest, services = config_digest(o.args[0])
            print(f"digest {digest.hex()} services {services}")
            return 0
        if o.port is None or o.key_file is None:
            p.error(f"{o.command} needs --port and --key-file")
        if o.command == "attack" and (len(o.args) != 1 or o.args[0] not in ATTACKS):
            p.error(f"attack takes one of: {' '.join(ATTACKS)}")
        if o.command == "attack" and o.variant and o.variant not in VARIANTS.get(o.args[0], ()):
            p.error(f"attack {o.args[0]}: variants: {' '.join(VARIANTS.get(o.args[0], ())) or 'none'}")
        if o.command == "send" and not o.args:
            p.error("send needs at least one change")
        changes = [parse_change_text(t, o.service) for a in o.args for t in a.split(";")
                   if t.strip()] if o.command in ("send", "join") else []
        parse_change_text(o.change, o.service)
        parse_assignment_text(o.claim)
        serving = o.command in ("serve", "fakectl")
        o.psk = read_psk(o.key_file)
        o.name = (o.name or ("ctl" if o.command == "fakectl" else "gw1" if serving else "dns1")).encode()
        o.role = (o.role or ("controller" if o.command == "fakectl" else
                             "gateway" if serving else "dns")).encode()
        o.peer_role = (o.peer_role or ("controller" if o.command == "join" else "gateway")).encode()
        digest, services = config_digest(o.config) if o.config else (None, None)
        if o.digest:
            digest = bytes.fromhex(o.digest)
            if len(digest) != 32:
                p.error("--digest: 32 bytes")
    except (ValueError, OSError) as e:
        print(f"peertool: {e}", file=sys.stderr)
        return 2
    try:
        if o.command == "fakectl":
            peers = {}
            for item in (o.peer_name or "gw1=gateway,dns1=dns").split(","):
                n, _, r = item.partition("=")
                peers[n.encode()] = (r or "dns").encode()
            services = o.services if o.services is not None else services
            bits = [int(b) for b in o.block_bits.split(",")] if o.block_bits else None
            log = lambda line: print(line, file=sys.stderr, flush=True)
            ctl = Controller(o.name, {o.key_id: o.psk}, peers, digest, services, bits, log=log)
            ctl.listen(o.host, o.port)
            log(f"fakectl: {o.name.decode()} on {o.host}:{o.port}, key id {o.key_id}, digest "
                f"{digest.hex() if digest else 'any'}, nodes {b','.join(peers).decode()}")
            o.digest = digest
            threading.Thread(target=ctl.serve_forever, daemon=True).start()
            return fakectl(o, ctl)
        if serving:
            peers = {}
            for item in (o.peer_name or "dns1").split(","):
                n, _, r = item.partition("=")
                peers[n.encode()] = (r or "dns").encode()
            services = o.services if o.services is not None else services
            gw = Gateway(o.name, {o.key_id: o.psk}, peers, digest, services, o.role, o.seq_rule)
            gw.listen(o.host, o.port)
            gw.say(f"serve: {o.name.decode()} on {o.host}:{o.port}, key id {o.key_id}, digest "
                   f"{digest.hex() if digest else 'any'}, services {services or 'unchecked'}")
            gw.serve_forever()
            return 0
        o.peer_name = (o.peer_name or ("ctl" if o.peer_role == b"controller" else "gw1")).encode()
        o.digest = digest or bytes(32)
        if o.command == "join":
            return node_join(o, changes)
        if o.command == "attack":
            o.attack = o.args[0]
            if o.attack == "slowloris":
                line, ok = slowloris(o)
                print(line)
                return 0 if ok else 1
            out = attack(o)
            print(out.line())
            return 0 if out.refused else 1
        cl = attack_session(o).handshake()
        if o.command == "ping":
            t = time.monotonic()
            cl.ping()
            print(f"PONG from {o.peer_name.decode()} in {(time.monotonic() - t) * 1000:.1f} ms")
            return 0
        commit = o.commit_id if o.commit_id is not None else secrets.randbits(32)
        result, applied = cl.commit(changes, commit, o.digest)
        print(f"ACK commit={commit} result={result} applied={applied}")
        return 0 if result == 0 else 1
    except (Refused, PeerClosed, Quiet, OSError) as e:
        print(f"{o.command}: {type(e).__name__}: {e}")
        return 1

if __name__ == "__main__":
    sys.exit(main())
