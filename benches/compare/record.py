#!/usr/bin/env python3
"""Recording cost: one node's CPU and its players' lag with and without recording.

Two benchmarks, each alternating A (no room records) and B (every room records) in one
session (A B A B ..., so machine drift hits both sides). Each run starts a fresh
microvibe (one shard, `taskset -c 1`) whose `recording.path` is a temporary directory,
creates the rooms with `"record": false` (A) or `true` (B) and publishes the fan-out
fixture (720p30, ~2.5 Mbit/s, ffmpeg -re -stream_loop -1 -c copy, `taskset -c 0`) into
each:

  cost  one room, no players: the server's CPU (utime + stime from /proc) over --window s
        after --warmup s, and the bytes the recording adds to its file per second
        (the file's size on disk at the window's edges; the API's size_bytes after).
  load  --rooms rooms, --players HTTP-FLV players spread round-robin over them
        (one loadgen on CPU 0, `--url` once per room): the players' lag p50/p99/max
        (the loadgen's re-anchored lag), failed/dropped players, the server's CPU
        over the loadgen's window.

In both, the disk writer thread's own CPU (thread `recording-writer`, from
/proc/PID/task) and the recordings the server stopped because its queue was full (the
"disk is not keeping up" warning in its log) are recorded; the queue's fill is not
exposed otherwise.

    benches/compare/record.py [--mode cost|load|both] [--reps 3] [--skip-build]
                              [--rooms 50] [--players 2000] [--target-dir DIR]

Only loopback addresses are used. Every process this script starts is stopped by its
pid on exit; the recordings are deleted after each run. Results: OUT/results.jsonl and
OUT/report.md.
"""

import argparse
import atexit
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare as c  # noqa: E402  (the fan-out comparison's helpers)

TICK = os.sysconf("SC_CLK_TCK")
ADMIN = "bench-admin-token-0123456789"


