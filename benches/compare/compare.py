#!/usr/bin/env python3
"""Side-by-side fan-out comparison: nginx-rtmp vs microvibe vs the floor writer.

One command (see BENCHMARKS.md):  benches/compare/run.sh [--quick] [options]

For each player count N, and each repetition, every configuration runs in turn
(A B C ... A B C ...): the server alone on CPU 1 (taskset -c 1), the publisher
(ffmpeg -re -stream_loop -1 -c copy) and the loadgen on CPU 0. The loadgen ramps
N players, waits --warmup s, then measures a --window s window; it records the
server's utime/stime from /proc/PID/stat and RSS from /proc/PID/status at the
window's edges itself (--watch-pid), so the window is exact. Results go to
OUT/results.jsonl (one JSON object per run) and OUT/report.md (median tables).

Only loopback addresses are used. Every process this script starts is stopped
by its pid on exit (also on Ctrl-C / SIGTERM).
"""

import argparse
import atexit
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.path.join(ROOT, "target")
FIXTURE = os.path.join(TARGET, "fixtures", "bench-720p30.flv")
MICROVIBE = os.path.join(TARGET, "release", "microvibe")
LOADGEN = os.path.join(TARGET, "release", "loadgen")
FLOOR = os.path.join(TARGET, "release", "floor")
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

CHILDREN = []  # Popen objects we started


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def stop(p, sig=signal.SIGTERM, wait=5.0):
    if p is None or p.poll() is not None:
        return
    try:
        p.send_signal(sig)
        p.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    except ProcessLookupError:
        pass


def cleanup():
    for p in reversed(CHILDREN):
        stop(p, wait=3.0)
    CHILDREN.clear()


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    CHILDREN.append(p)
    return p


def forget(p):
    if p in CHILDREN:
        CHILDREN.remove(p)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(cmd, **kw):
    log("$", " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------------------
# Preparation


def ensure_tools():
    need_apt = []
    if not shutil.which("nginx") or not os.path.exists(NGINX_MODULE):
        need_apt += ["nginx", "libnginx-mod-rtmp"]
    if not shutil.which("ffmpeg"):
        need_apt += ["ffmpeg"]
    if need_apt:
        run(["apt-get", "update"])
        run(["apt-get", "install", "-y"] + need_apt, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    for t in ["taskset", "nginx", "ffmpeg"]:
        if not shutil.which(t):
            sys.exit(f"{t} not found")


def build():
    run(["cargo", "build", "--release", "-p", "control", "-p", "benches", "--bins"], cwd=ROOT)


def ensure_fixture():
    if os.path.exists(FIXTURE):
        return
    os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
    tmp = FIXTURE + f".{os.getpid()}.flv"
    # The fixture: 30 s of testsrc2 720p30, x264 veryfast zerolatency,
    # GOP 60, no B-frames, 2500 kbit/s, + 440 Hz AAC.
    run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "30",
         "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "60", "-bf", "0",
         "-b:v", "2500k", "-c:a", "aac", "-f", "flv", tmp])
    os.rename(tmp, FIXTURE)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ---------------------------------------------------------------------------
# Servers. Each: start() -> (play_url, watch_pid); stop().


