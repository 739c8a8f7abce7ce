#!/usr/bin/env python3
"""A WHIP publisher / WHEP subscriber built on aiortc, for control/tests/webrtc_e2e.rs.

  whip_peer.py publish URL --key KEY [--codec h264|vp8] [--seconds S]
  whip_peer.py subscribe URL [--min-frames N] [--timeout S] [--until-ended]
  --barcode (both modes): glass-to-glass latency. The publisher draws its frame's
  capture time (Unix ms mod 2**24) as a barcode in the top rows; the subscriber
  reads it from each decoded frame and reports [seconds since its first frame,
  latency ms] pairs in "done" as "barcode" (control/tests/bridge_e2e.rs).
  --sync (publish): A/V sync marks. Both tracks start from one epoch; in the first
  SYNC_FLASH s of every second (by capture time) the video is white and the audio a
  1 kHz beep, otherwise black and silent. A reader measures the offset between
  the flash and the beep onsets (control/tests/bridge_e2e.rs `av_sync`).
  --sync (subscribe): the same marks by arrival time: "av_offsets_ms" in done.

Signaling is plain HTTP (RFC 9725): POST the offer (application/sdp), read the
201 answer and Location, DELETE the Location at the end. Prints JSON lines:
{"type": "created", "status": 201, "location": ...}, {"type": "stats", ...},
and a final {"type": "done", ...} (subscribe: decoded video/audio frame counts,
size, seconds from POST to the first decoded frame).

aiortc leaves 127.0.0.1 out of its host candidates; the test runs in its own
network namespace where loopback is the only interface, so patch that in.
"""
import argparse
import array
import asyncio
import functools
import http.client as httpclient  # (`http` is the signaling function below)
import math
import fractions
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request

import aioice.ice

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]

import av  # noqa: E402
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack  # noqa: E402


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# The barcode: BARCODE_BITS blocks of BARCODE_W x BARCODE_H luma pixels from the top
# left corner, most significant bit first; white (235) is 1, black (16) is 0. Big
# blocks survive compression; a reader thresholds each block's centre at mid-gray.
BARCODE_BITS, BARCODE_W, BARCODE_H = 24, 12, 16
BARCODE_MOD = 1 << BARCODE_BITS


def wall_ms():
    """The barcode clock: Unix time in ms modulo 2**24 (wraps every ~4.7 h)."""
    return int(time.time() * 1000) % BARCODE_MOD


def draw_barcode(y, w, value):
    for i in range(BARCODE_BITS):
        px = b"\xeb" if (value >> (BARCODE_BITS - 1 - i)) & 1 else b"\x10"
        x0 = i * BARCODE_W
        for row in range(BARCODE_H):
            y[row * w + x0: row * w + x0 + BARCODE_W] = px * BARCODE_W


def read_barcode(plane, stride):
    """The value in a luma plane (bytes, `stride` bytes per row)."""
    v = 0
    for i in range(BARCODE_BITS):
        x0 = i * BARCODE_W + 3
        total = 0
        for row in range(4, BARCODE_H - 4):
            total += sum(plane[row * stride + x0: row * stride + x0 + BARCODE_W - 6])
        v = (v << 1) | (1 if total > 128 * (BARCODE_H - 8) * (BARCODE_W - 6) else 0)
    return v


def barcode_latency_ms(value, now=None):
    """now - value on the wrapping barcode clock, in (-2**23, 2**23]."""
    d = ((wall_ms() if now is None else now) - value) % BARCODE_MOD
    return d - BARCODE_MOD if d > BARCODE_MOD // 2 else d


# --sync: the marks last this long at the start of every second since the epoch.
SYNC_FLASH = 0.1


def in_flash(t, epoch):
    return (t - epoch) % 1.0 < SYNC_FLASH


