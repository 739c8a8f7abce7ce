#!/usr/bin/env python3
"""Cluster relay cost: N HTTP-FLV players on the origin node vs on an edge node.

Two microvibe nodes in cluster mode (PostgreSQL + Redis on their standard local ports,
a schema and a Redis key prefix of this run's own): the origin on 127.0.0.1 with the
ffmpeg publisher, the edge on 127.0.0.2. Both nodes run on CPU 1 (one shard each);
the publisher and the loadgen on CPU 0. Alternating in one run (A B A B ...):

  direct  N players on the origin's HTTP-FLV
  edge    N players on the edge's HTTP-FLV: the edge pulls the stream once from the
          origin (the relay) and fans it out itself

The loadgen measures both nodes' CPU (utime + stime from /proc) over the same window.
Per delivered GB: the origin's, the edge's and their sum. The relay's price is
(edge run: origin + edge) against (direct run: origin); what an edge takes off the
origin is the origin's own figure in the two runs.

    benches/compare/relay.py [--players 1000] [--reps 3] [--skip-build]

Only loopback addresses are used. Every process this script starts is stopped by its
pid on exit. Results: OUT/results.jsonl and OUT/report.md.
"""

import argparse
import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare as c  # noqa: E402  (the fan-out comparison's helpers)

SECRET = "relay-bench-secret-0123456789abcdef0123456789"


def node_env(host, ports, schema, prefix, workdir, node_id):
    api, rtmp, http = ports
    env = dict(os.environ)
    env.update({
        "SFU_MODE": "cluster",
        "JWT_SECRET": SECRET,
        "MICROVIBE__CLUSTER__NODE_ID": node_id,
        "MICROVIBE__SERVER__HOST": host,
        "MICROVIBE__SERVER__PORT": str(api),
        "MICROVIBE__SERVER__ADMIN_TOKEN": "bench-admin-token-0123456789",
        "MICROVIBE__RTMP__LISTEN": f"{host}:{rtmp}",
        "MICROVIBE__HTTP_MEDIA__LISTEN": f"{host}:{http}",
        "MICROVIBE__DATABASE__HOST": "127.0.0.1",
        "MICROVIBE__DATABASE__USER": os.environ.get("PGUSER", "postgres"),
        "MICROVIBE__DATABASE__DBNAME": "test",
        "MICROVIBE__DATABASE__SCHEMA": schema,
        "MICROVIBE__REDIS__HOST": "127.0.0.1",
        "MICROVIBE__REDIS__PORT": "6379",
        "MICROVIBE__REDIS__KEY_PREFIX": prefix,
        "MICROVIBE__ENGINE__SHARDS": "1",
        "MICROVIBE__SFU__ENABLED": "false",
        "MICROVIBE__DATABASE__SQLITE_PATH": os.path.join(workdir, f"{node_id}.db"),
        "RUST_LOG": "warn",
    })
    return env