def publisher(url, logf):
    return spawn(["taskset", "-c", "0", "ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", FIXTURE,
                  "-c", "copy", "-f", "flv", url], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=logf)


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def wait_tcp(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class Nginx:
    kind = "nginx-rtmp"

    def __init__(self, protocol="rtmp"):
        self.name = "nginx-rtmp"
        self.protocol = protocol
        self.interval = None

    def start(self, workdir):
        self.dir = tempfile.mkdtemp(prefix="nginx-", dir=workdir)
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""load_module {NGINX_MODULE};
worker_processes 1;
worker_rlimit_nofile {resource.getrlimit(resource.RLIMIT_NOFILE)[1]};
daemon off;
master_process on;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections {resource.getrlimit(resource.RLIMIT_NOFILE)[1]}; }}
rtmp {{
    server {{
        listen 127.0.0.1:{self.port};
        chunk_size 4096;
        application live {{
            live on;
        }}
    }}
}}
""")
        self.logf = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = spawn(["taskset", "-c", "1", "nginx", "-p", self.dir + "/", "-c", conf],
                          stdout=self.logf, stderr=self.logf)
        if not wait_tcp(self.port):
            raise RuntimeError("nginx did not start: " + open(os.path.join(self.dir, "logs/error.log")).read())
        workers = []
        for _ in range(50):
            workers = children_of(self.proc.pid)
            if workers:
                break
            time.sleep(0.1)
        if not workers:
            raise RuntimeError("no nginx worker")
        self.worker = workers[0]
        self.pub = publisher(f"rtmp://127.0.0.1:{self.port}/live/bench", self.logf)
        return f"rtmp://127.0.0.1:{self.port}/live/bench", self.worker, self.pub.pid

    def stop(self):
        stop(self.pub)
        forget(self.pub)
        stop(self.proc, signal.SIGQUIT)
        forget(self.proc)
        self.logf.close()


def http_json(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class Microvibe:
    kind = "microvibe"

    def __init__(self, protocol="rtmp", merge_ms=30, binary=None, tag="", nodelay=True):
        self.protocol = protocol
        self.merge_ms = merge_ms
        self.binary = binary
        self.nodelay = nodelay
        self.tcp = "nodelay" if nodelay else "nagle"
        self.name = f"microvibe-{protocol}-mw{merge_ms}{'' if nodelay else '-nagle'}{tag}"
        self.interval = merge_ms

    def start(self, workdir):
        self.dir = tempfile.mkdtemp(prefix="microvibe-", dir=workdir)
        api, rtmp, http = free_port(), free_port(), free_port()
        env = dict(os.environ)
        env.update({
            "MICROVIBE__SERVER__HOST": "127.0.0.1",
            "MICROVIBE__SERVER__PORT": str(api),
            "MICROVIBE__SERVER__ADMIN_TOKEN": "bench-admin-token-0123456789",
            "MICROVIBE__RTMP__LISTEN": f"127.0.0.1:{rtmp}",
            "MICROVIBE__HTTP_MEDIA__LISTEN": f"127.0.0.1:{http}",
            "MICROVIBE__DATABASE__SQLITE_PATH": os.path.join(self.dir, "bench.db"),
            "MICROVIBE__ENGINE__SHARDS": "1",
            "MICROVIBE__ENGINE__MERGE_WINDOW_MS": str(self.merge_ms),
            "MICROVIBE__STREAMING__RTMP_SERVER": f"rtmp://127.0.0.1:{rtmp}/live",
            "MICROVIBE__STREAMING__RTMP_PLAY_SERVER": f"rtmp://127.0.0.1:{rtmp}/live",
            "MICROVIBE__STREAMING__FLV_SERVER": f"http://127.0.0.1:{http}/flv",
            "MICROVIBE__STREAMING__HLS_SERVER": f"http://127.0.0.1:{http}/hls",
            "RUST_LOG": "warn",
        })
        if not self.nodelay:
            env["MICROVIBE__ENGINE__TCP_NODELAY"] = "false"
        self.logf = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = spawn(["taskset", "-c", "1", self.binary or MICROVIBE], cwd=self.dir, env=env,
                          stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        base = f"http://127.0.0.1:{api}"
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("microvibe did not start; see " + self.logf.name)
            time.sleep(0.1)
        user = f"bench{api}"
        http_json("POST", base + "/api/v1/auth/register", {"username": user, "password": "password123"})
        tok = http_json("POST", base + "/api/v1/auth/login", {"username": user, "password": "password123"})["data"]["token"]
        room = http_json("POST", base + "/api/v1/live/create", {"title": "bench", "push_protocol": "rtmp"}, tok)["data"]
        key, name, rid = room["stream_key"], room["stream_name"], room["id"]
        self.pub = publisher(f"rtmp://127.0.0.1:{rtmp}/live/{key}", self.logf)
        deadline = time.time() + 20
        while True:
            st = http_json("GET", f"{base}/api/v1/live/{rid}")["data"]["status"]
            if st == "live":
                break
            if time.time() > deadline:
                raise RuntimeError("stream did not go live; see " + self.logf.name)
            time.sleep(0.2)
        if self.protocol == "rtmp":
            url = f"rtmp://127.0.0.1:{rtmp}/live/{name}"
        else:
            url = f"http://127.0.0.1:{http}/flv/{name}.flv"
        return url, self.proc.pid, self.pub.pid

    def stop(self):
        stop(self.pub)
        forget(self.pub)
        stop(self.proc, signal.SIGTERM, wait=10)
        forget(self.proc)
        self.logf.close()


class Floor:
    kind = "floor"

    def __init__(self, interval, nodelay=False):
        self.interval = interval
        self.protocol = "http-flv"
        self.nodelay = nodelay
        self.tcp = "nodelay" if nodelay else "nagle"
        self.name = f"floor-{interval}ms{'-nodelay' if nodelay else ''}"

    def start(self, workdir):
        self.port = free_port()
        self.logf = open(os.path.join(workdir, f"floor-{self.interval}-{self.port}.log"), "w")
        self.proc = spawn(["taskset", "-c", "1", FLOOR, "--fixture", FIXTURE, "--interval", str(self.interval),
                           "--listen", f"127.0.0.1:{self.port}"] + (["--nodelay"] if self.nodelay else []), stdout=self.logf, stderr=self.logf)
        if not wait_tcp(self.port):
            raise RuntimeError("floor did not start")
        return f"http://127.0.0.1:{self.port}/floor.flv", self.proc.pid, None

    def stop(self):
        stop(self.proc)
        forget(self.proc)
        self.logf.close()


# ---------------------------------------------------------------------------


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def one_run(server, n, args, workdir):
    url, pid, pub_pid = server.start(workdir)
    try:
        time.sleep(args.settle)
        rss0 = rss_kb(pid)
        cmd = ["taskset", "-c", "0", LOADGEN, "--url", url, "--players", str(n), "--ramp", str(args.ramp),
               "--warmup", str(args.warmup), "--duration", str(args.window), "--read-interval", str(args.read_interval),
               "--watch-pid", str(pid), "--json", "--quiet"]
        if pub_pid:
            cmd += ["--watch-pid", str(pub_pid)]
        la = loadavg()
        log(f"run {server.name} N={n}: {url}")
        perf = None
        if args.perf:
            # Profile the server for half the window, starting 1 s into it (cpu-clock:
            # no hardware counters in these VMs).
            def start_perf():
                time.sleep(n / max(args.ramp, 1) + args.warmup + 1)
                data = os.path.join(args.out_dir, f"perf-{server.name}-{n}.data")
                return subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "-p", str(pid),
                                         *args.perf_args.split(),
                                         "-o", data, "--", "sleep", str(max(args.window / 2, 1))],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            import threading
            holder = []
            t = threading.Thread(target=lambda: holder.append(start_perf()), daemon=True)
            t.start()
        stat = None
        if args.perf_stat:
            # Event counts (syscalls, context switches, TCP tracepoints) over the same
            # half window, to put a per-GB figure on what a profile only samples.
            stat_file = os.path.join(args.out_dir, f"perf-stat-{server.name}-{n}-{time.time_ns()}.txt")

            def start_stat():
                time.sleep(n / max(args.ramp, 1) + args.warmup + 1)
                return subprocess.Popen(["perf", "stat", "-x", ",", "-e", args.perf_stat, "-p", str(pid),
                                         "-o", stat_file, "--", "sleep", str(max(args.window / 2, 1))],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            import threading
            stat_holder = []
            stat = threading.Thread(target=lambda: stat_holder.append(start_stat()), daemon=True)
            stat.start()
        out = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=n / max(args.ramp, 1) + args.warmup + args.window + 120)
        if args.perf:
            t.join()
            for p in holder:
                p.wait(timeout=30)
        counts = {}
        if stat is not None:
            stat.join()
            for p in stat_holder:
                p.wait(timeout=30)
            counts = read_perf_stat(stat_file)
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed: {out.stderr}")
        s = json.loads(out.stdout.strip().splitlines()[-1])
        w = s["window"]
        srv = w["watch"][0]
        gb = w["bytes"] / 1e9
        cpu_s = srv["user_s"] + srv["sys_s"]
        rec = {
            "server": server.name, "kind": server.kind, "tcp": getattr(server, "tcp", "nagle"), "protocol": server.protocol, "interval_ms": server.interval,
            "players": n, "loadavg_before": la,
            "connected": s["connected"], "receiving": s["receiving"], "failed": s["failed"], "dropped": s["dropped"],
            "receiving_at_end": s["receiving_at_end"],
            "gbps": w["mbps"] / 1000.0, "bytes": w["bytes"], "window_s": w["seconds"],
            "user_pct": srv["user_pct"], "sys_pct": srv["sys_pct"], "cpu_pct": srv["cpu_pct"],
            "user_s": srv["user_s"], "sys_s": srv["sys_s"],
            "runqueue_wait_pct": srv.get("runqueue_wait_pct"),
            "cpu_s_per_gb": cpu_s / gb if gb > 0 else None,
            "rss_kb_baseline": rss0, "rss_kb_end": srv["rss_kb_end"],
            "rss_kb_per_player": (srv["rss_kb_end"] - rss0) / n if rss0 and srv["rss_kb_end"] else None,
            "lag_p50": w["lag_ms"]["p50"], "lag_p99": w["lag_ms"]["p99"], "lag_max": w["lag_ms"]["max"],
            "players_lag_over_1s": w["players_lag_over_1s"], "stalls": w["stalls"],
            "ttff_p50": s["ttff_ms"]["p50"], "ttff_p99": s["ttff_ms"]["p99"],
            "loadgen_cpu_pct": w["loadgen_cpu"]["pct"], "loadgen_user_s": w["loadgen_cpu"]["user_s"],
            "loadgen_sys_s": w["loadgen_cpu"]["sys_s"],
            "publisher_cpu_pct": w["watch"][1]["cpu_pct"] if len(w["watch"]) > 1 and "cpu_pct" in w["watch"][1] else None,
            "errors": s["errors"],
        }
        if counts:
            # Per delivered GB over the half window the counts cover (bytes scaled).
            half_gb = gb * max(args.window / 2, 1) / w["seconds"]
            rec["perf_stat_per_gb"] = {k: v / half_gb for k, v in counts.items()} if half_gb > 0 else None
            log("   per GB: " + ", ".join(f"{k} {v:.0f}" for k, v in (rec["perf_stat_per_gb"] or {}).items()))
        log(f"   {server.name} N={n}: {rec['gbps']:.2f} Gbit/s, server cpu {rec['cpu_pct']:.1f}% "
            f"(user {rec['user_pct']:.1f}% sys {rec['sys_pct']:.1f}%), {rec['cpu_s_per_gb'] or 0:.3f} CPU-s/GB, "
            f"lag p99 {rec['lag_p99']} max {rec['lag_max']} ms, loadgen {rec['loadgen_cpu_pct']:.1f}%, "
            f"run-queue wait {rec['runqueue_wait_pct'] or 0:.1f}%, "
            f"failed {rec['failed']} dropped {rec['dropped']}")
        return rec
    finally:
        server.stop()
        time.sleep(1.0)


def read_perf_stat(path):
    """Event name -> count from `perf stat -x ,` output (unsupported events left out)."""
    counts = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) >= 3 and not line.startswith("#"):
                    try:
                        counts[parts[2]] = float(parts[0])
                    except ValueError:
                        pass
    except OSError:
        pass
    return counts


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def holds(r):
    return r["failed"] == 0 and r["dropped"] == 0 and r["receiving"] == r["players"] and \
        r["lag_max"] is not None and r["lag_max"] < 1000


def report(results, args):
    lines = []
    names = []
    for r in results:
        if r["server"] not in names:
            names.append(r["server"])
    ns = sorted({r["players"] for r in results})
    lines.append(f"Window {args.window} s after {args.warmup} s warm-up, ramp {args.ramp}/s, loadgen reads every "
                 f"{args.read_interval} ms; medians of {args.reps} repetition(s).\n")
    for n in ns:
        rows = {}
        for name in names:
            rs = [r for r in results if r["server"] == name and r["players"] == n]
            if not rs:
                continue
            keys = ["gbps", "user_pct", "sys_pct", "cpu_pct", "cpu_s_per_gb", "rss_kb_per_player", "lag_p50",
                    "lag_p99", "lag_max", "loadgen_cpu_pct", "runqueue_wait_pct"]
            m = {k: med([r[k] for r in rs]) for k in keys}
            m["holds"] = all(holds(r) for r in rs)
            m["failed"] = sum(r["failed"] + r["dropped"] for r in rs)
            m["runs"] = len(rs)
            m["spread"] = [r["cpu_s_per_gb"] for r in rs]
            m["interval"] = rs[0]["interval_ms"]
            m["kind"] = rs[0]["kind"]
            m["tcp"] = rs[0].get("tcp", "nagle")
            rows[name] = m
        nginx = rows.get("nginx-rtmp", {}).get("cpu_s_per_gb")

        def floor_for(interval, tcp):
            # The floor with the nearest write interval, and the same TCP_NODELAY setting
            # when there is one.
            if interval is None:
                interval = 33
            cands = [(abs(rows[k]["interval"] - interval), rows[k]["tcp"] != tcp, k)
                     for k in rows if rows[k]["kind"] == "floor"]
            if not cands:
                return None, None
            _, _, k = min(cands)
            return rows[k]["cpu_s_per_gb"], k

        lines.append(f"\n### N = {n} players\n")
        lines.append("| server | delivered Gbit/s | CPU % user | CPU % sys | CPU % total | CPU-s / GB (runs) | RSS KiB / player "
                     "| lag p50 / p99 / max ms | ×nginx | ×floor (same interval) | all lag < 1 s | loadgen CPU % | server run-queue wait % |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, m in rows.items():
            x_ng = m["cpu_s_per_gb"] / nginx if nginx and m["cpu_s_per_gb"] else None
            fl, fk = floor_for(m["interval"], m["tcp"])
            x_fl = m["cpu_s_per_gb"] / fl if fl and m["cpu_s_per_gb"] and m["kind"] != "floor" else None
            spread = ", ".join(fmt(v, 3) for v in m["spread"])
            lines.append(
                f"| {name} | {fmt(m['gbps'], 2)} | {fmt(m['user_pct'])} | {fmt(m['sys_pct'])} | {fmt(m['cpu_pct'])} "
                f"| {fmt(m['cpu_s_per_gb'], 3)} ({spread}) | {fmt(m['rss_kb_per_player'])} "
                f"| {fmt(m['lag_p50'], 0)} / {fmt(m['lag_p99'], 0)} / {fmt(m['lag_max'], 0)} "
                f"| {fmt(x_ng, 2) if m['kind'] != 'nginx-rtmp' else '1'} "
                f"| {(fmt(x_fl, 2) + ' vs ' + fk) if x_fl else '-'} | {'yes' if m['holds'] else 'NO'} "
                f"| {fmt(m['loadgen_cpu_pct'])} | {fmt(m['runqueue_wait_pct'])} |")
    lines.append("\n### Highest N held (every player receiving, none failed or dropped, every lag sample < 1 s)\n")
    lines.append("| server | highest N held |")
    lines.append("|---|---|")
    for name in names:
        held = [n for n in ns if all(holds(r) for r in results if r["server"] == name and r["players"] == n)
                and any(r["server"] == name and r["players"] == n for r in results)]
        # Highest N such that it and every smaller N held.
        best = None
        for n in ns:
            if n in held:
                best = n
            else:
                break
        lines.append(f"| {name} | {best if best else 'none'}{' (largest tested)' if best == ns[-1] else ''} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--players", default=None, help="player counts (default \"250 500 1000 2000\")")
    ap.add_argument("--reps", type=int, default=None, help="repetitions, A B A B (default 2)")
    ap.add_argument("--window", type=float, default=None, help="measured window, s (default 20)")
    ap.add_argument("--warmup", type=float, default=None, help="s after the ramp (default 5)")
    ap.add_argument("--settle", type=float, default=None, help="s between publisher start and loadgen (default 3)")
    ap.add_argument("--ramp", type=float, default=400)
    ap.add_argument("--read-interval", type=int, default=200)
    ap.add_argument("--floor-intervals", default=None, help="floor write intervals, ms (default \"33 50 100 200\")")
    ap.add_argument("--merge-windows", default="30 200")
    ap.add_argument("--http-merge-windows", default="30 200", help="merge windows for microvibe HTTP-FLV runs")
    ap.add_argument("--tcp-modes", default="nodelay nagle",
                    help="TCP_NODELAY settings of microvibe's and the floor's player sockets to run: "
                         "nodelay (microvibe's default), nagle (default \"nodelay nagle\"); "
                         "each is compared with the floor of the same setting")
    ap.add_argument("--only", default="", help="comma-separated name prefixes of configurations to run")
    ap.add_argument("--quick", action="store_true", help="small N and short windows (smoke run, ~3 min)")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--bin-dir", default=None, help="take microvibe, loadgen and floor from DIR (default target/release)")
    ap.add_argument("--alt-microvibe", default=None,
                    help="a second microvibe binary: every microvibe configuration also runs with it, "
                         "interleaved (names end in -alt), for before/after comparisons")
    ap.add_argument("--perf", action="store_true", help="perf record each server for half of each window (OUT/perf-*.data)")
    ap.add_argument("--perf-args", default="", metavar="ARGS",
                    help='more options for --perf\'s perf record, e.g. "--call-graph dwarf,16384"')
    ap.add_argument("--perf-stat", default=None, metavar="EVENTS",
                    help="perf stat -e EVENTS on each server for half of each window; counts per delivered GB "
                         "go to results.jsonl (perf_stat_per_gb) and the log")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    quick = {"players": "50 200", "reps": 1, "window": 5, "warmup": 2, "settle": 2, "floor_intervals": "30 200"}
    full = {"players": "250 500 1000 2000", "reps": 2, "window": 20, "warmup": 5, "settle": 3,
            "floor_intervals": "30 50 100 200"}
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    atexit.register(cleanup)

    ensure_tools()
    if not args.skip_build:
        build()
    global MICROVIBE, LOADGEN, FLOOR
    if args.bin_dir:
        MICROVIBE, LOADGEN, FLOOR = (os.path.join(os.path.abspath(args.bin_dir), b) for b in ["microvibe", "loadgen", "floor"])
    for b in [MICROVIBE, LOADGEN, FLOOR] + ([args.alt_microvibe] if args.alt_microvibe else []):
        if not os.path.exists(b):
            sys.exit(f"{b} missing: run without --skip-build")
    ensure_fixture()
    hard = raise_nofile()
    out = os.path.abspath(args.out or os.path.join(TARGET, "bench-compare", time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out, exist_ok=True)
    args.out_dir = out
    workdir = tempfile.mkdtemp(prefix="work-", dir=out)
    log(f"results in {out} (RLIMIT_NOFILE {hard})")

    modes = args.tcp_modes.split()
    for m in modes:
        if m not in ("nodelay", "nagle"):
            sys.exit(f"--tcp-modes: {m}? (nodelay, nagle)")
    servers = [Nginx()]
    servers += [Microvibe("rtmp", int(m), nodelay=t == "nodelay") for m in args.merge_windows.split() for t in modes]
    servers += [Microvibe("http", int(m), nodelay=t == "nodelay") for m in args.http_merge_windows.split() for t in modes]
    if args.alt_microvibe:
        alt = os.path.abspath(args.alt_microvibe)
        twins = []
        for s in servers:
            twins.append(s)
            # (Older builds have no engine.tcp_nodelay: the twin runs with TCP_NODELAY only.)
            if isinstance(s, Microvibe) and s.nodelay:
                twins.append(Microvibe(s.protocol, s.merge_ms, alt, "-alt", s.nodelay))
        servers = twins
    servers += [Floor(int(i), nodelay=t == "nodelay") for i in args.floor_intervals.split() for t in modes]
    if args.only:
        pref = args.only.split(",")
        servers = [s for s in servers if any(s.name.startswith(p) for p in pref)]
    ns = [int(x) for x in args.players.split()]

    results = []
    with open(os.path.join(out, "results.jsonl"), "a") as rf:
        for n in ns:
            for rep in range(args.reps):
                for s in servers:
                    try:
                        rec = one_run(s, n, args, workdir)
                    except Exception as e:  # keep going: one failed run is a result too
                        log(f"   {s.name} N={n} FAILED: {e}")
                        continue
                    rec["rep"] = rep
                    results.append(rec)
                    rf.write(json.dumps(rec) + "\n")
                    rf.flush()
    md = report(results, args)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(md)
    print(md)
    log(f"wrote {out}/report.md and results.jsonl")


if __name__ == "__main__":
    main()
