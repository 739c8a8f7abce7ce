#!/usr/bin/env python3
"""aiortc peer driven over stdin/stdout by engine/tests/webrtc_aiortc.rs.

Protocol (one JSON object per line):
  peer -> test: {"type": "offer", "sdp": ...}
  test -> peer: {"type": "answer", "sdp": ...}
  peer -> test: {"type": "stats", ...} every 0.5 s, and {"type": "done", ...} at the end
  test -> peer: "stop" (or EOF) ends the peer.

Modes:
  publish   --codec h264|vp8 : sends a generated 320x240 30 fps video track and an
                               Opus audio track (sendonly).
  subscribe --min-frames N   : recvonly audio+video; counts decoded video frames and
                               audio frames; prints "done" once N video frames and
                               some audio were decoded.

aiortc leaves 127.0.0.1 out of its host candidates; the test runs in its own
network namespace where loopback is the only interface, so patch that in.
"""
import argparse
import asyncio
import logging
import os
import fractions
import json
import sys
import time

import aioice.ice

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]

import av  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack  # noqa: E402


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(*args):
    print("[aiortc_peer]", *args, file=sys.stderr, flush=True)


class MovingVideo(MediaStreamTrack):
    """320x240 yuv420p frames whose brightness and a bar move every frame."""

    kind = "video"

    def __init__(self, fps=30):
        super().__init__()
        self.fps = fps
        self.n = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        target = self.start + self.n / self.fps
        delay = target - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        w, h = 320, 240
        frame = av.VideoFrame(w, h, "yuv420p")
        y = bytearray([(self.n * 3) % 200 + 16]) * (w * h)
        bar = (self.n * 4) % w
        n = min(16, w - bar)
        for row in range(h):
            base = row * w + bar
            y[base : base + n] = b"\xeb" * n
        frame.planes[0].update(bytes(y))
        frame.planes[1].update(bytes([128]) * (w * h // 4))
        frame.planes[2].update(bytes([128]) * (w * h // 4))
        frame.pts = self.n * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self.n += 1
        return frame


async def read_line():
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, sys.stdin.readline)


async def wait_answer(pc):
    while True:
        line = await read_line()
        if not line:
            raise SystemExit("stdin closed before the answer")
        msg = json.loads(line)
        if msg.get("type") == "answer":
            await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
            return


async def publish(args):
    pc = RTCPeerConnection()
    video = MovingVideo()
    audio = AudioStreamTrack()
    pc.addTransceiver(audio, direction="sendonly")
    vt = pc.addTransceiver(video, direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video").codecs
    want = "video/" + args.codec.upper()
    prefs = [c for c in caps if c.mimeType.upper() == want.upper()]
    prefs += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    vt.setCodecPreferences(prefs)
    await pc.setLocalDescription(await pc.createOffer())
    emit({"type": "offer", "sdp": pc.localDescription.sdp})
    await wait_answer(pc)
    log("answer applied; publishing", args.codec)
    stop = asyncio.get_running_loop().create_future()

    async def watch_stdin():
        while True:
            line = await read_line()
            if not line or line.strip() == "stop":
                if not stop.done():
                    stop.set_result(True)
                return

    asyncio.ensure_future(watch_stdin())
    t0 = time.time()
    while not stop.done() and time.time() - t0 < args.seconds:
        emit({"type": "stats", "frames_sent": video.n, "state": pc.connectionState})
        try:
            await asyncio.wait_for(asyncio.shield(stop), 0.5)
        except asyncio.TimeoutError:
            pass
    emit({"type": "done", "frames_sent": video.n, "state": pc.connectionState})
    await pc.close()


async def subscribe(args):
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    counts = {"video_frames": 0, "audio_frames": 0, "width": 0, "height": 0}

    async def consume(track):
        while True:
            try:
                frame = await track.recv()
            except Exception as e:  # MediaStreamError at the end
                log("track ended:", track.kind, repr(e))
                return
            if track.kind == "video":
                counts["video_frames"] += 1
                counts["width"], counts["height"] = frame.width, frame.height
            else:
                counts["audio_frames"] += 1

    @pc.on("track")
    def on_track(track):
        log("track", track.kind)
        asyncio.ensure_future(consume(track))

    await pc.setLocalDescription(await pc.createOffer())
    emit({"type": "offer", "sdp": pc.localDescription.sdp})
    await wait_answer(pc)
    log("answer applied; subscribing")
    t0 = time.time()
    while time.time() - t0 < args.timeout:
        emit({"type": "stats", "state": pc.connectionState, **counts})
        if counts["video_frames"] >= args.min_frames and counts["audio_frames"] > 0:
            break
        await asyncio.sleep(0.5)
    emit({"type": "done", "state": pc.connectionState, **counts})
    await pc.close()


def main():
    logging.basicConfig(
        level=logging.DEBUG if os.environ.get("AIORTC_PEER_DEBUG") else logging.WARNING,
        format="[aiortc_peer] %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("publish")
    p.add_argument("--codec", default="h264", choices=["h264", "vp8"])
    p.add_argument("--seconds", type=float, default=60)
    s = sub.add_parser("subscribe")
    s.add_argument("--min-frames", type=int, default=60)
    s.add_argument("--timeout", type=float, default=40)
    args = ap.parse_args()
    asyncio.run(publish(args) if args.mode == "publish" else subscribe(args))


if __name__ == "__main__":
    main()