def proc_cpu_s(path):
    """utime + stime, in seconds, of /proc/PID/stat or /proc/PID/task/TID/stat."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def writer_tid(pid):
    for d in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(d + "/comm") as f:
                if f.read().strip().startswith("recording-writ"):  # comm: 15 chars
                    return int(os.path.basename(d))
        except OSError:
            pass
    return None


def dir_bytes(root):
    total = 0
    for dp, _, files in os.walk(root):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dp, f))
            except OSError:
                pass
    return total


class Node:
    """A fresh microvibe with `rooms` rooms (record on or off), each published."""

    def __init__(self, workdir, rooms, record):
        self.dir = tempfile.mkdtemp(prefix="record-", dir=workdir)
        self.rec = os.path.join(self.dir, "recordings")
        api, rtmp, http = c.free_port(), c.free_port(), c.free_port()
        env = dict(os.environ)
        env.update({
            "MICROVIBE__SERVER__HOST": "127.0.0.1",
            "MICROVIBE__SERVER__PORT": str(api),
            "MICROVIBE__SERVER__ADMIN_TOKEN": ADMIN,
            "MICROVIBE__RTMP__LISTEN": f"127.0.0.1:{rtmp}",
            "MICROVIBE__HTTP_MEDIA__LISTEN": f"127.0.0.1:{http}",
            "MICROVIBE__DATABASE__SQLITE_PATH": os.path.join(self.dir, "bench.db"),
            "MICROVIBE__ENGINE__SHARDS": "1",
            "MICROVIBE__RECORDING__PATH": self.rec,
            "MICROVIBE__STREAMING__RTMP_SERVER": f"rtmp://127.0.0.1:{rtmp}/live",
            "MICROVIBE__STREAMING__RTMP_PLAY_SERVER": f"rtmp://127.0.0.1:{rtmp}/live",
            "MICROVIBE__STREAMING__FLV_SERVER": f"http://127.0.0.1:{http}/flv",
            "MICROVIBE__STREAMING__HLS_SERVER": f"http://127.0.0.1:{http}/hls",
            "RUST_LOG": "warn",
        })
        self.logf = open(os.path.join(self.dir, "server.log"), "w")
        self.pubs = []
        self.proc = c.spawn(["taskset", "-c", "1", c.MICROVIBE], cwd=self.dir, env=env,
                            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        self.base = f"http://127.0.0.1:{api}"
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("microvibe did not start; see " + self.logf.name)
            time.sleep(0.1)
        user = f"rec{api}"
        c.http_json("POST", self.base + "/api/v1/auth/register", {"username": user, "password": "password123"})
        self.tok = c.http_json("POST", self.base + "/api/v1/auth/login",
                               {"username": user, "password": "password123"})["data"]["token"]
        self.rooms = []
        for i in range(rooms):
            room = c.http_json("POST", self.base + "/api/v1/live/create",
                               {"title": f"rec {i}", "push_protocol": "rtmp", "record": record}, self.tok)["data"]
            if room.get("record") != record:
                raise RuntimeError(f"room created with record={room.get('record')}, wanted {record}")
            self.rooms.append(room)
            self.pubs.append(c.publisher(f"rtmp://127.0.0.1:{rtmp}/live/{room['stream_key']}", self.logf))
        deadline = time.time() + 30 + rooms
        for room in self.rooms:
            while c.http_json("GET", f"{self.base}/api/v1/live/{room['id']}")["data"]["status"] != "live":
                if time.time() > deadline:
                    raise RuntimeError("a stream did not go live; see " + self.logf.name)
                time.sleep(0.2)
        self.urls = [f"http://127.0.0.1:{http}/flv/{r['stream_name']}.flv" for r in self.rooms]

    def media_kbps(self):
        """The streams' ingest bitrates (the API's media.bitrate), kbit/s."""
        out = []
        for room in self.rooms:
            m = c.http_json("GET", f"{self.base}/api/v1/live/{room['id']}")["data"].get("media") or {}
            if m.get("bitrate"):
                out.append(m["bitrate"] / 1000)
        return out

    def recordings(self):
        """Each room's recordings as the API lists them."""
        out = []
        for room in self.rooms:
            out += c.http_json("GET", f"{self.base}/api/v1/live/{room['id']}/recordings")["data"]["items"]
        return out

    def end_and_wait(self, timeout=20.0):
        """Ends every broadcast (POST /end) and waits (bounded) until no recording is
        still being written; returns the recordings as the API lists them then."""
        for room in self.rooms:
            try:
                c.http_json("POST", f"{self.base}/api/v1/live/{room['id']}/end", {}, self.tok)
            except OSError as e:  # 409: not live (any more)
                c.log(f"   end {room['id']}: {e}")
        for p in self.pubs:
            c.stop(p)
        deadline = time.time() + timeout
        while True:
            recs = self.recordings()
            if all(r.get("status") != "recording" for r in recs) or time.time() > deadline:
                return recs
            time.sleep(0.3)

    def overflows(self):
        self.logf.flush()
        with open(self.logf.name, errors="replace") as f:
            return sum(1 for line in f if "disk is not keeping up" in line)

    def stop(self):
        for p in self.pubs:
            c.stop(p)
            c.forget(p)
        c.stop(self.proc, signal.SIGTERM, wait=10)
        c.forget(self.proc)
        self.logf.close()
        shutil.rmtree(self.rec, ignore_errors=True)


class Sample:
    """The server's and its writer thread's CPU seconds and the recordings' bytes, now."""

    def __init__(self, node):
        self.t = time.monotonic()
        self.cpu = proc_cpu_s(f"/proc/{node.proc.pid}/stat")
        tid = writer_tid(node.proc.pid)
        self.writer = proc_cpu_s(f"/proc/{node.proc.pid}/task/{tid}/stat") if tid else None
        self.bytes = dir_bytes(node.rec)


def deltas(a, b):
    secs = b.t - a.t
    return {
        "window_s": secs,
        "cpu_pct": 100 * (b.cpu - a.cpu) / secs,
        "writer_cpu_pct": 100 * (b.writer - a.writer) / secs if a.writer is not None and b.writer is not None else None,
        "disk_kbps": 8 * (b.bytes - a.bytes) / secs / 1000,
    }


