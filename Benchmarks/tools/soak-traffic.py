#!/usr/bin/env python3
"""soak-traffic.py — mixed traffic against a gateway for a long time, sampling the gateway's
memory, descriptors and latency every few seconds into a TSV (Benchmarks/soak).

Python 3 standard library only (plus wrk, run as a child). Every --interval seconds:

- keep-alive: one wrk run of exactly that interval (`wrk -t1 -c --wrk-connections -d`,
  `--latency`, the token from --header-file), so each row has the req/s, p50 and p99 of
  requests on long-lived connections;
- new connections, open loop at --new-rate a second, one request each (or none), of the kinds
  in --mix: `200` (the token, --path), `401` (no token), `403` (the token, --forbidden-path),
  `400` (a malformed head: the gateway answers and closes), `none` (no byte, closed after
  --idle-hold seconds); the client closes each connection after its response. Latency is
  from the connect to the whole response;
- slow clients, --slow-clients at all times: each sends a request head (the token, --path) in
  6 pieces --slow-gap seconds apart and reads the 200 (counted in slow_done); one in five stops
  half-way and waits for the gateway's 408 (limits.client_header_timeout; counted in s408);
- at the end of the interval: the gateway's VmRSS (/proc/PID/status) and open descriptors
  (/proc/PID/fd), and one TSV row.

Columns: t_s rss_kib fds keepalive_rps keepalive_p50_ms keepalive_p99_ms new_conns new_p99_ms
s200 s400 s401 s403 s408 none_closed errors slow_done. Prints a progress line per row to
stderr. Exit status 1 when wrk is missing or the gateway has gone.
"""

import argparse
import errno
import heapq
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
COLUMNS = ("t_s rss_kib fds keepalive_rps keepalive_p50_ms keepalive_p99_ms new_conns new_p99_ms "
           "s200 s400 s401 s403 s408 none_closed errors slow_done").split()


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="the gateway's pid (RSS, descriptors)")
    p.add_argument("--duration", type=float, default=600, help="seconds (default 600)")
    p.add_argument("--interval", type=int, default=5, help="whole seconds per row (default 5)")
    p.add_argument("--header-file", required=True, help='"Authorization: Bearer ..." line(s)')
    p.add_argument("--path", default="/api/ListUsers")
    p.add_argument("--forbidden-path", default="/api/ExecResetPass")
    p.add_argument("--wrk-connections", type=int, default=4)
    p.add_argument("--wrk-lua", default="Benchmarks/lua/headers.lua")
    p.add_argument("--wrk-cpu", default="", help="taskset -c for wrk (default: none)")
    p.add_argument("--new-rate", type=float, default=200, help="new connections a second (default 200)")
    p.add_argument("--mix", default="200:4,401:2,403:2,400:1,none:1", help="kind:weight,...")
    p.add_argument("--idle-hold", type=float, default=1.0, help="seconds a `none` connection stays open")
    p.add_argument("--slow-clients", type=int, default=50)
    p.add_argument("--slow-gap", type=float, default=1.0, help="seconds between a slow head's pieces")
    p.add_argument("--max-in-flight", type=int, default=2000, help="new connections open at once, at most")
    p.add_argument("--out", required=True, help="the TSV to write")
    return p.parse_args()


