#!/usr/bin/env python3
"""Regenerates the seed corpora under fuzz/seeds/<target>/ from engine/testdata.

The seeds are committed (a few small files per target), so CI does not run this;
rerun it after changing a capture or an input format in engine/src/proto/fuzz.rs
or engine/src/proto/rtmp/fuzz.rs:

    python3 fuzz/seeds/make-seeds.py

Each fuzz body reads its knobs from its input (see those files); the seeds are laid
out accordingly.
"""

import pathlib
import shutil
import struct

HERE = pathlib.Path(__file__).resolve().parent
TESTDATA = HERE.parent.parent / "engine" / "testdata"
HANDSHAKE = 1 + 2 * 1536  # C0 + C1 + C2


def flv_tags(flv):
    """(type, timestamp_ms, body) of each tag of an FLV byte stream."""
    at = struct.unpack(">I", flv[5:9])[0] + 4
    while at + 11 <= len(flv):
        kind = flv[at] & 0x1F
        size = int.from_bytes(flv[at + 1 : at + 4], "big")
        ts = int.from_bytes(flv[at + 4 : at + 7], "big") | (flv[at + 7] << 24)
        body = flv[at + 11 : at + 11 + size]
        if len(body) < size:
            return
        yield kind, ts, body
        at += 11 + size + 4


def flv_head(flv, max_len):
    """The FLV header and whole tags, up to about max_len bytes."""
    end = struct.unpack(">I", flv[5:9])[0] + 4
    while end + 11 <= len(flv):
        size = int.from_bytes(flv[end + 1 : end + 4], "big")
        if end + 15 + size > max_len:
            break
        end += 15 + size
    return flv[:end]


def ts_mux_input(flags, flv, max_len):
    """The fuzz_ts_mux form: flags, then [kind][ts delta i16][len u16][body]."""
    out = bytearray([flags])
    last = 0
    for kind, ts, body in flv_tags(flv):
        if kind not in (8, 9) or len(out) > max_len:
            continue
        delta = max(-32768, min(32767, ts - last))
        last += delta
        body = body[:0xFFFF]
        out += struct.pack(">BhH", 1 if kind == 9 else 0, delta, len(body)) + body
    return bytes(out)


def main():
    publish = (TESTDATA / "rtmp" / "ffmpeg-publish.bin").read_bytes()
    play = (TESTDATA / "rtmp" / "ffmpeg-play.bin").read_bytes()
    small = (TESTDATA / "media" / "small.flv").read_bytes()
    bframes = (TESTDATA / "media" / "small_bframes.flv").read_bytes()
    tags = list(flv_tags(small))
    script = next(body for kind, _, body in tags if kind == 18)
    video_seq = next(body for kind, _, body in tags if kind == 9)
    audio_seq = next(body for kind, _, body in tags if kind == 8)
    key_frame = next(body for kind, _, body in tags if kind == 9 and body[1] == 1)
    audio_frame = [body for kind, _, body in tags if kind == 8][1]
    # The connect command: first message after the handshake, 12-byte type 0 header.
    connect = publish[HANDSHAKE + 12 : HANDSHAKE + 12 + 140]

    seeds = {
        # First byte: C0 (3) = all input at once.
        "rtmp_handshake": {
            "ffmpeg-c0c1": publish[: 1 + 1536],
            "ffmpeg-c0c1c2": publish[:HANDSHAKE],
        },
        # The chunk stream after the handshake.
        "rtmp_chunk": {
            "ffmpeg-publish": publish[HANDSHAKE : HANDSHAKE + 3000],
            "ffmpeg-play": play[HANDSHAKE:],
        },
        "amf0": {
            "connect-command": connect,
            "onmetadata": script,
        },
        # A flags byte (0x20: accept all, split 64+), then the client's chunk stream
        # (the body supplies the handshake itself).
        "rtmp_session": {
            "ffmpeg-publish": b"\x20" + publish[HANDSHAKE : HANDSHAKE + 3000],
            "ffmpeg-play": b"\x20" + play[HANDSHAKE:],
        },
        "http_request": {
            "ffmpeg-http-flv": b"GET /live/cam1.flv HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\n"
            b"Accept: */*\r\nRange: bytes=0-\r\nConnection: close\r\n"
            b"Host: 127.0.0.1:8080\r\nIcy-MetaData: 1\r\n\r\n",
            "browser-ws-flv": b"GET /flv/cam1.flv?token=a%2Bb+c&x HTTP/1.1\r\n"
            b"Host: live.example:8080\r\nConnection: Upgrade\r\nPragma: no-cache\r\n"
            b"Upgrade: websocket\r\nOrigin: http://live.example\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            "hls-pipelined": b"GET /hls/cam1.m3u8 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"
            b"GET /hls/cam1/17.ts HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
            "control-drop": b"POST /control/drop/publisher?stream=cam1 HTTP/1.1\r\n"
            b"Authorization: Bearer x\r\nContent-Length: 0\r\n\r\n",
        },
        "flv_reader": {
            "small": flv_head(small, 6000),
            "small-bframes": flv_head(bframes, 3000),
        },
        "codec": {
            "avc-sequence-header": video_seq,
            "aac-sequence-header": audio_seq,
            "avc-key-frame": key_frame[:600],
            "aac-frame": audio_frame,
            "avc-config-record": video_seq[5:],
            # A run of [kind][len][body] tags for the MediaInfo updates.
            "media-info-run": bytes([1, len(video_seq)]) + video_seq
            + bytes([0, len(audio_seq)]) + audio_seq
            + bytes([1, 5, 0x27, 1, 0, 0, 0]),
        },
        # fuzz_ts_mux's own framing (see its doc comment).
        "ts_mux": {
            "small": ts_mux_input(0x01, small, 8000),
            "small-bframes-bounded": ts_mux_input(0xC9, bframes, 6000),
        },
        "websocket": {
            "rfc6455-hello": bytes.fromhex("818537fa213d7f9f4d5158"),
            "close-1000": bytes.fromhex("88820000000003e8"),
            "ping-then-binary-126": bytes.fromhex("898201020304696b")
            + bytes.fromhex("02fe012c09080706")
            + bytes(b ^ [9, 8, 7, 6][i % 4] for i, b in enumerate([7] * 300)),
        },
    }
    for target, files in seeds.items():
        folder = HERE / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)


if __name__ == "__main__":
    main()