def cost_run(record, args, workdir):
    node = Node(workdir, 1, record)
    try:
        time.sleep(args.warmup)
        a = Sample(node)
        time.sleep(args.window)
        b = Sample(node)
        rec = {"bench": "cost", "record": record, **deltas(a, b)}
        rec["stream_kbps"] = c.med(node.media_kbps())
        # The file's row is complete once the broadcast ends: its size over its length.
        recs = node.end_and_wait()
        rec["recordings"] = len(recs)
        rec["api_size_bytes"] = sum(r.get("size_bytes") or 0 for r in recs)
        rec["api_duration_s"] = sum(r.get("duration_secs") or 0 for r in recs)
        rec["api_kbps"] = 8 * rec["api_size_bytes"] / rec["api_duration_s"] / 1000 if rec["api_duration_s"] else None
        rec["api_status"] = sorted({r.get("status") for r in recs})
        rec["overflows"] = node.overflows()
        c.log(f"   cost record={record}: server CPU {rec['cpu_pct']:.2f} % (writer thread "
              f"{c.fmt(rec['writer_cpu_pct'], 2)} %), disk {rec['disk_kbps']:.0f} kbit/s, stream "
              f"{c.fmt(rec['stream_kbps'], 0)} kbit/s, recordings {rec['recordings']} {rec['api_status']} "
              f"{rec['api_size_bytes']} B in {c.fmt(rec['api_duration_s'], 1)} s = {c.fmt(rec['api_kbps'], 0)} kbit/s")
        return rec
    finally:
        node.stop()
        time.sleep(1.0)