def read_headers(path):
    with open(path) as f:
        return "".join(line.strip() + "\r\n" for line in f if line.strip() and not line.startswith("#"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def wrk_ms(text):
    number = float(re.match(r"[0-9.]+", text).group(0))
    unit = text[len(re.match(r"[0-9.]+", text).group(0)):]
    return number * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}.get(unit, float("nan"))


def parse_wrk(output):
    rps = p50 = p99 = float("nan")
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "50%":
            p50 = wrk_ms(words[1])
        elif len(words) >= 2 and words[0] == "99%":
            p99 = wrk_ms(words[1])
        elif line.startswith("Requests/sec:"):
            rps = float(words[1])
    return rps, p50, p99


class Traffic:
    def __init__(self, args):
        self.args = args
        token = read_headers(args.header_file)
        host = f"Host: 127.0.0.1:{args.port}\r\n"
        self.requests = {
            "200": f"GET {args.path} HTTP/1.1\r\n{host}{token}\r\n".encode(),
            "401": f"GET {args.path} HTTP/1.1\r\n{host}\r\n".encode(),
            "403": f"GET {args.forbidden_path} HTTP/1.1\r\n{host}{token}\r\n".encode(),
            "400": f"GET {args.path} HTTP/1.1\r\n{host}Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n".encode(),
            "none": b"",
        }
        self.slow_request = self.requests["200"]
        self.kinds = []
        for item in args.mix.split(","):
            kind, _, weight = item.partition(":")
            if kind not in self.requests:
                sys.exit(f"soak-traffic: unknown kind {kind!r} in --mix")
            self.kinds += [kind] * int(weight or 1)
        self.sel = selectors.DefaultSelector()
        self.timers = []  # (when, seq, callback)
        self.seq = 0
        self.started = 0
        self.in_flight = 0
        self.slow_open = 0
        self.reset_counters()

    def reset_counters(self):
        self.latencies = []
        self.counts = {"s200": 0, "s400": 0, "s401": 0, "s403": 0, "s408": 0, "none_closed": 0,
                       "errors": 0, "slow_done": 0, "new_conns": 0}

    def at(self, when, callback):
        self.seq += 1
        heapq.heappush(self.timers, (when, self.seq, callback))

    def open_socket(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((f"127.0.0.{1 + self.started % 8}", 0))
        except OSError:
            pass
        self.started += 1
        rc = s.connect_ex(("127.0.0.1", self.args.port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            return None
        return s

    # ---- new connections: connect, send, read the whole response, close
    def start_new(self):
        if self.in_flight >= self.args.max_in_flight:
            self.counts["errors"] += 1
            return
        kind = self.kinds[self.started % len(self.kinds)]
        s = self.open_socket()
        if s is None:
            self.counts["errors"] += 1
            return
        self.in_flight += 1
        self.counts["new_conns"] += 1
        conn = {"kind": kind, "t0": time.monotonic(), "data": b"", "phase": "connect", "slow": False}
        self.sel.register(s, selectors.EVENT_WRITE, conn)

    def close(self, s, conn, outcome=None):
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        if conn["phase"] != "closed":
            conn["phase"] = "closed"
            if conn["slow"]:
                self.slow_open -= 1
            else:
                self.in_flight -= 1
        if outcome:
            self.counts[outcome] += 1

    def on_event(self, s, conn):
        try:
            if conn["phase"] == "connect":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    return self.close(s, conn, "errors")
                if conn["slow"]:
                    conn["phase"] = "slow"
                    self.sel.modify(s, selectors.EVENT_READ, conn)
                    return self.slow_step(s, conn)
                request = self.requests[conn["kind"]]
                if not request:
                    conn["phase"] = "idle"
                    self.sel.modify(s, selectors.EVENT_READ, conn)
                    return self.at(time.monotonic() + self.args.idle_hold, lambda: self.close(s, conn, "none_closed")
                                   if conn["phase"] == "idle" else None)
                s.send(request)
                conn["phase"] = "response"
                self.sel.modify(s, selectors.EVENT_READ, conn)
                return
            chunk = s.recv(65536)
            if conn["phase"] == "idle":
                return self.close(s, conn, "errors")  # the gateway closed a connection that sent nothing
            conn["data"] += chunk
            status = complete_status(conn["data"], eof=not chunk)
            if status is None:
                if not chunk:
                    self.close(s, conn, "errors")
                return
            key = f"s{status}"
            if conn["slow"]:
                # Slow clients count apart: 200 as slow_done, their 408s as s408.
                self.close(s, conn, {200: "slow_done", 408: "s408"}.get(status, "errors"))
                return self.start_slow()
            self.latencies.append((time.monotonic() - conn["t0"]) * 1000)
            self.close(s, conn, key if key in self.counts else "errors")
        except OSError:
            self.close(s, conn, "errors")
            if conn["slow"]:
                self.start_slow()

    # ---- slow clients: the head in pieces, --slow-gap apart; one in five stops half-way
    def start_slow(self):
        s = self.open_socket()
        if s is None:
            self.counts["errors"] += 1
            return self.at(time.monotonic() + 1, self.start_slow)
        self.slow_open += 1
        request = self.slow_request
        stalls = self.started % 5 == 0
        pieces = [request[i * len(request) // 6:(i + 1) * len(request) // 6] for i in range(6)]
        conn = {"kind": "slow", "t0": time.monotonic(), "data": b"", "phase": "connect", "slow": True,
                "pieces": pieces[:3] if stalls else pieces}
        self.sel.register(s, selectors.EVENT_WRITE, conn)

    def slow_step(self, s, conn):
        if conn["phase"] != "slow" or not conn["pieces"]:
            return
        try:
            s.send(conn["pieces"].pop(0))
        except OSError:
            self.close(s, conn, "errors")
            return self.start_slow()
        if conn["pieces"]:
            self.at(time.monotonic() + self.args.slow_gap, lambda: self.slow_step(s, conn))

    def run_until(self, end):
        while True:
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                heapq.heappop(self.timers)[2]()
            if now >= end:
                return
            wait = end - now
            if self.timers:
                wait = min(wait, self.timers[0][0] - now)
            for key, _ in self.sel.select(timeout=max(wait, 0)):
                self.on_event(key.fileobj, key.data)


def complete_status(data, eof):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None and not eof:
        return None
    if length is not None and len(body) < length:
        return None
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def main():
    args = parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 16384)), hard))
    traffic = Traffic(args)
    wrk = (["taskset", "-c", args.wrk_cpu] if args.wrk_cpu else []) + [
        "wrk", "-t1", f"-c{args.wrk_connections}", f"-d{args.interval}s", "--latency", "-s", args.wrk_lua,
        f"http://127.0.0.1:{args.port}{args.path}"]
    env = dict(os.environ, WRK_HEADERS_FILE=args.header_file)
    out = open(args.out, "w")
    out.write("\t".join(COLUMNS) + "\n")
    t0 = time.monotonic()
    for _ in range(args.slow_clients):
        traffic.start_slow()
    next_new = t0
    rows = int(args.duration // args.interval)
    for row in range(1, rows + 1):
        end = t0 + row * args.interval
        try:
            runner = subprocess.Popen(wrk, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        except FileNotFoundError:
            sys.exit("soak-traffic: wrk not found")
        while time.monotonic() < end:
            now = time.monotonic()
            while next_new <= now:
                traffic.start_new()
                next_new += 1 / args.new_rate
            traffic.run_until(min(end, next_new))
        wrk_output = runner.communicate()[0]
        rps, p50, p99 = parse_wrk(wrk_output)
        try:
            rss = rss_kib(args.pid)
            fds = len(os.listdir(f"/proc/{args.pid}/fd"))
        except OSError:
            sys.exit("soak-traffic: the gateway has gone")
        c = traffic.counts
        values = [f"{time.monotonic() - t0:.1f}", str(rss), str(fds), f"{rps:.0f}", f"{p50:.3f}", f"{p99:.3f}",
                  str(c["new_conns"]), f"{percentile(traffic.latencies, 0.99):.3f}"] + [
            str(c[k]) for k in ("s200", "s400", "s401", "s403", "s408", "none_closed", "errors", "slow_done")]
        out.write("\t".join(values) + "\n")
        out.flush()
        print(f"[soak-traffic] {dict(zip(COLUMNS, values))}", file=sys.stderr, flush=True)
        traffic.reset_counters()
    out.close()


if __name__ == "__main__":
    main()