class MovingVideo(MediaStreamTrack):
    kind = "video"

    def __init__(self, fps=30, barcode=False, sync_epoch=None):
        super().__init__()
        self.fps, self.n, self.start = fps, 0, None
        self.barcode = barcode
        self.sync_epoch = sync_epoch

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        at = self.start + self.n / self.fps  # this frame's capture time
        delay = at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        w, h = 320, 240
        frame = av.VideoFrame(w, h, "yuv420p")
        if self.sync_epoch is not None:
            y = bytes([235 if in_flash(at, self.sync_epoch) else 16]) * (w * h)
            frame.planes[0].update(y)
            frame.planes[1].update(bytes([128]) * (w * h // 4))
            frame.planes[2].update(bytes([128]) * (w * h // 4))
            frame.pts = self.n * 3000
            frame.time_base = fractions.Fraction(1, 90000)
            self.n += 1
            return frame
        y = bytearray([(self.n * 3) % 200 + 16]) * (w * h)
        bar = (self.n * 4) % w
        n = min(16, w - bar)
        for row in range(BARCODE_H + 8 if self.barcode else 0, h):
            y[row * w + bar: row * w + bar + n] = b"\xeb" * n
        if self.barcode:
            draw_barcode(y, w, wall_ms())
        frame.planes[0].update(bytes(y))
        frame.planes[1].update(bytes([128]) * (w * h // 4))
        frame.planes[2].update(bytes([128]) * (w * h // 4))
        frame.pts = self.n * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self.n += 1
        return frame


class ToneAudio(MediaStreamTrack):
    """A 440 Hz sine, 48 kHz stereo s16, 20 ms frames, paced in real time; with a
    sync epoch, 1 kHz beeps in the flashes (see --sync) and silence between."""

    kind = "audio"

    def __init__(self, sync_epoch=None):
        super().__init__()
        self.n, self.start = 0, None
        self.sync_epoch = sync_epoch

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        at = self.start + self.n * 0.02  # capture time of this frame's first sample
        delay = at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        samples = 960
        pcm = array.array("h")
        for i in range(samples):
            k = self.n * samples + i
            if self.sync_epoch is None:
                v = int(8000 * math.sin(2 * math.pi * 440 * k / 48000))
            elif in_flash(at + i / 48000, self.sync_epoch):
                v = int(12000 * math.sin(2 * math.pi * 1000 * k / 48000))
            else:
                v = 0
            pcm.append(v)
            pcm.append(v)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = 48000
        frame.pts = self.n * samples
        frame.time_base = fractions.Fraction(1, 48000)
        self.n += 1
        return frame


# --source ADDR: the local address of the signaling (HTTP) connections, e.g. to be
# another client than a test's flood from 127.0.0.1 (control/tests/hostile_engine.rs).
SOURCE_ADDR = None


class _SourceHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(functools.partial(httpclient.HTTPConnection, source_address=(SOURCE_ADDR, 0)), req)


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(_SourceHandler) if SOURCE_ADDR else urllib.request.build_opener()
    try:
        with opener.open(req, timeout=15) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


async def signal(pc, url, key=None):
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if key:
        headers["Authorization"] = "Bearer " + key
    loop = asyncio.get_running_loop()
    status, hdrs, body = await loop.run_in_executor(
        None, http, "POST", url, pc.localDescription.sdp.encode(), headers)
    location = hdrs.get("Location") or hdrs.get("location")
    emit({"type": "created", "status": status, "location": location, "etag": hdrs.get("ETag") or hdrs.get("etag"),
          "body": body if status != 201 else ""})
    if status != 201:
        raise SystemExit(3)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return location


def base(url):
    return url.split("/wh")[0]


async def publish(args):
    pc = RTCPeerConnection()
    epoch = time.time() if args.sync else None
    video = MovingVideo(barcode=args.barcode, sync_epoch=epoch)
    if args.barcode:
        emit({"type": "barcode", "clock": "unix_ms_mod", "modulus": BARCODE_MOD})
    audio = ToneAudio(sync_epoch=epoch) if args.tone or args.sync else AudioStreamTrack()
    pc.addTransceiver(audio, direction="sendonly")
    vt = pc.addTransceiver(video, direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video").codecs
    want = "video/" + args.codec.upper()
    prefs = [c for c in caps if c.mimeType.upper() == want.upper()]
    prefs += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    vt.setCodecPreferences(prefs)
    location = await signal(pc, args.url, args.key)
    t0 = time.time()
    while time.time() - t0 < args.seconds:
        emit({"type": "stats", "frames_sent": video.n, "state": pc.connectionState})
        await asyncio.sleep(0.5)
    if args.delete and location:
        loop = asyncio.get_running_loop()
        st, _, _ = await loop.run_in_executor(
            None, http, "DELETE", base(args.url) + location, None, {"Authorization": "Bearer " + args.key})
        emit({"type": "deleted", "status": st})
    emit({"type": "done", "frames_sent": video.n, "state": pc.connectionState})
    await pc.close()


async def subscribe(args):
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    c = {"video_frames": 0, "audio_frames": 0, "width": 0, "height": 0, "first_frame_secs": None, "max_gap_secs": 0.0}
    last = [None]
    audio = {"sum_sq": 0, "n": 0, "crossings": 0, "last": None, "rate": 48000}
    t_post = time.time()
    barcodes = []
    # --sync: arrival times of flash (video) and beep (audio) onsets.
    marks = {"video": [], "audio": [], "on": {"video": False, "audio": False}}

    def mark(kind, on, now):
        if on and not marks["on"][kind]:
            marks[kind].append(now)
        marks["on"][kind] = on

    async def consume(track):
        while True:
            try:
                frame = await track.recv()
            except Exception:
                # The server ended the session (DTLS close_notify): the track ends.
                c.setdefault("track_ended_secs", round(time.time() - t_post, 3))
                return
            if track.kind == "video":
                now = time.time()
                if c["first_frame_secs"] is None:
                    c["first_frame_secs"] = round(now - t_post, 3)
                elif last[0] is not None:
                    c["max_gap_secs"] = max(c["max_gap_secs"], round(now - last[0], 3))
                last[0] = now
                c["video_frames"] += 1
                c["width"], c["height"] = frame.width, frame.height
                if args.sync:
                    f = frame if frame.format.name in ("yuv420p", "yuvj420p") else frame.reformat(format="yuv420p")
                    plane, stride = bytes(f.planes[0]), f.planes[0].line_size
                    row = plane[(f.height // 2) * stride: (f.height // 2) * stride + f.width]
                    mark("video", sum(row) / max(1, len(row)) > 128, now)
                if args.barcode:
                    arrived = wall_ms()
                    try:
                        f = frame if frame.format.name in ("yuv420p", "yuvj420p") else frame.reformat(format="yuv420p")
                        value = read_barcode(bytes(f.planes[0]), f.planes[0].line_size)
                        first = now - c["first_frame_secs"] - t_post
                        barcodes.append([round(first, 3), barcode_latency_ms(value, arrived)])
                    except Exception as e:
                        c["barcode_error"] = repr(e)
            else:
                c["audio_frames"] += 1
                # Audio energy and zero crossings of the first channel (s16 interleaved).
                try:
                    if frame.format.name == "s16":
                        ch = len(frame.layout.channels)
                        pcm = array.array("h", bytes(frame.planes[0])[: frame.samples * ch * 2])
                        mono = pcm[::ch]
                        audio["sum_sq"] += sum(x * x for x in mono)
                        audio["n"] += len(mono)
                        prev = audio["last"]
                        for x in mono:
                            if prev is not None and (prev < 0) != (x < 0):
                                audio["crossings"] += 1
                            prev = x
                        audio["last"] = prev
                        audio["rate"] = frame.sample_rate
                        if args.sync:
                            rms = math.sqrt(sum(x * x for x in mono) / max(1, len(mono)))
                            mark("audio", rms > 1000, time.time())
                except Exception as e:  # keep counting frames even if analysis fails
                    audio["error"] = repr(e)

    @pc.on("track")
    def on_track(track):
        asyncio.ensure_future(consume(track))

    @pc.on("connectionstatechange")
    def on_state():
        # ICE + DTLS done: tells a slow handshake from a slow keyframe.
        if pc.connectionState == "connected" and "connected_secs" not in c:
            c["connected_secs"] = round(time.time() - t_post, 3)
        if pc.connectionState in ("closed", "failed") and "closed_secs" not in c:
            c["closed_secs"] = round(time.time() - t_post, 3)

    location = await signal(pc, args.url)
    t0 = time.time()
    while time.time() - t0 < args.timeout:
        emit({"type": "stats", "state": pc.connectionState, **c})
        if args.until_ended:
            if "track_ended_secs" in c or "closed_secs" in c:
                break
        elif c["video_frames"] >= args.min_frames and c["audio_frames"] > 0:
            break
        await asyncio.sleep(0.5)
    if args.delete and location:
        loop = asyncio.get_running_loop()
        st, _, _ = await loop.run_in_executor(None, http, "DELETE", base(args.url) + location, None, {})
        c["delete_status"] = st
    if audio["n"]:
        c["audio_rms"] = round(math.sqrt(audio["sum_sq"] / audio["n"]), 1)
        c["audio_tone_hz"] = round(audio["crossings"] / 2 / (audio["n"] / audio["rate"]), 1)
    if args.barcode:
        c["barcode"] = barcodes
    if args.sync:
        # Each flash's nearest beep, by arrival (audio minus video, ms).
        offs = []
        for v in marks["video"]:
            near = min(marks["audio"], key=lambda a: abs(a - v), default=None)
            if near is not None and abs(near - v) < 0.5:
                offs.append(round((near - v) * 1000))
        c["av_offsets_ms"] = offs
    emit({"type": "done", "state": pc.connectionState, **c})
    await pc.close()


def main():
    # WHIP_PEER_LOG=1: aiortc's RTP/RTCP debug log (every packet, NACK, PLI) on
    # stderr, with wall-clock times, to line up with the server's log.
    if os.environ.get("WHIP_PEER_LOG"):
        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr,
            format="%(created).3f " + sys.argv[1][:3] + " %(name)s %(message)s")
        for name in ("aiortc.rtcrtpreceiver", "aiortc.rtcrtpsender", "aiortc.rtcdtlstransport", "aioice.ice"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        log = logging.getLogger("whip_peer")
        log.setLevel(logging.DEBUG)
        send_keyframe = RTCRtpSender._send_keyframe

        def logged_send_keyframe(self):
            log.debug("keyframe requested (PLI/FIR received)")
            send_keyframe(self)

        RTCRtpSender._send_keyframe = logged_send_keyframe
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", help="local address of the HTTP signaling connections")
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("publish")
    p.add_argument("url")
    p.add_argument("--key", required=True)
    p.add_argument("--codec", default="h264", choices=["h264", "vp8"])
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--delete", action="store_true")
    p.add_argument("--tone", action="store_true", help="send a 440 Hz tone instead of silence")
    p.add_argument("--barcode", action="store_true", help="draw each frame's capture time (see read_barcode)")
    p.add_argument("--sync", action="store_true", help="white flash + 1 kHz beep at the start of every second")
    s = sub.add_parser("subscribe")
    s.add_argument("url")
    s.add_argument("--min-frames", type=int, default=60)
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--delete", action="store_true")
    s.add_argument("--barcode", action="store_true", help="read each frame's capture time: latency in done")
    s.add_argument("--sync", action="store_true", help="flash/beep onsets by arrival: av_offsets_ms in done")
    s.add_argument("--until-ended", action="store_true",
                   help="play until the server ends the session (or --timeout): closed_secs / track_ended_secs in done")
    args = ap.parse_args()
    global SOURCE_ADDR
    SOURCE_ADDR = args.source
    asyncio.run(publish(args) if args.mode == "publish" else subscribe(args))


if __name__ == "__main__":
    main()
