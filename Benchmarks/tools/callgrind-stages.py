#!/usr/bin/env python3
"""Instructions per request by stage of the request path, from two callgrind runs of the same
workload (WARMUP requests, and WARMUP + N): each function's exclusive instruction count in the
longer run minus the shorter, over N, summed by stage. Stages are recognised by the (mangled)
function names; the Swift runtime (reference counting, exclusivity checks, allocation) and NIO
are their own rows, since they serve every stage.

    callgrind-stages.py N OUTDIR [OUTDIR ...]   (each OUTDIR holds callgrind.base and callgrind.full)
"""
import re
import subprocess
import sys

# First match wins: order from specific to general.
STAGES = [
    # The request path's own functions name the types they pass along (a ClientLimiter, an
    # ExchangeRecord): matched first, so they count as the handler's glue, not as those stages.
    ("connection handler (state, timers, glue)", r"RequestPath|ConnectionStateMachine"),
    ("parse (request head, canonical path)", r"RequestParser|HeadBuilder|RequestFields|CanonicalPath|CanonicalTarget|HTTPSyntax|PathFirewall|ChunkedFraming"),
    ("authenticate (bearer token, token cache)", r"BearerToken|VerifiedTokenCache|TokenAuthenticator|JWSVerifier|JWTClaims|ClaimsPolicy|UsageClock"),
    ("authorise (role, allowlist, tenant)", r"PortcullisPolicy|RequestPolicy|RequestDecision|ClientAddress"),
    ("limits", r"ClientLimiter|ClientLimitSlot|BackendGate|LimitSynchronizer"),
    ("upstream head writing", r"writeUpstreamHead|writeField|ReservedBytesWriter|RequestIDGenerator|traceparent"),
    ("response head parsing", r"UpstreamResponseParser"),
    ("response head writing", r"writeDownstreamHead|ResponseCompression|ErrorResponse"),
    ("upstream connection and pool", r"UpstreamConnection|UpstreamPool|UpstreamTarget|UpstreamConnector"),
    ("access log and metrics", r"AccessLog|ExchangeRecord|LoopMetrics|GatewayMetrics|AccessLogStats"),
    ("connection handler (state, timers, glue)", r"PortcullisProxy|PortcullisAuth"),
    ("NIO (channels, pipeline, event loop)", r"NIOPosix|NIOCore|NIOHTTP1|NIOConcurrencyHelpers|\$s7NIOCore|\$s8NIOPosix"),
    ("Swift runtime: reference counting", r"swift_retain|swift_release|swift_bridgeObject|RefCounts|swift_unknownObject|swift_tryRetain"),
    ("Swift runtime: exclusivity checks", r"swift_beginAccess|swift_endAccess|AccessSet|SwiftTLSContext"),
    ("allocation and copies (malloc, free, memcpy)", r"malloc|_int_free|free|memmove|memcpy|memset|swift_allocObject|swift_deallocObject|swift_slowAlloc|swift_slowDealloc|cfree"),
    ("kernel interface (syscalls in libc)", r"epoll|__libc_|writev|readv|__send|__recv|\bread\b|\bwrite\b|syscall"),
    ("Swift standard library", r"\$ss|swift_"),
]
COMPILED = [(name, re.compile(pattern)) for name, pattern in STAGES]


def exclusive(path):
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
        check=True, capture_output=True, text=True,
    ).stdout
    counts = {}
    for line in text.splitlines():
        match = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$", line)
        if not match or "PROGRAM TOTALS" in line:
            continue
        name = match.group(2)
        counts[name] = counts.get(name, 0) + int(match.group(1).replace(",", ""))
    return counts


def stage(name):
    for stage_name, pattern in COMPILED:
        if pattern.search(name):
            return stage_name
    return "other"


def per_stage(n, directory):
    base, full = exclusive(f"{directory}/callgrind.base"), exclusive(f"{directory}/callgrind.full")
    totals = {}
    for name in set(base) | set(full):
        delta = full.get(name, 0) - base.get(name, 0)
        totals[stage(name)] = totals.get(stage(name), 0) + delta
    return {key: value / n for key, value in totals.items()}


def main():
    n = int(sys.argv[1])
    directories = sys.argv[2:]
    columns = [per_stage(n, directory) for directory in directories]
    order = list(dict.fromkeys(name for name, _ in STAGES)) + ["other"]
    print("| stage | " + " | ".join(directories) + " |")
    print("|---|" + "---:|" * len(directories))
    for name in order:
        if all(abs(column.get(name, 0)) < 0.5 for column in columns):
            continue
        print(f"| {name} | " + " | ".join(f"{column.get(name, 0):,.0f}" for column in columns) + " |")
    print("| **total** | " + " | ".join(f"**{sum(column.values()):,.0f}**" for column in columns) + " |")


if __name__ == "__main__":
    main()
