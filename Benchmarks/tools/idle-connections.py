#!/usr/bin/env python3
"""idle-connections.py — open many keep-alive connections to a gateway, send one request on
each and read its whole response, then keep them all open and idle (Benchmarks/hostile).

Python 3 standard library only: non-blocking sockets on one epoll selector, at most
--pending connects in flight at a time (so the listener's backlog never overflows).

When every connection has its response (or failed), it prints one line
  READY opened=N answered=N status=200:N,... failed=N
on stdout (and writes it to --ready-file), then holds the connections open until SIGTERM or
SIGINT or --hold seconds, noticing any the server closes, and prints
  DONE open=N closed_by_server=N
before it exits. Exit status 1 if the process cannot get enough file descriptors.
"""

import argparse
import errno
import resource
import selectors
import signal
import socket
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=10000, help="connections to open (default 10000)")
    p.add_argument("--path", default="/api/ListUsers")
    p.add_argument("--header-file", help='file of "Name: value" lines sent with every request')
    p.add_argument("--pending", type=int, default=256, help="connects in flight at once (default 256)")
    p.add_argument("--hold", type=float, default=600, help="seconds to keep them open (default 600)")
    p.add_argument("--timeout", type=float, default=60, help="seconds for the open+request phase")
    p.add_argument("--ready-file", help="also write the READY line here")
    return p.parse_args()


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(f"idle-connections: need {needed} file descriptors, hard limit is {hard} (raise ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def request_bytes(args):
    lines = [f"GET {args.path} HTTP/1.1", f"Host: {args.host}:{args.port}", "User-Agent: idle-connections.py"]
    if args.header_file:
        with open(args.header_file) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    lines.append(line)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Conn:
    __slots__ = ("sock", "state", "buf", "status", "need")

    def __init__(self, sock):
        self.sock = sock
        self.state = "connecting"
        self.buf = b""
        self.status = 0
        self.need = None   # bytes of head + body when known


def response_complete(c):
    """True once a whole response (Content-Length framed) is in c.buf."""
    if c.need is None:
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = c.buf[:end].decode("latin-1").split("\r\n")
        try:
            c.status = int(head[0].split()[1])
        except (IndexError, ValueError):
            c.status = -1
            return True
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            elif name.strip().lower() == "transfer-encoding":
                c.status = -2   # not expected from the benchmark backend
                return True
        c.need = end + 4 + length
    return len(c.buf) >= c.need


def main():
    args = parse_args()
    raise_fd_limit(args.count + 64)
    req = request_bytes(args)
    sel = selectors.DefaultSelector()
    conns = []
    statuses = {}
    failed = 0
    answered = 0
    in_flight = 0
    started = 0
    deadline = time.monotonic() + args.timeout

    def finish(c, ok):
        nonlocal in_flight, answered, failed
        in_flight -= 1
        if ok:
            answered += 1
            statuses[c.status] = statuses.get(c.status, 0) + 1
            c.state = "idle"
            sel.modify(c.sock, selectors.EVENT_READ, c)
        else:
            failed += 1
            c.state = "failed"
            sel.unregister(c.sock)
            c.sock.close()

    while (started < args.count or in_flight > 0) and time.monotonic() < deadline:
        while started < args.count and in_flight < args.pending:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = s.connect_ex((args.host, args.port))
            c = Conn(s)
            conns.append(c)
            started += 1
            in_flight += 1
            if err not in (0, errno.EINPROGRESS):
                sel.register(s, selectors.EVENT_READ, c)
                finish(c, False)
                continue
            sel.register(s, selectors.EVENT_WRITE, c)
        for key, events in sel.select(timeout=0.5):
            c = key.data
            if c.state == "connecting" and events & selectors.EVENT_WRITE:
                if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    finish(c, False)
                    continue
                try:
                    c.sock.send(req)   # a few hundred bytes: fits the empty send buffer
                except OSError:
                    finish(c, False)
                    continue
                c.state = "reading"
                sel.modify(c.sock, selectors.EVENT_READ, c)
            elif c.state == "reading" and events & selectors.EVENT_READ:
                try:
                    data = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    finish(c, False)
                    continue
                if not data:
                    finish(c, False)
                    continue
                c.buf += data
                if response_complete(c):
                    c.buf = b""
                    finish(c, c.status > 0)
    for c in conns:
        if c.state in ("connecting", "reading"):
            sel.unregister(c.sock)
            c.sock.close()
            c.state = "failed"
            failed += 1

    open_now = sum(1 for c in conns if c.state == "idle")
    line = "READY opened=%d answered=%d status=%s failed=%d" % (
        started, answered, ",".join(f"{k}:{v}" for k, v in sorted(statuses.items())) or "none", failed)
    print(line, flush=True)
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(line + "\n")

    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    closed_by_server = 0
    hold_until = time.monotonic() + args.hold
    while not stop and time.monotonic() < hold_until and open_now > 0:
        for key, _ in sel.select(timeout=0.5):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:   # the idle connection was closed by the server (idle_timeout?)
                sel.unregister(c.sock)
                c.sock.close()
                c.state = "closed"
                closed_by_server += 1
                open_now -= 1
    print("DONE open=%d closed_by_server=%d" % (open_now, closed_by_server), flush=True)
    for c in conns:
        if c.state == "idle":
            c.sock.close()


if __name__ == "__main__":
    main()
