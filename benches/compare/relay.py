#!/usr/bin/env python3
"""Cluster relay cost and latency: players on edge nodes against players on one node.

Three microvibe nodes in cluster mode (PostgreSQL + Redis on their standard local ports,
a schema and a Redis key prefix of this run's own): the origin on 127.0.0.1 with the
ffmpeg publisher (720p30, 2.5 Mbit/s), edges on 127.0.0.2 and 127.0.0.3. All three run on
CPU 1 (one shard each); the publisher and the loadgens on CPU 0. Alternating in one run
(A B C A B C ...), each a loadgen window measuring every node's CPU (utime + stime from
/proc) over the same seconds:

  single  N HTTP-FLV players on the origin (one node serving them all)
  two     2 HTTP-FLV players on the origin (the origin's cost of a stream with 2 players)
  edges   N players on each edge (2 N in all): each edge pulls the stream once from the
          origin (its relay) and fans it out itself; the origin serves the 2 relays

Figures: each node's CPU share and CPU seconds per delivered GB; "edges" against "two"
for the origin (does the origin's cost grow with the edges' audience?), and an edge's
CPU per GB against "single" (does a relayed stream cost an edge more than a published one
costs one node?).

Latency per relay hop: one HTTP-FLV reader on the origin and one on an edge at the same
time; each video tag is matched by its bytes, and the edge's arrival time minus the
origin's is the hop (p50/p99/max over --latency-secs).

    benches/compare/relay.py [--players 1000] [--reps 3] [--skip-build]

Only loopback addresses are used. Every process this script starts is stopped by its
pid on exit. Results: OUT/results.jsonl and OUT/report.md.
"""

import argparse
import atexit
import json
import os
import signal
import socket
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


def loadgen(url, n, watch, args):
    cmd = ["taskset", "-c", "0", c.LOADGEN, "--url", url, "--players", str(n), "--ramp", str(args.ramp),
           "--warmup", str(args.warmup), "--duration", str(args.window), "--read-interval", "100",
           "--json", "--quiet"]
    for pid in watch:
        cmd += ["--watch-pid", str(pid)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, n, args):
    out, err = p.communicate(timeout=n / max(args.ramp, 1) + args.warmup + args.window + 120)
    if p.returncode != 0:
        raise RuntimeError(f"loadgen failed: {err}")
    return json.loads(out.strip().splitlines()[-1])


def one_run(mode, nodes, name, args):
    origin, e1, e2 = nodes
    pids = [origin.proc.pid, e1.proc.pid, e2.proc.pid]
    flv = lambda node: f"{node.http}/flv/{name}.flv"  # noqa: E731
    if mode == "single":
        gens = [(loadgen(flv(origin), args.players, pids, args), args.players)]
    elif mode == "two":
        gens = [(loadgen(flv(origin), 2, pids, args), 2)]
    else:
        gens = [(loadgen(flv(e1), args.players, pids, args), args.players),
                (loadgen(flv(e2), args.players, pids, args), args.players)]
    c.log(f"run {mode}")
    outs = [finish(p, n, args) for p, n in gens]
    gb = sum(o["window"]["bytes"] for o in outs) / 1e9
    secs = outs[0]["window"]["seconds"]
    # Every loadgen watched every node over (nearly) the same window: take the first's.
    cpu = [x["user_s"] + x["sys_s"] for x in outs[0]["window"]["watch"][:3]]
    rec = {
        "mode": mode, "players": sum(n for _, n in gens), "gbps": sum(o["window"]["mbps"] for o in outs) / 1000.0,
        "bytes": gb * 1e9, "window_s": secs,
        "failed": sum(o["failed"] + o["dropped"] for o in outs),
        "receiving": sum(o["receiving"] for o in outs),
        "origin_cpu_pct": 100 * cpu[0] / secs, "edge1_cpu_pct": 100 * cpu[1] / secs, "edge2_cpu_pct": 100 * cpu[2] / secs,
        "origin_cpu_s_per_gb": cpu[0] / gb if gb else None,
        "edge_cpu_s_per_gb": (cpu[1] + cpu[2]) / gb if gb and mode == "edges" else None,
        "ttff_p50": max(o["ttff_ms"]["p50"] or 0 for o in outs),
        "lag_p99": max(o["window"]["lag_ms"]["p99"] or 0 for o in outs),
        "origin_relays": origin_relays(origin, name),
    }
    c.log(f"   {mode}: {rec['gbps']:.2f} Gbit/s, CPU % origin {rec['origin_cpu_pct']:.1f} edges "
          f"{rec['edge1_cpu_pct']:.1f}/{rec['edge2_cpu_pct']:.1f}; CPU-s/GB origin "
          f"{c.fmt(rec['origin_cpu_s_per_gb'], 3)} edges {c.fmt(rec['edge_cpu_s_per_gb'], 3)}; "
          f"failed {rec['failed']}, relays at the origin {rec['origin_relays']}")
    return rec