def load_run(record, args, workdir):
    node = Node(workdir, args.rooms, record)
    try:
        time.sleep(args.settle)
        cmd = ["taskset", "-c", "0", c.LOADGEN, "--players", str(args.players), "--ramp", str(args.ramp),
               "--warmup", str(args.warmup), "--duration", str(args.window), "--read-interval", "200",
               "--watch-pid", str(node.proc.pid), "--json", "--quiet"]
        for u in node.urls:
            cmd += ["--url", u]
        # The writer thread and the files over (about) the loadgen's window.
        samples = []

        def sampler():
            time.sleep(args.players / args.ramp + args.warmup)
            samples.append(Sample(node))
            time.sleep(args.window)
            samples.append(Sample(node))
        t = threading.Thread(target=sampler, daemon=True)
        t.start()
        out = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=args.players / args.ramp + args.warmup + args.window + 120)
        t.join(timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed: {out.stderr}")
        s = json.loads(out.stdout.strip().splitlines()[-1])
        w = s["window"]
        srv = w["watch"][0]
        d = deltas(samples[0], samples[1]) if len(samples) == 2 else {}
        rec = {
            "bench": "load", "record": record, "rooms": args.rooms, "players": args.players,
            "streams": s.get("streams"), "connected": s["connected"], "receiving": s["receiving"],
            "failed": s["failed"], "dropped": s["dropped"], "receiving_at_end": s["receiving_at_end"],
            "gbps": w["mbps"] / 1000.0, "window_s": w["seconds"],
            "cpu_pct": srv["cpu_pct"], "user_pct": srv["user_pct"], "sys_pct": srv["sys_pct"],
            "runqueue_wait_pct": srv.get("runqueue_wait_pct"),
            "lag_p50": w["lag_ms"]["p50"], "lag_p99": w["lag_ms"]["p99"], "lag_max": w["lag_ms"]["max"],
            "players_lag_over_1s": w["players_lag_over_1s"], "stalls": w["stalls"],
            "loadgen_cpu_pct": w["loadgen_cpu"]["pct"],
            "writer_cpu_pct": d.get("writer_cpu_pct"), "disk_kbps": d.get("disk_kbps"),
            "errors": s["errors"],
        }
        recs = node.recordings()
        rec["recordings"] = len(recs)
        rec["recordings_failed"] = sum(1 for r in recs if r.get("status") == "failed")
        rec["overflows"] = node.overflows()
        c.log(f"   load record={record}: {rec['gbps']:.2f} Gbit/s to {rec['receiving']}/{args.players} players, "
              f"server CPU {rec['cpu_pct']:.1f} % (writer {c.fmt(rec['writer_cpu_pct'], 2)} %), lag p50/p99/max "
              f"{rec['lag_p50']}/{rec['lag_p99']}/{rec['lag_max']} ms, failed {rec['failed']} dropped "
              f"{rec['dropped']}, disk {c.fmt(rec['disk_kbps'], 0)} kbit/s, recordings {rec['recordings']} "
              f"(failed {rec['recordings_failed']}), queue overflows {rec['overflows']}, loadgen CPU "
              f"{rec['loadgen_cpu_pct']:.1f} %")
        return rec
    finally:
        node.stop()
        time.sleep(2.0)


def cell(rs, k, nd=1):
    return f"{c.fmt(c.med([r[k] for r in rs]), nd)} ({', '.join(c.fmt(r[k], nd) for r in rs)})"


def report(results, args):
    lines = [f"Window {args.window} s after {args.warmup} s warm-up; medians, single runs in brackets "
             f"(A B A B …, {args.reps} repetitions).\n"]
    cost = [r for r in results if r["bench"] == "cost"]
    if cost:
        a = [r for r in cost if not r["record"]]
        b = [r for r in cost if r["record"]]
        lines += ["### cost: one stream, no players\n",
                  "| record | server CPU % of a core | writer thread CPU % | recording kbit/s (on disk, window) "
                  "| recording kbit/s (API size / duration) | stream kbit/s |",
                  "|---|---|---|---|---|---|"]
        for name, rs in (("off", a), ("on", b)):
            if rs:
                lines.append(f"| {name} | {cell(rs, 'cpu_pct', 2)} | {cell(rs, 'writer_cpu_pct', 2)} "
                             f"| {cell(rs, 'disk_kbps', 0)} | {cell(rs, 'api_kbps', 0)} | {cell(rs, 'stream_kbps', 0)} |")
        if a and b:
            lines.append(f"\nB − A (medians): {c.med([r['cpu_pct'] for r in b]) - c.med([r['cpu_pct'] for r in a]):.2f} "
                         "% of a core.")
    load = [r for r in results if r["bench"] == "load"]
    if load:
        lines += [f"\n### load: {args.rooms} streams, {args.players} HTTP-FLV players\n",
                  "| record | lag p50 ms | lag p99 ms | lag max ms | failed + dropped | server CPU % | writer CPU % "
                  "| recording Mbit/s | Gbit/s out | queue overflows | loadgen CPU % |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, rs in (("none", [r for r in load if not r["record"]]), ("all", [r for r in load if r["record"]])):
            if not rs:
                continue
            for r in rs:
                r["lost"] = r["failed"] + r["dropped"]
                r["disk_mbps"] = (r["disk_kbps"] or 0) / 1000
            lines.append(f"| {name} | {cell(rs, 'lag_p50', 0)} | {cell(rs, 'lag_p99', 0)} | {cell(rs, 'lag_max', 0)} "
                         f"| {cell(rs, 'lost', 0)} | {cell(rs, 'cpu_pct')} | {cell(rs, 'writer_cpu_pct', 2)} "
                         f"| {cell(rs, 'disk_mbps')} | {cell(rs, 'gbps', 2)} | {sum(r['overflows'] for r in rs)} "
                         f"| {cell(rs, 'loadgen_cpu_pct')} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["cost", "load", "both"], default="both")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rooms", type=int, default=50)
    ap.add_argument("--players", type=int, default=2000)
    ap.add_argument("--ramp", type=float, default=400)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--settle", type=float, default=3)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR") or c.TARGET,
                    help="where the release binaries and the fixture are (default $CARGO_TARGET_DIR or target/)")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, c.on_signal)
    signal.signal(signal.SIGINT, c.on_signal)
    atexit.register(c.cleanup)
    c.TARGET = os.path.abspath(args.target_dir)
    c.FIXTURE = os.path.join(c.TARGET, "fixtures", "bench-720p30.flv")
    c.MICROVIBE = os.path.join(c.TARGET, "release", "microvibe")
    c.LOADGEN = os.path.join(c.TARGET, "release", "loadgen")
    c.ensure_tools()
    if not args.skip_build:
        c.build()
    for b in (c.MICROVIBE, c.LOADGEN):
        if not os.path.exists(b):
            sys.exit(f"{b} missing: run without --skip-build")
    c.ensure_fixture()
    c.raise_nofile()
    args.out_dir = os.path.abspath(args.out_dir or os.path.join(c.TARGET, "bench-record", time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(args.out_dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="record-bench-")
    c.log(f"results in {args.out_dir}")
    results = []
    try:
        for bench, fn in (("cost", cost_run), ("load", load_run)):
            if args.mode not in (bench, "both"):
                continue
            for rep in range(args.reps):
                for record in (False, True):
                    c.log(f"run {bench} record={record} rep {rep + 1}/{args.reps}")
                    try:
                        rec = fn(record, args, workdir)
                    except Exception as e:  # keep going: one failed run is a result too
                        c.log(f"   {bench} record={record} FAILED: {e}")
                        continue
                    rec["rep"] = rep
                    rec["at"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
                    results.append(rec)
                    with open(os.path.join(args.out_dir, "results.jsonl"), "a") as f:
                        f.write(json.dumps(rec) + "\n")
    finally:
        c.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(results, args)
    with open(os.path.join(args.out_dir, "report.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
