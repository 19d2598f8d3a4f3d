#!/usr/bin/env python3
"""soak-report.py — the figures and the picture of a Benchmarks/soak run, from the TSV that
soak-traffic.py wrote.

  soak-report.py SOAK.tsv --png SOAK.png [--warmup 60] [--title TEXT]

Prints markdown bullet lines (the figures) on stdout. Draws three panels over time — the
gateway's RSS, its open descriptors, and the p99 latency of keep-alive requests and of
requests on new connections — into the PNG (needs matplotlib; without it, says so on stderr
and draws nothing). RSS growth is measured after --warmup seconds: the last sample minus the
first after the warm-up, and the slope of a least-squares line through those samples.
"""

import argparse
import csv
import math
import statistics
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tsv")
    p.add_argument("--png")
    p.add_argument("--warmup", type=float, default=60, help="seconds before RSS growth is measured (default 60)")
    p.add_argument("--title", default="Portcullis soak")
    return p.parse_args()


def load(path):
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [{k: float(v) for k, v in row.items()} for row in rows]


def slope_per_minute(xs, ys):
    if len(xs) < 2:
        return float("nan")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else float("nan")


def finite(values):
    return [v for v in values if not math.isnan(v)]


def main():
    args = parse_args()
    rows = load(args.tsv)
    if not rows:
        sys.exit("soak-report: no rows in " + args.tsv)
    t = [r["t_s"] for r in rows]
    rss = [r["rss_kib"] / 1024 for r in rows]
    fds = [r["fds"] for r in rows]
    after = [r for r in rows if r["t_s"] >= args.warmup] or rows
    base, last = after[0]["rss_kib"] / 1024, rows[-1]["rss_kib"] / 1024
    slope = slope_per_minute([r["t_s"] for r in after], [r["rss_kib"] / 1024 for r in after])
    ka_p99 = finite([r["keepalive_p99_ms"] for r in rows])
    new_p99 = finite([r["new_p99_ms"] for r in rows])
    ka_rps = finite([r["keepalive_rps"] for r in rows])
    total = lambda key: int(sum(r[key] for r in rows))
    interval = t[1] - t[0] if len(t) > 1 else t[0]
    keepalive_requests = int(sum(r["keepalive_rps"] * interval for r in rows if not math.isnan(r["keepalive_rps"])))
    lines = [
        f"- duration {t[-1]:.0f} s, {len(rows)} samples, one every {interval:.0f} s",
        f"- gateway RSS: {rss[0]:.1f} MiB at the first sample, {base:.1f} MiB at {after[0]['t_s']:.0f} s (after the "
        f"{args.warmup:.0f} s warm-up), {last:.1f} MiB at the end, {max(rss):.1f} MiB at most: "
        f"**{last - base:+.1f} MiB after the warm-up**, least-squares slope {slope * 1024:+.1f} KiB a minute",
        f"- open descriptors: {min(fds):.0f}–{max(fds):.0f} (first {fds[0]:.0f}, last {fds[-1]:.0f})",
        f"- keep-alive (wrk): {keepalive_requests:,} requests, {statistics.median(ka_rps):.0f} req/s median; "
        f"p99 median {statistics.median(ka_p99):.2f} ms, max {max(ka_p99):.2f} ms" if ka_p99 else "- keep-alive: no wrk figures",
        f"- new connections: {total('new_conns'):,} ({total('new_conns') / t[-1]:.0f}/s); responses 200 {total('s200'):,}, "
        f"401 {total('s401'):,}, 403 {total('s403'):,}, 400 {total('s400'):,}; {total('none_closed'):,} closed without a byte; "
        f"p99 median {statistics.median(new_p99):.2f} ms, max {max(new_p99):.2f} ms" if new_p99 else "- new connections: none",
        f"- slow clients: {total('slow_done'):,} slow heads answered 200, {total('s408'):,} stalled heads answered 408; "
        f"client-side errors {total('errors'):,}",
    ]
    print("\n".join(lines))
    if not args.png:
        return
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("soak-report: matplotlib is not installed (python3 -m pip install matplotlib): no PNG", file=sys.stderr)
        return
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(10, 8))
    axes[0].plot(t, rss, color="tab:blue")
    axes[0].set_ylabel("RSS (MiB)")
    axes[0].set_ylim(0, max(rss) * 1.25)
    axes[0].axvline(args.warmup, color="grey", linestyle=":", linewidth=1)
    axes[1].plot(t, fds, color="tab:green")
    axes[1].set_ylabel("open fds")
    axes[1].set_ylim(0, max(fds) * 1.25)
    axes[2].plot(t, [r["keepalive_p99_ms"] for r in rows], label="keep-alive (wrk)", color="tab:orange")
    axes[2].plot(t, [r["new_p99_ms"] for r in rows], label="new connection + request", color="tab:purple")
    axes[2].set_ylabel("p99 (ms)")
    axes[2].set_ylim(0, None)
    axes[2].legend(loc="upper right", fontsize="small")
    axes[2].set_xlabel("seconds")
    axes[2].set_xlim(0, t[-1])
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.suptitle(args.title, fontsize="medium")
    fig.tight_layout()
    fig.savefig(args.png, dpi=100)


if __name__ == "__main__":
    main()