class FlvTimes:
    """Arrival time (monotonic) of each video tag, by its bytes, read from HTTP-FLV."""

    def __init__(self, url, unmerged=False):
        import hashlib
        import threading
        host, rest = url[len("http://"):].split("/", 1)
        h, port = host.rsplit(":", 1)
        self.sock = socket.create_connection((h, int(port)))
        # With the cluster's relay token a player is written to at once (no merge
        # window): what the hop itself costs, without the players' write batching.
        extra = ""
        if unmerged:
            token = hashlib.sha256(f"microvibe-relay:{SECRET}".encode()).hexdigest()
            extra = f"X-Microvibe-Relay: {token}\r\n"
        self.sock.sendall(f"GET /{rest} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
        self.times = {}
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        raw, body, head_done = b"", b"", False
        deadline = time.monotonic() + 600
        while not self.stop and time.monotonic() < deadline:
            data = self.sock.recv(65536)
            if not data:
                return
            now = time.monotonic()
            raw += data
            if not head_done:
                if b"\r\n\r\n" not in raw:
                    continue
                raw = raw.split(b"\r\n\r\n", 1)[1]
                head_done = True
            # HTTP/1.1 chunks.
            while True:
                line_end = raw.find(b"\r\n")
                if line_end < 0:
                    break
                size = int(raw[:line_end].split(b";")[0], 16)
                if len(raw) < line_end + 2 + size + 2:
                    break
                body += raw[line_end + 2:line_end + 2 + size]
                raw = raw[line_end + 2 + size + 2:]
            # FLV: a 13-byte file header, then tags (11-byte header, body, 4-byte size).
            if body.startswith(b"FLV"):
                body = body[13:]
            while len(body) >= 11:
                size = int.from_bytes(body[1:4], "big")
                if len(body) < 11 + size + 4:
                    break
                if body[0] == 9:
                    self.times.setdefault(hash(body[11:11 + size]), now)
                body = body[11 + size + 4:]

    def close(self):
        self.stop = True
        self.sock.close()


def hop_latency(origin, edge, name, secs, unmerged):
    """Edge arrival minus origin arrival of the same video tags, in ms."""
    a = FlvTimes(f"{origin.http}/flv/{name}.flv", unmerged)
    b = FlvTimes(f"{edge.http}/flv/{name}.flv", unmerged)
    time.sleep(secs)
    a.close()
    b.close()
    # The first seconds are the players' GOP starts (cached frames, not live).
    both = sorted((a.times[k], b.times[k] - a.times[k]) for k in a.times.keys() & b.times.keys())
    d = sorted(ms * 1000 for t, ms in both if t > both[0][0] + 3) if both else []
    if not d:
        return {"samples": 0}
    pct = lambda q: d[min(len(d) - 1, int(q * len(d)))]  # noqa: E731
    return {"players": "unmerged" if unmerged else "viewers (30 ms merge window)", "samples": len(d),
            "mean_ms": sum(d) / len(d), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": d[-1]}


def report(results, hops, args):
    lines = [f"{args.players} HTTP-FLV players per node (2 × {args.players} on the edges) of a 720p30 2.5 Mbit/s "
             f"stream; window {args.window} s after {args.warmup} s warm-up; medians of {args.reps} run(s) "
             "(single runs in brackets).\n",
             "| run | players | Gbit/s | origin CPU % | edges CPU % | origin CPU-s/GB | edges CPU-s/GB | failed |",
             "|---|---|---|---|---|---|---|---|"]
    med = {}
    for mode in ["single", "two", "edges"]:
        rs = [r for r in results if r["mode"] == mode]
        if not rs:
            continue
        keys = ["gbps", "origin_cpu_pct", "edge1_cpu_pct", "edge2_cpu_pct", "origin_cpu_s_per_gb", "edge_cpu_s_per_gb"]
        m = {k: c.med([r[k] for r in rs]) for k in keys}
        med[mode] = m
        spread = lambda k: ", ".join(c.fmt(r[k], 3 if "gb" in k else 1) for r in rs)  # noqa: E731
        lines.append(f"| {mode} | {rs[0]['players']} | {c.fmt(m['gbps'], 2)} | {c.fmt(m['origin_cpu_pct'], 1)} "
                     f"({spread('origin_cpu_pct')}) | {c.fmt(m['edge1_cpu_pct'], 1)} + {c.fmt(m['edge2_cpu_pct'], 1)} | "
                     f"{c.fmt(m['origin_cpu_s_per_gb'], 3)} ({spread('origin_cpu_s_per_gb')}) | "
                     f"{c.fmt(m['edge_cpu_s_per_gb'], 3)} | {sum(r['failed'] for r in rs)} |")
    lines.append("")
    if "two" in med and "edges" in med:
        lines.append(f"Origin CPU with 2 edges × {args.players} players / with 2 players of its own: "
                     f"{med['edges']['origin_cpu_pct'] / med['two']['origin_cpu_pct']:.2f} "
                     f"({c.fmt(med['edges']['origin_cpu_pct'], 1)} % vs {c.fmt(med['two']['origin_cpu_pct'], 1)} % of a core).")
    if "single" in med and "edges" in med and med["single"]["origin_cpu_s_per_gb"]:
        lines.append(f"Edge CPU per GB / one node's with the same players: "
                     f"{med['edges']['edge_cpu_s_per_gb'] / med['single']['origin_cpu_s_per_gb']:.2f}.")
    for h in hops:
        lines.append(f"Relay hop latency, {h.get('players')} (edge arrival − origin arrival of the same video tags, "
                     f"{h.get('samples', 0)} tags): mean {c.fmt(h.get('mean_ms'), 1)} ms, p50 {c.fmt(h.get('p50_ms'), 1)} ms, "
                     f"p99 {c.fmt(h.get('p99_ms'), 1)} ms, max {c.fmt(h.get('max_ms'), 1)} ms.")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", type=int, default=1000, help="players per edge (and on the single node)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ramp", type=int, default=500)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--latency-secs", type=float, default=20)
    ap.add_argument("--latency-only", action="store_true", help="measure the hop latency, not the CPU")
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
    nodes = [Node("127.0.0.1", "origin", schema, prefix, workdir),
             Node("127.0.0.2", "edge1", schema, prefix, workdir),
             Node("127.0.0.3", "edge2", schema, prefix, workdir)]
    origin = nodes[0]
    user = f"bench{tag}"
    c.http_json("POST", origin.api + "/api/v1/auth/register", {"username": user, "password": "password123"})
    tok = c.http_json("POST", origin.api + "/api/v1/auth/login", {"username": user, "password": "password123"})["data"]["token"]
    room = c.http_json("POST", origin.api + "/api/v1/live/create", {"title": "bench", "push_protocol": "rtmp"}, tok)["data"]
    pub = c.publisher(f"{origin.rtmp}/{room['stream_key']}", origin.logf)
    deadline = time.time() + 20
    while c.http_json("GET", f"{nodes[1].api}/api/v1/live/{room['id']}")["data"]["status"] != "live":
        if time.time() > deadline:
            raise RuntimeError("the stream did not go live")
        time.sleep(0.2)
    name = room["stream_name"]
    results, hops = [], []
    try:
        for unmerged in (True, False):
            hops.append(hop_latency(origin, nodes[1], name, args.latency_secs, unmerged))
            c.log(f"relay hop latency: {hops[-1]}")
            time.sleep(7)
        time.sleep(7)
        for rep in range(0 if args.latency_only else args.reps):
            for mode in ["single", "two", "edges"]:
                results.append(one_run(mode, nodes, name, args))
                with open(os.path.join(args.out_dir, "results.jsonl"), "a") as f:
                    f.write(json.dumps(results[-1]) + "\n")
                # Let the edges' relays stop (idle 5 s after their last player) between runs.
                time.sleep(7)
    finally:
        c.stop(pub)
        c.forget(pub)
        for n in reversed(nodes):
            n.stop()
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", os.environ.get("PGUSER", "postgres"), "-d", "test", "-qc",
                        f"DROP SCHEMA IF EXISTS {schema} CASCADE"], check=False)
    text = report(results, hops, args)
    with open(os.path.join(args.out_dir, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out_dir, "hops.json"), "w") as f:
        json.dump(hops, f)
    print(text)


if __name__ == "__main__":
    main()
