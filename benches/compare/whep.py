#!/usr/bin/env python3
"""WebRTC SFU benchmark: 1 WHIP publisher -> N WHEP subscribers (issue 6).

Run through benches/compare/whep.sh, which builds the release binaries and re-runs
this inside a fresh network namespace (`unshare -n`, only `lo`).

For each repetition and each N (A B C A B C ...): a fresh release `microvibe` with
engine.shards=1 pinned to CPU 1 (taskset -c 1), its own ports and temp SQLite;
`whep-load --create-room` pinned to CPU 0 (a user and a room through the HTTP API,
one WHIP publisher at --bitrate kbit/s + audio, N WHEP subscribers ramped at --ramp/s,
then a --window s window once all receive, with --watch-pid on the server). Then the
SRTP floor (`srtp-floor`, sender thread on CPU 1, receiver thread on CPU 0) for the
same N. Results: OUT/results.jsonl (every run), OUT/report.md (median table), printed.

Only loopback addresses are used. Every process this script starts is stopped by its
pid on exit (also on Ctrl-C / SIGTERM).
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# Process bookkeeping shared with the RTMP comparison (compare.py, same directory).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import CHILDREN, cleanup, forget, log, on_signal, spawn, stop  # noqa: E402,F401


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def busy_others():
    """The processes using the most CPU right now (for the record: the machine is shared)."""
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True).stdout
        return [l.strip() for l in out.splitlines()[1:6]]
    except OSError:
        return []


def wait_health(port, proc, logf, timeout=30):
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    with open(logf) as f:
        sys.exit("microvibe did not start:\n" + f.read()[-4000:])


def run_server(args, n, rep, out_dir):
    d = tempfile.mkdtemp(prefix=f"whep-bench-{n}-{rep}-")
    api, rtmp, http, udp = free_port(), free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    env = dict(os.environ)
    env.update({
        "MICROVIBE__SERVER__HOST": "127.0.0.1",
        "MICROVIBE__SERVER__PORT": str(api),
        "MICROVIBE__SERVER__ADMIN_TOKEN": "bench-admin-token-0123456789",
        "MICROVIBE__RTMP__LISTEN": f"127.0.0.1:{rtmp}",
        "MICROVIBE__HTTP_MEDIA__LISTEN": f"127.0.0.1:{http}",
        "MICROVIBE__DATABASE__SQLITE_PATH": os.path.join(d, "bench.db"),
        "MICROVIBE__ENGINE__SHARDS": "1",
        "MICROVIBE__WEBRTC__UDP_PORT_BASE": str(udp),
        "MICROVIBE__WEBRTC__CANDIDATES": "127.0.0.1",
        "RUST_LOG": "warn",
    })
    logf = os.path.join(d, "server.log")
    srv = spawn(["taskset", "-c", str(args.server_cpu), os.path.join(args.bin, "microvibe")],
                cwd=d, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=open(logf, "w"))
    wait_health(api, srv, logf)
    return srv, api, logf, d


def run_whep(args, n, rep, out_dir, perf):
    srv, api, logf, d = run_server(args, n, rep, out_dir)
    la = loadavg()
    others = busy_others()
    cmd = ["taskset", "-c", str(args.load_cpu), os.path.join(args.bin, "whep-load"),
           "--api", f"http://127.0.0.1:{api}", "--create-room",
           "--subscribers", str(n), "--ramp", str(args.ramp), "--warmup", str(args.warmup),
           "--duration", str(args.window), "--bitrate-kbps", str(args.bitrate),
           "--sample-every", str(args.sample_every), "--watch-pid", str(srv.pid), "--json"]
    log("$", " ".join(cmd))
    lg = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    summary = None
    ticks = []
    perf_proc = None
    perf_file = None
    for line in lg.stdout:
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if v.get("type") == "summary":
            summary = v
        elif v.get("type") == "tick":
            ticks.append({k: v.get(k) for k in ("t", "in_window", "pkts_per_s", "lat_us_p50", "lat_us_p99",
                                                  "lat_us_max", "server_cpu_pct", "loadgen_cpu_pct")})
        if v.get("type") == "tick" and v.get("in_window") and perf and perf_proc is None:
            # Profile the server for 5 s inside the window.
            perf_file = os.path.join(out_dir, f"perf-{n}.data")
            graph = ["--call-graph", "dwarf,16384"] if args.perf_dwarf else ["-g"]
            perf_proc = spawn(["perf", "record", "-e", "cpu-clock", "-F", "1999"] + graph + ["-p", str(srv.pid),
                               "-o", perf_file, "--", "sleep", "3" if args.perf_dwarf else "5"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    err = lg.stderr.read()
    lg.wait()
    forget(lg)
    if perf_proc is not None:
        perf_proc.wait()
        forget(perf_proc)
    stop(srv, wait=10.0)
    forget(srv)
    if summary is None:
        with open(logf) as f:
            server_log = f.read()[-3000:]
        log(f"whep-load N={n} failed (rc {lg.returncode}): {err.strip()}\nserver log tail:\n{server_log}")
        return {"kind": "whep", "n": n, "rep": rep, "error": err.strip() or f"rc {lg.returncode}",
                "loadavg_before": la}
    if perf_file:
        rep_txt = os.path.join(out_dir, f"perf-{n}.txt")
        with open(rep_txt, "w") as f:
            subprocess.run(["perf", "report", "-i", perf_file, "--stdio", "--no-children",
                            "--sort", "dso,sym", "--percent-limit", "0.4", "-g", "none"],
                           stdout=f, stderr=subprocess.DEVNULL)
        log(f"perf profile of the server at N={n}: {rep_txt}")
    subprocess.run(["rm", "-rf", d])
    return {"kind": "whep", "n": n, "rep": rep, "loadavg_before": la, "busy_before": others, "summary": summary,
            "ticks": ticks}


def run_floor(args, n, rep, spin=False):
    cmd = [os.path.join(args.bin, "srtp-floor"), "--subscribers", str(n), "--duration", str(args.window),
           "--bitrate-kbps", str(args.bitrate), "--sender-cpu", str(args.server_cpu),
           "--receiver-cpu", str(args.load_cpu), "--json"] + (["--spin-receiver"] if spin else [])
    la = loadavg()
    log("$", " ".join(cmd))
    p = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate()
    forget(p)
    try:
        return {"kind": "floor-spin" if spin else "floor", "n": n, "rep": rep, "loadavg_before": la,
                "summary": json.loads(out.splitlines()[-1])}
    except (ValueError, IndexError):
        log(f"srtp-floor N={n} failed: {err}")
        return {"kind": "floor", "n": n, "rep": rep, "error": err.strip()}


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1):
    if v is None:
        return "-"
    return f"{v:.{nd}f}"


def cpu_busy(s, cpu):
    for c in s["window"].get("machine_cpus") or []:
        if c.get("cpu") == f"cpu{cpu}":
            return c.get("busy_pct")
    return None


def report(args, results):
    lines = []
    lines.append(f"1 WHIP publisher ({args.bitrate} kbit/s synthetic H.264 + 50 pkt/s audio) -> N WHEP subscribers; "
                 f"microvibe engine.shards=1 on CPU {args.server_cpu}, whep-load on CPU {args.load_cpu}; "
                 f"{args.window} s windows, median of {args.reps} repetitions (runs in parentheses).")
    lines.append("")
    lines.append("| N | server CPU % (user / sys) | outbound pkt/s | server µs / pkt (runs) | floor µs / pkt (runs) "
                 "| ×floor | latency µs p50 / p99 / max | first subscriber p50 / p99 µs | join ms p50 / p99 "
                 "| delivery % | failures | server run-queue wait % |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.subs:
        ws = [r["summary"] for r in results if r["kind"] == "whep" and r["n"] == n and "summary" in r]
        errs = [r for r in results if r["kind"] == "whep" and r["n"] == n and "error" in r]
        fl = [r["summary"] for r in results if r["kind"] == "floor" and r["n"] == n and "summary" in r]
        if not ws:
            lines.append(f"| {n} | run failed: {errs[0]['error'] if errs else '-'} |||||||||||")
            continue
        wv = lambda s: s["window"]["watch"][0] if s["window"]["watch"] else {}
        us = [wv(s).get("us_per_pkt") for s in ws]
        fus = [f["us_per_pkt"] for f in fl]
        mus, mf = med(us), med(fus)
        lat = lambda k: med([s["window"]["latency_us"][k] for s in ws])
        first = lambda k: med([(s["window"]["latency_us"].get("first_subscriber") or {}).get(k) for s in ws])
        fails = sum(s["failed"] for s in ws) + len(errs)
        lines.append(
            f"| {n} | {fmt(med([wv(s).get('cpu_pct') for s in ws]))} ({fmt(med([wv(s).get('user_pct') for s in ws]))} / "
            f"{fmt(med([wv(s).get('sys_pct') for s in ws]))}) "
            f"| {fmt(med([s['window']['pkts_per_s'] for s in ws]), 0)} "
            f"| **{fmt(mus, 2)}** ({', '.join(fmt(u, 2) for u in us)}) "
            f"| {fmt(mf, 2)} ({', '.join(fmt(u, 2) for u in fus)}) "
            f"| {fmt(mus / mf, 2) if mus and mf else '-'} "
            f"| {fmt(lat('p50'), 0)} / {fmt(lat('p99'), 0)} / {fmt(lat('max'), 0)} "
            f"| {fmt(first('p50'), 0)} / {fmt(first('p99'), 0)} "
            f"| {fmt(med([s['join_ms']['p50'] for s in ws]))} / {fmt(med([s['join_ms']['p99'] for s in ws]))} "
            f"| {fmt(med([100 * s['window']['delivery_ratio'] for s in ws]), 2)} "
            f"| {fails} of {n * len(ws)} "
            f"| {fmt(med([wv(s).get('runqueue_wait_pct') for s in ws]))} |")
    lines.append("")
    lines.append("Floor detail (median): sender CPU, µs/pkt user / sys, crypto alone (header write + encrypt, no send), "
                 "and the delay from a frame's start to the last subscriber's copy of each packet")
    lines.append("")
    lines.append("| N | floor CPU % | user / sys µs per pkt | crypto alone µs per pkt | floor pkt/s | floor fan-out delay µs p50 / p99 |")
    lines.append("|---|---|---|---|---|---|")
    for kind in ("floor", "floor-spin"):
        for n in args.subs:
            fl = [r["summary"] for r in results if r["kind"] == kind and r["n"] == n and "summary" in r]
            if not fl:
                continue
            label = f"{n}" if kind == "floor" else f"{n} (receiver spinning, no wake-ups)"
            lines.append(f"| {label} | {fmt(med([f['sender_cpu']['pct'] for f in fl]))} "
                         f"| {fmt(med([f['user_us_per_pkt'] for f in fl]), 2)} / {fmt(med([f['sys_us_per_pkt'] for f in fl]), 2)} "
                         f"| {fmt(med([f['crypto_only_us_per_pkt'] for f in fl]), 2)} "
                         f"| {fmt(med([f['pkts_per_s'] for f in fl]), 0)} "
                         f"| {fmt(med([f['fanout_us']['p50'] for f in fl]), 0)} / {fmt(med([f['fanout_us']['p99'] for f in fl]), 0)} |")
    lines.append("")
    lines.append("Server detail (median): µs/pkt user / sys, published pkt/s, loadgen CPU %, load average before each run")
    lines.append("")
    lines.append("| N | server user / sys µs per pkt | published pkt/s | latency p90 / p99.9 µs | loadgen CPU % "
                 f"| CPU {args.server_cpu} busy % (all processes) vs server % (runs) | loadavg before (runs) |")
    lines.append("|---|---|---|---|---|---|---|")
    for n in args.subs:
        rs = [r for r in results if r["kind"] == "whep" and r["n"] == n and "summary" in r]
        ws = [r["summary"] for r in rs]
        if not ws:
            continue
        wv = lambda s: s["window"]["watch"][0] if s["window"]["watch"] else {}
        lines.append(f"| {n} | {fmt(med([wv(s).get('user_us_per_pkt') for s in ws]), 2)} / "
                     f"{fmt(med([wv(s).get('sys_us_per_pkt') for s in ws]), 2)} "
                     f"| {fmt(med([s['window']['published_pkts_per_s'] for s in ws]))} "
                     f"| {fmt(med([s['window']['latency_us']['p90'] for s in ws]), 0)} / "
                     f"{fmt(med([s['window']['latency_us']['p999'] for s in ws]), 0)} "
                     f"| {fmt(med([s['window']['loadgen_cpu']['pct'] for s in ws]))} "
                     f"| {'; '.join(fmt(cpu_busy(s, args.server_cpu)) + ' vs ' + fmt(wv(s).get('cpu_pct')) for s in ws)} "
                     f"| {'; '.join(r['loadavg_before'] for r in rs)} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subs", default="100 250 500", help="subscriber counts (default '100 250 500')")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--window", type=float, default=15)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--ramp", type=float, default=100)
    ap.add_argument("--bitrate", type=int, default=1000, help="publisher video kbit/s")
    ap.add_argument("--sample-every", type=int, default=16)
    ap.add_argument("--no-floor", action="store_true", help="skip the srtp-floor runs")
    ap.add_argument("--spin-floor", action="store_true",
                    help="also run the floor with a busy-polling receiver (no wake-ups; a diagnostic)")
    ap.add_argument("--floor-only", action="store_true")
    ap.add_argument("--perf", type=int, default=0, metavar="N",
                    help="perf-record the server for 5 s in the first repetition's window at N subscribers")
    ap.add_argument("--perf-dwarf", action="store_true",
                    help="with --perf: DWARF call graphs (user-space callers; 3 s, large file)")
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--load-cpu", type=int, default=0)
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    args.subs = [int(x) for x in args.subs.split()]
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    out_dir = args.out or os.path.join(os.path.dirname(args.bin), "bench-whep", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out_dir, exist_ok=True)
    for b in ["microvibe", "whep-load", "srtp-floor"]:
        if not os.path.exists(os.path.join(args.bin, b)):
            sys.exit(f"{args.bin}/{b} is missing (build: cargo build --release -p control --bin microvibe "
                     f"&& cargo build --release -p benches --bin whep-load --bin srtp-floor)")
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = []
    with open(os.path.join(out_dir, "results.jsonl"), "a") as rf:
        try:
            for rep in range(args.reps):
                for n in args.subs:
                    if not args.floor_only:
                        r = run_whep(args, n, rep, out_dir, perf=(args.perf == n and rep == 0))
                        results.append(r)
                        rf.write(json.dumps(r) + "\n")
                        rf.flush()
                        if "summary" in r:
                            s = r["summary"]
                            w = s["window"]
                            wv = w["watch"][0] if w["watch"] else {}
                            log(f"  N={n} rep {rep}: server {wv.get('cpu_pct', 0):.1f}% = {wv.get('us_per_pkt', 0):.2f} us/pkt, "
                                f"{w['pkts_per_s']:.0f} pkt/s, latency p50/p99 {w['latency_us']['p50']}/{w['latency_us']['p99']} us, "
                                f"failed {s['failed']}, run-queue wait {wv.get('runqueue_wait_pct') or 0:.1f}%")
                    if not args.no_floor:
                        r = run_floor(args, n, rep)
                        results.append(r)
                        rf.write(json.dumps(r) + "\n")
                        rf.flush()
                        if "summary" in r:
                            log(f"  floor N={n} rep {rep}: {r['summary']['us_per_pkt']:.2f} us/pkt")
                    if args.spin_floor:
                        r = run_floor(args, n, rep, spin=True)
                        results.append(r)
                        rf.write(json.dumps(r) + "\n")
                        rf.flush()
                        if "summary" in r:
                            log(f"  floor (spinning receiver) N={n} rep {rep}: {r['summary']['us_per_pkt']:.2f} us/pkt")
        finally:
            cleanup()
    text = report(args, results)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text)
    print(text)
    log(f"results: {out_dir}/results.jsonl, {out_dir}/report.md")


if __name__ == "__main__":
    main()