class Node:
    def __init__(self, host, node_id, schema, prefix, workdir):
        self.host, self.id = host, node_id
        self.ports = (c.free_port(), c.free_port(), c.free_port())
        self.api = f"http://{host}:{self.ports[0]}"
        self.http = f"http://{host}:{self.ports[2]}"
        self.rtmp = f"rtmp://{host}:{self.ports[1]}/live"
        self.logf = open(os.path.join(workdir, f"{node_id}.log"), "w")
        env = node_env(host, self.ports, schema, prefix, workdir, node_id)
        self.proc = c.spawn(["taskset", "-c", "1", c.MICROVIBE, "serve"], cwd=workdir, env=env,
                            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(self.api + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{node_id} did not start; see {self.logf.name}")
            time.sleep(0.1)

    def stop(self):
        c.stop(self.proc, signal.SIGTERM, wait=10)
        c.forget(self.proc)
        self.logf.close()


def origin_relays(origin, name):
    """Relay pulls the origin serves for `name` (its /stat clients marked relay)."""
    req = urllib.request.Request(origin.http + "/stat.json")
    req.add_header("Authorization", "Bearer bench-admin-token-0123456789")
    with urllib.request.urlopen(req, timeout=5) as r:
        stat = json.loads(r.read())
    for s in stat.get("streams", []):
        if s.get("name") == name:
            return sum(1 for cl in s.get("clients", []) if cl.get("relay"))
    return 0


def one_run(mode, url, n, origin, edge, name, args):
    cmd = ["taskset", "-c", "0", c.LOADGEN, "--url", url, "--players", str(n), "--ramp", str(args.ramp),
           "--warmup", str(args.warmup), "--duration", str(args.window), "--read-interval", "100",
           "--watch-pid", str(origin.proc.pid), "--watch-pid", str(edge.proc.pid), "--json", "--quiet"]
    c.log(f"run {mode} N={n}: {url}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=n / max(args.ramp, 1) + args.warmup + args.window + 120)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr}")
    s = json.loads(out.stdout.strip().splitlines()[-1])
    w = s["window"]
    gb = w["bytes"] / 1e9
    cpu = [x["user_s"] + x["sys_s"] for x in w["watch"][:2]]
    relays = origin_relays(origin, name)
    rec = {
        "mode": mode, "players": n, "connected": s["connected"], "receiving": s["receiving"],
        "failed": s["failed"], "dropped": s["dropped"], "gbps": w["mbps"] / 1000.0, "bytes": w["bytes"],
        "window_s": w["seconds"], "origin_cpu_s": cpu[0], "edge_cpu_s": cpu[1],
        "origin_cpu_s_per_gb": cpu[0] / gb if gb else None, "edge_cpu_s_per_gb": cpu[1] / gb if gb else None,
        "total_cpu_s_per_gb": (cpu[0] + cpu[1]) / gb if gb else None,
        "lag_p99": w["lag_ms"]["p99"], "lag_max": w["lag_ms"]["max"],
        "ttff_p50": s["ttff_ms"]["p50"], "ttff_p99": s["ttff_ms"]["p99"],
        "origin_relays_after": relays, "errors": s["errors"],
    }
    c.log(f"   {mode}: {rec['gbps']:.2f} Gbit/s, CPU-s/GB origin {rec['origin_cpu_s_per_gb'] or 0:.3f} "
          f"edge {rec['edge_cpu_s_per_gb'] or 0:.3f} total {rec['total_cpu_s_per_gb'] or 0:.3f}, "
          f"ttff p50 {rec['ttff_p50']} ms, failed {rec['failed']} dropped {rec['dropped']}, relays {relays}")
    return rec


def report(results, args):
    lines = [f"{args.players} HTTP-FLV players of a 720p30 2.5 Mbit/s stream; window {args.window} s after "
             f"{args.warmup} s warm-up; medians of {args.reps} run(s) (single runs in brackets).\n",
             "| players on | Gbit/s | origin CPU-s/GB | edge CPU-s/GB | total CPU-s/GB | TTFF p50 ms | failed+dropped |",
             "|---|---|---|---|---|---|---|"]
    med = {}
    for mode in ["direct", "edge"]:
        rs = [r for r in results if r["mode"] == mode]
        if not rs:
            continue
        m = {k: c.med([r[k] for r in rs]) for k in ["gbps", "origin_cpu_s_per_gb", "edge_cpu_s_per_gb",
                                                       "total_cpu_s_per_gb", "ttff_p50"]}
        med[mode] = m
        spread = ", ".join(c.fmt(r["total_cpu_s_per_gb"], 3) for r in rs)
        lines.append(f"| {'origin' if mode == 'direct' else 'edge (relay)'} | {c.fmt(m['gbps'], 2)} | "
                     f"{c.fmt(m['origin_cpu_s_per_gb'], 3)} | {c.fmt(m['edge_cpu_s_per_gb'], 3)} | "
                     f"{c.fmt(m['total_cpu_s_per_gb'], 3)} ({spread}) | {c.fmt(m['ttff_p50'], 0)} | "
                     f"{sum(r['failed'] + r['dropped'] for r in rs)} |")
    if "direct" in med and "edge" in med and med["direct"]["total_cpu_s_per_gb"]:
        d, e = med["direct"], med["edge"]
        lines.append("")
        lines.append(f"Total CPU per GB, edge / direct: {e['total_cpu_s_per_gb'] / d['total_cpu_s_per_gb']:.2f}; "
                     f"the origin's CPU per GB with the players on the edge: "
                     f"{e['origin_cpu_s_per_gb'] / d['origin_cpu_s_per_gb']:.3f} of its direct figure.")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ramp", type=int, default=500)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, c.on_signal)
    signal.signal(signal.SIGINT, c.on_signal)
    atexit.register(c.cleanup)
    c.ensure_tools()
    if not args.skip_build:
        c.build()
    c.ensure_fixture()
    c.raise_nofile()
    args.out_dir = args.out_dir or os.path.join(c.TARGET, "bench-relay", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(args.out_dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="relay-bench-")
    tag = f"{os.getpid()}"
    schema, prefix = f"relay_bench_{tag}", f"relay_bench_{tag}:"
    origin = Node("127.0.0.1", "origin", schema, prefix, workdir)
    edge = Node("127.0.0.2", "edge", schema, prefix, workdir)
    user = f"bench{tag}"
    c.http_json("POST", origin.api + "/api/v1/auth/register", {"username": user, "password": "password123"})
    tok = c.http_json("POST", origin.api + "/api/v1/auth/login", {"username": user, "password": "password123"})["data"]["token"]
    room = c.http_json("POST", origin.api + "/api/v1/live/create", {"title": "bench", "push_protocol": "rtmp"}, tok)["data"]
    pub = c.publisher(f"{origin.rtmp}/{room['stream_key']}", origin.logf)
    deadline = time.time() + 20
    while c.http_json("GET", f"{edge.api}/api/v1/live/{room['id']}")["data"]["status"] != "live":
        if time.time() > deadline:
            raise RuntimeError("the stream did not go live")
        time.sleep(0.2)
    name = room["stream_name"]
    urls = {"direct": f"{origin.http}/flv/{name}.flv", "edge": f"{edge.http}/flv/{name}.flv"}
    results = []
    try:
        for rep in range(args.reps):
            for mode in ["direct", "edge"]:
                results.append(one_run(mode, urls[mode], args.players, origin, edge, name, args))
                with open(os.path.join(args.out_dir, "results.jsonl"), "a") as f:
                    f.write(json.dumps(results[-1]) + "\n")
                # Let the edge's relay stop (idle after its last player) between runs.
                time.sleep(7)
    finally:
        c.stop(pub)
        c.forget(pub)
        edge.stop()
        origin.stop()
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", os.environ.get("PGUSER", "postgres"), "-d", "test", "-qc",
                        f"DROP SCHEMA IF EXISTS {schema} CASCADE"], check=False)
    text = report(results, args)
    with open(os.path.join(args.out_dir, "report.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
